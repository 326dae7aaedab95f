"""How the reproducibility tests compare seeded weights across machines (docs/api.md, "seed").

Seeded DoG kernels are torch.rand draws (an integer RNG), elementwise IEEE-754 operations (the same
bits on every CPU) and float64 exp and log, whose last bit depends on the library torch takes them
from: MKL's VML on x86-64 wheels (whatever ATEN_CPU_CAPABILITY says; VML's code path may depend on
the CPU), SLEEF or libm elsewhere. An exp and log from another library (glibc's, correctly rounded
ones) moved 0.5-2 % of the float64 values of tests/test_dog.py's seeded kernels, each by at most
1.14 ulp of its kernel's largest value, and no float32 or float16 value. Hence: bit-identical in
one process and between processes on one machine; across machines, each value within
TOLERANCE × the largest |value| of its kernel (float64: 1e-15, about 4.5 ulp of it; float32 and
float16 one rounding at it), times the kernel's conditioning where its two Gaussians nearly cancel:
at γ = 0.99 MKL's exp under MKL_CBWR (an Intel Xeon) moved dog_bank's values by 166 ulp of their kernel's
peak, 1.7 ulp of the terms subtracted (see dog_conditioning).
"""

import math
import random

import torch

TOLERANCE = {torch.float64: 1e-15, torch.float32: 2.0**-23, torch.float16: 2.0**-10}


def fingerprint(t: torch.Tensor) -> float:
    """Σ v·w over the values in order, with fixed random weights w in [0, 1) and math.fsum: a value that
    moves, or moves place, moves it; the same bits give the same number on every machine."""
    weights = random.Random(0)
    return math.fsum(v * weights.random() for v in t.double().flatten().tolist())


def assert_matches_recorded(t: torch.Tensor, recorded: float, conditioning=1.0) -> None:
    """Every value moving by TOLERANCE × ``conditioning`` × the largest |value| of its kernel moves the
    fingerprint by at most the bound."""
    bound = t.numel() * TOLERANCE[t.dtype] * (t.double().abs() * conditioning).max().item()
    assert abs(fingerprint(t) - recorded) <= bound, (fingerprint(t), recorded, bound)


def dog_conditioning(kernel_size: int, gammas) -> torch.Tensor:
    """[len(gammas), 1, 1]: for each on-centre k×k DoG kernel (dog_bank's), the largest sum of the two terms of
    G(q) = γ⁻²·exp(−a·q/γ²) − exp(−a·q) over the largest |G| on its sample radii. A last-bit change of exp
    moves G by about an ulp of its terms, so by this many ulp of the kernel's peak: about 1 for small γ, about
    2/(1 − γ²) as γ → 1, where the two Gaussians nearly cancel."""
    g = torch.as_tensor(gammas, dtype=torch.float64).clamp(1e-12, 1 - 1e-9)[:, None]
    offsets = torch.arange(kernel_size, dtype=torch.float64) - (kernel_size - 1) / 2
    q = ((offsets[:, None] ** 2 + offsets[None, :] ** 2) / kernel_size**2).flatten()[None, :]
    a = -8 * torch.log(g) / (1 - g * g)
    centre, surround = torch.exp(-a * q / (g * g)) / (g * g), torch.exp(-a * q)
    return ((centre + surround).amax(1) / (centre - surround).abs().amax(1))[:, None, None]


def assert_close(a: torch.Tensor, b: torch.Tensor, conditioning=1.0) -> None:
    """Each value of ``a`` within TOLERANCE × ``conditioning`` (per kernel, see dog_conditioning) × the largest
    |value| of its kernel (last two dims) in ``b``."""
    peak = b.double().abs().amax(dim=(-2, -1), keepdim=True)
    worst = ((a.double() - b.double()).abs() / peak / conditioning).max().item()
    assert a.dtype == b.dtype and a.shape == b.shape and worst <= TOLERANCE[b.dtype], worst
