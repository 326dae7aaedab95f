"""Does one init train better models than another? Statistics whose unit is the training run (no torch).

A run's top-1 varies with its seed, often as much as the effect looked for, so Δ's interval and p-value come from
the spread of the runs' top-1 (a paired t-test on per-seed differences when the runs are paired by seed, else
Welch's t-test), widened by the sampling variance of the validation images (the part of the per-image Δ that is
not run-to-run noise). One run per arm leaves the spread between runs unknown: no p-value, and an interval over the
images only. Calibration (false-positive rate, coverage, power) is tested by simulation: docs/report.md.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from .errors import TimmDogError

POWER = 0.8  # the power min_detectable_delta and runs_needed are stated at
MAX_RUNS = 2**20  # runs_needed refuses to plan more runs per arm than this (about a million)
ALPHA = 0.05


@dataclass
class RunComparison:
    """a against b, in top-1 points (a − b); see :func:`compare_runs`."""

    delta: float  # mean top-1 of a's runs minus b's
    ci: tuple  # (low, high) at the level asked for
    p_value: float | None  # run-level, two-sided; None when an arm has one run
    test: str | None  # the test p_value comes from
    runs: tuple  # (n_a, n_b)
    top1: tuple  # (a's runs' top-1, b's runs' top-1), in the order given
    run_std: tuple  # (std of a's runs' top-1, b's), sample std; None for one run
    prob_improvement: float | None  # P(a run of a beats a run of b), ties half; None when an arm has one run
    min_detectable_delta: float | None  # the |Δ| detectable at 80 % power at α 0.05 with these runs and spread
    note: str  # what the numbers cover
    se: float  # standard error of delta (points)
    df: float | None  # degrees of freedom of the t reference; None: normal (images only)


def _correct(x, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.dtype != bool or x.shape[0] < 1 or x.shape[1] < 2:
        raise TimmDogError(
            f"{name} must be a boolean array [runs, images] (each run's right/wrong on the same images, "
            f"at least 1 run and 2 images), not {x.dtype} of shape {x.shape}"
        )
    return x


def image_variance(a: np.ndarray, b: np.ndarray, paired: bool) -> np.ndarray:
    """Sampling variance of Δ (fraction², not points) from the validation images: var over images of the per-image
    Δ, less its run-to-run noise where more than one run per arm measures it, over the number of images. ``a`` and
    ``b`` are boolean [..., runs, images]; leading axes are independent experiments. Computed from per-image counts
    (right, and for pairs disagreeing), so it needs no float copy of the arrays."""
    n_a, n_b, images = a.shape[-2], b.shape[-2], a.shape[-1]
    right_a, right_b = a.sum(-2, dtype=np.int64), b.sum(-2, dtype=np.int64)

    def var(total, squares, n):  # sample variance over runs, per image, from the sums of x and x²
        return (squares - total.astype(np.float64) ** 2 / n) / (n - 1)

    per_image = right_a / n_a - right_b / n_b
    if paired and n_a > 1:
        noise = var(right_a - right_b, (a != b).sum(-2, dtype=np.int64), n_a).mean(-1) / n_a
    elif not paired and min(n_a, n_b) > 1:
        noise = var(right_a, right_a, n_a).mean(-1) / n_a + var(right_b, right_b, n_b).mean(-1) / n_b
    else:
        noise = 0.0
    return np.maximum(per_image.var(-1, ddof=1) - noise, 0.0) / images


def run_test(top1_a: np.ndarray, top1_b: np.ndarray, image_var, paired: bool, level: float = 0.95) -> dict:
    """The test and interval of :func:`compare_runs` on runs' top-1 (points) [..., runs], at least 2 runs per arm;
    ``image_var`` in points² [...]. Leading axes are independent experiments (the simulations use them).
    {delta, se, df, p_value, low, high}: the t statistic of scipy's ttest_rel (paired) or Welch's ttest_ind, with
    its degrees of freedom, and the image variance added to its squared standard error."""
    a, b = np.asarray(top1_a, dtype=np.float64), np.asarray(top1_b, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's precision warning on runs of equal top-1
        if paired:
            df = np.asarray(stats.ttest_rel(a, b, axis=-1).df, dtype=np.float64)
            run_var = (a - b).var(-1, ddof=1) / a.shape[-1]
        else:
            df = np.asarray(stats.ttest_ind(a, b, axis=-1, equal_var=False).df, dtype=np.float64)
            run_var = a.var(-1, ddof=1) / a.shape[-1] + b.var(-1, ddof=1) / b.shape[-1]
        delta = a.mean(-1) - b.mean(-1)
        se = np.sqrt(run_var + image_var)
        df = np.where(np.isfinite(df), df, a.shape[-1] - 1 if paired else a.shape[-1] + b.shape[-1] - 2)
        t = np.abs(delta) / se
        p = np.where(se > 0, 2 * stats.t.sf(t, df), np.where(delta == 0, 1.0, 0.0))
        half = np.where(se > 0, stats.t.ppf(0.5 + level / 2, df) * se, 0.0)
    return {"delta": delta, "se": se, "df": df, "p_value": p, "low": delta - half, "high": delta + half}


def _power(shift: float, df: float, alpha: float) -> float:
    """Power of the two-sided t-test (df) at α when the true Δ is ``shift`` standard errors (scipy's noncentral t)."""
    critical = stats.t.ppf(1 - alpha / 2, df)
    wrong_side = stats.nct.cdf(-critical, df, shift)  # scipy gives nan far in this tail, where it is < Φ(−shift)
    right_side = stats.nct.sf(critical, df, shift)  # nan too where shift is huge (> ~1e9), where the power is 1
    right_side = right_side if np.isfinite(right_side) else float(shift > critical)
    return float(right_side + (wrong_side if np.isfinite(wrong_side) else 0.0))


def _detectable(se: float, df: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """The Δ the t-test detects at this power: a number of standard errors that depends on df only."""
    high = 1.0
    while _power(high, df, alpha) < power:
        high *= 2
    return se * float(optimize.brentq(lambda k: _power(k, df, alpha) - power, 0.0, high, xtol=1e-7))


def compare_runs(a, b, *, paired: bool = False, level: float = 0.95, seed: int = 0) -> RunComparison:
    """Arm a against arm b, over training runs and validation images.

    ``a``, ``b``: boolean arrays [runs, images], each run's right/wrong on the same images in the same order; or
    1-D arrays of each run's top-1 in % (then there is no image term, and one run per arm gives no interval).
    ``paired=True`` when row i of a and of b are the same seed (same number of runs): the paired t-test on per-seed
    differences; otherwise Welch's t-test. ``seed`` is accepted for a stable signature (nothing here is random)."""
    del seed  # the methods are deterministic
    if not 0 < level < 1:
        raise TimmDogError(f"level must be in (0, 1), not {level}")
    top1, image_var = [], 0.0
    images = [np.ndim(x) == 2 for x in (a, b)]
    if all(images):
        a, b = _correct(a, "a"), _correct(b, "b")
        if a.shape[1] != b.shape[1]:
            raise TimmDogError(
                f"a and b must be right/wrong on the same images: a has {a.shape[1]} images, b {b.shape[1]}"
            )
        top1 = [100.0 * x.mean(1) for x in (a, b)]
    elif any(images) or any(np.ndim(x) != 1 or len(x) < 1 for x in (a, b)):
        raise TimmDogError("a and b must both be boolean arrays [runs, images] or both 1-D arrays of runs' top-1 (%)")
    else:
        top1 = [np.asarray(x, dtype=np.float64) for x in (a, b)]
        if not all(np.isfinite(x).all() for x in top1):
            raise TimmDogError("runs' top-1 must be finite numbers (%)")
    n_a, n_b = len(top1[0]), len(top1[1])
    if paired and n_a != n_b:
        raise TimmDogError(f"paired=True needs the same seeds in a and b (row i of each): a has {n_a} runs, b {n_b}")
    if all(images):
        image_var = float(image_variance(a, b, paired)) * 1e4  # fraction² → points²
    diff = top1[0][:, None] - top1[1][None, :]
    if paired:
        diff = np.diag(diff)
    prob = float(np.mean((diff > 0) + 0.5 * (diff == 0)))
    delta = float(top1[0].mean() - top1[1].mean())
    run_std = tuple(float(np.std(x, ddof=1)) if len(x) > 1 else None for x in top1)
    common = dict(
        runs=(n_a, n_b),
        top1=tuple(tuple(float(v) for v in x) for x in top1),
        run_std=run_std,
        prob_improvement=prob if min(n_a, n_b) > 1 else None,
    )  # one pair's 0 or 1 is no probability
    if min(n_a, n_b) < 2:
        which = "one run per arm" if n_a == n_b == 1 else "an arm has one run"
        if not all(images):
            return RunComparison(
                delta,
                (None, None),
                None,
                None,
                min_detectable_delta=None,
                se=float("nan"),
                df=None,
                note=f"{which.capitalize()}: the variation between training runs is "
                "unknown, so there is no p-value and, without per-image results, no interval",
                **common,
            )
        se = float(np.sqrt(image_var))
        half = float(stats.norm.ppf(0.5 + level / 2) * se)
        return RunComparison(
            delta,
            (delta - half, delta + half),
            None,
            None,
            min_detectable_delta=None,
            se=se,
            df=None,
            note=f"{which.capitalize()}: the variation between training runs is unknown, so "
            "there is no p-value, and the interval covers the validation images only (these "
            "networks on these images, not the init); whether the init helps takes at least 2 runs "
            "per arm",
            **common,
        )
    r = {k: float(v) for k, v in run_test(top1[0], top1[1], image_var, paired, level).items()}
    if r["se"] == 0:  # every run alike (coarse top-1, no per-image results): the t statistic is undefined
        return RunComparison(
            delta,
            (None, None),
            None,
            None,
            min_detectable_delta=None,
            se=0.0,
            df=r["df"],
            note=f"{n_a} and {n_b} runs whose {'differences' if paired else 'top-1'} do not vary: "
            "the t-test is undefined, so there is no p-value and no interval; more runs, or "
            "per-image results (timm-dog report), give them",
            **common,
        )
    test = f"paired t-test on the {n_a} per-seed differences" if paired else "Welch's t-test on the runs' top-1"
    covers = "the variation between training runs" + (" and over the validation images" if all(images) else "")
    return RunComparison(
        delta,
        (r["low"], r["high"]),
        r["p_value"],
        test,
        min_detectable_delta=_detectable(r["se"], r["df"]),
        se=r["se"],
        df=r["df"],
        note=f"{n_a} and {n_b} runs{' paired by seed' if paired else ''}: the interval and p cover "
        f"{covers}, so they say whether the init trains better models with this recipe",
        **common,
    )


def runs_needed(delta: float, run_std: float, *, alpha: float = ALPHA, power: float = POWER) -> int:
    """Runs per arm that detect a true ``delta`` (points) with this ``power`` at two-sided ``alpha``, when one run's
    top-1 has std ``run_std`` (points) around its arm's mean. Computed for the paired t-test on per-seed differences
    of independent runs (std √2·run_std, n − 1 degrees of freedom): the least powerful of compare_runs's tests at
    equal runs per arm, so enough for Welch's too. At least 2 (one run per arm gives no test)."""
    for name, value in (("delta", delta), ("run_std", run_std)):
        if not np.isfinite(value):
            raise TimmDogError(f"{name} must be a finite number of points, not {value}")
    if delta == 0:
        raise TimmDogError("delta must not be 0: no number of runs detects no difference")
    if run_std < 0:
        raise TimmDogError(f"run_std must be >= 0 points, not {run_std}")
    if not (0 < alpha < 1 and alpha < power < 1):
        raise TimmDogError(f"need 0 < alpha < power < 1, not alpha {alpha}, power {power}")
    if run_std == 0:
        return 2

    def enough(n: int) -> bool:
        return _power(abs(delta) / (run_std * np.sqrt(2.0 / n)), n - 1, alpha) >= power

    low, high = 1, 2  # enough(high), not enough(low) (n = 1 has no test)
    while not enough(high):
        if high >= MAX_RUNS:
            raise ValueError(
                f"detecting Δ = {delta:g} points with a run std of {run_std:g} points takes more than "
                f"{MAX_RUNS:,} runs per arm"
            )
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high


def combine(deltas, se, df, level: float = 0.95) -> dict:
    """The mean of independent Δs (e.g. one per base model: each a stratum) and its t interval: standard error
    sqrt(Σ se²) / count, Welch-Satterthwaite degrees of freedom (Σ se²)² / Σ(se⁴ / df). Arrays broadcast over
    leading axes, the strata on the last. {delta, se, df, low, high}."""
    deltas, se, df = (np.asarray(x, dtype=np.float64) for x in (deltas, se, df))
    count = deltas.shape[-1]
    variance = (se**2).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        dof = np.where(variance > 0, variance**2 / (se**4 / df).sum(-1), df.sum(-1))
    mean, error = deltas.mean(-1), np.sqrt(variance) / count
    half = stats.t.ppf(0.5 + level / 2, dof) * error
    result = {"delta": mean, "se": error, "df": dof, "low": mean - half, "high": mean + half}
    return {k: float(v) if np.ndim(v) == 0 else v for k, v in result.items()}
