"""Finding depthwise convolutions in a model and giving them DoG kernels in place."""
from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from numbers import Real
from typing import List, Optional, Tuple, Union

import torch
from torch import nn

from .dog import Gamma, check_gamma, check_unit, dog_kernels, is_shapeable

__all__ = ["is_depthwise", "dog_init_", "check_dog_args", "depthwise_kernels", "log_dog_init", "DogInitReport",
           "DogLayer"]

logger = logging.getLogger("timm_dog")

Scale = Union[str, float]
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1  # what torch.Generator.manual_seed accepts (negative seeds wrap)


def is_depthwise(module) -> bool:
    """True for an ``nn.Conv2d`` (any subclass) with ``groups == in_channels > 1``."""
    return isinstance(module, nn.Conv2d) and module.groups == module.in_channels > 1


def _looks_depthwise(module) -> bool:
    """A grouped conv-like module that is not an nn.Conv2d (e.g. timm's CondConv2d)."""
    groups = module.__dict__.get("groups")
    return isinstance(groups, int) and groups > 1 and groups == module.__dict__.get("in_channels")


@dataclass
class DogLayer:
    """One depthwise conv that received DoG kernels."""

    name: str
    kernel_size: Tuple[int, int]
    kernels: int  # kernels in the layer (out_channels)
    dog_kernels: int  # of which got DoG
    scale: float  # multiplier applied to the paper's kernels


@dataclass
class DogInitReport:
    """What ``dog_init_`` did: layers touched and layers skipped, with the reason."""

    layers: List[DogLayer] = field(default_factory=list)
    skipped: List[Tuple[str, str]] = field(default_factory=list)

    @property
    def kernels_set(self) -> int:
        return sum(layer.dog_kernels for layer in self.layers)

    @property
    def kernels_total(self) -> int:
        return sum(layer.kernels for layer in self.layers)

    def __bool__(self) -> bool:
        return bool(self.layers)

    def summary(self) -> str:
        text = f"DoG init: {len(self.layers)} depthwise layers, {self.kernels_set}/{self.kernels_total} kernels set"
        if self.skipped:
            text += f", {len(self.skipped)} skipped"
        return text

    def __str__(self) -> str:
        lines = [self.summary()]
        lines += [f"  skipped {name}: {reason}" for name, reason in self.skipped]
        return "\n".join(lines)


def log_dog_init(model_name: str, report: DogInitReport, args: dict) -> None:
    """One INFO line on ``logging.getLogger("timm_dog")`` saying what DoG init did (train.py's log prints it)."""
    gamma = args["gamma"]
    gamma = f"U({gamma[0]:g}, {gamma[1]:g})" if isinstance(gamma, tuple) else f"{gamma:g}"
    layers = len(report.layers) + len(report.skipped)
    logger.info(
        "%s: DoG init set %d/%d depthwise layers, %s/%s kernels (γ %s, on-ratio %g, share %g, scale %s, seed %s)",
        model_name, len(report.layers), layers, f"{report.kernels_set:,}", f"{report.kernels_total:,}", gamma,
        args["on_ratio"], args["share"], args["scale"], args["seed"],
    )


def check_dog_args(gamma=(0.0, 0.5), on_ratio=0.5, share=1.0, scale="paper", seed=None) -> dict:
    """Validate ``dog_init_`` arguments; return them normalised, or raise a ValueError saying what is allowed."""
    if isinstance(scale, str):
        if scale not in ("paper", "match"):
            raise ValueError(f"scale must be 'paper', 'match' or a positive number; got {scale!r}")
    elif not isinstance(scale, Real) or isinstance(scale, bool) or not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be 'paper', 'match' or a positive finite number; got {scale!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not SEED_MIN <= seed <= SEED_MAX):
        raise ValueError(f"seed must be None or an int in [-2**63, 2**64 - 1] (torch's seed range); got {seed!r}")
    return dict(
        gamma=check_gamma(gamma),
        on_ratio=check_unit("on_ratio", on_ratio),
        share=check_unit("share", share),
        scale=scale,
        seed=seed,
    )


def _multiplier(name: str, scale: Scale, kernels: torch.Tensor, weight: torch.Tensor) -> float:
    if scale == "paper":
        return 1.0
    if scale == "match":  # to the std of the layer's native init
        dog_std = kernels.std().item() if kernels.numel() > 1 else 0.0
        native = weight.float()
        native_std = native.std().item() if weight.numel() > 1 else 0.0
        if not math.isfinite(native_std) or native.amin() == native.amax():
            raise ValueError(f"scale='match' in layer {name}: its native weights are "
                             f"{'not finite' if not math.isfinite(native_std) else 'all equal'}, there is no std "
                             f"to match; use scale='paper' or a number")
        return native_std / dog_std if dog_std > 0 else 1.0
    return float(scale)


def _scaled(name: str, kernels: torch.Tensor, multiplier: float, scale: Scale, dtype: torch.dtype) -> torch.Tensor:
    """``kernels`` (float32) times ``multiplier``, in ``dtype``; refuse values that dtype cannot hold.

    Overflow (a value that is not finite) and underflow (a kernel whose relative L2 error exceeds
    4 epsilon of the narrower of float32 and ``dtype``, i.e. values lost to zero or to subnormals)
    raise a ValueError naming the layer and the limit.
    """
    out = (kernels * multiplier if multiplier != 1.0 else kernels).to(dtype)
    narrow = dtype if torch.finfo(dtype).bits < 32 else kernels.dtype
    info = torch.finfo(narrow)
    what = f"scale={scale!r}" + (f" (x{multiplier:.3g})" if scale == "match" else "")
    if narrow != dtype:
        what += f" (DoG kernels are scaled in {narrow})"
    peak = kernels.abs().amax().item()
    if not torch.isfinite(out).all():
        raise ValueError(f"{what} overflows {narrow} in layer {name}: the largest DoG value {peak:.3g} becomes "
                         f"{peak * multiplier:.3g}, above {info.max:.4g}; this layer allows a scale of at most "
                         f"{info.max / peak:.3g}")
    exact = kernels.double()
    error = (out.double() / multiplier - exact).flatten(1).norm(dim=1)
    norms = exact.flatten(1).norm(dim=1)
    if (error > 4 * info.eps * norms).any():
        safe = info.tiny * math.sqrt(kernels[0].numel()) / norms.min().item()
        raise ValueError(f"{what} underflows {narrow} in layer {name}: the kernels fall to zero or below its "
                         f"smallest normal value {info.tiny:.3g} and lose their pattern; a scale of at least "
                         f"{safe:.3g} is safe for this layer")
    return out


@torch.no_grad()
def dog_init_(
    model: nn.Module,
    gamma: Gamma = (0.0, 0.5),
    on_ratio: float = 0.5,
    share: float = 1.0,
    scale: Scale = "paper",
    seed: Optional[int] = None,
) -> DogInitReport:
    """Give every depthwise conv of ``model`` DoG kernels, in place.

    In each layer round(share · kernels) kernels, chosen at random, get a DoG pattern with γ
    fixed or drawn per kernel from the (low, high) range, on-centre with probability
    ``on_ratio``; the others keep their native init. ``scale`` is "paper" (as defined in the
    paper), "match" (rescaled to the std of the layer's native init) or a fixed multiplier.
    The same ``seed`` gives bit-identical weights; with None, torch's global RNG decides.
    Kernels a layer's dtype cannot hold once scaled (overflow, or underflow that loses the
    pattern) raise a ValueError naming the layer and the limit, before any layer is written.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"dog_init_ expects a torch.nn.Module; got {type(model).__name__}")
    args = check_dog_args(gamma, on_ratio, share, scale, seed)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    report = DogInitReport()
    targets = []  # (name, conv, kernels to set, chosen kernel indices or None for all)
    for name, module in model.named_modules():
        if not is_depthwise(module):
            if not isinstance(module, nn.Conv2d) and _looks_depthwise(module):
                report.skipped.append((name, f"{type(module).__name__} is not an nn.Conv2d; left untouched"))
            continue
        reason = _skip_reason(module)
        if reason:
            report.skipped.append((name, reason))
            continue
        total = module.weight.shape[0]
        count = round(args["share"] * total)
        chosen = torch.randperm(total, generator=generator, device="cpu")[:count] if count < total else None
        targets.append((name, module, count, chosen))
    # one batch of kernels per kernel size (in order of first appearance), for all its layers at once
    counts = {}
    for _, conv, count, _ in targets:
        counts.setdefault(tuple(conv.kernel_size), []).append(count)
    batches = {size: iter(dog_kernels(sum(n), size, args["gamma"], args["on_ratio"], generator=generator).split(n))
               for size, n in counts.items()}
    # every layer's kernels are scaled and checked before any is written (no half-initialized model)
    ready = [_prepare(name, conv, next(batches[tuple(conv.kernel_size)]), chosen, args["scale"])
             for name, conv, _, chosen in targets]
    for layer, conv, kernels, chosen in ready:
        _write(conv, kernels, chosen)
        report.layers.append(layer)
    if not report.layers:
        why = "; ".join(f"{n}: {r}" for n, r in report.skipped[:3]) or "it has no depthwise convolution"
        warnings.warn(f"dog_init_ changed nothing in {type(model).__name__}: {why}", stacklevel=2)
    return report


def _skip_reason(conv: nn.Conv2d) -> Optional[str]:
    kh, kw = conv.kernel_size
    if not is_shapeable((kh, kw)):
        return f"kernel {kh}x{kw}: nothing to shape (all samples on one ring)"
    if conv.weight.is_meta:
        return "weights are on the meta device"
    return None


def _prepare(name, conv: nn.Conv2d, kernels: torch.Tensor, chosen: Optional[torch.Tensor], scale) -> tuple:
    """(DogLayer, conv, kernels scaled and in the weight's dtype, chosen) for one layer, checked, not written."""
    weight = conv.weight
    size, count = tuple(conv.kernel_size), len(kernels)
    if count == 0:
        return DogLayer(name, size, weight.shape[0], 0, 0.0), conv, kernels, chosen
    multiplier = _multiplier(name, scale, kernels, weight)
    kernels = _scaled(name, kernels, multiplier, scale, weight.dtype)
    return DogLayer(name, size, weight.shape[0], count, multiplier), conv, kernels, chosen


def _write(conv: nn.Conv2d, kernels: torch.Tensor, chosen: Optional[torch.Tensor]) -> None:
    """Write ``kernels`` into the ``chosen`` output channels of ``conv`` (all when None)."""
    weight = conv.weight
    if len(kernels) == 0:
        return
    kernels = kernels.to(device=weight.device)
    if chosen is None:
        weight[:, 0].copy_(kernels)
    else:
        weight[chosen.to(weight.device), 0] = kernels


def depthwise_kernels(model: nn.Module) -> dict:
    """Every depthwise kernel of ``model``, grouped by kernel size: {(kh, kw): Tensor[n, kh, kw]}."""
    groups: dict = {}
    for module in model.modules():
        if is_depthwise(module) and not module.weight.is_meta:
            groups.setdefault(tuple(module.kernel_size), []).append(module.weight.detach().float().cpu()[:, 0])
    return {size: torch.cat(kernels) for size, kernels in groups.items()}
