"""timm-dog: Difference-of-Gaussians init for depthwise convolutions, as a timm plugin."""
from .dog import dog_kernel, dog_kernels
from .init import DogInitReport, DogLayer, dog_init_, is_depthwise
from . import models  # noqa: F401  (registers the *_dog models with timm)

__version__ = "0.1.0"
__all__ = ["dog_kernel", "dog_kernels", "dog_init_", "is_depthwise", "DogInitReport", "DogLayer"]
