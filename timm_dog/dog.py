"""Difference-of-Gaussians (DoG) kernels, as in "Neural Echos" (arXiv 2401.10178) §3.2-3.3.

For a kh×kw kernel and centre-to-surround ratio γ the paper samples

    σ = (k/4)·sqrt((1 − γ²)/(−ln γ))
    G(x, y) = (1/γ²)·exp(−r²/(2γ²σ²)) − exp(−r²/(2σ²))

on the grid x, y ∈ {−(k−1)/2 … (k−1)/2}, then scales the positive samples to sum +0.5 and the
negative ones to sum −0.5. Non-square kernels use σ per axis (σx from kw, σy from kh), so
1×k and k×1 kernels are 1-D DoG profiles. The zero crossing lies at q = γ²/4, where
q = x²/kw² + y²/kh²; samples with q < γ²/4 form the centre, the others the surround.

Rules for the cases the naive formula gets wrong (all are continuous in γ):

* γ = 0 (and any γ < 1e-12) is evaluated at γ = 1e-12: the limit γ → 0, where the surround
  sits on the ring of samples nearest the centre.
* A part with no sample point (k = 3 with γ ≥ 0.95 has no negative sample; even k with small γ,
  e.g. k = 4 with γ ≤ 0.35, has no positive one): the ring of samples farthest from (for the
  surround) or nearest to (for the centre) the middle takes that part's ±0.5, split evenly.
* Kernels whose samples all lie on one ring (1×1, 2×2, 1×2, 2×1) have no centre-surround
  pattern: they raise ``ValueError`` here and are skipped by ``dog_init_``.

Everything is computed in float64 per ring of equal q, so a batch of kernels costs a few
[n, rings] operations and one gather of ring values into the samples (exact; memory O(k²)), with no
Python loop per kernel. Sizes are bounded: each side at most MAX_KERNEL_SIDE, and a batch at most
MAX_VALUES values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from numbers import Real

import torch

from .errors import TimmDogError

__all__ = [
    "dog_kernel",
    "dog_kernels",
    "dog_bank",
    "dog_sigma",
    "kernel_hw",
    "is_shapeable",
    "check_gamma",
    "check_unit",
]
__all__ += ["PATTERNS", "check_pattern"]

GAMMA_MIN = 1e-12
GAMMA_MAX = 1.0 - 1e-9
MAX_KERNEL_SIDE = 1024
MAX_VALUES = 2**27  # per batch: 512 MiB of float32 (every real model needs far fewer)
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

KernelSize = int | Sequence[int]
Gamma = float | tuple[float, float]


def kernel_hw(kernel_size: KernelSize) -> tuple[int, int]:
    """Normalise an int or (kh, kw) pair to (kh, kw), refusing anything else."""
    if isinstance(kernel_size, Sequence) and not isinstance(kernel_size, str):
        hw = tuple(kernel_size)
    else:
        hw = (kernel_size, kernel_size)
    ok = len(hw) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_KERNEL_SIDE for v in hw)
    if not ok:
        raise TimmDogError(
            f"kernel_size must be an int in [1, {MAX_KERNEL_SIDE}] or a pair (kh, kw) of such ints; got {kernel_size!r}"
        )
    return hw


def _check_batch(n: int, kh: int, kw: int, dtype) -> None:
    """Refuse a non-floating dtype, or a batch of more than MAX_VALUES values."""
    if dtype not in DTYPES:
        raise TimmDogError(f"dtype must be one of {', '.join(map(str, DTYPES))}; got {dtype!r}")
    if n * kh * kw > MAX_VALUES:
        raise TimmDogError(
            f"{n} kernels of {kh}x{kw} are {n * kh * kw:,} values; at most {MAX_VALUES:,} "
            f"(2**27) per call: generate them in parts"
        )


def _is_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def check_unit(name: str, value) -> float:
    """Return ``value`` as a float if it lies in [0, 1], else raise a TimmDogError naming it."""
    if not _is_real(value) or not 0.0 <= float(value) <= 1.0:
        raise TimmDogError(f"{name} must be a number in [0, 1]; got {value!r}")
    return float(value)


def check_gamma(gamma) -> Gamma:
    """Validate γ: a float in [0, 1) or a range (low, high) with 0 <= low <= high <= 1, low < 1."""
    if isinstance(gamma, (tuple, list)):
        if len(gamma) != 2 or not all(_is_real(g) for g in gamma):
            raise TimmDogError(f"gamma range must be a pair (low, high) of numbers; got {gamma!r}")
        low, high = float(gamma[0]), float(gamma[1])
        if low > high:
            raise TimmDogError(f"gamma range {tuple(gamma)!r} is reversed: give (low, high) with low <= high")
        if not (0.0 <= low < 1.0 and high <= 1.0):
            raise TimmDogError(f"gamma range must lie in [0, 1] with low < 1; got {tuple(gamma)!r}")
        return (low, high)
    if not _is_real(gamma) or not 0.0 <= float(gamma) < 1.0:
        raise TimmDogError(
            f"gamma (centre-to-surround ratio) must be a number with 0 <= gamma < 1, "
            f"or a range (low, high); got {gamma!r}"
        )
    return float(gamma)


def dog_sigma(kernel_size: int, gamma: float) -> float:
    """The paper's surround σ (eq. 3) for a k-wide kernel: (k/4)·sqrt((1 − γ²)/(−ln γ))."""
    gamma = min(max(check_gamma(float(gamma)), GAMMA_MIN), GAMMA_MAX)
    return kernel_size / 4 * math.sqrt((1 - gamma * gamma) / -math.log(gamma))


@lru_cache(maxsize=16)
def _rings(kh: int, kw: int):
    """Unique normalised radii q (ascending), each sample's ring index [kh·kw], and ring sizes."""
    y = torch.arange(kh, dtype=torch.float64, device="cpu") - (kh - 1) / 2
    x = torch.arange(kw, dtype=torch.float64, device="cpu") - (kw - 1) / 2
    q = (y[:, None] ** 2 / kh**2 + x[None, :] ** 2 / kw**2).flatten()
    rings, inverse, counts = torch.unique(q, sorted=True, return_inverse=True, return_counts=True)
    return rings, inverse, counts.to(torch.float64)


def is_shapeable(kernel_size: KernelSize) -> bool:
    """True if the kernel's samples lie on at least two rings (a centre and a surround)."""
    return len(_rings(*kernel_hw(kernel_size))[0]) >= 2


def _weighted_sum(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Sums of values·weights over the last dim, added pairwise in a fixed order by elementwise ops only.

    A BLAS product (``values @ weights``) or ``torch.sum`` orders its additions by the CPU's vector
    width and code path (MKL's gave other last bits on an Intel AVX-512 CPU than on an AMD one, and
    under MKL_CBWR=COMPATIBLE); elementwise IEEE additions give the same bits on every CPU.
    """
    terms = values * weights
    while terms.shape[-1] > 1:  # the first half plus the second; an odd last term waits for the next round
        half = terms.shape[-1] // 2
        head = terms[..., :half] + terms[..., half : 2 * half]
        terms = torch.cat([head, terms[..., 2 * half :]], -1) if terms.shape[-1] % 2 else head
    return terms[..., 0]


def _ring_values(gamma: torch.Tensor, sign: torch.Tensor, rings: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """DoG values per ring, [n, rings], float64, for per-kernel γ [n] and sign [n] (+1 on, −1 off).

    With a = 8·(−ln γ)/(1 − γ²) = 1/(2σ²) in q units, G(q) = γ⁻²·exp(−a·q/γ²) − exp(−a·q); in
    float64 this neither overflows nor underflows for γ in [1e-12, 1 − 1e-9], whatever the size.
    """
    g = gamma.to(torch.float64).clamp(GAMMA_MIN, GAMMA_MAX)[:, None]
    g2 = g * g
    a = -8.0 * torch.log(g) / ((1 - g) * (1 + g))
    # G; the centre exponent is floored at −700: below it the term is < 1e-280 either way, and exp
    # would underflow into its slow (subnormal) path
    pos = torch.mul(rings, -a / g2).clamp_(min=-700.0).exp_().div_(g2).sub_(torch.mul(rings, -a).exp_())
    neg = pos.neg().clamp_(min=0)
    pos.clamp_(min=0)
    pos_sum, neg_sum = _weighted_sum(torch.stack([pos, neg]), counts)
    no_pos, no_neg = pos_sum == 0, neg_sum == 0
    if no_pos.any() or no_neg.any():
        # no sample inside the zero crossing: the innermost ring is the centre;
        # no sample outside it: the outermost ring is the surround
        pos[no_pos, 0], neg[no_pos, 0] = 1.0, 0.0
        pos[no_neg, -1], neg[no_neg, -1] = 0.0, 1.0
        pos_sum, neg_sum = _weighted_sum(torch.stack([pos, neg]), counts)
    half = 0.5 * sign.to(torch.float64)
    return pos.mul_((half / pos_sum)[:, None]).sub_(neg.mul_((half / neg_sum)[:, None]))


_CHUNK_ELEMENTS = 32768  # per step: below torch's parallel grain size (no thread-pool start-up, cache-sized)


def _build(gamma: torch.Tensor, sign: torch.Tensor, kh: int, kw: int, dtype, device, pattern="dog") -> torch.Tensor:
    if not is_shapeable((kh, kw)):
        raise TimmDogError(
            f"a {kh}x{kw} kernel has all its samples on one ring: no centre-surround pattern exists "
            f"(dog_init_ skips such layers)"
        )
    rings, inverse, counts = _rings(kh, kw)
    work = torch.float64 if dtype == torch.float64 else torch.float32
    out = torch.empty(len(gamma), kh * kw, dtype=work, device="cpu")
    chunk = max(1, _CHUNK_ELEMENTS // (kh * kw))
    for start in range(0, len(gamma), chunk):
        part = slice(start, start + chunk)
        args = (gamma[part], sign[part], rings, counts)
        values = (_ring_values(*args) if pattern == "dog" else _control_ring_values(pattern, *args)).to(work)
        torch.index_select(values, 1, inverse, out=out[part])  # each sample takes its ring's value
    return out.reshape(-1, kh, kw).to(dtype=dtype, device=device)


def dog_kernel(
    kernel_size: KernelSize,
    gamma: float,
    on_center: bool = True,
    dtype: torch.dtype = torch.float32,
    pattern: str = "dog",
) -> torch.Tensor:
    """One DoG kernel [kh, kw]: on-centre (positive middle) or off-centre (its negation); ``pattern``: see
    :func:`check_pattern` (a control shape with the same γ, sign and scale)."""
    kh, kw = kernel_hw(kernel_size)
    _check_batch(1, kh, kw, dtype)
    gamma = check_gamma(gamma)
    if isinstance(gamma, tuple):
        raise TimmDogError(f"dog_kernel takes a single gamma; for a range use dog_kernels; got {gamma!r}")
    if not isinstance(on_center, bool):
        raise TimmDogError(f"on_center must be True (on-centre) or False (off-centre); got {on_center!r}")
    pattern = check_pattern(pattern)
    sign = torch.tensor([1.0 if on_center else -1.0], dtype=torch.float64, device="cpu")
    return _build(torch.tensor([gamma], dtype=torch.float64, device="cpu"), sign, kh, kw, dtype, None, pattern)[0]


def dog_kernels(
    n: int,
    kernel_size: KernelSize,
    gamma: Gamma = (0.0, 0.5),
    on_ratio: float = 0.5,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device=None,
    pattern: str = "dog",
) -> torch.Tensor:
    """``n`` DoG kernels [n, kh, kw].

    ``gamma`` is a fixed float or a (low, high) range sampled uniformly per kernel; each kernel is
    on-centre with probability ``on_ratio``, else off-centre. Random draws come from ``generator``
    (a CPU ``torch.Generator``) or, when it is None, torch's global RNG. ``pattern`` other than "dog"
    gives a control shape (:func:`check_pattern`) from the very same draws of γ and sign.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise TimmDogError(f"n must be an int >= 0; got {n!r}")
    kh, kw = kernel_hw(kernel_size)
    _check_batch(n, kh, kw, dtype)
    gamma = check_gamma(gamma)
    on_ratio = check_unit("on_ratio", on_ratio)
    pattern = check_pattern(pattern)
    if isinstance(gamma, tuple):
        low, high = gamma
        gammas = low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64, device="cpu")
    else:
        gammas = torch.full((n,), gamma, dtype=torch.float64, device="cpu")
    on = torch.rand(n, generator=generator, dtype=torch.float64, device="cpu") < on_ratio
    sign = torch.where(on, 1.0, -1.0).to(torch.float64)
    return _build(gammas, sign, kh, kw, dtype, device, pattern)


def dog_bank(kernel_size: KernelSize, gammas, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """On-centre DoG kernels for each γ in ``gammas``, [len(gammas), kh, kw], in one vectorized pass."""
    kh, kw = kernel_hw(kernel_size)
    gammas = torch.as_tensor(gammas, dtype=torch.float64, device="cpu").reshape(-1)
    _check_batch(len(gammas), kh, kw, dtype)
    for gamma in gammas.tolist():
        check_gamma(gamma)
    return _build(gammas, torch.ones_like(gammas), kh, kw, dtype, None)


# --- control patterns: the DoG's draw (γ, sign, share, scale) with another shape --------------------

PATTERNS = ("dog", "gaussian", "impulse", "box")


def check_pattern(pattern) -> str:
    """Validate a kernel pattern: one of PATTERNS.

    * ``dog``: the paper's Difference of Gaussians (the default).
    * ``gaussian``: the DoG's own centre Gaussian without the surround, exp(−r²/(2γ²σ²)) with the
      paper's σ (per axis, as for DoG).
    * ``impulse``: all mass on the innermost ring: the centre tap (odd×odd), the central 2×2 (even×even),
      the central 2 taps (odd×even and 1×k with even k); independent of γ.
    * ``box``: uniform over the taps inside the DoG's zero crossing, q <= γ²/4 with
      q = x²/kw² + y²/kh² (for k×k: x² + y² <= (kγ/2)²), and at least the innermost ring.

    Each control is scaled like the DoG's positive part: it sums to +0.5 on-centre, −0.5 off-centre.
    """
    if not isinstance(pattern, str) or pattern not in PATTERNS:
        raise TimmDogError(f"pattern must be one of {', '.join(PATTERNS)}; got {pattern!r}")
    return pattern


def _control_ring_values(
    pattern: str, gamma: torch.Tensor, sign: torch.Tensor, rings: torch.Tensor, counts: torch.Tensor
) -> torch.Tensor:
    """Control values per ring, [n, rings], float64, summing to ±0.5 per kernel (see :func:`check_pattern`).

    Every kernel keeps weight 1 on its innermost ring (the Gaussian is taken relative to it), so the
    sum is >= the innermost ring's size and never 0: finite for every γ, including 0 (→ 1e-12).
    """
    g = gamma.to(torch.float64).clamp(GAMMA_MIN, GAMMA_MAX)[:, None]
    if pattern == "gaussian":  # exp(−a·(q − q0)/γ²), a = 1/(2σ²) in q units as in _ring_values
        a = -8.0 * torch.log(g) / ((1 - g) * (1 + g))
        values = torch.mul(rings - rings[0], -a / (g * g)).clamp_(min=-700.0).exp_()
    elif pattern == "box":
        values = (rings <= torch.clamp(g * g / 4, min=rings[0].item())).to(torch.float64)
    else:  # impulse
        values = torch.zeros(len(g), len(rings), dtype=torch.float64)
        values[:, 0] = 1.0
    total = _weighted_sum(values, counts)  # the same bits on every CPU, as for DoG
    return values.mul_((0.5 * sign.to(torch.float64) / total)[:, None])
