"""trainpy.args: train.py's argument list, its create_model arguments, the one table of the values it accepts."""

import os
from pathlib import Path

import pytest

from timm_dog.trainpy.args import (
    RecipeError,
    extract_model_args,
    extract_train_args,
    train_model_args,
    train_py_args,
    train_py_model_args,
)


def test_kept_train_py_args_and_extraction(tmp_path):
    kept, source = train_py_args()
    assert "timm" in source and {"model_kwargs", "device_modules", "aa", "clip_grad", "lr_base"} <= set(kept)
    assert kept["ratio"] == pytest.approx([0.75, 4 / 3])
    train_py = tmp_path / "train.py"
    train_py.write_text(
        "import argparse\nparser = argparse.ArgumentParser()\n"
        "parser.add_argument('--new-knob', type=float, default=0.5)\n"
        "parser.add_argument('--flag', action='store_true')\n"
        "parser.add_argument('--ratio', nargs=2, default=(3. / 4., 4. / 3.))\n"
        "parser.add_argument('-x', '--other', dest='renamed', default=None)\n"
    )
    assert extract_train_args(train_py.read_text()) == {
        "new_knob": 0.5,
        "flag": False,
        "ratio": (0.75, 4 / 3),
        "renamed": None,
    }
    assert train_py_args(train_py)[1] == str(train_py)
    train_py.write_text("not python ((")
    with pytest.raises(RecipeError, match="cannot read train.py's arguments"):
        train_py_args(train_py)


def test_model_args_come_from_train_py_own_create_model_call():
    kept = train_py_model_args()
    assert kept["global_pool"] == "gp" and kept["bn_eps"] == "bn_eps" and kept["drop_path_rate"] == "drop_path"
    source = (
        "model = create_model(\n    args.model, pretrained=args.pretrained, in_chans=in_chans, new_knob=args.knob,\n"
        "    **factory_kwargs, **args.model_kwargs)\n"
    )
    assert extract_model_args(source) == {"pretrained": "pretrained", "in_chans": "in_chans", "new_knob": "knob"}
    train_py = os.environ.get("TIMM_TRAIN_PY")
    if train_py and Path(train_py).is_file():  # the kept list is the real train.py's
        assert extract_model_args(Path(train_py).read_text()) == kept


def test_train_model_args_rebuilds_what_train_py_passed():
    args = {
        "model": "convnext_atto_dog",
        "gp": "max",
        "bn_eps": 1e-3,
        "drop": 0.0,
        "drop_path": None,
        "input_size": [1, 64, 64],
        "in_chans": None,
        "torchscript": False,
        "pretrained": True,
        "initial_checkpoint": "x.pth",
        "model_kwargs": {"dog_seed": 3, "ls_init_value": 0.1},
    }
    assert train_model_args(args) == {
        "in_chans": 1,
        "drop_rate": 0.0,
        "global_pool": "max",
        "bn_eps": 1e-3,
        "scriptable": False,
        "dog_seed": 3,
        "ls_init_value": 0.1,
    }


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("img_size", "32", "img_size: '32' is not an int >= 1"),
        ("img_size", 32.0, "img_size: 32.0 is not an int >= 1"),
        ("input_size", [32, 32], "input_size: [32, 32] is not [channels, height, width], ints >= 1"),
        ("mean", [0.5, 0.5], "mean: [0.5, 0.5] is not a list of 3 numbers (one per input channel) or of 1"),
        ("std", [0.5, 0, 0.5], "std: [0.5, 0, 0.5]"),
        ("train_split", ["train"], "train_split: ['train'] is not a string"),
        ("crop_pct", "1", "crop_pct: '1'"),
    ],
)
def test_args_yaml_with_types_train_py_never_writes_is_refused_naming_the_key(tmp_path, key, value, expected):
    import yaml

    from timm_dog.trainpy.args import read_train_args, train_py_data_config

    path = tmp_path / "args.yaml"
    path.write_text(yaml.safe_dump({"model": "convnext_atto", key: value}))
    with pytest.raises(ValueError, match="as train.py's arguments are") as error:
        read_train_args(path)
    assert str(error.value).startswith(f"{path}: {expected}")
    path.write_text(
        yaml.safe_dump({"model": "convnext_atto", "in_chans": 1, "input_size": [3, 32, 32], "mean": [0.5] * 3})
    )  # input_size's channels win over in_chans, as in timm
    assert train_py_data_config(read_train_args(path), "convnext_atto")["input_size"] == [3, 32, 32]
