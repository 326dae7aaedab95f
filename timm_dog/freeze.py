"""Frozen kernels: kernels of a weight that training leaves bit-identical, with a plain state dict.

A gradient hook that zeroes their gradient is not enough: AdamW's decoupled weight decay
(p ← p·(1 − lr·wd)), SGD's coupled decay and its momentum move a weight whose gradient is zero.
So two things are done, and nothing is added to the module (no parameter, buffer, hook on the
module or parametrization: the state dict keeps its keys and values, ``...weight``):

* the frozen kernels' gradient is zeroed by a hook on the weight (so they add nothing to the
  gradient norm that train.py clips, to the optimizer's moments, or to DDP's all-reduce);
* around every ``torch.optim.Optimizer.step`` (torch's global step pre/post hooks: every torch and
  timm optimizer, fused and foreach ones too, under AMP's GradScaler and DDP) the frozen
  kernels of the weights that optimizer holds are saved before the step and written back after it.

The weight therefore holds its frozen values whenever the model runs, is averaged by an EMA
(ModelEmaV3 lerps equal values: unchanged) or saved. Forward and backward graphs are untouched
(torch.compile sees a plain conv). A weight whose kernels are all frozen also gets
``requires_grad=False`` (timm's optimizer factory then leaves it out, and its gradient is not computed).
What is frozen is kept per weight object in this process: values loaded into the weight later
(``load_state_dict``, a resumed checkpoint) are the values then kept.
"""

from __future__ import annotations

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
from torch.utils.weak import WeakIdKeyDictionary

__all__ = ["freeze_kernels", "frozen_mask"]

_FROZEN = WeakIdKeyDictionary()  # weight (nn.Parameter) -> _Frozen
_HOOKS = []  # the two global optimizer hooks, registered with the first frozen weight


class _Frozen:
    """The frozen elements of one weight: a bool mask shaped like it (on the CPU, and cached per device)."""

    def __init__(self, weight: torch.nn.Parameter, mask: torch.Tensor):
        self.mask = mask
        self._on = {mask.device: mask}
        self.saved: torch.Tensor | None = None
        if mask.all():  # nothing of it trains: no gradient at all
            weight.requires_grad_(False)
        self.handle = weight.register_hook(self.mask_grad) if weight.requires_grad else None

    def on(self, device) -> torch.Tensor:
        if device not in self._on:
            self._on[device] = self.mask.to(device)
        return self._on[device]

    def mask_grad(self, grad: torch.Tensor) -> torch.Tensor:
        return grad.masked_fill(self.on(grad.device), 0)


def freeze_kernels(weight: torch.nn.Parameter, kernels: int, chosen: torch.Tensor | None) -> None:
    """Freeze the ``chosen`` kernels (indices into ``weight`` seen as [kernels, -1]; None: all) against training."""
    mask = torch.zeros(kernels, weight.numel() // kernels, dtype=torch.bool)
    mask[slice(None) if chosen is None else chosen.cpu()] = True
    previous = _FROZEN.pop(weight, None)
    if previous is not None:  # frozen again: both sets stay frozen
        if previous.handle is not None:
            previous.handle.remove()
        mask |= previous.mask.reshape(kernels, -1)
    if not mask.any():
        return
    _FROZEN[weight] = _Frozen(weight, mask.reshape(weight.shape))
    if not _HOOKS:
        _HOOKS.extend((register_optimizer_step_pre_hook(_save), register_optimizer_step_post_hook(_restore)))


def frozen_mask(weight: torch.Tensor) -> torch.Tensor | None:
    """The bool mask of ``weight``'s frozen elements (shaped like it), or None when nothing in it is frozen."""
    frozen = _FROZEN.get(weight)
    return None if frozen is None else frozen.mask


def _held(optimizer):
    if not len(_FROZEN):
        return
    for group in optimizer.param_groups:
        for param in group["params"]:
            frozen = _FROZEN.get(param)
            if frozen is not None:
                yield param, frozen


@torch.no_grad()
def _save(optimizer, args, kwargs) -> None:
    for param, frozen in _held(optimizer):
        frozen.saved = param.detach().clone()


@torch.no_grad()
def _restore(optimizer, args, kwargs) -> None:
    for param, frozen in _held(optimizer):
        if frozen.saved is not None:
            param.copy_(torch.where(frozen.on(param.device), frozen.saved, param))
            frozen.saved = None
