"""Recipes for timm's train.py: key validation and a CPU dry run of what train.py would build."""
from __future__ import annotations

import ast
import difflib
import json
import math
import random
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


_POSITIVE_INT = (lambda v: _is_int(v) and v >= 1, "an int >= 1")
_POSITIVE = (lambda v: _is_number(v) and v > 0, "a number > 0")
_NON_NEGATIVE = (lambda v: _is_number(v) and v >= 0, "a number >= 0")
_FRACTION = (lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]")
_TEXT = (lambda v: isinstance(v, str), "a string")
# (test, what is allowed) beyond the type of train.py's default; keys whose default is None are checked
# only here (and may be left None); mean and std are checked against the input channels
VALUE_RULES = {
    **dict.fromkeys(("epochs", "batch_size", "grad_accum_steps", "lr_base_size", "validation_batch_size",
                     "num_classes", "in_chans", "img_size"), _POSITIVE_INT),
    **dict.fromkeys(("lr", "lr_base", "crop_pct", "clip_grad", "bn_eps", "opt_eps"), _POSITIVE),
    **dict.fromkeys(("weight_decay", "warmup_lr", "min_lr", "warmup_epochs", "cooldown_epochs", "decay_epochs",
                     "mixup", "cutmix", "workers", "momentum", "color_jitter"), _NON_NEGATIVE),
    **dict.fromkeys(("drop", "drop_path", "drop_block", "drop_connect", "smoothing", "reprob", "mixup_prob",
                     "mixup_switch_prob", "hflip", "vflip", "bn_momentum", "layer_decay"), _FRACTION),
    **dict.fromkeys(("aa", "gp", "data_dir", "amp_dtype", "torchcompile"), _TEXT),
    "seed": (_is_int, "an int"),
    "input_size": (_numbers(3, _POSITIVE_INT[0]), "[channels, height, width], ints >= 1"),
    "cutmix_minmax": (_numbers(2, _FRACTION[0]), "[min, max], numbers in [0, 1]"),
    "opt_betas": (lambda v: isinstance(v, list) and 1 <= len(v) <= 3 and all(map(_is_number, v)), "a list of numbers"),
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
    if problems:
        raise RecipeError(f"{path}:\n  " + "\n  ".join(problems))


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

    # the learning rate as train.py derives it, and its schedule
    accum = args.grad_accum_steps or 1
    global_batch = args.batch_size * gpus * accum
    lr = args.lr
    if lr is None:  # as train.py decides
        scale = args.lr_base_scale or ("sqrt" if any(o in args.opt.lower() for o in ("ada", "lamb")) else "linear")
        ratio = global_batch / args.lr_base_size
        lr = args.lr_base * (math.sqrt(ratio) if scale == "sqrt" else ratio)
    args.lr = lr
    optimizer = create_optimizer_v2(model, **optimizer_kwargs(cfg=args), **(args.opt_kwargs or {}))
    batches = math.ceil(train_images / (args.batch_size * gpus))
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
        "activation_gib_per_gpu": round(per_gpu / 2**30, 1),
        "train_py_args_from": source,
    }
