"""``*_dog`` twins: timm's depthwise-conv models with DoG-initialized depthwise kernels.

Each twin builds exactly its base architecture through the base entrypoint (so features_only,
num_classes, drop rates … all work) with the base's data config, then calls ``dog_init_``.
"""
import difflib
from dataclasses import replace

import timm
from timm.models import generate_default_cfgs, get_pretrained_cfg, register_model
from timm.models._builder import resolve_pretrained_cfg
from timm.models._registry import model_entrypoint

from ..init import check_dog_args, dog_init_, log_dog_init

__all__ = []  # filled by register_model

FAMILIES = (
    "convnext*", "convmixer*", "mobilenetv2*", "mobilenetv3*", "mobilenetv4*", "efficientnet*", "tf_efficientnet*",
    "hornet*",
)
DOG_KWARGS = {"dog_gamma": "gamma", "dog_on_ratio": "on_ratio", "dog_share": "share", "dog_scale": "scale",
              "dog_seed": "seed"}
# Family members whose spatial convs are grouped (8 or 16 channels a group), not depthwise: a twin
# would have nothing to initialize, so none is registered (tests check this list against timm).
NOT_DEPTHWISE = ("efficientnet_b0_g8_gn", "efficientnet_b0_g16_evos", "efficientnet_b3_g8_gn")
SUFFIX = "_dog"
_NO_WEIGHTS = dict(url="", file=None, state_dict=None, hf_hub_id=None, hf_hub_filename=None, source=None,
                   custom_load=False, tag=None, architecture=None)


def base_models():
    """timm entrypoints that get a twin."""
    names = timm.list_models(list(FAMILIES))
    return [name for name in names if not name.endswith(SUFFIX) and name not in NOT_DEPTHWISE]


def base_of(name: str) -> str:
    """'convnext_tiny_dog' -> 'convnext_tiny'."""
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name


def pop_dog_kwargs(kwargs: dict) -> dict:
    """Remove the ``dog_*`` kwargs from ``kwargs``; return them validated, as ``dog_init_`` arguments."""
    unknown = [k for k in kwargs if k.startswith("dog_") and k not in DOG_KWARGS]
    if unknown:
        hint = difflib.get_close_matches(unknown[0], DOG_KWARGS, n=1)
        raise ValueError(
            f"unknown DoG kwarg {unknown[0]!r}{f' (did you mean {hint[0]!r}?)' if hint else ''}; "
            f"allowed: {', '.join(DOG_KWARGS)}"
        )
    args = {DOG_KWARGS[k]: kwargs.pop(k) for k in list(kwargs) if k in DOG_KWARGS}
    return check_dog_args(**args)


def _twin_cfg(base: str):
    return replace(get_pretrained_cfg(base), **_NO_WEIGHTS)


def create_twin(base: str, pretrained: bool = False, **kwargs):
    """Build ``base`` with the twin's config, then DoG-initialize it unless weights were loaded."""
    name = base + SUFFIX
    dog_args = pop_dog_kwargs(kwargs)
    cfg = kwargs.pop("pretrained_cfg", None)
    cfg = resolve_pretrained_cfg(name, cfg, kwargs.pop("pretrained_cfg_overlay", None))
    if pretrained and not cfg.has_weights:
        raise RuntimeError(
            f"{name} has no pretrained weights: DoG init is for training from scratch and never overwrites "
            f"weights. Alternatives: timm.create_model('{base}', pretrained=True) for the native weights, "
            f"'hf-hub:ORG/NAME' for a published DoG checkpoint, or checkpoint_path=... for your own."
        )
    model = model_entrypoint(base)(pretrained=pretrained, pretrained_cfg=cfg, **kwargs)
    if not pretrained:
        model.dog_init_report = dog_init_(model, **dog_args)
        log_dog_init(name, model.dog_init_report, dog_args)
    return model


def _make_twin(base: str):
    def entrypoint(pretrained=False, **kwargs):
        return create_twin(base, pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = base + SUFFIX
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = f"``{base}`` with Difference-of-Gaussians init of its depthwise kernels."
    return register_model(entrypoint)


BASES = base_models()
default_cfgs = generate_default_cfgs({base + SUFFIX: _twin_cfg(base) for base in BASES})
for _base in BASES:
    _make_twin(_base)
