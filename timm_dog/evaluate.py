"""Top-1/top-5/loss/throughput on an ImageFolder or a timm dataset, and McNemar's exact test for two models."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .runtime import Classifier


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
    weights_sha256: Optional[str] = None
    correct: np.ndarray = field(default=None, repr=False)  # per image, for paired tests

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "correct"}


def open_dataset(data_dir: str, dataset: str = "", split: str = "validation", download: bool = False):
    """timm's ``create_dataset`` without a transform: an ImageFolder (``dataset=''``) or any timm dataset name."""
    from timm.data import create_dataset

    try:
        return create_dataset(dataset, root=data_dir, split=split, is_training=False, download=download)
    except (AssertionError, FileNotFoundError, RuntimeError, ValueError) as error:
        kind = f"dataset {dataset!r}" if dataset else "an ImageFolder"
        raise ValueError(f"cannot open {kind} at {data_dir} (split {split!r}): {error}") from None


def evaluate(classifier: Classifier, dataset, batch_size: int = 32, workers: int = 0, progress: bool = True,
             dataset_info: Optional[dict] = None) -> EvalResult:
    """Run ``classifier`` over ``dataset`` (PIL image, target) in order; nothing is shuffled."""
    import torch
    from scipy.special import log_softmax
    from tqdm.auto import tqdm

    if len(dataset) == 0:
        raise ValueError("the dataset has no images")
    class_to_idx = getattr(getattr(dataset, "reader", None), "class_to_idx", None)
    if class_to_idx:
        dataset_info = {**(dataset_info or {}), "class_names": sorted(class_to_idx, key=class_to_idx.get)}
    dataset.transform = classifier.preprocess
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=False)
    num_classes = len(classifier.labels)
    logits, targets, seconds = [], [], 0.0
    for images, target in tqdm(loader, desc=f"eval {classifier.architecture}", unit="batch", disable=not progress):
        if int(target.max()) >= num_classes:
            raise ValueError(f"the dataset has class index {int(target.max())} but the model has {num_classes} classes")
        start = time.perf_counter()
        logits.append(np.asarray(classifier.run(images.numpy()), dtype=np.float64))
        seconds += time.perf_counter() - start
        targets.append(target.numpy())
    logits, targets = np.concatenate(logits), np.concatenate(targets)
    ranked = np.argsort(-logits, axis=1, kind="stable")[:, :5]
    loss = -log_softmax(logits, axis=1)[np.arange(len(targets)), targets]
    correct = ranked[:, 0] == targets
    return EvalResult(
        source=classifier.source, architecture=classifier.architecture, backend=classifier.backend,
        dataset=dataset_info or {}, num_images=len(targets), top1=100.0 * correct.mean(),
        top5=100.0 * (ranked == targets[:, None]).any(axis=1).mean(), loss=float(loss.mean()),
        images_per_second=len(targets) / seconds, weights_sha256=classifier.weights_sha256, correct=correct,
    )


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """McNemar's exact test on paired right/wrong: two-sided binomial p-value on the discordant pairs."""
    from scipy.stats import binomtest

    if len(correct_a) != len(correct_b):
        raise ValueError(f"paired test needs the same images: {len(correct_a)} vs {len(correct_b)} predictions")
    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    p = 1.0 if only_a + only_b == 0 else float(binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue)
    return {"only_a_correct": only_a, "only_b_correct": only_b, "p_value": p}
