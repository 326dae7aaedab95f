"""Finding depthwise convolutions in a model and giving them DoG kernels in place."""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from numbers import Real
from typing import List, Optional, Tuple, Union

import torch
from torch import nn

from .dog import Gamma, check_gamma, check_unit, dog_kernels, is_shapeable

__all__ = ["is_depthwise", "dog_init_", "check_dog_args", "depthwise_kernels", "DogInitReport", "DogLayer"]

Scale = Union[str, float]


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


def check_dog_args(gamma=(0.0, 0.5), on_ratio=0.5, share=1.0, scale="paper", seed=None) -> dict:
    """Validate ``dog_init_`` arguments; return them normalised, or raise a ValueError saying what is allowed."""
    if isinstance(scale, str):
        if scale not in ("paper", "match"):
            raise ValueError(f"scale must be 'paper', 'match' or a positive number; got {scale!r}")
    elif not isinstance(scale, Real) or isinstance(scale, bool) or not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be 'paper', 'match' or a positive finite number; got {scale!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ValueError(f"seed must be an int or None; got {seed!r}")
    return dict(
        gamma=check_gamma(gamma),
        on_ratio=check_unit("on_ratio", on_ratio),
        share=check_unit("share", share),
        scale=scale,
        seed=seed,
    )


def _multiplier(scale: Scale, kernels: torch.Tensor, weight: torch.Tensor) -> float:
    if scale == "paper":
        return 1.0
    if scale == "match":  # to the std of the layer's native init (unknown on the meta device)
        if weight.is_meta:
            return math.nan
        dog_std = kernels.std().item() if kernels.numel() > 1 else 0.0
        native_std = weight.float().std().item() if weight.numel() > 1 else 0.0
        return native_std / dog_std if dog_std > 0 else 1.0
    return float(scale)


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
    On the meta device nothing is written: the report says what would be set.
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
    for name, conv, _, chosen in targets:
        report.layers.append(_write(name, conv, next(batches[tuple(conv.kernel_size)]), chosen, args["scale"]))
    if not report.layers:
        why = "; ".join(f"{n}: {r}" for n, r in report.skipped[:3]) or "it has no depthwise convolution"
        warnings.warn(f"dog_init_ changed nothing in {type(model).__name__}: {why}", stacklevel=2)
    return report


def _skip_reason(conv: nn.Conv2d) -> Optional[str]:
    kh, kw = conv.kernel_size
    if not is_shapeable((kh, kw)):
        return f"kernel {kh}x{kw}: nothing to shape (all samples on one ring)"
    return None


def _write(name, conv: nn.Conv2d, kernels: torch.Tensor, chosen: Optional[torch.Tensor], scale) -> DogLayer:
    """Write ``kernels`` into the ``chosen`` output channels of ``conv`` (all when None)."""
    weight = conv.weight
    size, count = tuple(conv.kernel_size), len(kernels)
    if count == 0:
        return DogLayer(name, size, weight.shape[0], 0, 0.0)
    multiplier = _multiplier(scale, kernels, weight)
    if weight.is_meta:  # no values to write
        return DogLayer(name, size, weight.shape[0], count, multiplier)
    if multiplier != 1.0:
        kernels = kernels * multiplier
    kernels = kernels.to(dtype=weight.dtype, device=weight.device)
    if chosen is None:
        weight[:, 0].copy_(kernels)
    else:
        weight[chosen.to(weight.device), 0] = kernels
    return DogLayer(name, size, weight.shape[0], count, multiplier)


def depthwise_kernels(model: nn.Module) -> dict:
    """Every depthwise kernel of ``model``, grouped by kernel size: {(kh, kw): Tensor[n, kh, kw]}."""
    groups: dict = {}
    for module in model.modules():
        if is_depthwise(module) and not module.weight.is_meta:
            groups.setdefault(tuple(module.kernel_size), []).append(module.weight.detach().float().cpu()[:, 0])
    return {size: torch.cat(kernels) for size, kernels in groups.items()}
