"""timm-dog: Difference-of-Gaussians init for depthwise convolutions, as a timm plugin.

Importing it registers the ``*_dog`` models with timm: now when timm is imported already (train.py's
``--device-modules timm_dog``), else as soon as timm is (even with ``TIMM_DOG_AUTOLOAD=0``). The API below is
imported on first use, so that ``timm-dog --help`` imports neither torch nor timm.
"""

import sys
from importlib import import_module

import timm_dog_autoload

__version__ = "0.1.0"
__all__ = ["dog_kernel", "dog_kernels", "dog_init_", "is_depthwise", "DogInitReport", "DogLayer"]
_API = {
    "dog_kernel": "dog",
    "dog_kernels": "dog",
    "dog_init_": "init",
    "is_depthwise": "init",
    "DogInitReport": "init",
    "DogLayer": "init",
}


def __getattr__(name):
    if name in _API:
        return getattr(import_module(f".{_API[name]}", __name__), name)
    if name == "models":
        return import_module(".models", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if "timm" in sys.modules:
    from . import models  # noqa: F401  (registers the *_dog models with timm)
else:
    timm_dog_autoload.install(force=True)
