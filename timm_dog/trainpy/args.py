"""timm's train.py arguments: their list and defaults (data/train_py_args.json, or parsed from a train.py source),
the one table of the values train.py accepts, the args.yaml reader, the data config train.py resolves, the model
arguments of its create_model call, and its lr rule."""

from __future__ import annotations

import ast
import difflib
import json
import math
from functools import cache
from importlib.resources import files
from pathlib import Path

import timm
import yaml
from timm.data import resolve_data_config

from ..errors import TimmDogError
from ..models import DOG_KWARGS, base_of

IMAGENET_TRAIN_IMAGES = 1_281_167

# names people reach for that train.py spells differently
ALIASES = {
    "learning_rate": "lr",
    "optimizer": "opt",
    "scheduler": "sched",
    "label_smoothing": "smoothing",
    "wd": "weight_decay",
    "drop_rate": "drop",
    "drop_path_rate": "drop_path",
    "auto_augment": "aa",
    "random_erasing": "reprob",
    "grad_clip": "clip_grad",
    "num_epochs": "epochs",
}


class RecipeError(TimmDogError):
    """A recipe train.py would choke on (or silently misread); the message lists every problem."""


# train.py arguments that describe the data the weights expect (timm.data.resolve_data_config's keys)
DATA_KEYS = ("input_size", "img_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")

# create_model kwargs of train.py's call that load weights rather than shape the model: the checkpoint replaces them
WEIGHT_LOADING_KWARGS = ("pretrained", "checkpoint_path")

# train.py arguments that say where and how a run was kept, not what was trained: runs that differ only in these
# (and in their seeds) are runs of one recipe (report's rows, sweep collect's cells)
BOOKKEEPING_ARGS = {
    "output": "where the run is written",
    "experiment": "the run folder's name",
    "config": "the YAML file train.py read its arguments from (args.yaml holds them)",
    "resume": "the checkpoint a resumed run continued from (summary.csv's epoch column says how far)",
    "log_interval": "logging only",
    "log_wandb": "logging only",
    "wandb_project": "logging only",
    "wandb_tags": "logging only",
    "wandb_resume_id": "logging only",
    "save_images": "debug images only",
    "checkpoint_hist": "how many checkpoints are kept",
    "recovery_interval": "recovery checkpoints only",
    "workers": "loader processes",
    "pin_mem": "loader memory",
    "use_multi_epochs_loader": "loader implementation",
    "dataset_download": "whether the data was downloaded",
    "device": "where it ran (numbers agree within precision)",
    "local_rank": "the process's rank",
    "device_modules": "plugins train.py imported (timm_dog)",
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
_MIXUP = (
    "mixup or cutmix on (mixup > 0, cutmix > 0 or cutmix_minmax)",
    lambda a: (a.get("mixup") or 0) > 0 or (a.get("cutmix") or 0) > 0 or a.get("cutmix_minmax") is not None,
)

INERT_UNLESS = {
    **dict.fromkeys(
        ("model_ema_decay", "model_ema_warmup", "model_ema_force_cpu"),
        ("model_ema", lambda a: bool(a.get("model_ema"))),
    ),
    **dict.fromkeys(("mixup_prob", "mixup_switch_prob", "mixup_mode", "mixup_off_epoch"), _MIXUP),
    **dict.fromkeys(
        ("bce_target_thresh", "bce_sum", "bce_pos_weight"),
        ("bce_loss without jsd_loss", lambda a: bool(a.get("bce_loss")) and not a.get("jsd_loss")),
    ),
    **dict.fromkeys(
        ("lr_base", "lr_base_size", "lr_base_scale"),
        ("lr unset (train.py scales lr_base by the global batch size)", lambda a: not a.get("lr")),
    ),
    "amp_dtype": ("amp", lambda a: bool(a.get("amp"))),
    "torchcompile_mode": ("torchcompile", lambda a: bool(a.get("torchcompile"))),
    "clip_mode": ("clip_grad", lambda a: a.get("clip_grad") is not None),
    "dist_bn": ("distributed training", lambda a: bool(a.get("distributed"))),
}


def effective_args(args: dict) -> dict:
    """``args`` (train.py's defaults filled in) without the arguments that have no effect given the others
    (:data:`INERT_UNLESS`): runs that differ only in those trained alike."""
    return {k: v for k, v in args.items() if k not in INERT_UNLESS or INERT_UNLESS[k][1](args)}


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _numbers(n: int, test=_is_number):
    return lambda value: isinstance(value, (list, tuple)) and len(value) == n and all(map(test, value))


def _pair(low_ok, what):
    """[min, max] with min <= max, each passing ``low_ok``."""
    return (lambda v: _numbers(2, low_ok)(v) and v[0] <= v[1], f"[min, max] with min <= max, {what}")


_POSITIVE_INT = (lambda v: is_int(v) and v >= 1, "an int >= 1")
_NON_NEGATIVE_INT = (lambda v: is_int(v) and v >= 0, "an int >= 0")
_POSITIVE = (lambda v: _is_number(v) and v > 0, "a number > 0")
_NON_NEGATIVE = (lambda v: _is_number(v) and v >= 0, "a number >= 0")
_FRACTION = (lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]")
_BELOW_ONE = (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)")
_TEXT = (lambda v: isinstance(v, str), "a string")

# (test, what is allowed) beyond the type of train.py's default, for every numeric key of train.py: keys whose
# default is None are checked only here (and may be left None); mean and std are checked against the input channels
VALUE_RULES = {
    **dict.fromkeys(
        (
            "epochs",
            "batch_size",
            "grad_accum_steps",
            "lr_base_size",
            "validation_batch_size",
            "num_classes",
            "in_chans",
            "img_size",
            "checkpoint_hist",
            "log_interval",
            "val_interval",
            "recount",
            "lr_cycle_limit",
            "naflex_max_seq_len",
            "kd_student_feature_dim",
            "kd_teacher_feature_dim",
            "train_num_samples",
            "val_num_samples",
            "train_batches_per_epoch",
        ),
        _POSITIVE_INT,
    ),
    **dict.fromkeys(
        (
            "warmup_epochs",
            "cooldown_epochs",
            "patience_epochs",
            "mixup_off_epoch",
            "recovery_interval",
            "tta",
            "local_rank",
            "start_epoch",
            "workers",
        ),
        _NON_NEGATIVE_INT,
    ),
    **dict.fromkeys(
        (
            "lr",
            "lr_base",
            "crop_pct",
            "clip_grad",
            "bn_eps",
            "opt_eps",
            "decay_rate",
            "lr_cycle_mul",
            "lr_k_decay",
            "kd_temperature",
            "bce_pos_weight",
            "head_init_scale",
        ),
        _POSITIVE,
    ),
    **dict.fromkeys(
        (
            "weight_decay",
            "warmup_lr",
            "min_lr",
            "decay_epochs",
            "mixup",
            "cutmix",
            "color_jitter",
            "epoch_repeats",
            "aug_repeats",
            "lr_noise_std",
            "lr_cycle_decay",
            "distill_loss_weight",
            "task_loss_weight",
            "layer_decay_min_scale",
            "layer_decay_no_opt_scale",
            "train_size_schedule_spread",
        ),
        _NON_NEGATIVE,
    ),
    **dict.fromkeys(
        (
            "reprob",
            "mixup_prob",
            "mixup_switch_prob",
            "hflip",
            "vflip",
            "bn_momentum",
            "layer_decay",
            "color_jitter_prob",
            "gaussian_blur_prob",
            "grayscale_prob",
            "bce_target_thresh",
            "lr_noise_pct",
            "train_size_random_mix",
        ),
        _FRACTION,
    ),
    **dict.fromkeys(
        ("drop", "drop_path", "drop_block", "drop_connect", "smoothing", "model_ema_decay", "momentum"), _BELOW_ONE
    ),
    **dict.fromkeys(
        (
            "aa",
            "gp",
            "data_dir",
            "data",
            "dataset",
            "train_split",
            "val_split",
            "interpolation",
            "crop_mode",
            "amp_dtype",
            "torchcompile",
        ),
        _TEXT,
    ),
    "seed": (is_int, "an int"),
    "head_init_bias": (_is_number, "a number"),
    "aug_splits": (lambda v: is_int(v) and (v == 0 or v >= 2), "0 or an int >= 2"),
    "input_size": (_numbers(3, _POSITIVE_INT[0]), "[channels, height, width], ints >= 1"),
    "cutmix_minmax": _pair(_FRACTION[0], "numbers in [0, 1]"),
    "scale": _pair(lambda v: _is_number(v) and 0 < v <= 1, "numbers in (0, 1]"),
    "ratio": _pair(_POSITIVE[0], "numbers > 0"),
    "lr_noise": (
        lambda v: _FRACTION[0](v) or (isinstance(v, list) and 1 <= len(v) <= 2 and all(map(_FRACTION[0], v))),
        "a fraction of the epochs in [0, 1], or a list of one or two",
    ),
    "opt_betas": (
        lambda v: isinstance(v, list) and 1 <= len(v) <= 3 and all(map(_BELOW_ONE[0], v)),
        "a list of 1 to 3 numbers in [0, 1)",
    ),
    "decay_milestones": (lambda v: isinstance(v, list) and all(map(_NON_NEGATIVE_INT[0], v)), "a list of ints >= 0"),
    "device_modules": (lambda v: isinstance(v, list) and all(isinstance(m, str) for m in v), "a list of module names"),
}


def _type_rule(default):
    """(test, what is allowed) from the type of a train.py default, None for a None default."""
    if isinstance(default, bool):
        return lambda v: isinstance(v, bool), "true or false"
    if isinstance(default, (int, float)):
        return _is_number, "a number"
    if isinstance(default, str):
        return _TEXT
    if isinstance(default, (list, tuple)):
        return lambda v: isinstance(v, list), "a list"
    if isinstance(default, dict):
        return lambda v: isinstance(v, dict), "a mapping"
    return None


def input_channels(args: dict) -> int:
    """The channels timm's resolve_data_config checks mean and std against: input_size's, else in_chans, else 3."""
    size, in_chans = args.get("input_size"), args.get("in_chans")
    return size[0] if VALUE_RULES["input_size"][0](size) else in_chans if _POSITIVE_INT[0](in_chans) else 3


def value_problem(key: str, value, args: dict, default=None):
    """``KEY: VALUE is not WHAT`` when train.py would refuse or misread ``value`` for ``key`` (the rule of
    :data:`VALUE_RULES`, else the type of its ``default``; mean and std: one number, or one per input channel of
    ``args``, as resolve_data_config takes them); None when it is fine."""
    if key in ("mean", "std"):
        channels = input_channels(args)
        test, what = (_is_number, "numbers") if key == "mean" else (_POSITIVE[0], "numbers > 0")
        if _numbers(channels, test)(value) or _numbers(1, test)(value):
            return None
        return f"{key}: {value!r} is not a list of {channels} {what} (one per input channel) or of 1"
    rule = VALUE_RULES.get(key) or _type_rule(default)
    if rule is None or rule[0](value):
        return None
    return f"{key}: {value!r} is not {rule[1]}"


def bad_values(recipe: dict, known: dict) -> list:
    """One message per value of a known key with the wrong type or range, naming the key."""
    problems = []
    for key, value in recipe.items():
        if key not in known or (value is None and known[key] is None):
            continue
        problem = value_problem(key, value, recipe, known[key])
        if problem:
            default = f" (train.py's default: {known[key]!r})" if known[key] is not None else ""
            problems.append(problem + ("" if key in ("mean", "std") else default))
    return problems


def unknown_keys(recipe: dict, known: dict) -> list:
    """One message per key train.py does not have (it would silently ignore them)."""
    problems = []
    for key in recipe:
        if key in known:
            continue
        guess = key.replace("-", "_") if key.replace("-", "_") in known else ALIASES.get(key.replace("-", "_"))
        guess = guess or next(iter(difflib.get_close_matches(key, known, n=1, cutoff=0.6)), None)
        hint = f" (did you mean '{guess}'?)" if guess else ""
        problems.append(f"unknown key '{key}'{hint}: train.py has no such argument and would ignore it")
    return problems


def read_train_args(path) -> dict:
    """train.py's ``args.yaml`` as a dict; a TimmDogError naming the file when it is not one."""
    try:
        args = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as error:
        raise TimmDogError(f"{path}: not a YAML file: {str(error).strip().splitlines()[0]}") from None
    except OSError as error:
        raise TimmDogError(f"cannot read {path}: {error.strerror or error}") from None
    if not isinstance(args, dict) or not isinstance(args.get("model"), str):
        raise TimmDogError(f"{path}: not train.py's args.yaml (a mapping with a 'model' name)")
    if not isinstance(args.get("model_kwargs") or {}, dict):
        raise TimmDogError(
            f"{path}: model_kwargs {args['model_kwargs']!r} is not a mapping (train.py writes "
            f"--model-kwargs KEY=VALUE … as one)"
        )
    check_data_args(args, path)
    return args


def check_data_args(args: dict, name) -> None:
    """A TimmDogError naming ``name`` and the key when a train.py argument that decides the data is not one that
    train.py accepts (a hand-edited args.yaml): :func:`value_problem` of each of them."""
    for key in (*DATA_KEYS, "in_chans", "data_dir", "data", "dataset", "train_split", "val_split"):
        value = args.get(key)
        problem = value_problem(key, value, args) if value is not None else None
        if problem:
            raise TimmDogError(f"{name}: {problem}, as train.py's arguments are")


def extract_train_args(source: str) -> dict:
    """{dest: default} of every ``add_argument`` in a train.py source text (parsed, not run)."""
    found = {}
    for node in ast.walk(ast.parse(source)):
        if not (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument"
        ):
            continue
        options = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        keywords = {k.arg: k.value for k in node.keywords}
        if "dest" in keywords:
            dest = ast.literal_eval(keywords["dest"])
        elif options:
            longs = [o for o in options if o.startswith("--")]
            dest = (longs[0] if longs else options[0]).lstrip("-").replace("-", "_")
        else:
            continue
        action = keywords.get("action")
        action = action.value if isinstance(action, ast.Constant) else None
        if "default" in keywords:
            try:
                default = ast.literal_eval(keywords["default"])
            except ValueError:  # an expression such as (3. / 4., 4. / 3.)
                default = eval(compile(ast.Expression(keywords["default"]), "<default>", "eval"), {"__builtins__": {}})
        else:
            default = {"store_true": False, "store_false": True}.get(action)
        found[dest] = default
    return found


def train_py_args(train_py: Path | None = None) -> tuple:
    """({dest: default}, where the list comes from): the user's train.py, or the list kept here."""
    if train_py is not None:
        try:
            return extract_train_args(Path(train_py).read_text()), str(train_py)
        except (OSError, SyntaxError, UnicodeDecodeError) as error:
            raise RecipeError(f"cannot read train.py's arguments from {train_py}: {error}") from None
    return dict(_kept()["args"]), _kept()["source"]


@cache
def _kept() -> dict:
    """data/train_py_args.json: train.py's arguments and its create_model call, as :func:`extract_train_args` and
    :func:`extract_model_args` read them from the train.py it names."""
    return json.loads(files("timm_dog").joinpath("data/train_py_args.json").read_text())


def train_py_model_args() -> dict:
    """{create_model kwarg: train.py argument} of train.py's own ``create_model`` call (kept in
    data/train_py_args.json, read from train.py's source by :func:`extract_model_args`); ``in_chans`` is
    train.py's rule over ``in_chans`` and ``input_size``."""
    return dict(_kept()["model_args"])


def extract_model_args(source: str) -> dict:
    """{kwarg: train.py argument} of the ``create_model(args.model, ...)`` call in a train.py source text."""
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
    raise TimmDogError("no create_model(...) call found")


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
        raise TimmDogError(f"model_kwargs {model_kwargs!r} is not a mapping")
    return {**kwargs, **model_kwargs}


def model_args_for(architecture: str, args: dict) -> dict:
    """train.py's model arguments of a run, for rebuilding its weights as ``architecture`` (the published one):
    a twin's ``dog_*`` kwargs are left out (they shape the init only; the base architecture does not take them)."""
    return {k: v for k, v in train_model_args(args).items() if k not in DOG_KWARGS}


def check_same_run(checkpoint, own: dict, given: dict, given_name: str) -> None:
    """A ValueError naming the first key where ``given`` args (a recipe, an args.yaml) contradict the args the
    checkpoint was trained with: every key both have but the bookkeeping ones (:data:`BOOKKEEPING_ARGS`) and
    those train.py set after writing args.yaml (:data:`SET_AFTER_ARGS_YAML`); the model and its data first."""
    first = (
        "model",
        "num_classes",
        "model_kwargs",
        "in_chans",
        *DATA_KEYS,
        *(key for kwarg, key in train_py_model_args().items() if kwarg not in WEIGHT_LOADING_KWARGS),
        "seed",
        "model_ema",
    )
    for key in dict.fromkeys((*first, *sorted(given, key=str))):
        if key in BOOKKEEPING_ARGS or (
            key in SET_AFTER_ARGS_YAML
            and key in own
            and key in given
            and SET_AFTER_ARGS_YAML[key](given[key], own[key])
        ):
            continue
        if key in own and key in given and plain_value(own[key]) != plain_value(given[key]):
            raise TimmDogError(
                f"{given_name} says {key}: {given[key]!r} but {checkpoint} was trained with "
                f"{key}: {own[key]!r}: give the args.yaml of the run that wrote this checkpoint"
            )


def plain_value(value):
    """Tuples as lists, recursively (YAML gives lists where train.py's argparse and signatures give tuples)."""
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    if isinstance(value, dict):
        return {k: plain_value(v) for k, v in value.items()}
    return value


def train_py_data_config(args: dict, model: str) -> dict:
    """The data config train.py resolved for a run: timm's resolve_data_config over its args (--input-size before
    --img-size, …) and the model's default cfg, so ``img_size: 40`` and ``input_size: [3, 40, 40]`` are one config
    (a ValueError for args train.py could not have resolved: :func:`check_data_args`)."""
    check_data_args(args, f"the train.py args of {model}")
    cfg = timm.models.get_pretrained_cfg(base_of(model))
    config = resolve_data_config(
        {k: args.get(k) for k in (*DATA_KEYS, "in_chans")}, pretrained_cfg=cfg.to_dict() if cfg else None
    )
    return {k: plain_value(v) for k, v in config.items()}


def is_train_py_args(args: dict) -> bool:
    """True for the arguments train.py saved (its whole argparse namespace: in a checkpoint and args.yaml), not a
    hand-made record of a few settings: they hold at least 3/4 of the names of train.py's arguments (3/4, not all:
    another timm version's train.py adds and drops a few)."""
    known = train_py_args()[0]
    return len(known.keys() & args.keys()) >= 0.75 * len(known)


def default_train_images(args, path=None) -> int:
    """Training images per epoch when not given: 45,000 (the 45k/5k split) for a CIFAR recipe (named so by its
    dataset, data_dir or file path), else ImageNet-1k's."""
    cifar = any("cifar" in str(v).lower() for v in (args.dataset, args.data_dir, path))
    return 45_000 if cifar else IMAGENET_TRAIN_IMAGES


def check_schedule(args, gpus: int, train_images: int) -> float:
    """The lr train.py derives from ``args`` (a namespace of train.py's arguments) on ``gpus`` GPUs; a RecipeError
    when it is not above min_lr (the schedule would rise) or ``train_images`` make no full batch."""
    lr, lr_from = args.lr, "the recipe's lr"
    if lr is None:  # as train.py decides
        global_batch = args.batch_size * gpus * (args.grad_accum_steps or 1)
        scale = args.lr_base_scale or ("sqrt" if any(o in args.opt.lower() for o in ("ada", "lamb")) else "linear")
        ratio = global_batch / args.lr_base_size
        lr = args.lr_base * (math.sqrt(ratio) if scale == "sqrt" else ratio)
        lr_from = f"lr_base {args.lr_base:g} scaled to the global batch {global_batch}"
    if args.sched and args.sched != "none" and args.min_lr and lr <= args.min_lr:
        raise RecipeError(
            f"lr {lr:.3g} ({lr_from}) is not above min_lr {args.min_lr:g}: the {args.sched} schedule "
            f"would not decay (it would rise); use a larger lr or batch, or a lower min_lr"
        )
    if train_images // (args.batch_size * gpus) == 0:  # train.py's loader drops the last partial batch
        raise RecipeError(
            f"{train_images:,} training images make no full batch of {args.batch_size} × "
            f"{gpus} GPU(s): train.py would run no training step (it drops the last partial batch)"
        )
    return lr
