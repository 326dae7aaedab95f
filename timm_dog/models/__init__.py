"""Registration of ``*_dog`` models (and the paper's ConvMixer-512) in timm's registry."""
from . import convmixer, hornet  # noqa: F401  (registered before their twins are made)
from .dog_twins import BASES, DATA_FILE, DOG_KWARGS, base_of, create_twin

__all__ = ["BASES", "DATA_FILE", "DOG_KWARGS", "base_of", "create_twin"]
