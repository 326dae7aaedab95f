"""A train.py run: its output folder's args (the checkpoint's own, args.yaml checked against them), summary.csv,
epochs, EMA, arm and settings over train.py's defaults; the settings in which runs differ. One model of a run for
report, sweep collect, eval --compare and push."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import TimmDogError
from ..init import check_dog_args
from ..models import base_of
from ..models.dog_twins import pop_dog_kwargs
from .args import (
    BOOKKEEPING_ARGS,
    DATA_KEYS,
    check_data_args,
    check_same_run,
    effective_args,
    plain_value,
    read_train_args,
    train_py_args,
    train_py_data_config,
)
from .checkpoints import own_args, run_checkpoint

RUN_FILES = "args.yaml, summary.csv and model_best.pth.tar or last.pth.tar"
CURVE_COLUMNS = ("train_loss", "eval_top1")
# train.py arguments that do not change what is trained or how it is measured: runs differing only in them (and
# the model's dog_* kwargs, which make the arms) are runs of one recipe: report's rows, sweep collect's cells
BOOKKEEPING = {**BOOKKEEPING_ARGS, "seed": "the pairing key: runs of a row differ in it by design"}
NATIVE = "native"
ABSENT = "(absent)"  # a setting that one run has and another does not (it has no effect there)


def checkpoint_args(checkpoint) -> dict | None:
    """The train.py args of a checkpoint (:func:`run_args` with the args.yaml beside it); None for weights files
    with neither."""
    beside = Path(checkpoint).parent / "args.yaml"
    return run_args(beside if beside.is_file() else None, checkpoint)


def run_args(args_file, checkpoint=None) -> dict | None:
    """A train.py run's args, one rule for report, sweep collect and eval: the checkpoint's own (train.py's
    CheckpointSaver stores them, with what train.py set after writing args.yaml, e.g. a computed lr) over
    ``args_file`` (args.yaml) for the keys only it has; a TimmDogError naming the key where the two contradict
    (:func:`check_same_run`). None when neither exists."""
    given = read_train_args(args_file) if args_file is not None else None
    own = own_args(checkpoint) if checkpoint is not None else None
    if own is None:
        return given
    check_data_args(own, f"{checkpoint}'s train.py args")
    if given is not None:
        check_same_run(checkpoint, own, given, str(args_file))
    return {**(given or {}), **own}


def read_summary(path) -> dict:
    """train.py's ``summary.csv`` as {epoch: {column: float}}, epochs ascending, keyed by its ``epoch`` column (not
    by row count: ``--val-interval`` leaves epochs out). A resumed run (``--resume``) writes the header again and
    may repeat epochs: each header starts a new part and the last row of an epoch counts. Empty cells are left
    out of their row; a diverged run's ``nan`` stays ``nan``. A TimmDogError names the file and line of anything
    else."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            lines = list(csv.reader(f))
    except UnicodeDecodeError as error:
        raise TimmDogError(f"{path}: not a UTF-8 CSV file as train.py writes: {error}") from None
    except OSError as error:
        raise TimmDogError(f"cannot read {path}: {error.strerror or error}") from None
    header, epochs = None, {}
    for number, line in enumerate(lines, 1):
        if not line:
            continue
        if "epoch" in line:  # train.py's header, at the start of each (resumed) run
            header = line
            continue
        if header is None:
            raise TimmDogError(
                f"{path}, line {number}: a row before the header (train.py starts with one naming 'epoch')"
            )
        if len(line) != len(header):
            raise TimmDogError(f"{path}, line {number}: {len(line)} values for {len(header)} columns")
        row = dict(zip(header, line))
        try:
            epoch = int(row.pop("epoch"))
            values = {column: float(text) for column, text in row.items() if text != ""}
        except ValueError:
            raise TimmDogError(
                f"{path}, line {number}: epoch must be an int and every other value a number (got {', '.join(line)})"
            ) from None
        if epoch < 0:
            raise TimmDogError(f"{path}, line {number}: epoch {epoch} is negative")
        epochs[epoch] = values
    if not epochs:
        raise TimmDogError(f"{path} has no epoch rows (train.py writes one per validated epoch)")
    return dict(sorted(epochs.items()))


def epochs_trained(summary: dict) -> int:
    """Epochs a run trained, by :func:`read_summary`'s epochs: the last (0-based) + 1 (train.py validates the last)."""
    return max(summary) + 1


@dataclass(eq=False)
class Run:
    """One train.py output folder (hashed by identity): its args (:func:`run_args`), summary.csv
    (:func:`read_summary`) and best checkpoint (None where it kept none)."""

    folder: Path
    args: dict
    summary: dict
    checkpoint: Path | None

    @property
    def model(self) -> str:
        return self.args["model"]

    @property
    def architecture(self) -> str:
        """The base (native) model of the run's model."""
        return base_of(self.model)

    @property
    def baseline(self) -> bool:
        return not self.model.endswith("_dog")

    @property
    def seed(self):
        return self.args.get("seed")

    @property
    def epochs(self) -> int:
        return epochs_trained(self.summary)

    @property
    def curves(self) -> dict:
        epochs = sorted(self.summary)
        return {"epoch": epochs, **{c: [self.summary[e][c] for e in epochs] for c in CURVE_COLUMNS}}

    @property
    def summary_ema(self) -> bool:
        """Whether summary.csv's eval columns are the EMA weights': train.py validates the EMA in place of the model
        when it keeps one (--model-ema) on the training device (not --model-ema-force-cpu)."""
        return bool(self.args.get("model_ema")) and not self.args.get("model_ema_force_cpu")

    @property
    def dog_kwargs(self) -> dict:
        """Every dog_* kwarg of a ``*_dog`` run, read by the twins' own rule (every spelling of a value that the twin
        takes is that value), the twins' defaults filled in; {} for a native run. A TimmDogError names args.yaml and
        the kwarg the twin refuses, or a dog_* kwarg of a native run."""
        given = {k: v for k, v in (self.args.get("model_kwargs") or {}).items() if k.startswith("dog_")}
        if self.baseline:
            if given:
                raise TimmDogError(
                    f"{self.folder / 'args.yaml'}: {self.model} is not a *_dog model, yet its "
                    f"model_kwargs set {next(iter(given))}"
                )
            return {}
        try:
            kwargs = pop_dog_kwargs(given)
        except ValueError as error:
            raise TimmDogError(f"{self.folder / 'args.yaml'}: model_kwargs: {error}") from None
        return {f"dog_{k}": v for k, v in kwargs.items()}

    @property
    def arm_kwargs(self) -> dict:
        """The non-seed dog_* kwargs that differ from the twins' defaults: what makes this run's arm."""
        defaults = check_dog_args()
        return {
            k: plain_value(v)
            for k, v in sorted(self.dog_kwargs.items())
            if k != "dog_seed" and v != defaults[k[len("dog_") :]]
        }

    @property
    def arm(self) -> str:
        """The arm's name: native, or the pattern (dog unless dog_pattern says), "frozen" for dog_trainable False,
        then every other non-default dog_* kwarg, e.g. "dog", "dog frozen", "gaussian", "dog share 0.7"."""
        if self.baseline:
            return NATIVE
        kwargs = dict(self.arm_kwargs)
        parts = [str(kwargs.pop("dog_pattern", "dog"))] + (
            ["frozen"] if kwargs.pop("dog_trainable", True) is False else []
        )
        return " ".join(parts + [f"{k[len('dog_') :]} {text(v)}" for k, v in kwargs.items()])

    @property
    def label(self) -> str:
        return f"{self.arm} seed {self.seed} ({self.folder.name})"


def text(value) -> str:
    """A setting's value as a table shows it: lists joined by /."""
    return "/".join(map(str, value)) if isinstance(value, list) else str(value)


def read_run(folder, checkpoint: bool = True) -> Run:
    """A train.py output folder: its args (:func:`run_args`: the best checkpoint's own, args.yaml checked against
    them), summary.csv and its best checkpoint (``checkpoint``: required; else None where it has none)."""
    folder = Path(folder)
    missing = [name for name in ("args.yaml", "summary.csv") if not (folder / name).is_file()]
    best = run_checkpoint(folder)
    if best is None and checkpoint:
        missing.append("model_best.pth.tar or last.pth.tar")
    if missing:
        raise TimmDogError(
            f"{folder} is not a train.py output folder: no {', '.join(missing)} (train.py writes {RUN_FILES})"
        )
    args = run_args(folder / "args.yaml", best)  # the checkpoint's own, args.yaml checked against them
    return Run(folder, args, read_summary(folder / "summary.csv"), best)


def args_settings(args: dict) -> dict:
    """train.py args over train.py's defaults, without the bookkeeping keys and the seed (:data:`BOOKKEEPING`), the
    arm (model name → base model; model_kwargs without dog_* kwargs) and the args that have no effect given the
    others (:func:`effective_args`); the data config as train.py resolved it."""
    full = {**train_py_args()[0], **args}
    out = {
        k: plain_value(v)
        for k, v in effective_args(full).items()
        if k not in BOOKKEEPING and k not in ("model", "model_kwargs", *DATA_KEYS)
    }
    out.update(train_py_data_config(full, args["model"]))  # what train.py resolved: img_size 40 = input_size 3 40 40
    out["model"] = base_of(args["model"])
    out["model_kwargs"] = {
        k: plain_value(v) for k, v in (args.get("model_kwargs") or {}).items() if not k.startswith("dog_")
    }
    return out


def settings(run: Run) -> dict:
    """What a run was trained and validated with (:func:`args_settings`), and the epochs it trained."""
    # an interrupted run is not the same recipe as the finished ones
    return {**args_settings(run.args), "epochs trained": run.epochs}


def differences(a: dict, b: dict) -> list:
    """The keys of two settings whose values differ, a key only one has counting as :data:`ABSENT` in the other."""
    return sorted(k for k in set(a) | set(b) if a.get(k, ABSENT) != b.get(k, ABSENT))


def settings_differences(runs: list) -> list:
    """Settings (see :func:`settings`) that differ between ``runs``."""
    first, *others = [settings(run) for run in runs]
    return sorted(set().union(*(differences(first, s) for s in others)))


def varying(all_settings: list) -> list:
    """The keys whose values differ between the settings that have them (a key only some have has no effect in
    the others: a key that turns it on differs)."""
    keys = set().union(*all_settings)
    return sorted(k for k in keys if len({json.dumps(s[k], default=str) for s in all_settings if k in s}) > 1)


def checkpoint_differences(checkpoint, other) -> tuple:
    """(settings in which the train.py runs of two checkpoints differ (:func:`args_settings`: not the seed, the arm,
    bookkeeping or settings without effect), their seeds, notes saying what that means for a comparison of the
    two); (None, None, notes) when either carries no train.py args."""
    args = [checkpoint_args(c) if c else None for c in (checkpoint, other)]
    if None in args:
        lacking = " and ".join(str(c) for c, a in zip((checkpoint, other), args) if a is None)
        return (
            None,
            None,
            [
                f"note: the train.py settings of the two runs cannot be compared: {lacking} carries no "
                "train.py args (none inside, no args.yaml beside it); the difference below may not be "
                "the init's alone"
            ]
            if checkpoint and other
            else [],
        )
    notes = []
    seeds = [x.get("seed") for x in args]
    if seeds[0] != seeds[1]:
        notes.append(
            f"note: {checkpoint} and {other} were trained with different seeds ({seeds[0]} vs {seeds[1]}): "
            "other data order, augmentation and drop-path, so the difference below includes the variation "
            "between runs, not the init's alone (timm-dog report pairs runs by equal seed)"
        )
    a, b = (args_settings(x) for x in args)
    differ = differences(a, b)
    if differ:
        notes.append(
            f"note: {checkpoint} and {other} were trained with different settings: "
            + ", ".join(f"{k} ({a.get(k, ABSENT)} vs {b.get(k, ABSENT)})" for k in differ)
            + ": the difference below is not the init's alone (timm-dog report pairs runs only when these "
            "agree)"
        )
    return differ, seeds, notes
