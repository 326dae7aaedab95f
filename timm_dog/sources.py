"""Where a model comes from: a timm name (+ a checkpoint), ``hf-hub:ORG/NAME`` or ``local-dir:PATH``; and what
train.py wrote (args.yaml, summary.csv, checkpoints), read in one place with one set of checks."""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import re
import zipfile
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Optional

import timm
import torch

from .models import DOG_KWARGS, base_of

logger = logging.getLogger("timm_dog")

# train.py arguments that describe the data the weights expect (timm.data.resolve_data_config's keys)
DATA_KEYS = ("input_size", "img_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")
# create_model kwargs of train.py's call that load weights rather than shape the model: the checkpoint replaces them
WEIGHT_LOADING_KWARGS = ("pretrained", "checkpoint_path")
# train.py arguments that say where and how a run was kept, not what was trained: runs that differ only in these
# (and in their seeds) are runs of one recipe (report's rows, sweep collect's cells)
BOOKKEEPING_ARGS = {
    "output": "where the run is written", "experiment": "the run folder's name",
    "config": "the YAML file train.py read its arguments from (args.yaml holds them)",
    "resume": "the checkpoint a resumed run continued from (summary.csv's epoch column says how far)",
    "log_interval": "logging only", "log_wandb": "logging only", "wandb_project": "logging only",
    "wandb_tags": "logging only", "wandb_resume_id": "logging only", "save_images": "debug images only",
    "checkpoint_hist": "how many checkpoints are kept", "recovery_interval": "recovery checkpoints only",
    "workers": "loader processes", "pin_mem": "loader memory", "use_multi_epochs_loader": "loader implementation",
    "dataset_download": "whether the data was downloaded", "device": "where it ran (numbers agree within precision)",
    "local_rank": "the process's rank", "device_modules": "plugins train.py imported (timm_dog)",
    "synchronize_step": "a CUDA sync for timing",
}

# train.py arguments that train.py sets after writing args.yaml (its checkpoints' args hold what it set), each with
# when args.yaml's value is the one it replaces (given: args.yaml's value; own: the checkpoint's args)
SET_AFTER_ARGS_YAML = {
    "lr": lambda given, own: not given,  # unset: lr_base scaled by the global batch size
    "lr_base_scale": lambda given, own: not given,  # chosen from the optimizer when it computes lr
    "num_classes": lambda given, own: given is None,  # the model's
    "data_dir": lambda given, own: not given,  # the positional DATA
    "grad_accum_steps": lambda given, own: own == max(1, given) if isinstance(given, int) else False,
    "dist_bn": lambda given, own: own == "",  # emptied when --sync-bn is on in distributed training
}
# train.py arguments that have no effect unless another argument turns them on (as train.py's source reads them):
# {key: (the condition in words, the condition over the run's args with train.py's defaults filled in)}
_MIXUP = ("mixup or cutmix on (mixup > 0, cutmix > 0 or cutmix_minmax)",
          lambda a: (a.get("mixup") or 0) > 0 or (a.get("cutmix") or 0) > 0 or a.get("cutmix_minmax") is not None)
INERT_UNLESS = {
    **dict.fromkeys(("model_ema_decay", "model_ema_warmup", "model_ema_force_cpu"),
                    ("model_ema", lambda a: bool(a.get("model_ema")))),
    **dict.fromkeys(("mixup_prob", "mixup_switch_prob", "mixup_mode", "mixup_off_epoch"), _MIXUP),
    **dict.fromkeys(("bce_target_thresh", "bce_sum", "bce_pos_weight"),
                    ("bce_loss without jsd_loss", lambda a: bool(a.get("bce_loss")) and not a.get("jsd_loss"))),
    **dict.fromkeys(("lr_base", "lr_base_size", "lr_base_scale"),
                    ("lr unset (train.py scales lr_base by the global batch size)", lambda a: not a.get("lr"))),
    "amp_dtype": ("amp", lambda a: bool(a.get("amp"))),
    "torchcompile_mode": ("torchcompile", lambda a: bool(a.get("torchcompile"))),
    "clip_mode": ("clip_grad", lambda a: a.get("clip_grad") is not None),
    "dist_bn": ("distributed training", lambda a: bool(a.get("distributed"))),
}


def effective_args(args: dict) -> dict:
    """``args`` (train.py's defaults filled in) without the arguments that have no effect given the others
    (:data:`INERT_UNLESS`): runs that differ only in those trained alike."""
    return {k: v for k, v in args.items() if k not in INERT_UNLESS or INERT_UNLESS[k][1](args)}


@dataclass(frozen=True)
class Weights:
    """What a number is measured on: the tensors (their fingerprint), where they came from, EMA or not, the epoch."""

    sha256: str  # tensors_sha256 of the weights as loaded
    source: str  # the checkpoint file, hf-hub:/local-dir: source, or "fresh init of NAME"
    ema: bool = False
    epoch: Optional[int] = None  # train.py's epoch of the checkpoint (0-based, as summary.csv counts)
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


def load_model(source: str, checkpoint: Optional[str] = None, use_ema: bool = False, **kwargs):
    """(model in eval mode, :class:`Weights`). Hub and local folders load their weights; a name gets a fresh init
    (DoG for ``*_dog``) unless ``checkpoint`` (a train.py checkpoint or safetensors file) is given."""
    if use_ema and not checkpoint:
        raise ValueError("--ema applies to a train.py checkpoint (its state_dict_ema): give --checkpoint")
    if source.startswith(("hf-hub:", "local-dir:")):
        if checkpoint:
            raise ValueError(f"--checkpoint applies to a model name, not to {source}: it carries its own weights")
        if source.startswith("local-dir:") and not (Path(source[len("local-dir:"):]) / "config.json").exists():
            raise ValueError(f"{source}: no config.json in that folder (expected timm's save_for_hf layout)")
        model = timm.create_model(source, pretrained=True, **kwargs).eval()
        return model, Weights(tensors_sha256(model.state_dict()), source, model_args=dict(kwargs))
    if not timm.is_model(source):
        weights_file = Path(source).is_file()  # a checkpoint given where the model name goes
        raise ValueError(f"unknown model {source!r}: give a timm model name, hf-hub:ORG/NAME or local-dir:PATH"
                         + (" (a weights file goes after --checkpoint, with the model's name before it)"
                            if weights_file else ""))
    if checkpoint:
        model, _, weights = load_checkpoint(source, checkpoint, use_ema)
        return model, weights
    model = timm.create_model(source, **kwargs).eval()
    return model, Weights(tensors_sha256(model.state_dict()), f"fresh init of {source}", model_args=dict(kwargs))


def read_train_args(path) -> dict:
    """train.py's ``args.yaml`` as a dict; a ValueError naming the file when it is not one."""
    import yaml

    try:
        args = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: not a YAML file: {str(error).strip().splitlines()[0]}") from None
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
    if not isinstance(args, dict) or not isinstance(args.get("model"), str):
        raise ValueError(f"{path}: not train.py's args.yaml (a mapping with a 'model' name)")
    if not isinstance(args.get("model_kwargs") or {}, dict):
        raise ValueError(f"{path}: model_kwargs {args['model_kwargs']!r} is not a mapping (train.py writes "
                         f"--model-kwargs KEY=VALUE … as one)")
    check_data_args(args, path)
    return args


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_data_args(args: dict, name) -> None:
    """A ValueError naming ``name`` and the key when a train.py argument that decides the data is not of the type
    train.py's argparse gives it (a hand-edited args.yaml): img_size, input_size, in_chans, mean, std, crop_pct,
    interpolation, crop_mode, data_dir/data, dataset, train_split, val_split."""
    size = args.get("input_size")  # timm's resolve_data_config: input_size's channels, else in_chans, else 3
    chans = size[0] if isinstance(size, (list, tuple)) and size else args.get("in_chans") or 3
    rules = {
        "img_size": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0, "an int > 0"),
        "input_size": (lambda v: isinstance(v, (list, tuple)) and len(v) == 3 and
                       all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v),
                       "3 ints > 0 (channels, height, width)"),
        "in_chans": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0, "an int > 0"),
        "mean": (lambda v: isinstance(v, (list, tuple)) and len(v) in (1, chans) and all(map(_number, v)),
                 f"1 or {chans} numbers (one per input channel)"),
        "std": (lambda v: isinstance(v, (list, tuple)) and len(v) in (1, chans) and all(_number(x) and x > 0 for x in v),
                f"1 or {chans} numbers > 0 (one per input channel)"),
        "crop_pct": (lambda v: _number(v) and 0 < v, "a number > 0"),
        **{key: (lambda v: isinstance(v, str), "a string")
           for key in ("interpolation", "crop_mode", "data_dir", "data", "dataset", "train_split", "val_split")},
    }
    for key, (valid, expected) in rules.items():
        value = args.get(key)
        if value is not None and not valid(value):
            raise ValueError(f"{name}: {key}: {value!r} is not {expected}, as train.py's arguments are")


@lru_cache(maxsize=None)
def train_py_model_args() -> dict:
    """{create_model kwarg: train.py argument} of train.py's own ``create_model`` call (kept in
    data/train_py_args.json, read from train.py's source by :func:`extract_model_args`); ``in_chans`` is
    train.py's rule over ``in_chans`` and ``input_size``."""
    from importlib.resources import files

    return json.loads(files("timm_dog").joinpath("data/train_py_args.json").read_text())["model_args"]


def extract_model_args(source: str) -> dict:
    """{kwarg: train.py argument} of the ``create_model(args.model, ...)`` call in a train.py source text."""
    import ast

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "create_model":
            found = {}
            for keyword in node.keywords:
                value = keyword.value
                if keyword.arg and isinstance(value, ast.Attribute) and getattr(value.value, "id", None) == "args":
                    found[keyword.arg] = value.attr
                elif keyword.arg:  # a local such as in_chans, computed from the args
                    found[keyword.arg] = keyword.arg
            return found
    raise ValueError("no create_model(...) call found")


def train_model_args(args: dict) -> dict:
    """The create_model kwargs (besides the name) that train.py built a run's model with, from its args:
    every argument of train.py's call that shapes the model, then ``model_kwargs``. None values are left out
    (timm's create_model drops them too)."""
    kwargs = {}
    for kwarg, key in train_py_model_args().items():
        if kwarg in WEIGHT_LOADING_KWARGS:
            continue
        if kwarg == "in_chans":  # train.py: --in-chans, else --input-size's first value, else 3
            size = args.get("input_size")
            value = args.get("in_chans") or (size[0] if isinstance(size, (list, tuple)) and size else 3)
        else:
            value = args.get(key)
        if value is not None:
            kwargs[kwarg] = value
    model_kwargs = args.get("model_kwargs") or {}
    if not isinstance(model_kwargs, dict):
        raise ValueError(f"model_kwargs {model_kwargs!r} is not a mapping")
    return {**kwargs, **model_kwargs}


def published_architecture(name: str) -> str:
    """The architecture of a trained ``name``: the base of a ``*_dog`` twin (its weights fit it exactly)."""
    base = base_of(name)
    return base if timm.is_model(base) else name


@dataclass
class Checkpoint:
    """What a checkpoint file holds: the weights read, train.py's args (or None), its arch and epoch."""

    state: dict
    args: Optional[dict]
    arch: Optional[str]
    epoch: Optional[int]
    has_ema: bool


def read_checkpoint(path, use_ema: bool = False) -> Checkpoint:
    """Safetensors or a train.py checkpoint, read with ``weights_only=True`` (argparse.Namespace allowed):
    nothing else is unpickled. ``use_ema`` takes ``state_dict_ema``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            if use_ema:
                raise ValueError(f"{path} is a safetensors file: it holds one set of weights, not train.py's "
                                 "state_dict_ema; --ema applies to train.py checkpoints")
            return Checkpoint(load_file(str(path)), None, None, None, False)
        with torch.serialization.safe_globals([argparse.Namespace]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except ValueError:
        raise
    except Exception as error:  # torch's and safetensors' readers fail on foreign files with any exception type
        raise ValueError(f"{path} is not a train.py checkpoint, torch file or safetensors file "
                         f"({_what_is(path, error)}); only tensors and train.py args are read") from None
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path} holds a {type(checkpoint).__name__}, not a state dict or train.py checkpoint")
    key = "state_dict_ema" if use_ema else "state_dict"
    if use_ema and key not in checkpoint:
        raise ValueError(f"{path} has no EMA weights (state_dict_ema): train.py saves them with --model-ema")
    state = checkpoint.get(key, checkpoint)
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    args = checkpoint.get("args")
    args = vars(args) if isinstance(args, argparse.Namespace) else args
    epoch = checkpoint.get("epoch") if "state_dict" in checkpoint else None
    return Checkpoint(state, args if isinstance(args, dict) else None, checkpoint.get("arch"),
                      epoch if isinstance(epoch, int) else None, "state_dict_ema" in checkpoint)


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


def check_same_run(checkpoint, own: dict, given: dict, given_name: str) -> None:
    """A ValueError naming the first key where ``given`` args (a recipe, an args.yaml) contradict the args the
    checkpoint was trained with: every key both have but the bookkeeping ones (:data:`BOOKKEEPING_ARGS`) and
    those train.py set after writing args.yaml (:data:`SET_AFTER_ARGS_YAML`); the model and its data first."""
    first = ("model", "num_classes", "model_kwargs", "in_chans", *DATA_KEYS,
             *(key for kwarg, key in train_py_model_args().items() if kwarg not in WEIGHT_LOADING_KWARGS),
             "seed", "model_ema")
    for key in dict.fromkeys((*first, *sorted(given, key=str))):
        if key in BOOKKEEPING_ARGS or (key in SET_AFTER_ARGS_YAML and key in own and key in given and
                                       SET_AFTER_ARGS_YAML[key](given[key], own[key])):
            continue
        if key in own and key in given and plain_value(own[key]) != plain_value(given[key]):
            raise ValueError(f"{given_name} says {key}: {given[key]!r} but {checkpoint} was trained with "
                             f"{key}: {own[key]!r}: give the args.yaml of the run that wrote this checkpoint")


def plain_value(value):
    """Tuples as lists, recursively (YAML gives lists where train.py's argparse and signatures give tuples)."""
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    if isinstance(value, dict):
        return {k: plain_value(v) for k, v in value.items()}
    return value


def load_checkpoint(name: str, checkpoint, use_ema: bool = False, args: Optional[dict] = None,
                    args_name: str = "--recipe"):
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
        raise ValueError(f"{checkpoint} was trained as {read.arch!r}, not {name!r}")
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
    model_args = model_args_for(architecture, train_args) if train_args is not None else \
        dict((hub_cfg or {}).get("model_args") or {})
    try:
        model = timm.create_model(architecture, **model_args)
    except TypeError as error:
        raise ValueError(f"cannot rebuild {architecture} with the run's model arguments {model_args}: {error}") \
            from None
    classifier = model.pretrained_cfg.get("classifier")
    if "num_classes" not in model_args and isinstance(classifier, str) and f"{classifier}.weight" in read.state:
        model.reset_classifier(read.state[f"{classifier}.weight"].shape[0])
    _load_strict(model, read.state, checkpoint, name)
    model.pretrained_cfg = {**model.pretrained_cfg, "num_classes": model.num_classes}
    if data_args:
        from timm.data import resolve_data_config

        model.pretrained_cfg.update(resolve_data_config({k: data_args[k] for k in DATA_KEYS if data_args.get(k)},
                                                        model=model))
        labels = data_args.get("label_names")
        if labels and len(labels) == model.num_classes:
            model.pretrained_cfg["label_names"] = list(labels)
    else:
        cfg = model.pretrained_cfg
        size = "x".join(map(str, cfg["input_size"]))
        logger.warning(f"note: {checkpoint} carries no data config (no train.py args, no args.yaml or config.json "
                       f"beside it): using {architecture}'s default preprocessing ({size}, {cfg.get('interpolation')}, "
                       f"crop {cfg.get('crop_pct')}, mean {tuple(cfg.get('mean'))})")
    weights = Weights(tensors_sha256(model.state_dict()), str(checkpoint), use_ema, read.epoch, model_args,
                      training_data(train_args))
    return model.eval(), train_args, weights


def checkpoint_args(checkpoint) -> Optional[dict]:
    """The train.py args of a checkpoint (:func:`run_args` with the args.yaml beside it); None for weights files
    with neither."""
    beside = Path(checkpoint).parent / "args.yaml"
    return run_args(beside if beside.is_file() else None, checkpoint)


def run_checkpoint(folder) -> Optional[Path]:
    """A train.py output folder's best checkpoint: model_best.pth.tar, else last.pth.tar; None without either."""
    return next((Path(folder) / n for n in ("model_best.pth.tar", "last.pth.tar") if (Path(folder) / n).is_file()),
                None)


def run_args(args_file, checkpoint=None) -> Optional[dict]:
    """A train.py run's args, one rule for report, sweep collect and eval: the checkpoint's own (train.py's
    CheckpointSaver stores them, with what train.py set after writing args.yaml, e.g. a computed lr) over
    ``args_file`` (args.yaml) for the keys only it has; a ValueError naming the key where the two contradict
    (:func:`check_same_run`). None when neither exists."""
    given = read_train_args(args_file) if args_file is not None else None
    own = _own_args(checkpoint) if checkpoint is not None else None
    if own is None:
        return given
    check_data_args(own, f"{checkpoint}'s train.py args")
    if given is not None:
        check_same_run(checkpoint, own, given, str(args_file))
    return {**(given or {}), **own}


def _own_args(checkpoint) -> Optional[dict]:
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


def train_py_data_config(args: dict, model: str) -> dict:
    """The data config train.py resolved for a run: timm's resolve_data_config over its args (--input-size before
    --img-size, …) and the model's default cfg, so ``img_size: 40`` and ``input_size: [3, 40, 40]`` are one config
    (a ValueError for args train.py could not have resolved: :func:`check_data_args`)."""
    from timm.data import resolve_data_config

    check_data_args(args, f"the train.py args of {model}")
    cfg = timm.models.get_pretrained_cfg(base_of(model))
    config = resolve_data_config({k: args.get(k) for k in (*DATA_KEYS, "in_chans")},
                                 pretrained_cfg=cfg.to_dict() if cfg else None)
    return {k: plain_value(v) for k, v in config.items()}


def training_data(args: Optional[dict]) -> dict:
    """Where train.py read a run's images when they are a folder dataset (timm reads every dataset name without a
    torch/, tfds/, hfds/, hfids/ or wds/ prefix, and torch/folder, as one): {data_dir, train_split, val_split};
    {} otherwise or unknown."""
    from .evaluate import DATASET_PREFIXES, FOLDER_DATASETS

    root = (args or {}).get("data_dir") or (args or {}).get("data")  # train.py: --data-dir, or its positional DIR
    dataset = str(args.get("dataset") or "").lower() if args else ""
    if not isinstance(root, str) or (dataset not in FOLDER_DATASETS and dataset.partition("/")[0] in DATASET_PREFIXES
                                     and "/" in dataset):
        return {}
    return {"data_dir": root, "train_split": str(args.get("train_split") or "train"),
            "val_split": str(args.get("val_split") or "validation")}


def _split_names(split: str) -> tuple:
    """The folder names timm's create_dataset tries for ``split`` (its name before any ``[…]``, then synonyms)."""
    from .evaluate import SPLIT_ALIASES

    split = split.split("[")[0]
    return tuple(dict.fromkeys((split, *next((a for a in SPLIT_ALIASES if split in a), ()))))


def train_py_folder(trained_on: dict, split: str) -> Optional[Path]:
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
    tail = root.parts[-1:] if root.is_absolute() else \
        tuple(p for p in root.parts[max((i + 1 for i, p in enumerate(root.parts) if p == ".."), default=0):] if p != ".")
    return any(folder.parts[-len(tail) - 1:] == (*tail, name) for name in _split_names(trained_on["train_split"]))


def training_images_message(folder, trained_on: dict, run) -> str:
    """Says that ``folder`` holds the training images of ``run`` and where its validation images are."""
    root, split = trained_on["data_dir"], trained_on["train_split"]
    val = train_py_folder(trained_on, trained_on["val_split"])
    if val is not None and val.resolve() == Path(folder).resolve():
        where = f"{root} has no split folders, so train.py validated on its training images too: give held-out images"
    elif val is not None:
        where = f"give its validation folder ({val})"
    else:
        where = (f"give its validation folder (train.py's val_split {trained_on['val_split']!r} of {root}: "
                 f"{' or '.join(_split_names(trained_on['val_split']))})")
    return (f"{folder} holds the training images of {run} (train.py's data_dir {root}, train_split {split!r}): "
            f"accuracy on them is not validation accuracy; {where}")


def model_args_for(architecture: str, args: dict) -> dict:
    """train.py's model arguments of a run, for rebuilding its weights as ``architecture`` (the published one):
    a twin's ``dog_*`` kwargs are left out (they shape the init only; the base architecture does not take them)."""
    return {k: v for k, v in train_model_args(args).items() if k not in DOG_KWARGS}


def _hub_config(path: Path) -> Optional[dict]:
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
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = [f"{len(missing)} missing keys (e.g. {missing[0]})"] if missing else []
        parts += [f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})"] if unexpected else []
        parts += [f"{len(shapes)} shape mismatches (e.g. {shapes[0]})"] if shapes else []
        raise ValueError(f"checkpoint {checkpoint} does not match {name}: {'; '.join(parts)}")
    model.load_state_dict(state)


def read_summary(path) -> dict:
    """train.py's ``summary.csv`` as {epoch: {column: float}}, epochs ascending, keyed by its ``epoch`` column (not
    by row count: ``--val-interval`` leaves epochs out). A resumed run (``--resume``) writes the header again and
    may repeat epochs: each header starts a new part and the last row of an epoch counts. Empty cells are left
    out of their row; a diverged run's ``nan`` stays ``nan``. A ValueError names the file and line of anything else."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            lines = list(csv.reader(f))
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not a UTF-8 CSV file as train.py writes: {error}") from None
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
    header, epochs = None, {}
    for number, line in enumerate(lines, 1):
        if not line:
            continue
        if "epoch" in line:  # train.py's header, at the start of each (resumed) run
            header = line
            continue
        if header is None:
            raise ValueError(f"{path}, line {number}: a row before the header (train.py starts with one naming 'epoch')")
        if len(line) != len(header):
            raise ValueError(f"{path}, line {number}: {len(line)} values for {len(header)} columns")
        row = dict(zip(header, line))
        try:
            epoch = int(row.pop("epoch"))
            values = {column: float(text) for column, text in row.items() if text != ""}
        except ValueError:
            raise ValueError(f"{path}, line {number}: epoch must be an int and every other value a number "
                             f"(got {', '.join(line)})") from None
        if epoch < 0:
            raise ValueError(f"{path}, line {number}: epoch {epoch} is negative")
        epochs[epoch] = values
    if not epochs:
        raise ValueError(f"{path} has no epoch rows (train.py writes one per validated epoch)")
    return dict(sorted(epochs.items()))
