"""timm_dog.stats: run-level comparison of inits. Exactness against scipy, and calibration by simulation
(tests/simulation.py: two generative models where the truth is known)."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats
from simulation import simulate

from timm_dog.stats import compare_runs, image_variance, run_test, runs_needed

EXPERIMENTS = 1000  # per configuration: Monte-Carlo std of a rate near 5 % is 0.7 points


def _top1(draw, n):
    return draw(st.lists(st.floats(60, 90, allow_nan=False), min_size=n, max_size=n))


@settings(max_examples=60, deadline=None)
@given(st.data(), st.integers(2, 6), st.integers(2, 6), st.booleans())
def test_run_test_is_scipys_t_test_without_an_image_term(data, n_a, n_b, paired):
    a = np.array(_top1(data.draw, n_a))
    b = np.array(_top1(data.draw, n_a if paired else n_b))
    if np.ptp(a - b if paired else np.r_[a - a.mean(), b - b.mean()]) < 1e-6:
        return  # no spread: scipy gives nan, compare_runs a stated rule (test below)
    r = run_test(a, b, 0.0, paired)
    reference = scipy_stats.ttest_rel(a, b) if paired else scipy_stats.ttest_ind(a, b, equal_var=False)
    assert r["p_value"] == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-12)
    assert (r["low"], r["high"]) == pytest.approx(tuple(reference.confidence_interval(0.95)), rel=1e-9, abs=1e-9)
    c = compare_runs(a, b, paired=paired)
    assert (c.p_value, c.delta, c.runs) == (
        pytest.approx(float(r["p_value"])),
        pytest.approx(a.mean() - b.mean()),
        (len(a), len(b)),
    )
    wins = [(x > y) + 0.5 * (x == y) for x, y in (zip(a, b) if paired else ((x, y) for x in a for y in b))]
    assert c.prob_improvement == pytest.approx(np.mean(wins))


def test_image_variance_from_counts_equals_the_definition():
    rng = np.random.default_rng(3)
    a, b = rng.random((4, 3, 500)) < 0.7, rng.random((4, 3, 500)) < 0.6
    for paired in (False, True):
        x, y = a.astype(float), b.astype(float)
        if paired:
            per_image, noise = (x - y).mean(1), (x - y).var(1, ddof=1).mean(-1) / 3
        else:
            per_image = x.mean(1) - y.mean(1)
            noise = x.var(1, ddof=1).mean(-1) / 3 + y.var(1, ddof=1).mean(-1) / 3
        expected = np.maximum(per_image.var(-1, ddof=1) - noise, 0) / 500
        assert image_variance(a, b, paired) == pytest.approx(expected, rel=1e-9, abs=1e-15)
    one = image_variance(a[:, :1], b[:, :1], True)  # one run per arm: all of the per-image variance
    assert one == pytest.approx((a[:, 0].astype(float) - b[:, 0]).var(-1, ddof=1) / 500)


def test_compare_runs_on_right_wrong_arrays():
    rng = np.random.default_rng(0)
    a, b = rng.random((3, 1000)) < 0.8, rng.random((3, 1000)) < 0.78
    c = compare_runs(a, b)
    top1 = [100 * a.mean(1), 100 * b.mean(1)]
    assert c.top1 == (tuple(top1[0]), tuple(top1[1])) and c.runs == (3, 3)
    assert c.run_std == pytest.approx((np.std(top1[0], ddof=1), np.std(top1[1], ddof=1)))
    run_only = compare_runs(*top1)  # the image term only widens
    assert c.ci[0] <= run_only.ci[0] and c.ci[1] >= run_only.ci[1] and c.p_value >= run_only.p_value
    assert (
        c.test == "Welch's t-test on the runs' top-1"
        and "between training runs and over the validation images" in c.note
    )
    assert compare_runs(a, b, paired=True).test == "paired t-test on the 3 per-seed differences"
    # min_detectable_delta: the Δ at which this test has 80 % power, by scipy's noncentral t
    critical = scipy_stats.t.ppf(0.975, c.df)
    shift = c.min_detectable_delta / c.se
    power = scipy_stats.nct.sf(critical, c.df, shift) + scipy_stats.nct.cdf(-critical, c.df, shift)
    assert power == pytest.approx(0.8, abs=1e-4)


def test_one_run_per_arm_has_no_p_value_and_an_image_interval():
    rng = np.random.default_rng(1)
    a, b = rng.random((1, 2000)) < 0.8, rng.random((1, 2000)) < 0.75
    c = compare_runs(a, b)
    assert c.p_value is None and c.test is None and c.min_detectable_delta is None and c.run_std == (None, None)
    d = (a[0].astype(float) - b[0]) * 100
    half = 1.959964 * d.std(ddof=1) / np.sqrt(2000)
    assert c.ci == pytest.approx((d.mean() - half, d.mean() + half), rel=1e-6)
    assert c.note.startswith(
        "One run per arm: the variation between training runs is unknown, so there is no "
        "p-value, and the interval covers the validation images only"
    )
    assert c.prob_improvement is None  # one pair's 0 or 1 is no probability
    mixed = compare_runs(a, np.concatenate([b, b]))
    assert mixed.p_value is None and mixed.note.startswith("An arm has one run")
    bare = compare_runs([80.0], [79.0])
    assert bare.p_value is None and bare.ci == (None, None) and bare.delta == pytest.approx(1.0)


def test_no_spread_between_runs():
    same = np.array([[True, False, True]] * 3)
    c = compare_runs(same, same)
    assert (c.delta, c.p_value, c.ci, c.prob_improvement) == (0.0, None, (None, None), 0.5)  # undefined t


def test_compare_runs_refuses_bad_input():
    good = np.ones((2, 10), dtype=bool)
    cases = [
        ((good.astype(int), good), "must be a boolean array [runs, images]"),
        ((good, good[:, :5]), "a has 10 images, b 5"),
        ((good, np.ones(10)), "both be boolean arrays [runs, images] or both 1-D"),
        ((good, good[:1]), "paired=True needs the same seeds"),
        (([1.0, np.nan], [2.0, 3.0]), "must be finite"),
    ]
    for (a, b), message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            compare_runs(a, b, paired=message.startswith("paired"))
    with pytest.raises(ValueError, match="level must be in"):
        compare_runs(good, good, level=95)


def test_runs_needed():
    assert [runs_needed(d, 0.2) for d in (0.57, 0.34)] == [5, 8]
    assert runs_needed(-0.57, 0.2) == 5 and runs_needed(1, 0) == 2 and runs_needed(10, 0.1) == 2
    assert runs_needed(0.5, 0.4, power=0.9) > runs_needed(0.5, 0.4)
    for bad, message in (((0, 1), "must not be 0"), ((1, -1), ">= 0"), ((np.inf, 1), "finite")):
        with pytest.raises(ValueError, match=message):
            runs_needed(*bad)
    # by simulation: normal runs, paired t on independent pairs, at runs_needed(Δ, σ) and one run fewer
    rng = np.random.default_rng(0)
    n = runs_needed(2.0, 1.0)  # 7 runs: power 0.874; 6 runs: 0.789 (Monte-Carlo std 0.003)
    for runs, reached in ((n, True), (n - 1, False)):
        a, b = rng.normal(2.0, 1.0, (20_000, runs)), rng.normal(0.0, 1.0, (20_000, runs))
        power = (run_test(a, b, 0.0, paired=True)["p_value"] < 0.05).mean()
        assert bool(power >= 0.8) is reached, (runs, power)


def test_runs_needed_at_extreme_ratios():
    """scipy's noncentral t gives nan far in its tail (a huge Δ / run std): that is power 1, not a reason to double the
    runs until they overflow; a tiny Δ (the float noise of two equal means) is refused, not planned forever."""
    assert runs_needed(1e9, 0.2) == 2 and runs_needed(1e300, 1) == 2
    for delta, run_std in ((0.5, 1e9), (-1.4210854715202004e-14, 1.0)):
        with pytest.raises(ValueError, match="takes more than 1,048,576 runs per arm"):
            runs_needed(delta, run_std)


# (generative model, run scale, paired): the runs' top-1 std in points, measured in these simulations
MODELS = {"logistic": (0.1, True), "heavy": (0.06, False)}  # top-1 std ~0.68 and ~0.9 points


@pytest.mark.parametrize("model", MODELS)
def test_calibration_by_simulation(model):
    """Null experiments (both inits equal): p < 0.05 in at most 6 % (plus 2 Monte-Carlo std) at 2, 3 and 5 runs
    per arm; the 95 % interval covers the true Δ (0, and 1 point) in at least 93 % (less 2 Monte-Carlo std)."""
    scale, paired = MODELS[model]
    fpr_bound = 0.06 + 2 * np.sqrt(0.06 * 0.94 / EXPERIMENTS)
    cover_bound = 0.93 - 2 * np.sqrt(0.93 * 0.07 / EXPERIMENTS)
    for runs in (2, 3, 5):
        for delta in (0.0, 1.0):
            a, b = simulate(model, EXPERIMENTS, runs, delta, scale, paired, seed=runs)
            top1_a, top1_b = 100 * a.mean(-1), 100 * b.mean(-1)
            r = run_test(top1_a, top1_b, 1e4 * image_variance(a, b, paired), paired)
            rejected, covered = (r["p_value"] < 0.05).mean(), ((r["low"] <= delta) & (delta <= r["high"])).mean()
            if delta == 0:
                assert rejected <= fpr_bound, (runs, rejected)
                std = np.sqrt(top1_a.var(-1, ddof=1).mean())
                assert 0.3 <= std <= 1.0, std
            assert covered >= cover_bound, (runs, delta, covered)
            if delta == 1.0 and runs == 5:
                assert rejected >= 0.25, rejected  # has power at Δ = 1 point (measured: benchmarks/bench_stats.py)
    # compare_runs is run_test on one experiment
    c = compare_runs(a[0], b[0], paired=paired)
    assert (c.p_value, *c.ci) == pytest.approx((r["p_value"][0], r["low"][0], r["high"][0]))


def test_combine_over_models_by_simulation():
    """The mean Δ over base models (each a stratum, its own run spread and runs): the t interval of combine covers
    the true mean in at least 93 % of 4000 simulated Table-1s (3 models, 2-5 normal runs per arm)."""
    from timm_dog.stats import combine

    rng = np.random.default_rng(5)
    true = np.array([0.57, 0.34, 2.34])
    runs, spread = (3, 2, 5), (0.2, 0.5, 1.0)
    deltas, se, df = [], [], []
    for d, n, s in zip(true, runs, spread):
        r = run_test(rng.normal(d, s, (4000, n)), rng.normal(0.0, s, (4000, n)), 0.0, paired=False)
        deltas.append(r["delta"]), se.append(r["se"]), df.append(r["df"])
    c = combine(np.stack(deltas, -1), np.stack(se, -1), np.stack(df, -1))
    covered = ((c["low"] <= true.mean()) & (true.mean() <= c["high"])).mean()
    assert covered >= 0.93 - 2 * np.sqrt(0.93 * 0.07 / 4000), covered
    one = combine([1.0, 2.0], [0.5, 0.5], [4.0, 4.0])
    assert one["delta"] == 1.5 and one["se"] == pytest.approx(np.sqrt(0.5) / 2) and one["df"] == pytest.approx(8.0)


def test_runs_that_do_not_vary_give_no_p_value_and_one_run_no_probability_of_improvement():
    """Coarse top-1 can make every per-seed difference equal: the t statistic is undefined (se 0), so no p-value and
    no interval, never p = 0 with a zero-width interval; one run in an arm gives no P(improve) (one pair's 0 or 1)."""
    import warnings

    from timm_dog.stats import compare_runs

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's precision warning is not the user's
        c = compare_runs([81.0, 82.0, 83.0], [80.0, 81.0, 82.0], paired=True)
    assert (c.p_value, c.ci, c.test, c.se) == (None, (None, None), None, 0.0) and c.delta == 1.0
    assert "do not vary" in c.note and c.prob_improvement == 1.0
    assert compare_runs([81.0, 81.0], [80.0, 80.0]).p_value is None
    assert compare_runs([81.0], [80.0]).prob_improvement is None
    assert compare_runs([81.0, 82.0], [80.0]).prob_improvement is None
