"""Simulated init comparisons where the truth is known (tests/test_stats.py, benchmarks/bench_stats.py).

Each experiment trains `runs` networks per arm (a: the new init, b: native) and validates them on a fresh set of
images; a network's right/wrong on an image is a Bernoulli draw from its run's ability and the image's difficulty.
Two generative models:

- "logistic": P(right) = sigmoid(ability + shift − difficulty), abilities normal per run, difficulties normal
  (a wide spread: many images nearly always right or wrong). With `paired`, runs of the two arms with the same seed
  share half of their ability's variance (the same data order).
- "heavy": 85 % of the images always right (80 % of them) or always wrong; on the others P(right) = easiness +
  run effect + arm shift + an image × arm interaction (what the new init changes differs between images), the
  run effects heavy-tailed (Student t, 3 degrees of freedom, scaled to the std asked for).

The true Δ is the arms' difference in expected top-1 over runs and over the images' population (points).
"""

import numpy as np
from scipy import optimize, special

IMAGES = 2000
SPREAD = 8.0  # "logistic": the std of the images' difficulty (logits)
UNCERTAIN = 0.15  # "heavy": the share of images that are not always right or always wrong


def _logistic_truth(shift: float, ability: float, spread: float) -> float:
    """100 · E[sigmoid(u + shift − d) − sigmoid(u − d)] over u ~ N(0, ability²), d ~ N(−1.5, spread²)."""
    rng = np.random.default_rng(12345)
    z = rng.normal(size=400_000) * np.hypot(ability, spread) + 1.5
    return float(100 * (special.expit(z + shift) - special.expit(z)).mean())


def logistic_shift(delta: float, ability: float, spread: float) -> float:
    """The logit shift whose true Δ is ``delta`` points."""
    if delta == 0:
        return 0.0
    return optimize.brentq(lambda s: _logistic_truth(s, ability, spread) - delta, -5, 5, xtol=1e-9)


def _heavy_truth(shift: float, run_scale: float) -> float:
    """100 · share uncertain · E[clip(e + ε + shift + g) − clip(e + ε')] (clipping at 0 and 1 moves it a little)."""
    rng = np.random.default_rng(12345)
    e, g = rng.uniform(0.25, 0.75, 400_000), rng.normal(0, 0.1, 400_000)
    eps = rng.standard_t(3, 400_000) * run_scale / np.sqrt(3)
    return float(100 * UNCERTAIN * (np.clip(e + eps + shift + g, 0, 1) - np.clip(e + eps, 0, 1)).mean())


def heavy_shift(delta: float, run_scale: float) -> float:
    """The shift of P(right) on the uncertain images whose true Δ is ``delta`` points."""
    if delta == 0:
        return 0.0
    return optimize.brentq(lambda s: _heavy_truth(s, run_scale) - delta, -0.5, 0.5, xtol=1e-9)


def simulate(
    model: str,
    experiments: int,
    runs: int,
    delta: float,
    run_scale: float,
    paired: bool,
    seed: int = 0,
    images: int = IMAGES,
):
    """(a, b): boolean [experiments, runs, images] right/wrong of each arm's runs, with true Δ ``delta`` points;
    ``run_scale`` sets the spread between runs (logit std of ability for "logistic", std of P(right) for
    "heavy")."""
    rng = np.random.default_rng(seed)
    shape = (experiments, runs, 1)
    if model == "logistic":
        spread = SPREAD
        difficulty = rng.normal(-1.5, spread, size=(experiments, 1, images))
        if paired:  # a seed's shared half
            common = rng.normal(size=shape) * run_scale * np.sqrt(0.5)
            ability = [common + rng.normal(size=shape) * run_scale * np.sqrt(0.5) for _ in "ab"]
        else:
            ability = [rng.normal(size=shape) * run_scale for _ in "ab"]
        shift = logistic_shift(delta, run_scale, spread)
        p = [
            special.expit((ability[0] + shift - difficulty).astype(np.float32)),
            special.expit((ability[1] - difficulty).astype(np.float32)),
        ]
    elif model == "heavy":  # the images always right or wrong are the same for every run: drawn once
        uncertain = round(UNCERTAIN * images)
        always = np.broadcast_to(
            rng.random((experiments, 1, images - uncertain)) < 0.8, (experiments, runs, images - uncertain)
        )
        easiness = rng.uniform(0.25, 0.75, size=(experiments, 1, uncertain))
        interaction = rng.normal(0, 0.1, size=(experiments, 1, uncertain))
        effect = [rng.standard_t(3, size=shape) * run_scale / np.sqrt(3) for _ in "ab"]
        if paired:
            effect[1] = (effect[0] + effect[1]) / np.sqrt(2)
        shift = heavy_shift(delta, run_scale)
        p = [
            np.clip(easiness + effect[0] + shift + interaction, 0, 1).astype(np.float32),
            np.clip(easiness + effect[1], 0, 1).astype(np.float32),
        ]
        return tuple(
            np.concatenate([rng.random((experiments, runs, uncertain), dtype=np.float32) < x, always], -1) for x in p
        )
    else:
        raise ValueError(model)
    return tuple(rng.random((experiments, runs, images), dtype=np.float32) < x for x in p)
