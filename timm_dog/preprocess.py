"""timm's eval transform (resize, centre crop, normalize) in PIL + numpy, so ONNX inference needs no torch.

The settings travel inside exported ONNX files as metadata (see ``timm_dog.onnx``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import TimmDogError

RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
    "lanczos": Image.Resampling.LANCZOS,
}
CROP_MODES = ("center", "squash")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm", ".tif", ".tiff")


@dataclass(frozen=True)
class Preprocess:
    """One image -> float32 array [3, H, W], equal to ``timm.data.create_transform(**data_config)``."""

    input_size: tuple = (3, 224, 224)
    interpolation: str = "bicubic"
    mean: tuple = (0.485, 0.456, 0.406)
    std: tuple = (0.229, 0.224, 0.225)
    crop_pct: float = 0.875
    crop_mode: str = "center"

    def __post_init__(self):
        if self.interpolation not in RESAMPLE:
            raise TimmDogError(f"interpolation {self.interpolation!r} is not one of {', '.join(RESAMPLE)}")
        if self.crop_mode not in CROP_MODES:
            raise TimmDogError(f"crop_mode {self.crop_mode!r} is not supported; supported: {', '.join(CROP_MODES)}")

    @classmethod
    def from_model(cls, model) -> Preprocess:
        """timm's resolved eval data config for ``model``."""
        from timm.data import resolve_data_config

        return cls.from_config(resolve_data_config({}, model=model))

    @classmethod
    def from_config(cls, config: dict) -> Preprocess:
        return cls(
            input_size=tuple(config["input_size"]),
            interpolation=config.get("interpolation") or "bilinear",
            mean=tuple(config["mean"]),
            std=tuple(config["std"]),
            crop_pct=config.get("crop_pct") or 0.875,
            crop_mode=config.get("crop_mode") or "center",
        )

    def to_config(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def __call__(self, image: Image.Image | str | Path) -> np.ndarray:
        image = to_rgb(image) if isinstance(image, Image.Image) else open_image(image)
        height, width = self.input_size[1:]
        scale = (math.floor(height / self.crop_pct), math.floor(width / self.crop_pct))
        if self.crop_mode == "squash" or scale[0] != scale[1]:
            size = (scale[1], scale[0]) if self.crop_mode == "squash" else _keep_ratio(image.size, scale)
        else:  # the shorter side becomes scale, as torchvision's Resize(int)
            w, h = image.size
            short, long = (w, h) if w <= h else (h, w)
            new_long = int(scale[0] * long / short)
            size = (scale[0], new_long) if w <= h else (new_long, scale[0])
        if size != image.size:
            image = image.resize(size, RESAMPLE[self.interpolation])
        array = _center_crop(np.asarray(image, dtype=np.uint8), height, width)
        array = array.astype(np.float32).transpose(2, 0, 1) / np.float32(255)
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None, None]
        return (array - mean) / std


def _keep_ratio(size, target) -> tuple:
    """timm's ResizeKeepRatio (longest=0): scale so that the image covers ``target`` (h, w)."""
    w, h = size
    ratio = min(h / target[0], w / target[1])
    return round(w / ratio), round(h / ratio)


def _center_crop(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """torchvision's CenterCrop: zero-pad a smaller image, then take the middle."""
    h, w = array.shape[:2]
    if h < height or w < width:
        top, left = max(height - h, 0) // 2, max(width - w, 0) // 2
        array = np.pad(array, ((top, max(height - h, 0) - top), (left, max(width - w, 0) - left), (0, 0)))
        h, w = array.shape[:2]
    top, left = int(round((h - height) / 2.0)), int(round((w - width) / 2.0))
    return array[top : top + height, left : left + width]


def open_image(path: str | Path) -> Image.Image:
    """An 8-bit RGB image (see :func:`to_rgb`), or a TimmDogError that names the file."""
    try:
        with Image.open(path) as image:
            return to_rgb(image)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise TimmDogError(f"cannot read image {path}: {error}") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB, so that every mode of a picture gives the tensor of its 8-bit RGB version.

    - ``I;16`` (and ``I;16B/L/N``) and ``I``: 16-bit values, divided by 257 and rounded (65535 -> 255);
      an ``I`` image with values outside [0, 65535] is refused.
    - ``F``: values in [0, 1], multiplied by 255 and rounded; values outside [0, 1] (or NaN) are refused.
    - Every other mode (``RGB``, ``1``, ``L``, ``P``, ``RGBA``, ``LA``, ``CMYK``, …): Pillow's ``convert("RGB")``.
      Alpha (``RGBA``, ``LA``, a ``P`` palette's transparency) is dropped: the colours are used as
      stored, not composited onto a background, as timm's and torchvision's loaders do in training.
    """
    if image.mode == "F" or image.mode.startswith("I"):
        values = np.asarray(image, dtype=np.float64)
        top = 1.0 if image.mode == "F" else 65535.0
        if not (np.isfinite(values).all() and values.min() >= 0 and values.max() <= top):
            raise TimmDogError(
                f"mode {image.mode} image with values outside [0, {top:g}] "
                f"(min {values.min():g}, max {values.max():g}): cannot map them to 8 bits"
            )
        return Image.fromarray(np.rint(values * (255.0 / top)).astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


def image_files(folder: str | Path) -> list:
    """Image files under ``folder`` (recursively), sorted; a TimmDogError if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TimmDogError(f"{folder} is not a folder of images")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise TimmDogError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    return files


def sample_photos() -> list:
    """The two real photos scikit-learn ships (china.jpg, flower.jpg)."""
    from sklearn.datasets import load_sample_images

    return [Path(p) for p in load_sample_images().filenames]
