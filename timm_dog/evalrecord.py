"""What ``timm-dog eval`` measures and writes: the two sides of ``--compare``, the guard against training images,
and the eval JSON (its writer :func:`record` and its reader :func:`read`: one schema, one module)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from .errors import TimmDogError
from .evaluate import mcnemar
from .trainpy.data import check_not_training_images as guard
from .trainpy.runs import checkpoint_differences

NUMBERS = ("top1", "top5", "loss", "num_images")  # what every eval JSON (and each side of a --compare one) holds


def _quiet(line: str) -> None:
    pass


def compare_precision(amp: str | None, compare_amp: str | None) -> str | None:
    """The precision of --compare's OTHER_SOURCE: --amp's unless --compare-amp says otherwise (fp32: no autocast)."""
    if compare_amp is None:
        return amp
    return None if compare_amp == "fp32" else compare_amp


def side_names(sources: list) -> list:
    """The names of eval's two sides: their SOURCEs, and where those are the same, what sets the sides apart (the
    checkpoint, EMA or model weights, precision). ``sources``: [(source, checkpoint, EMA, precision)] * 2."""
    (a, *given_a), (b, *given_b) = sources
    if a != b:
        return [a, b]
    shows = (str, lambda ema: "EMA weights" if ema else "model weights", lambda amp: amp or "fp32")
    parts = [[show(x), show(y)] for x, y, show in zip(given_a, given_b, shows) if x != y]
    return [f"{a} ({', '.join(p[i] for p in parts)})" if parts else a for i in (0, 1)]


def settings_differences(checkpoint, other, log: Callable[[str], None] = _quiet):
    """(train.py settings in which the runs of two checkpoints differ, their seeds) by trainpy's one rule
    (:func:`timm_dog.trainpy.runs.checkpoint_differences`), each of its notes said to ``log``; (None, None) when
    either has no train.py args."""
    differ, seeds, notes = checkpoint_differences(checkpoint, other)
    for note in notes:
        log(note)
    return differ, seeds


def check_not_training_images(info: dict, classifiers: list, split: str, log: Callable[[str], None] = _quiet) -> None:
    """Refuse an ImageFolder that holds a source's training images (train.py's train split of its run), unless
    ``split`` names a training split: then note that the numbers are training accuracy, and record it in ``info``
    (the eval JSON's dataset: ``training_images_of``)."""
    for classifier in classifiers:
        trained_on = (classifier.weights or {}).get("trained_on") or {}
        source = (classifier.weights or {}).get("source")
        if guard(info.get("folder"), trained_on, source, split):  # refuses unless split names a training split
            log(
                f"note: --split {split}: {info['folder']} holds the training images of {source}: the numbers are "
                "training accuracy"
            )
            info.setdefault("training_images_of", []).append(source)


def record(results: list, differences: tuple = (None, None)) -> dict:
    """The eval JSON of one result, or of two (--compare: both sides, the top-1 difference, McNemar's exact test,
    and ``differences``, :func:`settings_differences` of their checkpoints)."""
    if len(results) == 1:
        return results[0].to_dict()
    a, b = results
    return {
        "a": a.to_dict(),
        "b": b.to_dict(),
        "top1_difference": a.top1 - b.top1,
        "mcnemar": mcnemar(a.correct, b.correct),
        "settings_differences": differences[0],
        "seeds": differences[1],
    }


def read(path) -> dict:
    """The numbers of an eval JSON written by :func:`record` (for --compare, its first side), checked to be
    possible; a :class:`TimmDogError` naming the file otherwise."""
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise TimmDogError(f"cannot read eval JSON {path}: {error}") from None
    report = report.get("a", report) if isinstance(report, dict) else report  # --compare: its first source
    if not isinstance(report, dict) or not isinstance(report.get("dataset", {}), dict):
        raise TimmDogError(
            f"eval JSON {path} is not a report of `timm-dog eval … --json` (a JSON object with top1, "
            f"top5, loss, num_images and dataset)"
        )
    missing = [k for k in NUMBERS if not isinstance(report.get(k), (int, float))]
    if missing:
        raise TimmDogError(f"eval JSON {path} lacks {', '.join(missing)}: write it with `timm-dog eval … --json`")
    top1, top5, loss, images = (report[k] for k in NUMBERS)
    if not (0 <= top1 <= top5 <= 100 and 0 <= loss < float("inf") and isinstance(images, int) and images >= 1):
        raise TimmDogError(
            f"eval JSON {path} holds impossible numbers (top1 {top1}, top5 {top5}, loss {loss}, "
            f"num_images {images}): percentages lie in [0, 100] with top1 <= top5, the loss is finite "
            f"and >= 0, and at least one image was evaluated"
        )
    return report
