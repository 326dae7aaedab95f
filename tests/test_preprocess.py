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


@pytest.mark.parametrize("name", ["convnext_atto_dog", "convmixer_512_dog", "mobilenetv3_large_100_dog",
                                  "efficientnet_b3_dog", "hornet_tiny_7x7_dog"])
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
    width=st.integers(8, 400), height=st.integers(8, 400),
    size=st.tuples(st.integers(16, 128), st.integers(16, 128)) | st.integers(16, 128).map(lambda s: (s, s)),
    crop_pct=st.sampled_from([0.75, 0.875, 0.95, 1.0, 1.15]),
    interpolation=st.sampled_from(["bilinear", "bicubic", "nearest", "lanczos"]),
    crop_mode=st.sampled_from(["center", "squash"]),
)
def test_same_tensors_as_timm_for_any_image_and_config(width, height, size, crop_pct, interpolation, crop_mode):
    config = dict(input_size=(3, *size), interpolation=interpolation, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3),
                  crop_pct=crop_pct, crop_mode=crop_mode)
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
