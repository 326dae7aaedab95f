"""train.py's checkpoints and other weights files: reading them (tensors and train.py args only), rebuilding the
model they were trained as, and :class:`Weights`, what a number is measured on (the tensors' fingerprint)."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import timm
import torch
from safetensors.torch import load_file
from timm.data import resolve_data_config

from ..errors import TimmDogError
from ..models import base_of
from .args import DATA_KEYS, check_data_args, check_same_run, model_args_for, read_train_args
from .data import training_data

logger = logging.getLogger("timm_dog")


@dataclass(frozen=True)
class Weights:
    """What a number is measured on: the tensors (their fingerprint), where they came from, EMA or not, the epoch."""

    sha256: str  # tensors_sha256 of the weights as loaded
    source: str  # the checkpoint file, hf-hub:/local-dir: source, or "fresh init of NAME"
    ema: bool = False
    epoch: int | None = None  # train.py's epoch of the checkpoint (0-based, as summary.csv counts)
    model_args: dict = field(default_factory=dict)  # create_model kwargs the model was rebuilt with
    trained_on: dict = field(default_factory=dict)  # where train.py read the run's images (:func:`training_data`)

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """E.g. ``run/model_best.pth.tar, EMA weights, epoch 2``."""
        parts = [self.source, "EMA weights (state_dict_ema)" if self.ema else "weights (state_dict)"]
        return ", ".join(parts + ([f"epoch {self.epoch}"] if self.epoch is not None else []))


def tensors_sha256(state: dict) -> str:
    """SHA-256 of a state dict's tensors: names, dtypes, shapes and bytes in name order (not of any file)."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def published_architecture(name: str) -> str:
    """The architecture of a trained ``name``: the base of a ``*_dog`` twin (its weights fit it exactly)."""
    base = base_of(name)
    return base if timm.is_model(base) else name


@dataclass
class Checkpoint:
    """What a checkpoint file holds: the weights read, train.py's args (or None), its arch and epoch."""

    state: dict
    args: dict | None
    arch: str | None
    epoch: int | None
    has_ema: bool


def read_checkpoint(path, use_ema: bool = False) -> Checkpoint:
    """Safetensors or a train.py checkpoint, read with ``weights_only=True`` (argparse.Namespace allowed):
    nothing else is unpickled. ``use_ema`` takes ``state_dict_ema``."""
    path = Path(path)
    if not path.is_file():
        raise TimmDogError(f"checkpoint {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            if use_ema:
                raise TimmDogError(
                    f"{path} is a safetensors file: it holds one set of weights, not train.py's "
                    "state_dict_ema; --ema applies to train.py checkpoints"
                )
            return Checkpoint(load_file(str(path)), None, None, None, False)
        with torch.serialization.safe_globals([argparse.Namespace]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except ValueError:
        raise
    except Exception as error:  # torch's and safetensors' readers fail on foreign files with any exception type
        raise TimmDogError(
            f"{path} is not a train.py checkpoint, torch file or safetensors file "
            f"({_what_is(path, error)}); only tensors and train.py args are read"
        ) from None
    if not isinstance(checkpoint, dict):
        raise TimmDogError(f"{path} holds a {type(checkpoint).__name__}, not a state dict or train.py checkpoint")
    key = "state_dict_ema" if use_ema else "state_dict"
    if use_ema and key not in checkpoint:
        raise TimmDogError(f"{path} has no EMA weights (state_dict_ema): train.py saves them with --model-ema")
    state = checkpoint.get(key, checkpoint)
    state = {k[len("module.") :] if k.startswith("module.") else k: v for k, v in state.items()}
    args = checkpoint.get("args")
    args = vars(args) if isinstance(args, argparse.Namespace) else args
    epoch = checkpoint.get("epoch") if "state_dict" in checkpoint else None
    return Checkpoint(
        state,
        args if isinstance(args, dict) else None,
        checkpoint.get("arch"),
        epoch if isinstance(epoch, int) else None,
        "state_dict_ema" in checkpoint,
    )


def _what_is(path: Path, error: Exception) -> str:
    """What a file that torch/safetensors cannot read looks like, in a few words."""
    with open(path, "rb") as f:
        head = f.read(512)
    unsupported = re.search(r"Unsupported global: GLOBAL [\w.]+", str(error))
    if not head:
        return "it is empty"
    if unsupported:
        return f"it holds Python objects besides tensors: {unsupported.group(0)}"
    if zipfile.is_zipfile(path):
        return "a zip archive without torch's layout"
    if head[:1] == b"\x80":
        return "a Python pickle, not in torch's format"
    if b"\0" not in head:  # binary formats have NUL bytes early on
        return "it is a text file"
    return f"unrecognised content starting {head[:8]!r}"


def load_checkpoint(
    name: str, checkpoint, use_ema: bool = False, args: dict | None = None, args_name: str = "--recipe"
):
    """(model, train.py args, :class:`Weights`) for weights trained as ``name``.

    The model is the published architecture rebuilt with train.py's model arguments (:func:`train_model_args`:
    global pool, BN eps, in_chans, model_kwargs …; a ``*_dog`` twin's ``dog_*`` kwargs are dropped, they only
    shape the init), the checkpoint's number of classes, the weights loaded strictly, and the data config of the
    training run in ``pretrained_cfg``. The args are :func:`run_args`' rule over the checkpoint's own and ``args``
    (else train.py's args.yaml beside it): the checkpoint's, checked against the others (a conflict is an error
    naming the key); else a Hub folder's config.json beside it."""
    read = read_checkpoint(checkpoint, use_ema)
    architecture = published_architecture(name)
    if read.arch and read.arch != name:  # a native run is not a *_dog model, nor the reverse, though they fit
        raise TimmDogError(f"{checkpoint} was trained as {read.arch!r}, not {name!r}")
    beside = Path(checkpoint).parent
    if args is None and (beside / "args.yaml").is_file():
        args, args_name = read_train_args(beside / "args.yaml"), str(beside / "args.yaml")
    if read.args is not None and args is not None:
        check_same_run(checkpoint, read.args, args, args_name)
    train_args = {**(args or {}), **read.args} if read.args is not None else args  # run_args' rule
    if train_args is not None:
        check_data_args(train_args, f"{checkpoint}'s train.py args" if read.args is not None else args_name)
    hub_cfg = _hub_config(beside / "config.json") if train_args is None else None
    data_args = train_args if train_args is not None else (hub_cfg or {}).get("pretrained_cfg")
    model_args = (
        model_args_for(architecture, train_args)
        if train_args is not None
        else dict((hub_cfg or {}).get("model_args") or {})
    )
    try:
        model = timm.create_model(architecture, **model_args)
    except TypeError as error:
        raise TimmDogError(
            f"cannot rebuild {architecture} with the run's model arguments {model_args}: {error}"
        ) from None
    classifier = model.pretrained_cfg.get("classifier")
    if "num_classes" not in model_args and isinstance(classifier, str) and f"{classifier}.weight" in read.state:
        model.reset_classifier(read.state[f"{classifier}.weight"].shape[0])
    _load_strict(model, read.state, checkpoint, name)
    model.pretrained_cfg = {**model.pretrained_cfg, "num_classes": model.num_classes}
    if data_args:
        model.pretrained_cfg.update(
            resolve_data_config({k: data_args[k] for k in DATA_KEYS if data_args.get(k)}, model=model)
        )
        labels = data_args.get("label_names")
        if labels and len(labels) == model.num_classes:
            model.pretrained_cfg["label_names"] = list(labels)
    else:
        cfg = model.pretrained_cfg
        size = "x".join(map(str, cfg["input_size"]))
        logger.warning(
            f"note: {checkpoint} carries no data config (no train.py args, no args.yaml or config.json "
            f"beside it): using {architecture}'s default preprocessing ({size}, {cfg.get('interpolation')}, "
            f"crop {cfg.get('crop_pct')}, mean {tuple(cfg.get('mean'))})"
        )
    weights = Weights(
        tensors_sha256(model.state_dict()), str(checkpoint), use_ema, read.epoch, model_args, training_data(train_args)
    )
    return model.eval(), train_args, weights


def run_checkpoint(folder) -> Path | None:
    """A train.py output folder's best checkpoint: model_best.pth.tar, else last.pth.tar; None without either."""
    return next(
        (Path(folder) / n for n in ("model_best.pth.tar", "last.pth.tar") if (Path(folder) / n).is_file()), None
    )


def own_args(checkpoint) -> dict | None:
    """A checkpoint's train.py args (a mapping naming the model), read without loading its tensors; else None."""
    path = Path(checkpoint)
    if path.suffix != ".safetensors" and zipfile.is_zipfile(path):
        try:
            with torch.serialization.safe_globals([argparse.Namespace]):  # tensors mapped, not read
                saved = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            args = saved.get("args") if isinstance(saved, dict) else None
            args = vars(args) if isinstance(args, argparse.Namespace) else args
        except Exception:  # anything torch cannot map: read_checkpoint says what it is
            args = read_checkpoint(path).args
    else:
        args = read_checkpoint(path).args
    return args if isinstance(args, dict) and isinstance(args.get("model"), str) else None


def _hub_config(path: Path) -> dict | None:
    """A save_for_hf ``config.json`` (pretrained_cfg, model_args) beside a safetensors file; None if absent."""
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not (isinstance(cfg, dict) and isinstance(cfg.get("pretrained_cfg", {}), dict)):
        return None
    if cfg.get("label_names"):  # at the root, as timm's push writes them; timm's loader moves them in, as here
        cfg["pretrained_cfg"] = {**cfg.get("pretrained_cfg", {}), "label_names": cfg["label_names"]}
    return cfg


def _load_strict(model, state: dict, checkpoint, name: str) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        parts = [f"{len(missing)} missing keys (e.g. {missing[0]})"] if missing else []
        parts += [f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})"] if unexpected else []
        parts += [f"{len(shapes)} shape mismatches (e.g. {shapes[0]})"] if shapes else []
        raise TimmDogError(f"checkpoint {checkpoint} does not match {name}: {'; '.join(parts)}")
    model.load_state_dict(state)
