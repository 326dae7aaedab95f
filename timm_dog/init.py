"""Finding depthwise convolutions in a model and giving them DoG kernels in place."""

from __future__ import annotations

import hashlib
import logging
import math
import warnings
from dataclasses import dataclass, field
from numbers import Real

import torch
from torch import nn

from .constants import SEED_MAX, SEED_MIN
from .dog import Gamma, check_gamma, check_pattern, check_unit, dog_kernels, is_shapeable
from .errors import TimmDogError
from .freeze import freeze_kernels

__all__ = [
    "is_depthwise",
    "dog_init_",
    "check_dog_args",
    "depthwise_weights",
    "depthwise_kernels",
    "log_dog_init",
    "DogInitReport",
    "DogLayer",
    "check_trainable",
    "derived_seed",
]

logger = logging.getLogger("timm_dog")

Scale = str | float


def is_depthwise(module) -> bool:
    """True for an ``nn.Conv2d`` (any subclass) with ``groups == in_channels > 1``."""
    return isinstance(module, nn.Conv2d) and module.groups == module.in_channels > 1


def _looks_depthwise(module) -> bool:
    """A conv-like layer (it owns a ``weight``) with ``groups == in_channels > 1`` that is not an nn.Conv2d.

    Containers that merely carry such attributes (timm's GhostModuleV3) are not layers.
    """
    groups = module.__dict__.get("groups")
    return (
        isinstance(groups, int)
        and groups > 1
        and groups == module.__dict__.get("in_channels")
        and isinstance(getattr(module, "weight", None), nn.Parameter)
    )


def _kernels_of(module) -> torch.Tensor | None:
    """The depthwise kernels of ``module`` as a view [kernels, 1, kh, kw] of its weight, or None.

    A depthwise ``CondConv2d`` keeps its experts in one parameter [experts, out·kh·kw]; each expert's
    kernels are kernels of their own, so the layer has experts × out_channels kernels (expert-major).
    """
    if is_depthwise(module):
        return module.weight
    if _is_condconv(module) and module.groups == module.in_channels > 1:
        return module.weight.view(-1, *module.weight_shape[1:])
    return None


def _class_path(module) -> str:
    """'timm.layers.cond_conv2d.CondConv2d': timm's classes are told by name, so this module imports no timm
    (importing it must not start the autoload that imports it)."""
    return f"{type(module).__module__}.{type(module).__qualname__}"


def _is_condconv(module) -> bool:
    return _class_path(module) == "timm.layers.cond_conv2d.CondConv2d"


# timm's re-parameterizable blocks: the children whose kernels timm sums into one depthwise kernel when
# it fuses the block (timm.utils.model.reparameterize_model). _FusedBlock says the rule.
FUSED_BRANCHES = {
    "timm.models.byobnet.MobileOneBlock": ("conv_kxk", "conv_scale"),
    "timm.models.fastvit.MobileOneBlock": ("conv_kxk", "conv_scale"),
    "timm.models.fastvit.ReparamLargeKernelConv": ("large_conv", "small_conv"),
    "timm.models.repvit.RepVggDw": ("conv", "conv1"),
    "timm.models.ghostnet.GhostModuleV3": ("cheap_rpr_conv", "cheap_rpr_scale"),
    "timm.models.ghostnet.GhostBottleneckV3": ("dw_rpr_conv", "dw_rpr_scale"),
    "timm.models.lcnetv2.RepDepthwiseSeparable": ("dw_conv_list",),
}


@dataclass(eq=False)
class _FusedBlock:
    """One re-parameterizable block: the rule that keeps its fused kernel centre-surround.

    Its kxk depthwise branches get DoG in the same kernels, each kernel index with one polarity in
    all of them (the first branch shaped sets it; γ stays per kernel), so they add up to a
    centre-surround kernel. Its 1x1 depthwise scale branch starts at zero in those kernels (the
    weight of the norm after it, else the conv's weight). An identity branch stays: it adds a delta
    at the centre.
    """

    scales: list[tuple[str, nn.Parameter]]  # (name, weight) of the 1x1 scale branches
    shaped: bool = False
    chosen: torch.Tensor | None = None  # kernel indices that got DoG (None: all)
    polarity: torch.Tensor | None = None  # ±1 per chosen kernel

    def align(self, kernels: torch.Tensor) -> torch.Tensor:
        """``kernels`` with the block's polarity (the first call sets it)."""
        kh, kw = kernels.shape[-2:]
        polarity = kernels[:, (kh - 1) // 2 : kh // 2 + 1, (kw - 1) // 2 : kw // 2 + 1].sum((1, 2)).sign()
        if self.polarity is None:
            self.polarity = polarity
            return kernels
        return kernels * (polarity * self.polarity)[:, None, None]

    def zero_scales(self) -> list[str]:
        """Zero the scale branches in the kernels that got DoG; their names."""
        if self.polarity is None or not len(self.polarity):
            return []
        for _, weight in self.scales:
            weight[self.chosen.to(weight.device) if self.chosen is not None else slice(None)] = 0
        return [name for name, _ in self.scales]


def _fused_blocks(model: nn.Module) -> dict:
    """{id(kxk depthwise conv): its _FusedBlock} for the blocks of FUSED_BRANCHES in ``model``."""
    names = {id(p): n for n, p in model.named_parameters()}
    blocks = {}
    for block in model.modules():
        attrs = FUSED_BRANCHES.get(_class_path(block), ())
        kxk, scales = [], []
        for branch in (b for a in attrs for b in _as_list(getattr(block, a, None))):
            conv = next((m for m in branch.modules() if isinstance(m, nn.Conv2d)), None)
            if conv is None or not is_depthwise(conv):
                continue
            if is_shapeable(tuple(conv.kernel_size)):
                kxk.append(conv)
            else:
                norm = next((m for m in branch.modules() if isinstance(m, nn.BatchNorm2d) and m.affine), conv)
                scales.append((names[id(norm.weight)], norm.weight))
        fused = _FusedBlock(scales)
        blocks.update((id(conv), fused) for conv in kxk)
    return blocks


def _as_list(module) -> list:
    return list(module) if isinstance(module, nn.ModuleList) else [] if module is None else [module]


@dataclass
class DogLayer:
    """One depthwise conv that received DoG kernels."""

    name: str
    kernel_size: tuple[int, int]
    kernels: int  # kernels in the layer (out_channels; experts × out_channels for a CondConv2d)
    dog_kernels: int  # of which got DoG
    scale: float  # multiplier applied to the paper's kernels


@dataclass
class DogInitReport:
    """What ``dog_init_`` did: layers touched, layers skipped (with the reason), scale branches zeroed."""

    layers: list[DogLayer] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    zeroed: list[str] = field(default_factory=list)  # weights of re-parameterizable blocks' 1x1 scale branches
    frozen: int = 0  # kernels kept fixed during training (trainable=False)
    seed: int | None = None  # the seed the kernels were drawn with (derived from torch's global state if not given)

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
        if self.zeroed:
            text += f", {len(self.zeroed)} 1x1 scale branches zeroed"
        if self.frozen:
            text += f", {self.frozen} frozen"
        return text

    def __str__(self) -> str:
        lines = [self.summary()]
        lines += [f"  skipped {name}: {reason}" for name, reason in self.skipped]
        lines += [f"  zeroed {name}: 1x1 scale branch of a re-parameterizable block" for name in self.zeroed]
        return "\n".join(lines)


def log_dog_init(model_name: str, report: DogInitReport, args: dict) -> None:
    """One INFO line on ``logging.getLogger("timm_dog")`` saying what DoG init did (train.py's log prints it)."""
    gamma = args["gamma"]
    gamma = f"U({gamma[0]:g}, {gamma[1]:g})" if isinstance(gamma, tuple) else f"{gamma:g}"
    layers = len(report.layers) + len(report.skipped)
    extra = "" if args.get("pattern", "dog") == "dog" else f", pattern {args['pattern']}"
    extra += "" if args.get("trainable", True) else ", frozen"
    seed = args["seed"] if args["seed"] is not None else f"{report.seed} (from torch's global generator)"
    logger.info(
        "%s: DoG init set %d/%d depthwise layers, %s/%s kernels (γ %s, on-ratio %g, share %g, scale %s, seed %s%s)",
        model_name,
        len(report.layers),
        layers,
        f"{report.kernels_set:,}",
        f"{report.kernels_total:,}",
        gamma,
        args["on_ratio"],
        args["share"],
        args["scale"],
        seed,
        extra,
    )


def derived_seed() -> int:
    """A seed derived from the state of torch's global CPU generator, which is read, not advanced: the same state
    (e.g. after the same ``torch.manual_seed`` and the same draws) gives the same seed, and nothing drawn later
    from the global generator changes."""
    state = torch.random.get_rng_state().numpy().tobytes()
    return int.from_bytes(hashlib.blake2b(state, digest_size=8).digest(), "little")


BOOL_WORDS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def check_trainable(trainable) -> bool:
    """A bool; also the words YAML 1.1 reads as one (true/false, yes/no, on/off; any case), which a command line
    (train.py's --model-kwargs keeps them as strings) or a YAML file may hand over."""
    if isinstance(trainable, str) and trainable.lower() in BOOL_WORDS:
        return BOOL_WORDS[trainable.lower()]
    if not isinstance(trainable, bool):
        raise TimmDogError(
            f"trainable must be True or False, or one of the words {'/'.join(BOOL_WORDS)} "
            f"(False keeps the structured kernels fixed in training); got {trainable!r}"
        )
    return trainable


def check_dog_args(
    gamma=(0.0, 0.5), on_ratio=0.5, share=1.0, scale="paper", seed=None, pattern="dog", trainable=True
) -> dict:
    """Validate ``dog_init_`` arguments; return them normalised (numbers as floats, trainable as a bool), or raise a
    ValueError saying what is allowed. The one rule for every spelling of them: twins, report arms and sweeps."""
    if isinstance(scale, str):
        if scale not in ("paper", "match"):
            raise TimmDogError(f"scale must be 'paper', 'match' or a positive number; got {scale!r}")
    elif not isinstance(scale, Real) or isinstance(scale, bool) or not (math.isfinite(scale) and scale > 0):
        raise TimmDogError(f"scale must be 'paper', 'match' or a positive finite number; got {scale!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not SEED_MIN <= seed <= SEED_MAX):
        raise TimmDogError(f"seed must be None or an int in [-2**63, 2**64 - 1] (torch's seed range); got {seed!r}")
    return dict(
        gamma=check_gamma(gamma),
        on_ratio=check_unit("on_ratio", on_ratio),
        share=check_unit("share", share),
        scale=scale if isinstance(scale, str) else float(scale),
        seed=seed,
        pattern=check_pattern(pattern),
        trainable=check_trainable(trainable),
    )


def _multiplier(name: str, scale: Scale, kernels: torch.Tensor, weight: torch.Tensor) -> float:
    if scale == "paper":
        return 1.0
    if scale == "match":  # to the std of the layer's native init (unknown on the meta device)
        if weight.is_meta:
            return math.nan
        dog_std = kernels.std().item() if kernels.numel() > 1 else 0.0
        native = weight.float()
        native_std = native.std().item() if weight.numel() > 1 else 0.0
        if not math.isfinite(native_std) or native.amin() == native.amax():
            raise TimmDogError(
                f"scale='match' in layer {name}: its native weights are "
                f"{'not finite' if not math.isfinite(native_std) else 'all equal'}, there is no std "
                f"to match; use scale='paper' or a number"
            )
        return native_std / dog_std if dog_std > 0 else 1.0
    return float(scale)


def _scaled(name: str, kernels: torch.Tensor, multiplier: float, scale: Scale, dtype: torch.dtype) -> torch.Tensor:
    """``kernels`` (float32) times ``multiplier``, in ``dtype``; refuse values that dtype cannot hold.

    Overflow (a value that is not finite) and underflow (a kernel whose relative L2 error exceeds
    4 epsilon of the narrower of float32 and ``dtype``, i.e. values lost to zero or to subnormals)
    raise a TimmDogError naming the layer and the limit.
    """
    out = (kernels * multiplier if multiplier != 1.0 else kernels).to(dtype)
    narrow = dtype if torch.finfo(dtype).bits < 32 else kernels.dtype
    info = torch.finfo(narrow)
    what = f"scale={scale!r}" + (f" (x{multiplier:.3g})" if scale == "match" else "")
    if narrow != dtype:
        what += f" (DoG kernels are scaled in {narrow})"
    peak = kernels.abs().amax().item()
    if not torch.isfinite(out).all():
        raise TimmDogError(
            f"{what} overflows {narrow} in layer {name}: the largest DoG value {peak:.3g} becomes "
            f"{peak * multiplier:.3g}, above {info.max:.4g}; this layer allows a scale of at most "
            f"{info.max / peak:.3g}"
        )
    exact = kernels.double()
    error = (out.double() / multiplier - exact).flatten(1).norm(dim=1)
    norms = exact.flatten(1).norm(dim=1)
    if (error > 4 * info.eps * norms).any():
        safe = info.tiny * math.sqrt(kernels[0].numel()) / norms.min().item()
        raise TimmDogError(
            f"{what} underflows {narrow} in layer {name}: the kernels fall to zero or below its "
            f"smallest normal value {info.tiny:.3g} and lose their pattern; a scale of at least "
            f"{safe:.3g} is safe for this layer"
        )
    return out


@torch.no_grad()
def dog_init_(
    model: nn.Module,
    gamma: Gamma = (0.0, 0.5),
    on_ratio: float = 0.5,
    share: float = 1.0,
    scale: Scale = "paper",
    seed: int | None = None,
    pattern: str = "dog",
    trainable: bool = True,
) -> DogInitReport:
    """Give every depthwise conv of ``model`` DoG kernels, in place.

    In each layer round(share · kernels) kernels, chosen at random, get a DoG pattern with γ
    fixed or drawn per kernel from the (low, high) range, on-centre with probability
    ``on_ratio``; the others keep their native init. ``scale`` is "paper" (as defined in the
    paper), "match" (rescaled to the std of the layer's native init) or a fixed multiplier.
    The same ``seed`` gives bit-identical weights on one machine and software stack (on others
    float64 values within about one ulp: docs/api.md, ``seed``); with None the seed is derived from the state of
    torch's global generator without advancing it (:func:`derived_seed`): ``torch.manual_seed`` decides, and
    whatever is drawn from the global generator afterwards is as if ``dog_init_`` had not run.
    ``pattern`` ("dog", or a control: "gaussian", "impulse", "box"; see ``timm_dog.dog.check_pattern``)
    changes the shape only: the same seed chooses the same kernels with the same γ and sign.
    ``trainable=False`` keeps the kernels set here fixed during training (``timm_dog.freeze``); the
    kernels left native still train.
    Kernels a layer's dtype cannot hold once scaled (overflow, or underflow that loses the
    pattern) raise a TimmDogError naming the layer and the limit, before any layer is written.
    On the meta device nothing is written: the report says what would be set.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"dog_init_ expects a torch.nn.Module; got {type(model).__name__}")
    args = check_dog_args(gamma, on_ratio, share, scale, seed, pattern, trainable)
    report = DogInitReport(seed=seed if seed is not None else derived_seed())
    generator = torch.Generator().manual_seed(report.seed)
    blocks = _fused_blocks(model)
    plain, experts = [], []  # (name, module, kernels view)
    for name, module in model.named_modules():
        weight = _kernels_of(module)
        if weight is None:
            if not isinstance(module, nn.Conv2d) and _looks_depthwise(module):
                report.skipped.append((name, f"{type(module).__name__} is not an nn.Conv2d; left untouched"))
            continue
        reason = _skip_reason(weight)
        if reason:
            report.skipped.append((name, reason))
            continue
        (experts if _is_condconv(module) else plain).append((name, module, weight))
    # CondConv2d experts are drawn after all other layers, so that for a seed those keep the kernels
    # they had before CondConv2d was supported; every layer's kernels are scaled and checked before any
    # is written (no half-initialized model)
    ready = [item for targets in (plain, experts) for item in _shape(targets, blocks, args, generator)]
    modules = dict(model.named_modules())
    for layer, weight, kernels, chosen in ready:
        _write(weight, kernels, chosen)
        report.layers.append(layer)
        if not args["trainable"] and layer.dog_kernels and not weight.is_meta:
            freeze_kernels(modules[layer.name].weight, layer.kernels, chosen)
            report.frozen += layer.dog_kernels
    for block in dict.fromkeys(blocks.values()):
        report.zeroed += block.zero_scales()
    if not report.layers:
        why = "; ".join(f"{n}: {r}" for n, r in report.skipped[:3]) or "it has no depthwise convolution"
        warnings.warn(f"dog_init_ changed nothing in {type(model).__name__}: {why}", stacklevel=2)
    return report


def _shape(targets, blocks: dict, args: dict, generator) -> list:
    """Choose the kernels of each target and draw DoG kernels for them, in order: [(DogLayer, weight, kernels,
    chosen)], scaled and checked (see :func:`_prepare`), not yet written."""
    plan = []  # (name, kernels view, chosen kernel indices or None for all, fused block or None)
    for name, module, weight in targets:
        block = blocks.get(id(module))
        if block is not None and block.shaped:  # the block's other kxk branches: same channels
            chosen = block.chosen
        else:
            total = weight.shape[0]
            count = round(args["share"] * total)
            chosen = torch.randperm(total, generator=generator, device="cpu")[:count] if count < total else None
        plan.append((name, weight, chosen, block))
        if block is not None:
            block.shaped, block.chosen = True, chosen
    # one batch of kernels per kernel size (in order of first appearance), for all its layers at once
    counts = {}
    for _, weight, chosen, _ in plan:
        counts.setdefault(tuple(weight.shape[-2:]), []).append(weight.shape[0] if chosen is None else len(chosen))
    batches = {
        size: iter(
            dog_kernels(
                sum(n), size, args["gamma"], args["on_ratio"], generator=generator, pattern=args["pattern"]
            ).split(n)
        )
        for size, n in counts.items()
    }
    ready = []
    for name, weight, chosen, block in plan:
        kernels = next(batches[tuple(weight.shape[-2:])])
        if block is not None:
            kernels = block.align(kernels)
        ready.append(_prepare(name, weight, kernels, chosen, args["scale"]))
    return ready


def _skip_reason(weight: torch.Tensor) -> str | None:
    kh, kw = weight.shape[-2:]
    if not is_shapeable((kh, kw)):
        return f"kernel {kh}x{kw}: nothing to shape (all samples on one ring)"
    return None


def _prepare(name, weight: torch.Tensor, kernels: torch.Tensor, chosen: torch.Tensor | None, scale) -> tuple:
    """(DogLayer, weight, kernels scaled and in the weight's dtype, chosen) for one layer, checked, not written."""
    size, count = tuple(weight.shape[-2:]), len(kernels)
    if count == 0:
        return DogLayer(name, size, weight.shape[0], 0, 0.0), weight, kernels, chosen
    multiplier = _multiplier(name, scale, kernels, weight)
    if not weight.is_meta:  # on the meta device there is no dtype range to check and nothing to write
        kernels = _scaled(name, kernels, multiplier, scale, weight.dtype)
    return DogLayer(name, size, weight.shape[0], count, multiplier), weight, kernels, chosen


def _write(weight: torch.Tensor, kernels: torch.Tensor, chosen: torch.Tensor | None) -> None:
    """Write ``kernels`` into the ``chosen`` kernels of ``weight`` [kernels, 1, kh, kw] (all when None)."""
    if len(kernels) == 0 or weight.is_meta:
        return
    kernels = kernels.to(device=weight.device)
    if chosen is None:
        weight[:, 0].copy_(kernels)
    else:
        weight[chosen.to(weight.device), 0] = kernels


def depthwise_weights(model: nn.Module) -> dict:
    """{name: weight as [kernels, 1, kh, kw]} of every depthwise layer of ``model`` (CondConv2d experts too)."""
    return {name: weight for name, module in model.named_modules() if (weight := _kernels_of(module)) is not None}


def depthwise_kernels(model: nn.Module) -> dict:
    """Every depthwise kernel of ``model``, grouped by kernel size: {(kh, kw): Tensor[n, kh, kw]}."""
    groups: dict = {}
    for weight in depthwise_weights(model).values():
        if not weight.is_meta:
            groups.setdefault(tuple(weight.shape[-2:]), []).append(weight.detach().float().cpu()[:, 0])
    return {size: torch.cat(kernels) for size, kernels in groups.items()}
