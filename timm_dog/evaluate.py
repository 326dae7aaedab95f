"""Top-1/top-5/loss/throughput on an ImageFolder or a timm dataset, McNemar's exact test for two models, and
predictions for loose images."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from PIL.Image import DecompressionBombError

from .errors import TimmDogError
from .progress import progress as progress_bar
from .runtime import Classifier
from .trainpy.data import DATASET_PREFIXES, FOLDER_DATASETS, split_folder


@dataclass
class EvalResult:
    source: str
    architecture: str
    backend: str
    dataset: dict
    num_images: int
    top1: float
    top5: float
    loss: float
    images_per_second: float
    weights_sha256: str | None = None  # of the tensors evaluated (an ONNX file: of the file)
    weights: dict | None = None  # what they are: checkpoint, EMA or not, epoch, model args (checkpoints.Weights)
    input_size: list | None = None  # what the images were resized/cropped to, [C, H, W]
    correct: np.ndarray = field(default=None, repr=False)  # per image, for paired tests

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "correct"}


def open_dataset(data_dir: str, dataset: str = "", split: str = "validation", download: bool = False):
    """(dataset of (PIL image, target), info) with timm's ``create_dataset``: an ImageFolder (``dataset=''``) or any
    timm dataset name. Images keep their mode (``preprocess.to_rgb`` converts them); ``info['folder']`` says
    which folder an ImageFolder's split resolved to."""
    from timm.data import create_dataset  # torch: not for `predict` of an ONNX file

    prefix, sep, _ = dataset.partition("/")
    if dataset.lower() not in FOLDER_DATASETS and not (sep and prefix.lower() in DATASET_PREFIXES):
        raise TimmDogError(
            f"unknown --dataset {dataset!r}: give a timm dataset name starting with "
            f"{', '.join(p + '/' for p in DATASET_PREFIXES)} (e.g. torch/cifar10), or none for an "
            f"ImageFolder"
        )  # timm would read any other name as an ImageFolder, quietly
    info = {"name": dataset or "imagefolder", "data_dir": str(data_dir), "split": split}
    kwargs = {"input_img_mode": None}
    if dataset.lower() in FOLDER_DATASETS:
        data_dir, info["split_rule"] = split_folder(data_dir, split)
        info["folder"] = os.path.abspath(data_dir)
        kwargs["search_split"] = False
        if dataset.lower().startswith("torch/"):  # torchvision's ImageFolder: its loader converts to RGB (16-bit clips)
            kwargs["loader"] = Image.open
    try:
        opened = create_dataset(dataset, root=data_dir, split=split, is_training=False, download=download, **kwargs)
    except (AssertionError, FileNotFoundError, RuntimeError, ValueError) as error:
        kind = f"dataset {dataset!r}" if dataset else "an ImageFolder"
        raise TimmDogError(f"cannot open {kind} at {data_dir} (split {split!r}): {error}") from None
    if "" in (class_names(opened) or []):
        raise TimmDogError(
            f"{data_dir} has images directly inside it: an ImageFolder keeps each class's images in a "
            f"sub-folder named after the class"
        )
    return (StrictImageFolder(opened.reader) if not dataset else opened), info


class StrictImageFolder:
    """timm's ImageFolder reader, read strictly: a file that is not a readable image is an error that names it
    (timm's ImageDataset logs it and serves the next image in its place, which is then counted twice)."""

    def __init__(self, reader):
        self.reader, self.transform = reader, None

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, index: int):
        path, target = self.reader.samples[index]
        try:
            with Image.open(path) as image:
                image.load()  # decode here, so that a truncated file is named too
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            raise TimmDogError(f"cannot read image {path}: {error}") from None
        return (self.transform(image) if self.transform else image), target


def class_mapping(dataset, *label_lists) -> tuple:
    """(for each label list, an array: dataset class index -> model class index; the rule, in words).

    Class names (``label_names``; ImageNet's descriptions or WordNet ids) match folder names exactly; models
    whose classes are unnamed (``class_<i>``) take the folders by position, which needs as many folders as
    classes. All models get one rule: by position as soon as one is unnamed, and then a named model's names
    must sit in the folders' order. A dataset without class names keeps its own indices."""
    folders = class_names(dataset)
    if not folders:
        return [None] * len(label_lists), "the dataset's own class indices"
    if all(_named(labels) for labels in label_lists):
        rule = f"by name: {len(folders)} class folders matched to the model's class names"
        return [np.array([_by_name(labels, folders)[f] for f in folders]) for labels in label_lists], rule
    for labels in label_lists:
        if len(labels) != len(folders):
            raise TimmDogError(
                f"the data has {len(folders)} class folders but the model has {len(labels)} classes: "
                "a model without class names (class_0 …) takes the folders by position, "
                "which needs as many folders as classes"
            )
        if _named(labels) and list(_by_name(labels, folders).values()) != list(range(len(folders))):
            raise TimmDogError(
                "a model with class names is compared with one without, and its names are not the "
                "folders in sorted order: the two cannot be matched alike"
            )
    rule = f"by position: the {len(folders)} class folders in sorted order are the model's classes 0-{len(folders) - 1}"
    return [np.arange(len(folders))] * len(label_lists), rule


def class_names(dataset) -> list | None:
    """The dataset's class names (an ImageFolder's folders) in its index order, or None."""
    class_to_idx = getattr(dataset, "class_to_idx", None) or getattr(
        getattr(dataset, "reader", None), "class_to_idx", None
    )
    return sorted(class_to_idx, key=class_to_idx.get) if class_to_idx else None


def _named(labels: list) -> bool:
    return labels != [f"class_{i}" for i in range(len(labels))]


def _by_name(labels: list, folders: list) -> dict:
    """{folder: model class index} by label name (and WordNet id for ImageNet labels); a ValueError for unknowns."""
    from timm.data import ImageNetInfo, infer_imagenet_subset  # torch: not for `predict` of an ONNX file

    index = {name: i for i, name in enumerate(labels)}
    subset = infer_imagenet_subset({"num_classes": len(labels)})
    if subset and ImageNetInfo(subset).label_descriptions() == labels:
        index.update({name: i for i, name in enumerate(ImageNetInfo(subset).label_names())})
    unknown = [f for f in folders if f not in index]
    if unknown:
        raise TimmDogError(
            f"{len(unknown)} of {len(folders)} class folders match none of the model's {len(labels)} "
            f"class names: {', '.join(unknown[:5])}{' …' if len(unknown) > 5 else ''} "
            f"(the model's are e.g. {', '.join(repr(name) for name in labels[:3])})"
        )
    return {f: index[f] for f in folders}


def evaluate(
    classifier: Classifier,
    dataset,
    batch_size: int = 32,
    workers: int | None = None,
    progress: bool = True,
    dataset_info: dict | None = None,
    class_index=None,
    rule: str | None = None,
    name: str | None = None,
) -> EvalResult:
    """Run ``classifier`` over ``dataset`` (PIL image, target) in order; nothing is shuffled. The preprocessing
    runs in ``workers`` loader processes (default: one per CPU core this process may use). Dataset classes
    become model classes by ``class_index``/``rule`` (default: :func:`class_mapping` for this classifier).
    The progress bar names ``name``, else the classifier's source (a twin's name, not its base architecture)."""
    import torch  # torch and scipy: not for `predict` of an ONNX file
    from scipy.special import log_softmax

    if len(dataset) == 0:
        raise TimmDogError("the dataset has no images")
    if rule is None:
        (class_index,), rule = class_mapping(dataset, classifier.labels)
    dataset_info = {**(dataset_info or {}), "class_mapping": rule}
    if class_names(dataset):
        dataset_info["class_names"] = class_names(dataset)
    dataset.transform = classifier.preprocess
    workers = len(os.sched_getaffinity(0)) if workers is None else workers
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        shuffle=False,
        pin_memory=classifier.device.startswith("cuda"),
    )
    num_classes = len(classifier.labels)
    logits, targets, seconds = [], [], 0.0
    for images, target in progress_bar(
        _batches(loader),
        desc=f"eval {name or classifier.source}",
        unit="batch",
        total=len(loader),
        disable=not progress,
    ):
        target = target.numpy() if class_index is None else class_index[target.numpy()]
        if int(target.max()) >= num_classes:
            raise TimmDogError(
                f"the dataset has class index {int(target.max())} but the model has {num_classes} classes"
            )
        start = time.perf_counter()
        logits.append(np.asarray(classifier.run(images), dtype=np.float64))
        seconds += time.perf_counter() - start
        targets.append(target)
    logits, targets = np.concatenate(logits), np.concatenate(targets)
    ranked = np.argsort(-logits, axis=1, kind="stable")[:, :5]
    loss = -log_softmax(logits, axis=1)[np.arange(len(targets)), targets]
    correct = ranked[:, 0] == targets
    return EvalResult(
        source=classifier.source,
        architecture=classifier.architecture,
        backend=classifier.backend,
        dataset=dataset_info or {},
        num_images=len(targets),
        top1=100.0 * correct.mean(),
        top5=100.0 * (ranked == targets[:, None]).any(axis=1).mean(),
        loss=float(loss.mean()),
        images_per_second=len(targets) / seconds,
        weights_sha256=classifier.weights_sha256,
        weights=classifier.weights,
        input_size=list(images.shape[1:]),
        correct=correct,
    )


def _batches(loader):
    """The loader's batches; an image that cannot be read or converted (in any worker) is a one-line TimmDogError."""
    batches = iter(loader)
    while True:
        try:
            yield next(batches)
        except StopIteration:
            return
        except (OSError, ValueError, DecompressionBombError) as error:  # a worker's error: keep its last line
            last = re.sub(r"^[\w.]*Error: ", "", str(error).strip().splitlines()[-1])  # no class name
            raise TimmDogError(f"cannot read an image of the dataset: {last}") from None


ORIENTATION = 0x0112  # the EXIF Orientation tag: how a viewer turns the stored pixels to show them
ORIENTATIONS = {
    2: "mirrored",
    3: "rotated 180°",
    4: "flipped upside down",
    5: "mirrored and rotated 90° counter-clockwise",
    6: "rotated 90° clockwise",
    7: "mirrored and rotated 90° clockwise",
    8: "rotated 90° counter-clockwise",
}


@dataclass
class Prediction:
    path: str
    ranked: list  # [(label, probability), ...], best first
    orientation: int = 1  # the image's EXIF Orientation (1: none, or upright); ignored, as timm's loader does

    @property
    def rotation_note(self) -> str | None:
        """What the ignored EXIF tag would have done, or None for an upright image."""
        if self.orientation not in ORIENTATIONS:
            return None
        return (
            f"note: EXIF Orientation {self.orientation} (viewers show it {ORIENTATIONS[self.orientation]}) "
            "ignored: the model sees the pixels as stored, as timm's loader and validate.py do"
        )


def predict(classifier: Classifier, paths, batch_size: int = 32, top_k: int = 5) -> Iterator[Prediction]:
    """Classify the images at ``paths``, ``batch_size`` at a time, yielding each batch's predictions as soon as
    it has run: the memory needed does not grow with the number of images."""
    paths = list(paths)
    for start in range(0, len(paths), batch_size):
        read = [read_image(path, classifier.preprocess) for path in paths[start : start + batch_size]]
        ranked = classifier.top_k(classifier.run(np.stack([array for _, array, _ in read])), top_k)
        yield from (Prediction(str(path), best, orientation) for (path, _, orientation), best in zip(read, ranked))


def read_image(path, preprocess) -> tuple:
    """(path, ``preprocess`` of its image, its EXIF Orientation or 1), or a ValueError that names the file."""
    try:
        with Image.open(path) as image:
            orientation = image.getexif().get(ORIENTATION, 1)
            return path, preprocess(image), orientation
    except (OSError, ValueError, DecompressionBombError) as error:
        raise TimmDogError(f"cannot read image {path}: {error}") from None


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """McNemar's exact test on paired right/wrong: two-sided binomial p-value on the discordant pairs."""
    from scipy.stats import binomtest  # scipy.stats: for --compare only

    if len(correct_a) != len(correct_b):
        raise TimmDogError(f"paired test needs the same images: {len(correct_a)} vs {len(correct_b)} predictions")
    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    p = 1.0 if only_a + only_b == 0 else float(binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue)
    return {"only_a_correct": only_a, "only_b_correct": only_b, "p_value": p}
