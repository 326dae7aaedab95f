"""timm_dog.preprocess reproduces timm's eval transform bit for bit, without torch."""

import numpy as np
import pytest
import timm
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from timm.data import create_transform, resolve_data_config

from timm_dog.preprocess import Preprocess, image_files, open_image, sample_photos

PHOTOS = [open_image(p) for p in sample_photos()]


@pytest.mark.parametrize(
    "name",
    [
        "convnext_atto_dog",
        "convmixer_512_dog",
        "mobilenetv3_large_100_dog",
        "efficientnet_b3_dog",
        "hornet_tiny_7x7_dog",
    ],
)
def test_same_tensors_as_timm_for_real_model_configs(name):
    config = resolve_data_config({}, model=timm.create_model(name, pretrained=False))
    ours, timms = Preprocess.from_config(config), create_transform(**config)
    for photo in PHOTOS:
        expected = timms(photo).numpy()
        got = ours(photo)
        assert got.dtype == np.float32 and got.shape == expected.shape == tuple(config["input_size"])
        np.testing.assert_array_equal(got, expected)


@settings(max_examples=40, deadline=None)
@given(
    width=st.integers(8, 400),
    height=st.integers(8, 400),
    size=st.tuples(st.integers(16, 128), st.integers(16, 128)) | st.integers(16, 128).map(lambda s: (s, s)),
    crop_pct=st.sampled_from([0.75, 0.875, 0.95, 1.0, 1.15]),
    interpolation=st.sampled_from(["bilinear", "bicubic", "nearest", "lanczos"]),
    crop_mode=st.sampled_from(["center", "squash"]),
)
def test_same_tensors_as_timm_for_any_image_and_config(width, height, size, crop_pct, interpolation, crop_mode):
    config = dict(
        input_size=(3, *size),
        interpolation=interpolation,
        mean=(0.5, 0.4, 0.3),
        std=(0.2, 0.25, 0.3),
        crop_pct=crop_pct,
        crop_mode=crop_mode,
    )
    image = PHOTOS[0].resize((width, height))
    np.testing.assert_array_equal(Preprocess.from_config(config)(image), create_transform(**config)(image).numpy())


def test_config_round_trip_and_bad_settings():
    p = Preprocess(input_size=(3, 32, 48), interpolation="bilinear", crop_pct=1.0)
    assert Preprocess.from_config(p.to_config()) == p
    with pytest.raises(ValueError, match="interpolation 'cubic' is not one of"):
        Preprocess(interpolation="cubic")
    with pytest.raises(ValueError, match="crop_mode 'border' is not supported"):
        Preprocess(crop_mode="border")


def test_image_errors_name_the_file(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="cannot read image .*broken.jpg"):
        open_image(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        image_files(tmp_path / "empty")
    with pytest.raises(ValueError, match="is not a folder of images"):
        image_files(tmp_path / "missing")
    Image.new("L", (5, 5)).save(tmp_path / "empty" / "a.png")
    assert [p.name for p in image_files(tmp_path / "empty")] == ["a.png"]
    assert open_image(tmp_path / "empty" / "a.png").mode == "RGB"


def _encode(mode: str, rgb: np.ndarray, alpha: np.ndarray):
    """(image in ``mode`` holding the picture, the 8-bit RGB version of that picture)."""
    gray = rgb[..., 0]
    as_rgb = np.repeat(gray[..., None], 3, axis=2)
    if mode == "RGB":
        return Image.fromarray(rgb), rgb
    if mode == "RGBA":
        return Image.fromarray(np.dstack([rgb, alpha])), rgb
    if mode == "CMYK":
        return Image.fromarray(rgb).convert("CMYK"), rgb
    if mode == "P":  # 4 of the picture's colours as the palette, colour 0 transparent
        palette, index = rgb.reshape(-1, 3)[:4], gray % 4
        image = Image.new("P", gray.shape[::-1])
        image.putpalette(np.resize(palette, (4, 3)).flatten().tolist())
        image.putdata(index.flatten().tolist())
        image.info["transparency"] = 0
        return image, np.resize(palette, (4, 3))[index]
    if mode == "1":
        return Image.fromarray(gray >= 128), np.where(as_rgb >= 128, 255, 0).astype(np.uint8)
    encoded = {
        "L": lambda: Image.fromarray(gray),
        "LA": lambda: Image.fromarray(np.dstack([gray, alpha])),
        "I;16": lambda: Image.fromarray(gray.astype(np.uint16) * 257),
        "I;16B": lambda: Image.frombytes("I;16B", gray.shape[::-1], (gray.astype(">u2") * 257).tobytes()),
        "I": lambda: Image.fromarray(gray.astype(np.int32) * 257),
        "F": lambda: Image.fromarray(gray.astype(np.float32) / 255),
    }[mode]()
    return encoded, as_rgb


MODES = ["RGB", "RGBA", "CMYK", "P", "1", "L", "LA", "I;16", "I;16B", "I", "F"]


@settings(max_examples=60, deadline=None)
@given(
    mode=st.sampled_from(MODES),
    fmt=st.sampled_from(["PNG", "TIFF"]),
    seed=st.integers(0, 2**32 - 1),
    size=st.tuples(st.integers(1, 40), st.integers(1, 40)),
)
def test_every_mode_gives_the_tensor_of_its_8bit_rgb_version(mode, fmt, seed, size, tmp_path_factory):
    from timm_dog.preprocess import to_rgb
    from timm_dog.runtime import TorchPreprocess

    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    image, expected = _encode(mode, rgb, rng.integers(0, 256, size, dtype=np.uint8))
    assert image.mode == mode
    if mode in ("I", "F", "I;16B", "CMYK"):
        fmt = "TIFF"  # PNG cannot hold these modes
    path = tmp_path_factory.mktemp("mode") / f"picture.{fmt.lower()}"
    image.save(path, fmt)
    with Image.open(path) as reloaded:
        assert to_rgb(reloaded).mode == "RGB"
        np.testing.assert_array_equal(np.asarray(to_rgb(reloaded)), expected)
        config = dict(
            input_size=(3, 16, 16),
            interpolation="bilinear",
            mean=(0.5,) * 3,
            std=(0.25,) * 3,
            crop_pct=0.875,
            crop_mode="center",
        )
        reference = Image.fromarray(expected)
        for preprocess in (Preprocess.from_config(config), TorchPreprocess(create_transform(**config))):
            np.testing.assert_array_equal(preprocess(reloaded), preprocess(reference))
    np.testing.assert_array_equal(np.asarray(open_image(path)), expected)


def test_images_that_do_not_fit_8_bits_are_refused(tmp_path):
    from timm_dog.preprocess import to_rgb

    for values, mode in (([1.5, 0.2], "F"), ([np.nan, 0.0], "F"), ([-1, 5], "I"), ([70000, 0], "I")):
        array = np.array([values], dtype=np.float32 if mode == "F" else np.int32)
        with pytest.raises(ValueError, match=f"mode {mode} image with values outside"):
            to_rgb(Image.fromarray(array))
    Image.fromarray(np.array([[1.5, 0.0]], dtype=np.float32)).save(tmp_path / "hdr.tiff")
    with pytest.raises(ValueError, match=r"cannot read image .*hdr.tiff: mode F image with values outside \[0, 1\]"):
        open_image(tmp_path / "hdr.tiff")
