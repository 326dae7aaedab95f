"""demo: its publishing path goes through the guards a user's path goes through."""

import numpy as np
import pytest
import timm
from PIL import Image

from timm_dog.demo import ship
from timm_dog.errors import TimmDogError


def test_ship_refuses_to_evaluate_on_the_training_images(tmp_path):
    """A data root without split folders: the demo trained on it, so its eval would be training accuracy."""
    data = tmp_path / "flat"
    for digit in range(10):
        (data / str(digit)).mkdir(parents=True)
        Image.fromarray(np.full((8, 8), digit * 20, dtype=np.uint8)).save(data / str(digit) / "0.png")
    model = timm.create_model("convnext_atto_dog", num_classes=10)
    (tmp_path / "out").mkdir()
    with pytest.raises(TimmDogError, match=f"{data} holds the training images of"):
        ship(tmp_path / "out", model, "convnext_atto_dog", data, 32, 1, 0, echo=lambda line: None)
    assert not (tmp_path / "out" / "eval.json").exists()
