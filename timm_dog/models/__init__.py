"""Registration of ``*_dog`` models (and the paper's ConvMixer-512, and HorNet) in timm's registry.

The architectures that timm lacks are families of their own: one whose code cannot load on the installed timm
(a name that release lacks …) is skipped with one warning, listed in ``SKIPPED``, and all the other models and
twins still register.
"""

import warnings
from importlib import import_module

import timm

FAMILIES = ("convmixer", "hornet")  # registered before their twins are made
SKIPPED = {}  # family -> why its code could not load on the installed timm


def _load(family: str) -> None:
    try:
        import_module(f".{family}", __name__)
    except Exception as error:  # any failure of one family leaves the others registered
        SKIPPED[family] = f"{type(error).__name__}: {error}"
        warnings.warn(
            f"timm-dog: the {family} models (and their *_dog twins) are skipped: they cannot load on "
            f"timm {timm.__version__} ({SKIPPED[family]})",
            stacklevel=2,
        )


for _family in FAMILIES:
    _load(_family)

from .dog_twins import BASES, DATA_FILE, DOG_KWARGS, base_of, create_twin  # noqa: E402  (after the families)

__all__ = ["BASES", "DATA_FILE", "DOG_KWARGS", "SKIPPED", "base_of", "create_twin"]
