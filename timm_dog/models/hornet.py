"""HorNet (Rao et al., NeurIPS 2022): recursive gated convolutions (gnConv), as a timm architecture.

Written to timm's model contract as its own families are (default cfgs, device/dtype factory kwargs,
features_only, forward_intermediates / prune_intermediate_layers, classifier reset, TorchScript, FX,
trunc-normal init), checked by timm's tests/test_models.py (benchmarks/timm_conformance.py).
Variants: tiny / small / base, with a 7×7 depthwise conv in every gnConv ("7x7") or with the
global-local filter (an FFT filter beside a 3×3 depthwise conv) in the last two stages ("gf").
Plain timm does not define these models: checkpoints need timm-dog installed to load.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, LayerNorm, LayerNorm2d, register_notrace_function, trunc_normal_
from timm.models import build_model_with_cfg, checkpoint_seq, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices
from torch import nn

from ..errors import TimmDogError

try:
    from timm.layers import get_device_dtype
except ImportError:  # timm < 1.0.29

    def get_device_dtype(module: nn.Module) -> dict:
        """The device and dtype of ``module``'s first parameter, as factory kwargs (None when it has none)."""
        first = next(module.parameters(), None)
        return {"device": getattr(first, "device", None), "dtype": getattr(first, "dtype", None)}


__all__ = ["HorNet"]


@register_notrace_function  # FX: the resampling branch depends on the input size
def spectral_filter(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``x`` times the learned filter ``weight`` (C, h, w, 2) in the 2-D Fourier domain, resampled to the
    input's size. Computed in float32 (FFTs and complex tensors have no bf16/fp16 kernels), returned in x's dtype."""
    height, width = x.shape[-2:]
    freq = torch.fft.rfft2(x.float(), dim=(2, 3), norm="ortho")
    weight = weight.float()
    if weight.shape[1:3] != freq.shape[2:4]:  # another input size: resample the filter
        weight = F.interpolate(
            weight.permute(3, 0, 1, 2), size=freq.shape[2:4], mode="bilinear", align_corners=True
        ).permute(1, 2, 3, 0)
    freq = freq * torch.view_as_complex(weight.contiguous())
    return torch.fft.irfft2(freq, s=(height, width), dim=(2, 3), norm="ortho").to(x.dtype)


class GlobalLocalFilter(nn.Module):
    """Half the channels through a 3×3 depthwise conv, half through a learned global FFT filter."""

    def __init__(self, dim: int, h: int = 14, w: int = 8, device=None, dtype=None):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.dw = nn.Conv2d(dim // 2, dim // 2, 3, padding=1, bias=False, groups=dim // 2, **dd)
        self.complex_weight = nn.Parameter(torch.zeros(dim // 2, h, w, 2, **dd))
        trunc_normal_(self.complex_weight, std=0.02)
        self.pre_norm = LayerNorm2d(dim, eps=1e-6, **dd)
        self.post_norm = LayerNorm2d(dim, eps=1e-6, **dd)

    def forward(self, x):
        x = self.pre_norm(x)
        local, spectral = torch.chunk(x, 2, dim=1)
        local = self.dw(local)
        spectral = spectral_filter(spectral, self.complex_weight)
        mixed = torch.stack([local, spectral], dim=2).flatten(1, 2)  # interleave the two halves
        return self.post_norm(mixed)


class GnConv(nn.Module):
    """Recursive gated convolution of order n: n nested products of depthwise-filtered projections."""

    def __init__(
        self, dim: int, order: int = 5, scale: float = 1.0, global_filter: tuple | None = None, device=None, dtype=None
    ):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.order = order
        self.dims = [dim // 2**i for i in range(order)][::-1]
        self.proj_in = nn.Conv2d(dim, 2 * dim, 1, **dd)
        total = sum(self.dims)
        if global_filter is None:
            self.dwconv = nn.Conv2d(total, total, 7, padding=3, groups=total, **dd)
        else:
            self.dwconv = GlobalLocalFilter(total, *global_filter, **dd)
        self.proj_out = nn.Conv2d(dim, dim, 1, **dd)
        self.pws = nn.ModuleList(nn.Conv2d(self.dims[i], self.dims[i + 1], 1, **dd) for i in range(order - 1))
        self.scale = scale

    def forward(self, x):
        gate, values = torch.split(self.proj_in(x), (self.dims[0], sum(self.dims)), dim=1)
        filtered = torch.split(self.dwconv(values) * self.scale, self.dims, dim=1)
        x = gate * filtered[0]
        for i, pw in enumerate(self.pws):
            x = pw(x) * filtered[i + 1]
        return self.proj_out(x)


class HorBlock(nn.Module):
    def __init__(
        self,
        dim: int,
        order: int,
        scale: float,
        global_filter=None,
        drop_path: float = 0.0,
        ls_init_value: float = 1e-6,
        device=None,
        dtype=None,
    ):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.norm1 = LayerNorm2d(dim, eps=1e-6, **dd)
        self.gnconv = GnConv(dim, order, scale, global_filter, **dd)
        self.norm2 = LayerNorm(dim, eps=1e-6, **dd)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim, **dd), nn.GELU(), nn.Linear(4 * dim, dim, **dd))
        self.gamma1 = nn.Parameter(ls_init_value * torch.ones(dim, **dd))
        self.gamma2 = nn.Parameter(ls_init_value * torch.ones(dim, **dd))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x):
        x = x + self.drop_path(self.gamma1[:, None, None] * self.gnconv(self.norm1(x)))
        y = self.gamma2 * self.mlp(self.norm2(x.permute(0, 2, 3, 1)))
        return x + self.drop_path(y.permute(0, 3, 1, 2))


class HorStage(nn.Module):
    def __init__(
        self,
        in_dim: int,
        dim: int,
        depth: int,
        order: int,
        scale: float,
        global_filter,
        drop_paths,
        first: bool,
        device=None,
        dtype=None,
    ):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        if first:  # the stem: 4×4 patches
            self.downsample = nn.Sequential(nn.Conv2d(in_dim, dim, 4, stride=4, **dd), LayerNorm2d(dim, eps=1e-6, **dd))
        else:
            self.downsample = nn.Sequential(
                LayerNorm2d(in_dim, eps=1e-6, **dd), nn.Conv2d(in_dim, dim, 2, stride=2, **dd)
            )
        self.blocks = nn.Sequential(
            *[HorBlock(dim, order, scale, global_filter, drop_paths[i], **dd) for i in range(depth)]
        )
        self.grad_checkpointing = False

    def forward(self, x):
        x = self.downsample(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self.blocks, x)
        return self.blocks(x)


class HorNet(nn.Module):
    """HorNet: four stages of gnConv blocks (orders 2, 3, 4, 5), ConvNeXt-style stem and downsampling.

    The final norm is a LayerNorm on the pooled features (part of the head, as in ConvNeXt's default
    head): ``forward_intermediates(norm=True)`` therefore has no norm to apply to spatial features.
    """

    def __init__(
        self,
        in_chans: int = 3,
        num_classes: int = 1000,
        global_pool: str = "avg",
        depths: Sequence[int] = (2, 3, 18, 2),
        base_dim: int = 64,
        orders: Sequence[int] = (2, 3, 4, 5),
        scale: float = 1 / 3,
        global_filters: Sequence[tuple | None] = (None,) * 4,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        head_init_scale: float = 1.0,
        device=None,
        dtype=None,
    ):
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        _check_pool(global_pool)
        self.num_classes, self.in_chans = num_classes, in_chans
        self.global_pool, self.drop_rate = global_pool, drop_rate
        dims = [base_dim * 2**i for i in range(4)]
        rates = [drop_path_rate * i / max(sum(depths) - 1, 1) for i in range(sum(depths))]
        stages, start = [], 0
        for i in range(4):
            stages.append(
                HorStage(
                    dims[i - 1] if i else in_chans,
                    dims[i],
                    depths[i],
                    orders[i],
                    scale,
                    global_filters[i],
                    rates[start : start + depths[i]],
                    i == 0,
                    **dd,
                )
            )
            start += depths[i]
        self.stages = nn.Sequential(*stages)
        self.feature_info = [dict(num_chs=dims[i], reduction=4 * 2**i, module=f"stages.{i}") for i in range(4)]
        self.num_features = self.head_hidden_size = dims[-1]
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6, **dd)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(dims[-1], num_classes, **dd) if num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)
        if isinstance(self.head, nn.Linear):
            self.head.weight.data.mul_(head_init_scale)
            self.head.bias.data.mul_(head_init_scale)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False):
        return dict(
            stem=r"^stages\.0\.downsample",
            blocks=r"^stages\.(\d+)"
            if coarse
            else [
                (r"^stages\.(\d+)\.downsample", (0,)),
                (r"^stages\.(\d+)\.blocks\.(\d+)", None),
                (r"^norm", (99999,)),
            ],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True):
        for stage in self.stages:
            stage.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None):
        if global_pool is not None:
            _check_pool(global_pool)
            self.global_pool = global_pool
        self.num_classes = num_classes
        dd = get_device_dtype(self)
        self.head = nn.Linear(self.num_features, num_classes, **dd) if num_classes > 0 else nn.Identity()
        self.head.train(self.training)

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Forward features that returns the outputs of the stages as well (timm's API).

        Args:
            x: Input image tensor.
            indices: Take the last n stages if int, all if None, the listed stages if a sequence.
            norm: Accepted for the API; HorNet has no norm on spatial features (its norm follows the pooling).
            stop_early: Stop after the last stage asked for.
            output_fmt: Shape of the intermediates, only 'NCHW'.
            intermediates_only: Return only the intermediates.
        """
        assert output_fmt in ("NCHW",), "Output shape must be NCHW."
        intermediates = []
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        if torch.jit.is_scripting() or not stop_early:  # can't slice blocks in torchscript
            stages = self.stages
        else:
            stages = self.stages[: max_index + 1]
        for feat_idx, stage in enumerate(stages):
            x = stage(x)
            if feat_idx in take_indices:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(
        self,
        indices: int | list[int] = 1,
        prune_norm: bool = False,
        prune_head: bool = True,
    ) -> list[int]:
        """Remove the stages (and the head) that the intermediates ``indices`` do not need; return the indices kept."""
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        prune_end = max_index < len(self.stages) - 1
        self.stages = self.stages[: max_index + 1]
        if prune_norm or prune_end:
            # sized for (and only applied to) the last stage's pooled features
            self.norm = nn.Identity().train(self.training)
        if prune_end:  # features now end at the last kept tap
            self.num_features = self.head_hidden_size = self.feature_info[max_index]["num_chs"]
        if prune_head or prune_end:
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x):
        return self.stages(x)

    def forward_head(self, x, pre_logits: bool = False):
        if self.global_pool == "avg":
            x = self.norm(x.mean((-2, -1)))
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def _check_pool(global_pool: str) -> None:
    if global_pool not in ("avg", ""):
        raise TimmDogError(f"HorNet supports global_pool 'avg' or '' (none); got {global_pool!r}")


def _create(variant: str, pretrained: bool = False, **kwargs) -> HorNet:
    return build_model_with_cfg(
        HorNet, variant, pretrained, feature_cfg=dict(out_indices=(0, 1, 2, 3), flatten_sequential=True), **kwargs
    )


def _cfg(**kwargs):
    return {
        "num_classes": 1000,
        "input_size": (3, 224, 224),
        "pool_size": (7, 7),
        "crop_pct": 0.875,
        "interpolation": "bicubic",
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": "stages.0.downsample.0",
        "classifier": "head",
        "license": "mit",
        "paper_ids": "arXiv:2207.14284",
        "notes": (
            "HorNet is defined by timm-dog, not by timm: loading needs `pip install timm-dog` "
            "(its autoload registers the architecture in every process that imports timm).",
        ),
        "paper_name": "HorNet: Efficient High-Order Spatial Interactions with Recursive Gated Convolutions",
        **kwargs,
    }


GF = (None, None, (14, 8), (7, 4))  # the global filter's (h, w) at 224: stages 3 and 4
default_cfgs = generate_default_cfgs(
    {f"hornet_{size}_{kind}": _cfg() for size in ("tiny", "small", "base") for kind in ("7x7", "gf")}
)


@register_model
def hornet_tiny_7x7(pretrained=False, **kwargs) -> HorNet:
    """HorNet-T (7×7 depthwise gnConv)."""
    model_args = dict(base_dim=64)
    return _create("hornet_tiny_7x7", pretrained, **dict(model_args, **kwargs))


@register_model
def hornet_tiny_gf(pretrained=False, **kwargs) -> HorNet:
    """HorNet-T (global filter)."""
    model_args = dict(base_dim=64, global_filters=GF)
    return _create("hornet_tiny_gf", pretrained, **dict(model_args, **kwargs))


@register_model
def hornet_small_7x7(pretrained=False, **kwargs) -> HorNet:
    """HorNet-S (7×7 depthwise gnConv)."""
    model_args = dict(base_dim=96)
    return _create("hornet_small_7x7", pretrained, **dict(model_args, **kwargs))


@register_model
def hornet_small_gf(pretrained=False, **kwargs) -> HorNet:
    """HorNet-S (global filter)."""
    model_args = dict(base_dim=96, global_filters=GF)
    return _create("hornet_small_gf", pretrained, **dict(model_args, **kwargs))


@register_model
def hornet_base_7x7(pretrained=False, **kwargs) -> HorNet:
    """HorNet-B (7×7 depthwise gnConv)."""
    model_args = dict(base_dim=128)
    return _create("hornet_base_7x7", pretrained, **dict(model_args, **kwargs))


@register_model
def hornet_base_gf(pretrained=False, **kwargs) -> HorNet:
    """HorNet-B (global filter)."""
    model_args = dict(base_dim=128, global_filters=GF)
    return _create("hornet_base_gf", pretrained, **dict(model_args, **kwargs))
