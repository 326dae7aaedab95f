"""What ``timm-dog eval`` measures and writes: the two sides of ``--compare``, the guard against training images,
and the eval JSON (its writer :func:`record` and its reader :func:`read`: one schema, one module)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional

from .constants import SPLIT_ALIASES
from .errors import TimmDogError
from .evaluate import mcnemar
from .report import args_settings
from .sources import checkpoint_args, training_images, training_images_message

NUMBERS = ("top1", "top5", "loss", "num_images")  # what every eval JSON (and each side of a --compare one) holds


def _quiet(line: str) -> None:
    pass


def compare_precision(amp: Optional[str], compare_amp: Optional[str]) -> Optional[str]:
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
    """(train.py settings (report's rule: not the seed, the arm, bookkeeping or settings without effect) in which the
    runs of two checkpoints differ, their seeds), each said as a note to ``log``; (None, None) when either has no
    train.py args."""
    args = [checkpoint_args(c) if c else None for c in (checkpoint, other)]
    if None in args:
        if checkpoint and other:
            lacking = " and ".join(str(c) for c, a in zip((checkpoint, other), args) if a is None)
            log(f"note: the train.py settings of the two runs cannot be compared: {lacking} carries no train.py args "
                "(none inside, no args.yaml beside it); the difference below may not be the init's alone")
        return None, None
    seeds = [x.get("seed") for x in args]
    if seeds[0] != seeds[1]:
        log(f"note: {checkpoint} and {other} were trained with different seeds ({seeds[0]} vs {seeds[1]}): other "
            "data order, augmentation and drop-path, so the difference below includes the variation between runs, "
            "not the init's alone (timm-dog report pairs runs by equal seed)")
    a, b = (args_settings(x) for x in args)
    differ = sorted(k for k in {**a, **b} if a.get(k, "(absent)") != b.get(k, "(absent)"))
    if differ:
        log(f"note: {checkpoint} and {other} were trained with different settings: "
            + ", ".join(f"{k} ({a.get(k, '(absent)')} vs {b.get(k, '(absent)')})" for k in differ)
            + ": the difference below is not the init's alone (timm-dog report pairs runs only when these agree)")
    return differ, seeds


def check_not_training_images(info: dict, classifiers: list, split: str, log: Callable[[str], None] = _quiet) -> None:
    """Refuse an ImageFolder that holds a source's training images (train.py's train split of its run), unless
    ``split`` names a training split: then note that the numbers are training accuracy, and record it in ``info``
    (the eval JSON's dataset: ``training_images_of``)."""
    for classifier in classifiers:
        trained_on = (classifier.weights or {}).get("trained_on") or {}
        if not info.get("folder") or not training_images(info["folder"], trained_on):
            continue
        message = training_images_message(info["folder"], trained_on, classifier.weights["source"])
        if split not in (*SPLIT_ALIASES[0], trained_on["train_split"]):
            raise TimmDogError(f"{message} (or --split {trained_on['train_split']} to measure training accuracy on "
                               f"purpose)")
        log(f"note: --split {split}: {info['folder']} holds the training images of {classifier.weights['source']}: "
            "the numbers are training accuracy")
        info.setdefault("training_images_of", []).append(classifier.weights["source"])


def record(results: list, differences: tuple = (None, None)) -> dict:
    """The eval JSON of one result, or of two (--compare: both sides, the top-1 difference, McNemar's exact test,
    and ``differences``, :func:`settings_differences` of their checkpoints)."""
    if len(results) == 1:
        return results[0].to_dict()
    a, b = results
    return {"a": a.to_dict(), "b": b.to_dict(), "top1_difference": a.top1 - b.top1,
            "mcnemar": mcnemar(a.correct, b.correct), "settings_differences": differences[0],
            "seeds": differences[1]}


def read(path) -> dict:
    """The numbers of an eval JSON written by :func:`record` (for --compare, its first side), checked to be
    possible; a :class:`TimmDogError` naming the file otherwise."""
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise TimmDogError(f"cannot read eval JSON {path}: {error}") from None
    report = report.get("a", report) if isinstance(report, dict) else report  # --compare: its first source
    if not isinstance(report, dict) or not isinstance(report.get("dataset", {}), dict):
        raise TimmDogError(f"eval JSON {path} is not a report of `timm-dog eval … --json` (a JSON object with top1, "
                           f"top5, loss, num_images and dataset)")
    missing = [k for k in NUMBERS if not isinstance(report.get(k), (int, float))]
    if missing:
        raise TimmDogError(f"eval JSON {path} lacks {', '.join(missing)}: write it with `timm-dog eval … --json`")
    top1, top5, loss, images = (report[k] for k in NUMBERS)
    if not (0 <= top1 <= top5 <= 100 and 0 <= loss < float("inf") and isinstance(images, int) and images >= 1):
        raise TimmDogError(f"eval JSON {path} holds impossible numbers (top1 {top1}, top5 {top5}, loss {loss}, "
                           f"num_images {images}): percentages lie in [0, 100] with top1 <= top5, the loss is finite "
                           f"and >= 0, and at least one image was evaluated")
    return report
