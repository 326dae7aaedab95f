"""The images train.py read: timm's dataset names, a run's split folders, and the one guard against measuring
"validation" accuracy on a run's training images (:func:`check_not_training_images`)."""

from __future__ import annotations

from pathlib import Path

from ..constants import SPLIT_ALIASES, SPLIT_NAMES
from ..errors import TimmDogError

FOLDER_DATASETS = ("", "folder", "torch/image_folder", "torch/folder")  # class sub-folders of --data-dir
DATASET_PREFIXES = ("torch", "tfds", "hfds", "hfids", "wds")  # what timm's create_dataset understands


def split_folder(data_dir, split: str) -> tuple:
    """(folder, how it was chosen): DATA_DIR/SPLIT or a timm synonym of it (validation: val, valid, eval, …);
    DATA_DIR itself when it has no split sub-folder at all; else a TimmDogError listing the splits found."""
    root = Path(data_dir)
    names = next((aliases for aliases in SPLIT_ALIASES if split in aliases), (split,))
    for name in dict.fromkeys((split, *names)):
        if (root / name).is_dir():
            return str(root / name), f"split {split!r}: {root / name}"
    subfolders = sorted(p.name for p in root.iterdir() if p.is_dir())
    if SPLIT_NAMES.isdisjoint(subfolders):
        return str(root), f"no split sub-folders in {root}: its class folders are used as they are"
    synonyms = f" (nor {', '.join(name for name in names if name != split)})" if len(names) > 1 else ""
    raise TimmDogError(f"no split {split!r} in {root}{synonyms}; splits found: {', '.join(subfolders)}")


def training_data(args: dict | None) -> dict:
    """Where train.py read a run's images when they are a folder dataset (timm reads every dataset name without a
    torch/, tfds/, hfds/, hfids/ or wds/ prefix, and torch/folder, as one): {data_dir, train_split, val_split};
    {} otherwise or unknown."""
    root = (args or {}).get("data_dir") or (args or {}).get("data")  # train.py: --data-dir, or its positional DIR
    dataset = str(args.get("dataset") or "").lower() if args else ""
    if not isinstance(root, str) or (
        dataset not in FOLDER_DATASETS and dataset.partition("/")[0] in DATASET_PREFIXES and "/" in dataset
    ):
        return {}
    return {
        "data_dir": root,
        "train_split": str(args.get("train_split") or "train"),
        "val_split": str(args.get("val_split") or "validation"),
    }


def _split_names(split: str) -> tuple:
    """The folder names timm's create_dataset tries for ``split`` (its name before any ``[…]``, then synonyms)."""
    split = split.split("[")[0]
    return tuple(dict.fromkeys((split, *next((a for a in SPLIT_ALIASES if split in a), ()))))


def train_py_folder(trained_on: dict, split: str) -> Path | None:
    """The folder timm's create_dataset reads for ``split`` of a folder run: DATA_DIR/SPLIT, else a synonym, else
    DATA_DIR itself; None when DATA_DIR is relative (to where train.py ran, which is not known) or not here."""
    root = Path(trained_on["data_dir"])
    if not root.is_absolute() or not root.is_dir():
        return None
    return next((root / n for n in _split_names(split) if (root / n).is_dir()), root)


def training_images(folder, trained_on: dict) -> bool:
    """Whether the ImageFolder ``folder`` holds the training images of a run (``trained_on``: :func:`training_data`):
    train.py's training folder when its data_dir is here; else (relative or elsewhere) a folder whose path ends with
    the data_dir's (last, when absolute) path parts and a name of the training split."""
    if not trained_on or not Path(folder).is_dir():
        return False
    folder = Path(folder).resolve()
    train = train_py_folder(trained_on, trained_on["train_split"])
    if train is not None:
        return folder == train.resolve()
    root = Path(trained_on["data_dir"])
    tail = (
        root.parts[-1:]
        if root.is_absolute()
        else tuple(
            p for p in root.parts[max((i + 1 for i, p in enumerate(root.parts) if p == ".."), default=0) :] if p != "."
        )
    )
    return any(folder.parts[-len(tail) - 1 :] == (*tail, name) for name in _split_names(trained_on["train_split"]))


def training_images_message(folder, trained_on: dict, run) -> str:
    """Says that ``folder`` holds the training images of ``run`` and where its validation images are."""
    root, split = trained_on["data_dir"], trained_on["train_split"]
    val = train_py_folder(trained_on, trained_on["val_split"])
    if val is not None and val.resolve() == Path(folder).resolve():
        where = f"{root} has no split folders, so train.py validated on its training images too: give held-out images"
    elif val is not None:
        where = f"give its validation folder ({val})"
    else:
        where = (
            f"give its validation folder (train.py's val_split {trained_on['val_split']!r} of {root}: "
            f"{' or '.join(_split_names(trained_on['val_split']))})"
        )
    return (
        f"{folder} holds the training images of {run} (train.py's data_dir {root}, train_split {split!r}): "
        f"accuracy on them is not validation accuracy; {where}"
    )


def check_not_training_images(folder, trained_on: dict, run, split: str | None = None) -> bool:
    """The one guard against reporting accuracy on a run's training images as validation accuracy: a TimmDogError
    when the ImageFolder ``folder`` holds the training images of ``run`` (``trained_on``: :func:`training_data`),
    unless ``split`` names a training split (a caller measuring training accuracy on purpose): True then. False
    when ``folder`` (None: not an ImageFolder) does not hold them."""
    if not folder or not training_images(folder, trained_on):
        return False
    message = training_images_message(folder, trained_on, run)
    if split is None:
        raise TimmDogError(message)
    if split not in (*SPLIT_ALIASES[0], trained_on["train_split"]):
        raise TimmDogError(
            f"{message} (or --split {trained_on['train_split']} to measure training accuracy on purpose)"
        )
    return True
