"""sources: what train.py wrote, read in one place (summary.csv, its create_model arguments, weight fingerprints)."""
import json
import os
from pathlib import Path

import pytest
import torch

from timm_dog.sources import (extract_model_args, read_summary, tensors_sha256, train_model_args,
                              train_py_model_args)


def test_read_summary_keys_by_epoch_and_reads_resumed_runs(tmp_path):
    """--val-interval 2 leaves epochs out; --resume writes the header again and repeats the epoch it resumes at."""
    path = tmp_path / "summary.csv"
    path.write_text("epoch,train_loss,eval_loss,eval_top1,eval_top5,lr\n"
                    "1,2.0,1.9,20.0,60.0,0.01\n"
                    "2,1.5,1.4,30.0,70.0,0.005\n"
                    "epoch,train_loss,eval_loss,eval_top1,eval_top5,lr\n"
                    "2,1.4,1.3,31.0,71.0,0.005\n"
                    "3,nan,1.2,35.0,75.0,\n")
    summary = read_summary(path)
    assert list(summary) == [1, 2, 3]
    assert summary[2]["eval_top1"] == 31.0 and "lr" not in summary[3] and summary[3]["train_loss"] != 0


@pytest.mark.parametrize("text, message", [
    ("1,2.0\n", "line 1: a row before the header"),
    ("epoch,eval_top1\none,2\n", "line 2: epoch must be an int"),
    ("epoch,eval_top1\n1,2,3\n", "line 2: 3 values for 2 columns"),
    ("epoch,eval_top1\n", "has no epoch rows"),
])
def test_read_summary_names_file_and_line(tmp_path, text, message):
    path = tmp_path / "summary.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_summary(path)


def test_model_args_come_from_train_py_own_create_model_call():
    kept = train_py_model_args()
    assert kept["global_pool"] == "gp" and kept["bn_eps"] == "bn_eps" and kept["drop_path_rate"] == "drop_path"
    source = "model = create_model(\n    args.model, pretrained=args.pretrained, in_chans=in_chans, new_knob=args.knob,\n" \
             "    **factory_kwargs, **args.model_kwargs)\n"
    assert extract_model_args(source) == {"pretrained": "pretrained", "in_chans": "in_chans", "new_knob": "knob"}
    train_py = os.environ.get("TIMM_TRAIN_PY")
    if train_py and Path(train_py).is_file():  # the kept list is the real train.py's
        assert extract_model_args(Path(train_py).read_text()) == kept


def test_train_model_args_rebuilds_what_train_py_passed():
    args = {"model": "convnext_atto_dog", "gp": "max", "bn_eps": 1e-3, "drop": 0.0, "drop_path": None,
            "input_size": [1, 64, 64], "in_chans": None, "torchscript": False, "pretrained": True,
            "initial_checkpoint": "x.pth", "model_kwargs": {"dog_seed": 3, "ls_init_value": 0.1}}
    assert train_model_args(args) == {"in_chans": 1, "drop_rate": 0.0, "global_pool": "max", "bn_eps": 1e-3,
                                      "scriptable": False, "dog_seed": 3, "ls_init_value": 0.1}


def test_tensors_sha256_is_of_the_tensors_not_their_order_or_file():
    state = {"b": torch.arange(4.0), "a": torch.ones(2, 2), "n": torch.tensor(7), "e": torch.empty(0)}
    assert tensors_sha256(state) == tensors_sha256(dict(reversed(list(state.items()))))
    assert tensors_sha256(state) != tensors_sha256({**state, "a": torch.ones(4)})  # shape counts
    assert tensors_sha256(state) != tensors_sha256({**state, "a": torch.ones(2, 2, dtype=torch.float64)})
    assert json.dumps(tensors_sha256(state))


def test_training_images_by_folder_or_by_name(tmp_path):
    """The run's own training folder is found by path; where its data_dir is not reachable from here (train.py ran
    elsewhere, or the path was relative), by the training split's name inside a folder of the data_dir's name."""
    from timm_dog.sources import training_data, training_images

    for folder in ("digits/train/0", "digits/val/0", "other/train/0", "digits/training/0"):
        (tmp_path / folder).mkdir(parents=True)
    here = training_data({"data_dir": str(tmp_path / "digits"), "train_split": "train"})
    assert training_images(tmp_path / "digits" / "train", here)
    assert not training_images(tmp_path / "digits" / "val", here) and not training_images(tmp_path / "digits", here)
    elsewhere = training_data({"data": "/cluster/datasets/digits", "dataset": ""})  # train.py's positional DIR
    assert training_images(tmp_path / "digits" / "train", elsewhere)
    assert training_images(tmp_path / "digits" / "training", elsewhere)
    assert not training_images(tmp_path / "other" / "train", elsewhere)
    assert not training_images(tmp_path / "digits" / "val", elsewhere)
    assert training_data({"model": "x"}) == {} and not training_images(tmp_path / "digits" / "train", {})


def test_training_images_of_relative_data_dirs_and_other_datasets(tmp_path, monkeypatch):
    """A relative data_dir is relative to where train.py ran, not to here: matched by its path parts, never resolved
    against this folder (whose own data/ may be another one); every dataset name timm reads as a folder counts."""
    from timm_dog.sources import training_data, training_images, training_images_message

    for folder in ("proj/data/train/0", "proj/data/val/0", "data/train/0", "x/train/0", "x/trn/0"):
        (tmp_path / folder).mkdir(parents=True)
    monkeypatch.chdir(tmp_path)  # this folder has a data/ of its own
    relative = training_data({"data_dir": "data"})
    assert training_images(tmp_path / "proj" / "data" / "train", relative)
    assert training_images("data/train", relative)
    assert not training_images(tmp_path / "proj" / "data" / "val", relative)
    assert training_images(tmp_path / "x" / "train", training_data({"data_dir": "."}))
    assert training_images(tmp_path / "proj" / "data" / "train", training_data({"data_dir": "../../proj/data"}))
    assert training_images(tmp_path / "x" / "trn", training_data({"data_dir": "x", "train_split": "trn[:90%]"}))
    for dataset in ("ImageFolder", "folder", "torch/folder", ""):
        assert training_images(tmp_path / "x" / "train", training_data({"data_dir": "x", "dataset": dataset})), dataset
    assert training_data({"data_dir": "x", "dataset": "torch/cifar10"}) == {}
    message = training_images_message(tmp_path / "proj/data/train", relative, "run")
    assert "give its validation folder (train.py's val_split 'validation' of data: validation or val or valid" in message


@pytest.mark.parametrize("key, value, expected", [
    ("img_size", "32", "img_size: '32' is not an int > 0"), ("img_size", 32.0, "img_size: 32.0 is not an int > 0"),
    ("input_size", [32, 32], "input_size: [32, 32] is not 3 ints > 0"),
    ("mean", [0.5, 0.5], "mean: [0.5, 0.5] is not 1 or 3 numbers"), ("std", [0.5, 0, 0.5], "std: [0.5, 0, 0.5]"),
    ("train_split", ["train"], "train_split: ['train'] is not a string"), ("crop_pct", "1", "crop_pct: '1'")])
def test_args_yaml_with_types_train_py_never_writes_is_refused_naming_the_key(tmp_path, key, value, expected):
    import yaml

    from timm_dog.sources import read_train_args, train_py_data_config

    path = tmp_path / "args.yaml"
    path.write_text(yaml.safe_dump({"model": "convnext_atto", key: value}))
    with pytest.raises(ValueError, match="as train.py's arguments are") as error:
        read_train_args(path)
    assert str(error.value).startswith(f"{path}: {expected}")
    path.write_text(yaml.safe_dump({"model": "convnext_atto", "in_chans": 1, "input_size": [3, 32, 32],
                                    "mean": [0.5] * 3}))  # input_size's channels win over in_chans, as in timm
    assert train_py_data_config(read_train_args(path), "convnext_atto")["input_size"] == [3, 32, 32]
