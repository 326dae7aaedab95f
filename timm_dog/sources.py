"""Where a model comes from: a timm name (+ a checkpoint), ``hf-hub:ORG/NAME`` or ``local-dir:PATH``."""
from __future__ import annotations

import argparse
import logging
import re
import zipfile
from pathlib import Path
from typing import Optional

import timm
import torch

from .models import base_of

logger = logging.getLogger("timm_dog")

# train.py arguments that describe the data the weights expect (timm.data.resolve_data_config's keys)
DATA_KEYS = ("input_size", "img_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")


def load_model(source: str, checkpoint: Optional[str] = None, **kwargs):
    """A model in eval mode. Hub and local folders load their weights; a name gets a fresh init
    (DoG for ``*_dog``) unless ``checkpoint`` (a train.py checkpoint or safetensors file) is given."""
    if source.startswith(("hf-hub:", "local-dir:")):
        if checkpoint:
            raise ValueError(f"--checkpoint applies to a model name, not to {source}: it carries its own weights")
        if source.startswith("local-dir:") and not (Path(source[len("local-dir:"):]) / "config.json").exists():
            raise ValueError(f"{source}: no config.json in that folder (expected timm's save_for_hf layout)")
        return timm.create_model(source, pretrained=True, **kwargs).eval()
    if not timm.is_model(source):
        raise ValueError(f"unknown model {source!r}: give a timm model name, hf-hub:ORG/NAME or local-dir:PATH")
    if checkpoint:
        return load_checkpoint(source, checkpoint)[0]
    return timm.create_model(source, **kwargs).eval()


def read_train_args(path) -> dict:
    """train.py's ``args.yaml`` as a dict; a ValueError naming the file when it is not one."""
    import yaml

    try:
        args = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: not a YAML file: {str(error).strip().splitlines()[0]}") from None
    if not isinstance(args, dict) or not isinstance(args.get("model"), str):
        raise ValueError(f"{path}: not train.py's args.yaml (no 'model' name)")
    return args


def published_architecture(name: str) -> str:
    """The architecture of a trained ``name``: the base of a ``*_dog`` twin (its weights fit it exactly)."""
    base = base_of(name)
    return base if timm.is_model(base) else name


def read_checkpoint(path, use_ema: bool = False):
    """(state_dict, train.py args as a dict or None, arch or None) from safetensors or a train.py checkpoint.

    Checkpoints are read with ``weights_only=True`` (argparse.Namespace allowed): nothing else is unpickled.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path)), None, None
        with torch.serialization.safe_globals([argparse.Namespace]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch's and safetensors' readers fail on foreign files with any exception type
        raise ValueError(f"{path} is not a train.py checkpoint, torch file or safetensors file "
                         f"({_what_is(path, error)}); only tensors and train.py args are read") from None
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path} holds a {type(checkpoint).__name__}, not a state dict or train.py checkpoint")
    key = "state_dict_ema" if use_ema else "state_dict"
    if use_ema and key not in checkpoint:
        raise ValueError(f"{path} has no EMA weights (state_dict_ema)")
    state = checkpoint.get(key, checkpoint)
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    args = checkpoint.get("args")
    return state, (vars(args) if isinstance(args, argparse.Namespace) else args), checkpoint.get("arch")


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


def load_checkpoint(name: str, checkpoint, use_ema: bool = False, args: Optional[dict] = None):
    """(model, train.py args) for weights trained as ``name``: the published architecture, the checkpoint's
    number of classes, the weights loaded strictly, and the data config of the training run (``args``, else
    the checkpoint's own args, else train.py's args.yaml beside it) in ``pretrained_cfg``."""
    state, ckpt_args, arch = read_checkpoint(checkpoint, use_ema)
    architecture = published_architecture(name)
    if arch and arch not in (name, architecture):
        raise ValueError(f"{checkpoint} was trained as {arch!r}, not {name!r}")
    args = args if args is not None else ckpt_args
    if args is None and (Path(checkpoint).parent / "args.yaml").is_file():
        args = read_train_args(Path(checkpoint).parent / "args.yaml")
    if args is None and (Path(checkpoint).parent / "config.json").is_file():  # a Hub folder (save_for_hf)
        args = _hub_data_config(Path(checkpoint).parent / "config.json")
    model = timm.create_model(architecture)
    classifier = model.pretrained_cfg.get("classifier")
    if isinstance(classifier, str) and f"{classifier}.weight" in state:
        model.reset_classifier(state[f"{classifier}.weight"].shape[0])
    _load_strict(model, state, checkpoint, name)
    model.pretrained_cfg = {**model.pretrained_cfg, "num_classes": model.num_classes}
    if args:
        from timm.data import resolve_data_config

        data_args = {k: args[k] for k in DATA_KEYS if args.get(k)}
        model.pretrained_cfg.update(resolve_data_config(data_args, model=model))
        if args.get("label_names") and len(args["label_names"]) == model.num_classes:
            model.pretrained_cfg["label_names"] = list(args["label_names"])
    else:
        cfg = model.pretrained_cfg
        size = "x".join(map(str, cfg["input_size"]))
        logger.warning(f"note: {checkpoint} carries no data config (no train.py args, no args.yaml or config.json "
                       f"beside it): using {architecture}'s default preprocessing ({size}, {cfg.get('interpolation')}, "
                       f"crop {cfg.get('crop_pct')}, mean {tuple(cfg.get('mean'))})")
    return model.eval(), args


def _hub_data_config(path: Path) -> Optional[dict]:
    """The data config (and label names) in a save_for_hf ``config.json``, as train.py-style args; None if absent."""
    import json

    try:
        cfg = json.loads(path.read_text()).get("pretrained_cfg")
    except (OSError, ValueError, AttributeError):
        return None
    return {k: cfg[k] for k in (*DATA_KEYS, "label_names") if k in cfg} or None if isinstance(cfg, dict) else None


def _load_strict(model, state: dict, checkpoint, name: str) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = [f"{len(missing)} missing keys (e.g. {missing[0]})"] if missing else []
        parts += [f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})"] if unexpected else []
        parts += [f"{len(shapes)} shape mismatches (e.g. {shapes[0]})"] if shapes else []
        raise ValueError(f"checkpoint {checkpoint} does not match {name}: {'; '.join(parts)}")
    model.load_state_dict(state)
