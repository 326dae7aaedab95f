"""Recipes for timm's train.py: key validation and a CPU dry run of what train.py would build."""
from __future__ import annotations

import ast
import difflib
import json
import math
import random
import re
import textwrap
from importlib.resources import files
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import numpy as np
import timm
import torch
import yaml
from timm.data import Mixup, create_transform, resolve_data_config
from timm.loss import BinaryCrossEntropy, LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2, optimizer_kwargs
from timm.scheduler import create_scheduler_v2, scheduler_kwargs
from timm.utils import dispatch_clip_grad

from .preprocess import open_image, sample_photos

# kwargs train.py passes to create_model itself; the same key in model_kwargs is a TypeError there
TRAIN_PY_MODEL_ARGS = ("pretrained", "in_chans", "num_classes", "drop_rate", "drop_path_rate", "drop_block_rate",
                       "global_pool", "bn_momentum", "bn_eps", "scriptable", "checkpoint_path")
IMAGENET_TRAIN_IMAGES = 1_281_167
# names people reach for that train.py spells differently
ALIASES = {"learning_rate": "lr", "optimizer": "opt", "scheduler": "sched", "label_smoothing": "smoothing",
           "wd": "weight_decay", "drop_rate": "drop", "drop_path_rate": "drop_path", "auto_augment": "aa",
           "random_erasing": "reprob", "grad_clip": "clip_grad", "num_epochs": "epochs"}


class RecipeError(ValueError):
    """A recipe train.py would choke on (or silently misread); the message lists every problem."""


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _numbers(n: int, test=_is_number):
    return lambda value: isinstance(value, (list, tuple)) and len(value) == n and all(map(test, value))


def _pair(low_ok, what):
    """[min, max] with min <= max, each passing ``low_ok``."""
    return (lambda v: _numbers(2, low_ok)(v) and v[0] <= v[1], f"[min, max] with min <= max, {what}")


_POSITIVE_INT = (lambda v: _is_int(v) and v >= 1, "an int >= 1")
_NON_NEGATIVE_INT = (lambda v: _is_int(v) and v >= 0, "an int >= 0")
_POSITIVE = (lambda v: _is_number(v) and v > 0, "a number > 0")
_NON_NEGATIVE = (lambda v: _is_number(v) and v >= 0, "a number >= 0")
_FRACTION = (lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]")
_BELOW_ONE = (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)")
_TEXT = (lambda v: isinstance(v, str), "a string")
# (test, what is allowed) beyond the type of train.py's default, for every numeric key of train.py: keys whose
# default is None are checked only here (and may be left None); mean and std are checked against the input channels
VALUE_RULES = {
    **dict.fromkeys(("epochs", "batch_size", "grad_accum_steps", "lr_base_size", "validation_batch_size",
                     "num_classes", "in_chans", "img_size", "checkpoint_hist", "log_interval", "val_interval",
                     "recount", "lr_cycle_limit", "naflex_max_seq_len", "kd_student_feature_dim",
                     "kd_teacher_feature_dim", "train_num_samples", "val_num_samples", "train_batches_per_epoch"),
                    _POSITIVE_INT),
    **dict.fromkeys(("warmup_epochs", "cooldown_epochs", "patience_epochs", "mixup_off_epoch", "recovery_interval",
                     "tta", "local_rank", "start_epoch", "workers"), _NON_NEGATIVE_INT),
    **dict.fromkeys(("lr", "lr_base", "crop_pct", "clip_grad", "bn_eps", "opt_eps", "decay_rate", "lr_cycle_mul",
                     "lr_k_decay", "kd_temperature", "bce_pos_weight", "head_init_scale"), _POSITIVE),
    **dict.fromkeys(("weight_decay", "warmup_lr", "min_lr", "decay_epochs", "mixup", "cutmix", "color_jitter",
                     "epoch_repeats", "aug_repeats", "lr_noise_std", "lr_cycle_decay", "distill_loss_weight",
                     "task_loss_weight", "layer_decay_min_scale", "layer_decay_no_opt_scale",
                     "train_size_schedule_spread"), _NON_NEGATIVE),
    **dict.fromkeys(("reprob", "mixup_prob", "mixup_switch_prob", "hflip", "vflip", "bn_momentum", "layer_decay",
                     "color_jitter_prob", "gaussian_blur_prob", "grayscale_prob", "bce_target_thresh",
                     "lr_noise_pct", "train_size_random_mix"), _FRACTION),
    **dict.fromkeys(("drop", "drop_path", "drop_block", "drop_connect", "smoothing", "model_ema_decay", "momentum"),
                    _BELOW_ONE),
    **dict.fromkeys(("aa", "gp", "data_dir", "amp_dtype", "torchcompile"), _TEXT),
    "seed": (_is_int, "an int"),
    "head_init_bias": (_is_number, "a number"),
    "aug_splits": (lambda v: _is_int(v) and (v == 0 or v >= 2), "0 or an int >= 2"),
    "input_size": (_numbers(3, _POSITIVE_INT[0]), "[channels, height, width], ints >= 1"),
    "cutmix_minmax": _pair(_FRACTION[0], "numbers in [0, 1]"),
    "scale": _pair(lambda v: _is_number(v) and 0 < v <= 1, "numbers in (0, 1]"),
    "ratio": _pair(_POSITIVE[0], "numbers > 0"),
    "lr_noise": (lambda v: _FRACTION[0](v) or (isinstance(v, list) and 1 <= len(v) <= 2 and all(map(_FRACTION[0], v))),
                 "a fraction of the epochs in [0, 1], or a list of one or two"),
    "opt_betas": (lambda v: isinstance(v, list) and 1 <= len(v) <= 3 and all(map(_BELOW_ONE[0], v)),
                  "a list of 1 to 3 numbers in [0, 1)"),
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


def bad_values(recipe: dict, known: dict) -> list:
    """One message per value of a known key with the wrong type or range, naming the key."""
    problems = []
    for key, value in recipe.items():
        if key not in known or key in ("mean", "std"):
            continue
        rule = VALUE_RULES.get(key) or _type_rule(known[key])
        if rule is None or (value is None and known[key] is None) or rule[0](value):
            continue
        default = f" (train.py's default: {known[key]!r})" if known[key] is not None else ""
        problems.append(f"{key}: {value!r} is not {rule[1]}{default}")
    in_chans, input_size = recipe.get("in_chans"), recipe.get("input_size")
    channels = in_chans if _POSITIVE_INT[0](in_chans) else \
        input_size[0] if VALUE_RULES["input_size"][0](input_size) else 3
    for key, test in (("mean", _is_number), ("std", _POSITIVE[0])):
        value = recipe.get(key)
        if value is not None and not _numbers(channels, test)(value):
            what = "numbers" if key == "mean" else "numbers > 0"
            problems.append(f"{key}: {value!r} is not a list of {channels} {what} (one per input channel)")
    return problems


def extract_train_args(source: str) -> dict:
    """{dest: default} of every ``add_argument`` in a train.py source text (parsed, not run)."""
    found = {}
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_argument"):
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


def train_py_args(train_py: Optional[Path] = None) -> tuple:
    """({dest: default}, where the list comes from): the user's train.py, or the list kept here."""
    if train_py is not None:
        try:
            return extract_train_args(Path(train_py).read_text()), str(train_py)
        except (OSError, SyntaxError, UnicodeDecodeError) as error:
            raise RecipeError(f"cannot read train.py's arguments from {train_py}: {error}") from None
    kept = json.loads(files("timm_dog").joinpath("data/train_py_args.json").read_text())
    return kept["args"], kept["source"]


def load_recipe(path) -> dict:
    path = Path(path)
    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise RecipeError(f"{path}: not a UTF-8 text file (byte {error.start}); a recipe is a YAML file") from None
    except (OSError, yaml.YAMLError) as error:
        raise RecipeError(f"{path}: cannot read the recipe: {error}") from None
    if not isinstance(recipe, dict):
        raise RecipeError(f"{path}: a recipe is a YAML mapping of train.py arguments; got {type(recipe).__name__}")
    return recipe


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


def default_train_images(args, path=None) -> int:
    """Training images per epoch when not given: 45,000 (the 45k/5k split) for a CIFAR recipe (named so by its
    dataset, data_dir or file path), else ImageNet-1k's."""
    cifar = any("cifar" in str(v).lower() for v in (args.dataset, args.data_dir, path))
    return 45_000 if cifar else IMAGENET_TRAIN_IMAGES


def _lr_schedule(scheduler, epochs: int, updates_per_epoch: int) -> dict:
    points = range(epochs) if scheduler.t_in_epochs else range(epochs * updates_per_epoch)
    lrs = [scheduler._get_lr(t)[0] for t in points]
    return {"base": scheduler.base_values[0], "start": lrs[0], "peak": max(lrs), "final": lrs[-1], "steps": epochs * updates_per_epoch,
            "updates_per_epoch": updates_per_epoch,
            "warmup": f"{getattr(scheduler, 'warmup_t', 0)} {'epochs' if scheduler.t_in_epochs else 'updates'}"}


def _activation_bytes(model, size: int, full: int, batch: int, amp: bool) -> int:
    """Rough size of the activations kept for backward: leaf outputs at ``size``, scaled to ``full``."""
    total = [0]

    def hook(_module, _inputs, output):
        if isinstance(output, torch.Tensor):
            total[0] += output.numel()

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, size, size))
    finally:
        for handle in handles:
            handle.remove()
    return int(total[0] * (full / size) ** 2 * batch * (2 if amp else 4))


def check_keys_and_values(path, recipe: dict, known: Optional[dict] = None) -> None:
    """Refuse (RecipeError listing every problem) unknown keys, values of the wrong type or range, and model
    kwargs that collide with train.py's own create_model arguments; no model is built."""
    known = known if known is not None else train_py_args()[0]
    problems = unknown_keys(recipe, known) + bad_values(recipe, known)
    model_kwargs = recipe.get("model_kwargs") if isinstance(recipe.get("model_kwargs"), dict) else {}
    problems += [f"model_kwargs '{k}' collides with the argument train.py passes to create_model itself"
                 for k in sorted(set(model_kwargs) & set(TRAIN_PY_MODEL_ARGS))]
    full = {**known, **recipe}
    mixing = any(isinstance(full.get(k), (int, float)) and full.get(k) > 0 for k in ("mixup", "cutmix")) or \
        full.get("cutmix_minmax") is not None
    if mixing and _is_int(full.get("batch_size")) and full["batch_size"] % 2:
        problems.append(f"batch_size: {full['batch_size']} is odd, but with mixup/cutmix timm's Mixup needs an even "
                        "batch per GPU (train.py stops at its first step)")
    if problems:
        raise RecipeError(f"{path}:\n  " + "\n  ".join(problems))


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
        raise RecipeError(f"lr {lr:.3g} ({lr_from}) is not above min_lr {args.min_lr:g}: the {args.sched} schedule "
                          f"would not decay (it would rise); use a larger lr or batch, or a lower min_lr")
    if train_images // (args.batch_size * gpus) == 0:  # train.py's loader drops the last partial batch
        raise RecipeError(f"{train_images:,} training images make no full batch of {args.batch_size} × "
                          f"{gpus} GPU(s): train.py would run no training step (it drops the last partial batch)")
    return lr


def check_static(path, recipe: dict, gpus: int = 8, train_images: Optional[int] = None,
                 known: Optional[dict] = None) -> None:
    """Everything :func:`check_recipe` refuses without building the model: :func:`check_keys_and_values` and
    :func:`check_schedule` (``train_images``: default :func:`default_train_images`)."""
    known = known if known is not None else train_py_args()[0]
    check_keys_and_values(path, recipe, known)
    args = SimpleNamespace(**{**known, **{k: v for k, v in recipe.items() if k in known}})
    try:
        check_schedule(args, gpus, train_images or default_train_images(args, path))
    except RecipeError as error:
        raise RecipeError(f"{path}: {error}") from None


def check_recipe(path, steps: int = 2, gpus: int = 8, train_py=None, aug_samples: int = 2000,
                 image_size: int = 64, train_images: Optional[int] = None) -> dict:
    """Build what train.py would build from the recipe, run ``steps`` CPU steps; return a summary.

    Raises RecipeError listing every problem found (unknown keys, colliding model kwargs, a train
    transform that fails on real images, a non-finite loss, anything timm refuses to build).
    """
    recipe = load_recipe(path)
    known, source = train_py_args(train_py)
    check_keys_and_values(path, recipe, known)
    args = SimpleNamespace(**{**known, **{k: v for k, v in recipe.items() if k in known}})
    model_kwargs = dict(args.model_kwargs) if isinstance(args.model_kwargs, dict) else {}
    try:
        return _dry_run(args, model_kwargs, steps, gpus, aug_samples, image_size,
                        train_images or default_train_images(args, path), source)
    except RecipeError as error:
        raise RecipeError(f"{path}: {error}") from None
    except Exception as error:  # what timm itself refuses, reported as the recipe's problem
        raise RecipeError(f"{path}: {type(error).__name__}: {error}") from None


def _dry_run(args, model_kwargs, steps, gpus, aug_samples, image_size, train_images, source) -> dict:
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    if args.pretrained:
        raise RecipeError("pretrained: true would download weights; recipe check builds from scratch only")
    in_chans = args.in_chans or (args.input_size[0] if args.input_size else 3)
    model = timm.create_model(
        args.model, pretrained=False, in_chans=in_chans, num_classes=args.num_classes, drop_rate=args.drop,
        drop_path_rate=args.drop_path, drop_block_rate=args.drop_block, global_pool=args.gp,
        bn_momentum=args.bn_momentum, bn_eps=args.bn_eps, **model_kwargs,
    )
    data_config = resolve_data_config(vars(args), model=model)
    full = data_config["input_size"][-1]
    if model.pretrained_cfg.get("fixed_input_size"):  # e.g. CoaT, GC ViT: their own size is the only one that runs
        image_size = full

    # the learning rate as train.py derives it, and its schedule
    accum = args.grad_accum_steps or 1
    global_batch = args.batch_size * gpus * accum
    args.lr = check_schedule(args, gpus, train_images)
    optimizer = create_optimizer_v2(model, **optimizer_kwargs(cfg=args), **(args.opt_kwargs or {}))
    batches = train_images // (args.batch_size * gpus)  # train.py's loader drops the last partial batch
    updates_per_epoch = (batches + accum - 1) // accum
    scheduler, epochs = create_scheduler_v2(optimizer, **scheduler_kwargs(args), updates_per_epoch=updates_per_epoch)
    schedule = _lr_schedule(scheduler, epochs, updates_per_epoch)

    # mixup / cutmix and the loss, as train.py picks them
    mixup_active = args.mixup > 0 or args.cutmix > 0 or args.cutmix_minmax is not None
    mixup = Mixup(mixup_alpha=args.mixup, cutmix_alpha=args.cutmix, cutmix_minmax=args.cutmix_minmax,
                  prob=args.mixup_prob, switch_prob=args.mixup_switch_prob, mode=args.mixup_mode,
                  label_smoothing=args.smoothing, num_classes=model.num_classes) if mixup_active else None
    if mixup_active:
        loss_fn = BinaryCrossEntropy(target_threshold=args.bce_target_thresh, sum_classes=args.bce_sum,
                                     pos_weight=args.bce_pos_weight) if args.bce_loss else SoftTargetCrossEntropy()
    elif args.smoothing:
        loss_fn = BinaryCrossEntropy(smoothing=args.smoothing, target_threshold=args.bce_target_thresh,
                                     sum_classes=args.bce_sum, pos_weight=args.bce_pos_weight) \
            if args.bce_loss else LabelSmoothingCrossEntropy(smoothing=args.smoothing)
    else:
        loss_fn = torch.nn.CrossEntropyLoss()

    # the real train transform, on real photos, many times (rare augmentation paths included)
    transform = create_transform(
        input_size=(in_chans, image_size, image_size), is_training=True, no_aug=args.no_aug,
        scale=args.scale, ratio=args.ratio, hflip=args.hflip, vflip=args.vflip, color_jitter=args.color_jitter,
        auto_augment=args.aa, interpolation=args.train_interpolation, mean=data_config["mean"],
        std=data_config["std"], re_prob=args.reprob, re_mode=args.remode, re_count=args.recount,
    )
    photos = [open_image(path) for path in sample_photos()]
    images = []
    for i in range(max(aug_samples, 8)):
        try:
            images.append(transform(photos[i % len(photos)]))
        except Exception as error:
            raise RecipeError(f"the train transform failed on image {i} of {aug_samples}: "
                              f"{type(error).__name__}: {error} (transform: aa={args.aa!r})") from None

    # a few real optimizer steps on the CPU at reduced resolution
    batch = 8
    losses = []
    model.train()
    for step in range(steps):
        x = torch.stack([images[(step * batch + i) % len(images)] for i in range(batch)])  # reused when few
        y = torch.randint(0, model.num_classes or 1, (batch,))
        if mixup is not None:
            x, y = mixup(x, y)
        loss = loss_fn(model(x), y)
        if not torch.isfinite(loss):
            raise RecipeError(f"non-finite loss {loss.item()} at CPU step {step}")
        optimizer.zero_grad()
        loss.backward()
        if args.clip_grad is not None:
            dispatch_clip_grad(model.parameters(), value=args.clip_grad, mode=args.clip_mode)
        optimizer.step()
        scheduler.step_update(num_updates=step + 1)
        losses.append(round(loss.item(), 4))

    report = getattr(model, "dog_init_report", None)
    per_gpu = _activation_bytes(model, image_size, full, args.batch_size, bool(args.amp))
    return {
        "model": args.model,
        "model_kwargs": model_kwargs,
        "parameters": sum(p.numel() for p in model.parameters()),
        "dog_init": report.summary() if report is not None else "none (not a *_dog model)",
        "data_config": {k: data_config[k] for k in ("input_size", "interpolation", "crop_pct", "mean", "std")},
        "optimizer": type(optimizer).__name__,
        "lr": schedule,
        "epochs": epochs,
        "gpus": gpus,
        "global_batch": global_batch,
        "mixup": mixup_active,
        "loss": type(loss_fn).__name__,
        "transform_images": len(images),
        "cpu_steps": losses,
        "cpu_image_size": image_size,
        "activation_gib_per_gpu": round(per_gpu / 2**30, 1),
        "train_py_args_from": source,
    }


# ---- the recipes shipped with the package, by name ----------------------------------------------------------------

def shipped_dir() -> Path:
    """The shipped recipes: inside the installed package (timm_dog/data/recipes), or recipes/ in a checkout."""
    for folder in (Path(__file__).parent / "data" / "recipes", Path(__file__).parent.parent / "recipes"):
        if folder.is_dir() and any(folder.rglob("*.yaml")):
            return folder
    raise FileNotFoundError("the shipped recipes are missing from this installation (timm_dog/data/recipes)")


def shipped_recipes() -> dict:
    """{name: path} of every shipped recipe; the name is the file's stem (e.g. 'convnext_tiny_dog')."""
    return {path.stem: path for path in sorted(shipped_dir().rglob("*.yaml"))}


def resolve_recipe(name_or_path) -> Path:
    """A recipe file: ``name_or_path`` itself when it is a file, else the shipped recipe of that name."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = shipped_recipes()
    name = path.name.removesuffix(".yaml")
    if name in shipped and len(path.parts) <= 2:  # NAME, NAME.yaml or FOLDER/NAME as in `recipe list`
        return shipped[name]
    if path.exists():
        raise RecipeError(f"{path} is a folder; a recipe is a YAML file or a shipped recipe's name")
    close = difflib.get_close_matches(name, shipped, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise RecipeError(f"{name_or_path}: no such file and no shipped recipe of that name{hint}; "
                      f"see `timm-dog recipe list`")


def header(text: str) -> list:
    """The comment lines at the top of a recipe, without their '# '."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].removeprefix(" "))
    return lines


def cost_of(text: str) -> Optional[dict]:
    """A recipe header's Cost line as {"hours", "gpus", "line"} (its first "N h on one|K x DEVICE": the hours of one
    run); None when the header states no measured cost."""
    line = next((line.removeprefix("Cost:").strip() for line in header(text) if line.startswith("Cost:")), "")
    found = re.match(r"([\d.]+) h on (one|\d+) ", line)
    if not found:
        return None
    return {"hours": float(found[1]), "gpus": 1 if found[2] == "one" else int(found[2]), "line": line}


def plan_runs(path, delta: float, run_std: float) -> dict:
    """Runs per arm that detect ``delta`` points (80 % power, α 0.05; stats.runs_needed) when one run's top-1 has
    std ``run_std`` points, and the GPU-hours of that many runs of the recipe and as many of its baseline, from the
    recipe's Cost line (None when it states none)."""
    from .stats import runs_needed

    runs = runs_needed(delta, run_std)
    cost = cost_of(Path(path).read_text(encoding="utf-8"))
    gpu_hours = None if cost is None else 2 * runs * cost["hours"] * cost["gpus"]
    return {"delta": delta, "run_std": run_std, "runs_per_arm": runs, "cost": cost, "gpu_hours": gpu_hours}


def describe_shipped() -> list:
    """One row per shipped recipe: name, model, dataset (its folder), epochs, cost (its header's 'Cost:' line)."""
    rows = []
    for name, path in shipped_recipes().items():
        text = path.read_text(encoding="utf-8")
        recipe = yaml.safe_load(text)
        cost = next((line.removeprefix("Cost:").strip() for line in header(text) if line.startswith("Cost:")), "")
        rows.append({"name": name, "model": recipe.get("model"), "dataset": path.parent.name,
                     "epochs": recipe.get("epochs"), "cost": cost or "not stated", "path": path})
    return rows


# ---- a DoG recipe and its baseline for any twin: `timm-dog recipe new` --------------------------------------------

# The shipped ImageNet recipes' protocol (recipes/imagenet/convnext_tiny_dog.yaml): the paper's 50 epochs with
# the ConvNeXt recipe's settings, plus EMA; what is not the model's own comes from here.
PROTOCOL = {
    "epochs": 50, "warmup_epochs": 4, "warmup_lr": 1.0e-6, "min_lr": 1.0e-6, "sched": "cosine",
    "sched_on_updates": True, "opt": "adamw", "lr_base": 4.0e-3, "lr_base_size": 4096, "lr_base_scale": "linear",
    "weight_decay": 0.05, "batch_size": 128, "clip_grad": 5.0, "clip_mode": "norm", "drop_path": 0.1,
    "smoothing": 0.1, "mixup": 0.8, "cutmix": 1.0, "aa": "rand-m9-mstd0.5-inc1-mmax9", "reprob": 0.25,
    "remode": "pixel", "model_ema": True, "model_ema_decay": 0.9998, "model_ema_warmup": True, "amp": True,
    "workers": 8, "pin_mem": True, "seed": 42,
}
# the paper's DoG init (§3.3): gamma ~ U(0, 0.5) per kernel, on- or off-centre with probability 0.5, every kernel
PAPER_DOG = {"dog_gamma": [0.0, 0.5], "dog_on_ratio": 0.5, "dog_share": 1.0}
DATASETS = {
    "imagenet": {"num_classes": 1000, "images": IMAGENET_TRAIN_IMAGES, "data_dir": "/data/imagenet",
                 "what": "ImageNet-1k (an ImageFolder with train/ and val/)"},
    "cifar10": {"num_classes": 10, "images": 45_000, "data_dir": "DIR",
                "splits": {"train_split": "train", "val_split": "validation"},
                "what": "CIFAR-10 as an ImageFolder with the 45k/5k/10k split of the shipped cifar10 recipes "
                        "(DIR/train, DIR/validation, DIR/test),\nupsampled to the model's input size"},
}


def _image_folder(path: Path) -> dict:
    """num_classes, image count and splits of an ImageFolder PATH with train/<class>/ and val(idation)/<class>/."""
    from .preprocess import image_files

    train = path / "train"
    val = next((path / name for name in ("validation", "val") if (path / name).is_dir()), None)
    classes = sorted(p.name for p in train.iterdir() if p.is_dir()) if train.is_dir() else []
    if not classes or val is None:
        raise RecipeError(f"--dataset {path}: not imagenet, cifar10 or an ImageFolder with train/<class>/ and "
                          f"validation/<class>/ (or val/) folders")
    images = len(image_files(train))
    return {"num_classes": len(classes), "images": images, "data_dir": str(path.resolve()),
            "splits": {"train_split": "train", "val_split": val.name},
            "what": f"the ImageFolder {path.resolve()} ({len(classes)} classes, {images:,} training images)"}


def twin_base(model: str) -> str:
    """The base of the *_dog twin ``model``; a RecipeError with a did-you-mean when it is not one."""
    from .models import BASES, base_of

    twins = [base + "_dog" for base in BASES]
    if model in twins:
        return base_of(model)
    if model in BASES:
        raise RecipeError(f"{model} is a native model; give its twin {model}_dog (its baseline is written too)")
    close = difflib.get_close_matches(model, twins, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else " See `timm-dog list`."
    raise RecipeError(f"{model!r} is not a *_dog twin.{hint}")


def trainable_config(base: str, num_classes: int, drop_path: float) -> tuple:
    """(data config, drop path) of ``base`` built on the meta device as train.py builds it; drop path None when the
    model has none (its constructor refuses drop_path_rate). A RecipeError saying why when train.py cannot train it
    as is: it refuses train.py's arguments, or its training output is not the logits train.py's loss takes."""
    kwargs = dict(pretrained=False, in_chans=3, num_classes=num_classes, drop_rate=0.0)
    try:
        with torch.device("meta"):
            try:
                model = timm.create_model(base, drop_path_rate=drop_path, **kwargs)
            except TypeError as error:
                if "drop_path_rate" not in str(error):
                    raise
                model, drop_path = timm.create_model(base, **kwargs), None
    except TypeError as error:
        raise RecipeError(f"train.py cannot train {base} as is: create_model({base!r}, "
                          f"{', '.join(f'{k}={v!r}' for k, v in kwargs.items())}), as train.py calls it, fails: "
                          f"{error}") from None
    data_config = resolve_data_config({}, model=model)
    model.train()
    with torch.device("meta"):
        output = model(torch.zeros(2, *data_config["input_size"]))
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != (2, num_classes):
        what = f"a tensor of shape {list(output.shape)}" if isinstance(output, torch.Tensor) else type(output).__name__
        raise RecipeError(f"train.py cannot train {base} as is: in training mode its forward returns {what}, not "
                          f"the [batch, {num_classes}] logits train.py's loss takes (a model without a classifier "
                          f"head, e.g. an encoder)")
    return data_config, drop_path


def new_recipes(model: str, out_dir, dataset: str = "imagenet", epochs: int = 50, gpus: int = 8,
                batch_size: int = 128, benchmark_device: Optional[str] = None) -> dict:
    """{path: text} of a DoG recipe for the twin ``model`` and its native-init baseline, following the shipped
    ImageNet recipes' protocol (:data:`PROTOCOL`); nothing is written. With ``benchmark_device``, the headers'
    cost is measured there (``recipe check --benchmark``), else "not measured". Refuses (RecipeError) a name that
    is not a twin, a base train.py cannot train as is, and an ``out_dir`` that holds either file already."""
    from . import __version__

    base = twin_base(model)
    folder = dataset not in DATASETS
    data = _image_folder(Path(dataset)) if folder else DATASETS[dataset]
    config, drop_path = trainable_config(base, data["num_classes"], PROTOCOL["drop_path"])
    out = Path(out_dir)
    suffix = "" if dataset == "imagenet" else "_cifar10" if dataset == "cifar10" else f"_{Path(dataset).name}"
    paths = {name: out / f"{name}{suffix}.yaml" for name in (model, base)}
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing:
        raise RecipeError(f"{', '.join(existing)} exists already: recipe new never overwrites a recipe; "
                          f"choose another --out or remove it")
    warmup = min(round(epochs * PROTOCOL["warmup_epochs"] / PROTOCOL["epochs"]), epochs - 1)
    settings = {"device_modules": ["timm_dog"], "model": model, "model_kwargs": dict(PAPER_DOG),
                "num_classes": data["num_classes"], **({"data_dir": data["data_dir"]} if folder else {}),
                **data.get("splits", {}),
                "input_size": list(config["input_size"]), "interpolation": config["interpolation"],
                "mean": [float(v) for v in config["mean"]], "std": [float(v) for v in config["std"]],
                "crop_pct": float(config["crop_pct"]),
                **PROTOCOL, "epochs": epochs, "warmup_epochs": warmup, "batch_size": batch_size}
    if drop_path is None:
        del settings["drop_path"]
    baseline = {k: v for k, v in settings.items() if k != "model_kwargs"}
    baseline["model"] = base
    global_batch = batch_size * gpus
    lr = PROTOCOL["lr_base"] * global_batch / PROTOCOL["lr_base_size"]
    updates = data["images"] // global_batch  # train.py's loader drops the last partial batch
    if updates == 0:
        raise RecipeError(f"{data['images']:,} training images make no full global batch of {global_batch}: "
                          "train.py would run no training step; give a smaller --batch-size or fewer --gpus")
    for name, recipe in ((model, settings), (base, baseline)):  # what recipe check refuses is never written
        try:
            check_static(paths[name], recipe, gpus, data["images"])
        except RecipeError as error:
            raise RecipeError(f"not written: `recipe check --gpus {gpus}` would refuse the recipe of --batch-size "
                              f"{batch_size}, --gpus {gpus}, --epochs {epochs}: {error}") from None
    data_arg = "" if folder else f" --data-dir {data['data_dir']}"
    cost = _measured_cost(settings, gpus, data["images"], benchmark_device) if benchmark_device else None
    texts = {}
    for name, recipe in ((model, settings), (base, baseline)):
        path, other = paths[name], paths[base if name == model else model]
        title = (f"{model}: DoG init; its native-init baseline is {other.name}" if name == model else
                 f"{base}: native init, the baseline of {other.name}")
        lines = [
            f"{title}.",
            f"Generated by `timm-dog recipe new` (timm-dog {__version__}, timm {timm.__version__}); the two files differ",
            "only in `model` and the DoG `model_kwargs`.",
            *textwrap.wrap(f"Data: {data['what']}.", 110, subsequent_indent="  "),
            "",
            "Launch from a clone of timm (github.com/huggingface/pytorch-image-models), timm-dog installed:",
            f"  one GPU:     python train.py --config {path}{data_arg}",
            f"  {f'{max(gpus, 2)} GPUs:':<13}./distributed_train.sh {max(gpus, 2)} --config {path}{data_arg}",
            "  multi-node:  torchrun --nnodes 2 --nproc-per-node 8 --node-rank $NODE_RANK --rdzv-backend c10d \\",
            f"                 --rdzv-endpoint $HEAD_NODE:29500 train.py --config {path}{data_arg}",
            f"The global batch is batch_size x GPUs ({batch_size} x {gpus} = {global_batch:,}); train.py sets the lr by the",
            f"rule lr = lr_base x global batch / lr_base_size (linear) = {PROTOCOL['lr_base']:g} x {global_batch:,} / "
            f"{PROTOCOL['lr_base_size']} = {lr:.3g},",
            f"and {updates:,} updates per epoch on {data['images']:,} training images.",
            f"Before booking GPUs: timm-dog recipe check {path} --gpus {gpus}",
            f"Cost: {cost or f'not measured (measure it: timm-dog recipe check {path} --benchmark --gpus {gpus})'}",
            "",
            "Where the settings come from:",
            "- the paper (arXiv 2401.10178, §4): 50 epochs, AdamW, RandAugment, mixup, CutMix, random erasing,",
            "  gradient-norm clipping; DoG init (§3.3) gamma ~ U(0, 0.5) per kernel, on- or off-centre with",
            "  probability 0.5, on every depthwise kernel (model_kwargs);",
            "- the shipped ImageNet recipes (recipes/imagenet/convnext_tiny_dog.yaml: the ConvNeXt paper's ImageNet-1k",
            "  recipe, Liu et al. 2022, with its 20 warm-up epochs of 300 scaled to 4 of 50): lr_base 4e-3 at batch",
            "  4096 (linear), weight decay 0.05, cosine per update from 1e-6 warm-up to 1e-6, label smoothing 0.1,",
            "  mixup 0.8, CutMix 1.0, RandAugment m9 mstd0.5 inc1 capped at 9 (mmax9: Pillow >= 13), random erasing",
            "  0.25, drop path 0.1, gradient-norm clipping at 5, AMP, seed 42;",
            "- EMA of the weights (model_ema, decay 0.9998 = train.py's default, with timm's warm-up); train.py",
            "  evaluates the EMA weights too and their top-1 goes to summary.csv (report/eval with --ema);",
            f"- {base}'s own data config (timm.data.resolve_data_config): input size, interpolation, mean, std, crop;",
            f"- this command: {epochs} epochs with {warmup} of warm-up (4 of 50, scaled), batch {batch_size} per GPU",
            "  (lower it if `recipe check` shows the activations do not fit).",
            *([] if drop_path else [f"No drop path: {base} has no stochastic depth (its constructor refuses "
                                    f"drop_path_rate)."]),
            f"Not tuned for {base}: the lr{', drop path' if drop_path else ''} and batch are the ConvNeXt-T recipe's. channels_last and",
            "torch.compile are off (not measured for this model; try them with `recipe check --benchmark`).",
        ]
        if timm.models.model_entrypoint(base).__module__.startswith("timm_dog"):
            lines.append(f"{base} is defined by timm-dog (timm lacks it): its checkpoints need timm-dog installed.")
        head, rest = {k: recipe[k] for k in ("device_modules", "model")}, {k: v for k, v in recipe.items() if k not in
                                                                         ("device_modules", "model", "model_kwargs")}
        body = yaml.safe_dump(head, sort_keys=False, default_flow_style=None)
        if "model_kwargs" in recipe:  # one line, so that the two files differ in two lines
            body += yaml.safe_dump({"model_kwargs": recipe["model_kwargs"]}, default_flow_style=True, width=1000)[1:-2] + "\n"
        body += yaml.safe_dump(rest, sort_keys=False, default_flow_style=None, width=120)
        texts[path] = "".join(f"# {line}".rstrip() + "\n" for line in "\n".join(lines).splitlines()) + body
    return texts


def _measured_cost(recipe: dict, gpus: int, images: int, device: str) -> str:
    """The header's cost line: ``recipe check --benchmark`` of ``recipe`` on ``device``, projected to ``gpus``."""
    import tempfile

    from .benchmark import benchmark_recipe

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "recipe.yaml"
        path.write_text(yaml.safe_dump(recipe, sort_keys=False))
        result = benchmark_recipe(path, gpus=gpus, num_images=images, device=device)
    return (f"{result['projected_hours']:.3g} h on {gpus} x {result['device']} for the {result['epochs']} epochs "
            f"(measured by recipe check --benchmark: {result['images_per_second']:,.1f} img/s per device at batch "
            f"{result['batch_size']}, {result['img_size']}², AMP {result['amp']}, torch {result['torch']}; peak "
            f"{result['peak_memory_bytes'] / 2**30:.1f} GiB; training steps only)")


def write_new_recipes(texts: dict) -> list:
    """Write both files (all or none), through partial files."""
    from .outputs import writing

    with writing(*texts) as partials:
        for partial, text in zip(partials, texts.values()):
            partial.write_text(text, encoding="utf-8")
    return list(texts)
