"""``*_dog`` twins: timm's depthwise-conv models with DoG-initialized depthwise kernels.

Each twin builds exactly its base architecture through the base entrypoint (so features_only,
num_classes, drop rates … all work) with the base's data config, then calls ``dog_init_``.
Which models get a twin comes from a scan of timm's registry (``timm_dog.scan``), read from the
first of: the user's scan for the installed timm (``timm-dog scan``, in ``~/.cache/timm-dog``),
the file committed for that timm version, the committed file of the nearest version (the newest
one not newer than the installed timm, else the oldest). Listed names the installed timm lacks
are skipped.
"""

import difflib
import functools
import json
import warnings
from dataclasses import replace
from pathlib import Path

import timm
from timm.models import (
    PretrainedCfg,
    generate_default_cfgs,
    get_pretrained_cfg,
    model_entrypoint,
    register_model,
    resolve_pretrained_cfg,
)

from ..errors import TimmDogError
from ..init import check_dog_args, dog_init_, log_dog_init
from ..scan import PACKAGE_DIR, SUFFIX, data_name, user_dir

__all__ = []  # filled by register_model

DOG_KWARGS = {
    "dog_gamma": "gamma",
    "dog_on_ratio": "on_ratio",
    "dog_share": "share",
    "dog_scale": "scale",
    "dog_seed": "seed",
    "dog_pattern": "pattern",
    "dog_trainable": "trainable",
}
_NO_WEIGHTS = dict(
    url="",
    file=None,
    state_dict=None,
    hf_hub_id=None,
    hf_hub_filename=None,
    source=None,
    custom_load=False,
    tag=None,
    architecture=None,
)


def data_file(version: str = timm.__version__) -> Path:
    """The scan that decides the twins of timm ``version`` (see the module docstring)."""
    for folder in (user_dir(), PACKAGE_DIR):
        path = folder / data_name(version)
        if path.is_file() and (folder == PACKAGE_DIR or _readable(path)):  # a broken user scan: the committed one
            return path
    from packaging.version import Version  # only on this fallback path: it costs import time

    committed = {Version(path.stem.rsplit("-", 1)[-1]): path for path in PACKAGE_DIR.glob(data_name("*"))}
    older = [v for v in committed if v <= Version(version)]
    return committed[max(older) if older else min(committed)]


def _readable(path: Path) -> bool:
    """Whether the user's scan ``path`` can be read; if not, a warning that names it and how to redo it."""
    try:
        _scanned(path)
        return True
    except (OSError, ValueError, TypeError, KeyError) as error:
        warnings.warn(
            f"timm-dog: skipping the unreadable scan {path} ({type(error).__name__}: {error}); the committed "
            f"scan is used instead. Run `timm-dog scan` to redo it, or delete the file.",
            stacklevel=2,
        )
        return False


@functools.cache
def _scanned(path: Path) -> tuple:
    """The model names listed in the scan ``path``; a ValueError/TypeError/KeyError if it is not a scan."""
    models = json.loads(path.read_text())["models"]
    if not isinstance(models, dict) or not all(isinstance(name, str) for name in models):
        raise TypeError("'models' is not a mapping of model names")
    return tuple(models)


def base_models(path: Path) -> list:
    """The scanned models of ``path`` that the installed timm has."""
    return [name for name in _scanned(path) if timm.is_model(name)]


def base_of(name: str) -> str:
    """'convnext_tiny_dog' -> 'convnext_tiny'."""
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name


def pop_dog_kwargs(kwargs: dict) -> dict:
    """Remove the ``dog_*`` kwargs from ``kwargs``; return them validated, as ``dog_init_`` arguments."""
    unknown = [k for k in kwargs if k.startswith("dog_") and k not in DOG_KWARGS]
    if unknown:
        hint = difflib.get_close_matches(unknown[0], DOG_KWARGS, n=1)
        raise TimmDogError(
            f"unknown DoG kwarg {unknown[0]!r}{f' (did you mean {hint[0]!r}?)' if hint else ''}; "
            f"allowed: {', '.join(DOG_KWARGS)}"
        )
    args = {DOG_KWARGS[k]: kwargs.pop(k) for k in list(kwargs) if k in DOG_KWARGS}
    return check_dog_args(**args)


def _twin_cfg(base: str) -> PretrainedCfg:
    # the base's registered default cfg (timm's default one for a plugin model registered without)
    return replace(get_pretrained_cfg(base) or PretrainedCfg(), **_NO_WEIGHTS)


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


DATA_FILE = data_file()
BASES = base_models(DATA_FILE)
default_cfgs = generate_default_cfgs({base + SUFFIX: _twin_cfg(base) for base in BASES})
for _base in BASES:
    _make_twin(_base)
