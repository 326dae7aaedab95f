"""trainpy.data: the images train.py read, and the one guard against measuring on a run's training images."""

import pytest


def test_training_images_by_folder_or_by_name(tmp_path):
    """The run's own training folder is found by path; where its data_dir is not reachable from here (train.py ran
    elsewhere, or the path was relative), by the training split's name inside a folder of the data_dir's name."""
    from timm_dog.trainpy.data import training_data, training_images

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
    from timm_dog.trainpy.data import training_data, training_images, training_images_message

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
    assert (
        "give its validation folder (train.py's val_split 'validation' of data: validation or val or valid" in message
    )


def test_one_guard_refuses_training_images_unless_a_training_split_is_asked_for(tmp_path):
    """trainpy.data.check_not_training_images: report, eval, push and the demo's path all refuse with it."""
    from timm_dog.errors import TimmDogError
    from timm_dog.trainpy.data import check_not_training_images, training_data

    for split in ("train", "val"):
        (tmp_path / "data" / split / "a").mkdir(parents=True)
    trained_on = training_data({"data_dir": str(tmp_path / "data"), "val_split": "val"})
    train = tmp_path / "data" / "train"
    with pytest.raises(TimmDogError, match=f"give its validation folder \\({tmp_path / 'data' / 'val'}\\)"):
        check_not_training_images(train, trained_on, "run")
    with pytest.raises(TimmDogError, match="or --split train to measure training accuracy on purpose"):
        check_not_training_images(train, trained_on, "run", split="validation")
    assert check_not_training_images(train, trained_on, "run", split="training") is True
    assert check_not_training_images(tmp_path / "data" / "val", trained_on, "run") is False
    assert check_not_training_images(None, trained_on, "run") is False  # not an ImageFolder
