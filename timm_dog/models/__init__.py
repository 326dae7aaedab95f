"""Registration of ``*_dog`` models (and the paper's ConvMixer-512) in timm's registry."""
from . import convmixer, hornet  # noqa: F401  (registered before their twins are made)
from .twins import BASES, DOG_KWARGS, FAMILIES, NOT_DEPTHWISE, base_of, create_twin

__all__ = ["BASES", "DOG_KWARGS", "FAMILIES", "NOT_DEPTHWISE", "base_of", "create_twin"]
