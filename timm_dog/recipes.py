"""Recipes for timm's train.py: key validation and a CPU dry run of what train.py would build."""

from __future__ import annotations

import difflib
import random
import re
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import timm
import torch
import yaml
from timm.data import Mixup, create_transform, resolve_data_config
from timm.loss import BinaryCrossEntropy, LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2, optimizer_kwargs
from timm.scheduler import create_scheduler_v2, scheduler_kwargs
from timm.utils import dispatch_clip_grad

from . import __version__
from .benchmark import train_steps
from .models import BASES, base_of
from .outputs import writing
from .preprocess import image_files, open_image, sample_photos
from .runtime import resolve_device
from .stats import runs_needed
from .trainpy.args import (
    IMAGENET_TRAIN_IMAGES,
    RecipeError,
    bad_values,
    check_schedule,
    default_train_images,
    is_int,
    train_py_args,
    train_py_model_args,
    unknown_keys,
)


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


def _lr_schedule(scheduler, epochs: int, updates_per_epoch: int) -> dict:
    points = range(epochs) if scheduler.t_in_epochs else range(epochs * updates_per_epoch)
    lrs = [scheduler._get_lr(t)[0] for t in points]
    return {
        "base": scheduler.base_values[0],
        "start": lrs[0],
        "peak": max(lrs),
        "final": lrs[-1],
        "steps": epochs * updates_per_epoch,
        "updates_per_epoch": updates_per_epoch,
        "warmup": f"{getattr(scheduler, 'warmup_t', 0)} {'epochs' if scheduler.t_in_epochs else 'updates'}",
    }


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


def check_keys_and_values(path, recipe: dict, known: dict | None = None) -> None:
    """Refuse (RecipeError listing every problem) unknown keys, values of the wrong type or range, and model
    kwargs that collide with train.py's own create_model arguments; no model is built."""
    known = known if known is not None else train_py_args()[0]
    problems = unknown_keys(recipe, known) + bad_values(recipe, known)
    model_kwargs = recipe.get("model_kwargs") if isinstance(recipe.get("model_kwargs"), dict) else {}
    problems += [
        f"model_kwargs '{k}' collides with the argument train.py passes to create_model itself"
        for k in sorted(set(model_kwargs) & set(train_py_model_args()))
    ]
    full = {**known, **recipe}
    mixing = (
        any(isinstance(full.get(k), (int, float)) and full.get(k) > 0 for k in ("mixup", "cutmix"))
        or full.get("cutmix_minmax") is not None
    )
    if mixing and is_int(full.get("batch_size")) and full["batch_size"] % 2:
        problems.append(
            f"batch_size: {full['batch_size']} is odd, but with mixup/cutmix timm's Mixup needs an even "
            "batch per GPU (train.py stops at its first step)"
        )
    if problems:
        raise RecipeError(f"{path}:\n  " + "\n  ".join(problems))


def check_static(path, recipe: dict, gpus: int = 8, train_images: int | None = None, known: dict | None = None) -> None:
    """Everything :func:`check_recipe` refuses without building the model: :func:`check_keys_and_values` and
    :func:`check_schedule` (``train_images``: default :func:`default_train_images`)."""
    known = known if known is not None else train_py_args()[0]
    check_keys_and_values(path, recipe, known)
    args = SimpleNamespace(**{**known, **{k: v for k, v in recipe.items() if k in known}})
    try:
        check_schedule(args, gpus, train_images or default_train_images(args, path))
    except RecipeError as error:
        raise RecipeError(f"{path}: {error}") from None


def check_recipe(
    path,
    steps: int = 2,
    gpus: int = 8,
    train_py=None,
    aug_samples: int = 2000,
    image_size: int = 64,
    train_images: int | None = None,
) -> dict:
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
        return _dry_run(
            args,
            model_kwargs,
            steps,
            gpus,
            aug_samples,
            image_size,
            train_images or default_train_images(args, path),
            source,
        )
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
        args.model,
        pretrained=False,
        in_chans=in_chans,
        num_classes=args.num_classes,
        drop_rate=args.drop,
        drop_path_rate=args.drop_path,
        drop_block_rate=args.drop_block,
        global_pool=args.gp,
        bn_momentum=args.bn_momentum,
        bn_eps=args.bn_eps,
        **model_kwargs,
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
    mixup = (
        Mixup(
            mixup_alpha=args.mixup,
            cutmix_alpha=args.cutmix,
            cutmix_minmax=args.cutmix_minmax,
            prob=args.mixup_prob,
            switch_prob=args.mixup_switch_prob,
            mode=args.mixup_mode,
            label_smoothing=args.smoothing,
            num_classes=model.num_classes,
        )
        if mixup_active
        else None
    )
    if mixup_active:
        loss_fn = (
            BinaryCrossEntropy(
                target_threshold=args.bce_target_thresh, sum_classes=args.bce_sum, pos_weight=args.bce_pos_weight
            )
            if args.bce_loss
            else SoftTargetCrossEntropy()
        )
    elif args.smoothing:
        loss_fn = (
            BinaryCrossEntropy(
                smoothing=args.smoothing,
                target_threshold=args.bce_target_thresh,
                sum_classes=args.bce_sum,
                pos_weight=args.bce_pos_weight,
            )
            if args.bce_loss
            else LabelSmoothingCrossEntropy(smoothing=args.smoothing)
        )
    else:
        loss_fn = torch.nn.CrossEntropyLoss()

    # the real train transform, on real photos, many times (rare augmentation paths included)
    transform = create_transform(
        input_size=(in_chans, image_size, image_size),
        is_training=True,
        no_aug=args.no_aug,
        scale=args.scale,
        ratio=args.ratio,
        hflip=args.hflip,
        vflip=args.vflip,
        color_jitter=args.color_jitter,
        auto_augment=args.aa,
        interpolation=args.train_interpolation,
        mean=data_config["mean"],
        std=data_config["std"],
        re_prob=args.reprob,
        re_mode=args.remode,
        re_count=args.recount,
    )
    photos = [open_image(path) for path in sample_photos()]
    images = []
    for i in range(max(aug_samples, 8)):
        try:
            images.append(transform(photos[i % len(photos)]))
        except Exception as error:
            raise RecipeError(
                f"the train transform failed on image {i} of {aug_samples}: "
                f"{type(error).__name__}: {error} (transform: aa={args.aa!r})"
            ) from None

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
    raise RecipeError(
        f"{name_or_path}: no such file and no shipped recipe of that name{hint}; see `timm-dog recipe list`"
    )


def header(text: str) -> list:
    """The comment lines at the top of a recipe, without their '# '."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:].removeprefix(" "))
    return lines


def cost_of(text: str) -> dict | None:
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
        rows.append(
            {
                "name": name,
                "model": recipe.get("model"),
                "dataset": path.parent.name,
                "epochs": recipe.get("epochs"),
                "cost": cost or "not stated",
                "path": path,
            }
        )
    return rows


# ---- a DoG recipe and its baseline for any twin: `timm-dog recipe new` --------------------------------------------

# The shipped ImageNet recipes' protocol (recipes/imagenet/convnext_tiny_dog.yaml): the paper's 50 epochs with
# the ConvNeXt recipe's settings, plus EMA; what is not the model's own comes from here.
PROTOCOL = {
    "epochs": 50,
    "warmup_epochs": 4,
    "warmup_lr": 1.0e-6,
    "min_lr": 1.0e-6,
    "sched": "cosine",
    "sched_on_updates": True,
    "opt": "adamw",
    "lr_base": 4.0e-3,
    "lr_base_size": 4096,
    "lr_base_scale": "linear",
    "weight_decay": 0.05,
    "batch_size": 128,
    "clip_grad": 5.0,
    "clip_mode": "norm",
    "drop_path": 0.1,
    "smoothing": 0.1,
    "mixup": 0.8,
    "cutmix": 1.0,
    "aa": "rand-m9-mstd0.5-inc1-mmax9",
    "reprob": 0.25,
    "remode": "pixel",
    "model_ema": True,
    "model_ema_decay": 0.9998,
    "model_ema_warmup": True,
    "amp": True,
    "workers": 8,
    "pin_mem": True,
    "seed": 42,
}
# the paper's DoG init (§3.3): gamma ~ U(0, 0.5) per kernel, on- or off-centre with probability 0.5, every kernel
PAPER_DOG = {"dog_gamma": [0.0, 0.5], "dog_on_ratio": 0.5, "dog_share": 1.0}
DATASETS = {
    "imagenet": {
        "num_classes": 1000,
        "images": IMAGENET_TRAIN_IMAGES,
        "data_dir": "/data/imagenet",
        "what": "ImageNet-1k (an ImageFolder with train/ and val/)",
    },
    "cifar10": {
        "num_classes": 10,
        "images": 45_000,
        "data_dir": "DIR",
        "splits": {"train_split": "train", "val_split": "validation"},
        "what": "CIFAR-10 as an ImageFolder with the 45k/5k/10k split of the shipped cifar10 recipes "
        "(DIR/train, DIR/validation, DIR/test),\nupsampled to the model's input size",
    },
}


def _image_folder(path: Path) -> dict:
    """num_classes, image count and splits of an ImageFolder PATH with train/<class>/ and val(idation)/<class>/."""
    train = path / "train"
    val = next((path / name for name in ("validation", "val") if (path / name).is_dir()), None)
    classes = sorted(p.name for p in train.iterdir() if p.is_dir()) if train.is_dir() else []
    if not classes or val is None:
        raise RecipeError(
            f"--dataset {path}: not imagenet, cifar10 or an ImageFolder with train/<class>/ and "
            f"validation/<class>/ (or val/) folders"
        )
    images = len(image_files(train))
    return {
        "num_classes": len(classes),
        "images": images,
        "data_dir": str(path.resolve()),
        "splits": {"train_split": "train", "val_split": val.name},
        "what": f"the ImageFolder {path.resolve()} ({len(classes)} classes, {images:,} training images)",
    }


def twin_base(model: str) -> str:
    """The base of the *_dog twin ``model``; a RecipeError with a did-you-mean when it is not one."""
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
        raise RecipeError(
            f"train.py cannot train {base} as is: create_model({base!r}, "
            f"{', '.join(f'{k}={v!r}' for k, v in kwargs.items())}), as train.py calls it, fails: "
            f"{error}"
        ) from None
    data_config = resolve_data_config({}, model=model)
    model.train()
    with torch.device("meta"):
        output = model(torch.zeros(2, *data_config["input_size"]))
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != (2, num_classes):
        what = f"a tensor of shape {list(output.shape)}" if isinstance(output, torch.Tensor) else type(output).__name__
        raise RecipeError(
            f"train.py cannot train {base} as is: in training mode its forward returns {what}, not "
            f"the [batch, {num_classes}] logits train.py's loss takes (a model without a classifier "
            f"head, e.g. an encoder)"
        )
    return data_config, drop_path


def new_recipes(
    model: str,
    out_dir,
    dataset: str = "imagenet",
    epochs: int = 50,
    gpus: int = 8,
    batch_size: int = 128,
    benchmark_device: str | None = None,
) -> dict:
    """{path: text} of a DoG recipe for the twin ``model`` and its native-init baseline, following the shipped
    ImageNet recipes' protocol (:data:`PROTOCOL`); nothing is written. With ``benchmark_device``, the headers'
    cost is measured there (``recipe check --benchmark``), else "not measured". Refuses (RecipeError) a name that
    is not a twin, a base train.py cannot train as is, and an ``out_dir`` that holds either file already."""
    base = twin_base(model)
    folder = dataset not in DATASETS
    data = _image_folder(Path(dataset)) if folder else DATASETS[dataset]
    config, drop_path = trainable_config(base, data["num_classes"], PROTOCOL["drop_path"])
    out = Path(out_dir)
    suffix = "" if dataset == "imagenet" else "_cifar10" if dataset == "cifar10" else f"_{Path(dataset).name}"
    paths = {name: out / f"{name}{suffix}.yaml" for name in (model, base)}
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing:
        raise RecipeError(
            f"{', '.join(existing)} exists already: recipe new never overwrites a recipe; "
            f"choose another --out or remove it"
        )
    warmup = min(round(epochs * PROTOCOL["warmup_epochs"] / PROTOCOL["epochs"]), epochs - 1)
    settings = {
        "device_modules": ["timm_dog"],
        "model": model,
        "model_kwargs": dict(PAPER_DOG),
        "num_classes": data["num_classes"],
        **({"data_dir": data["data_dir"]} if folder else {}),
        **data.get("splits", {}),
        "input_size": list(config["input_size"]),
        "interpolation": config["interpolation"],
        "mean": [float(v) for v in config["mean"]],
        "std": [float(v) for v in config["std"]],
        "crop_pct": float(config["crop_pct"]),
        **PROTOCOL,
        "epochs": epochs,
        "warmup_epochs": warmup,
        "batch_size": batch_size,
    }
    if drop_path is None:
        del settings["drop_path"]
    baseline = {k: v for k, v in settings.items() if k != "model_kwargs"}
    baseline["model"] = base
    global_batch = batch_size * gpus
    lr = PROTOCOL["lr_base"] * global_batch / PROTOCOL["lr_base_size"]
    updates = data["images"] // global_batch  # train.py's loader drops the last partial batch
    if updates == 0:
        raise RecipeError(
            f"{data['images']:,} training images make no full global batch of {global_batch}: "
            "train.py would run no training step; give a smaller --batch-size or fewer --gpus"
        )
    for name, recipe in ((model, settings), (base, baseline)):  # what recipe check refuses is never written
        try:
            check_static(paths[name], recipe, gpus, data["images"])
        except RecipeError as error:
            raise RecipeError(
                f"not written: `recipe check --gpus {gpus}` would refuse the recipe of --batch-size "
                f"{batch_size}, --gpus {gpus}, --epochs {epochs}: {error}"
            ) from None
    data_arg = "" if folder else f" --data-dir {data['data_dir']}"
    cost = _measured_cost(settings, gpus, data["images"], benchmark_device) if benchmark_device else None
    texts = {}
    for name, recipe in ((model, settings), (base, baseline)):
        path, other = paths[name], paths[base if name == model else model]
        title = (
            f"{model}: DoG init; its native-init baseline is {other.name}"
            if name == model
            else f"{base}: native init, the baseline of {other.name}"
        )
        lines = [
            f"{title}.",
            f"Generated by `timm-dog recipe new` (timm-dog {__version__}, timm {timm.__version__}); "
            "the two files differ",
            "only in `model` and the DoG `model_kwargs`.",
            *textwrap.wrap(f"Data: {data['what']}.", 110, subsequent_indent="  "),
            "",
            "Launch from a clone of timm (github.com/huggingface/pytorch-image-models), timm-dog installed:",
            f"  one GPU:     python train.py --config {path}{data_arg}",
            f"  {f'{max(gpus, 2)} GPUs:':<13}./distributed_train.sh {max(gpus, 2)} --config {path}{data_arg}",
            "  multi-node:  torchrun --nnodes 2 --nproc-per-node 8 --node-rank $NODE_RANK --rdzv-backend c10d \\",
            f"                 --rdzv-endpoint $HEAD_NODE:29500 train.py --config {path}{data_arg}",
            f"The global batch is batch_size x GPUs ({batch_size} x {gpus} = {global_batch:,}); "
            "train.py sets the lr by the",
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
            *(
                []
                if drop_path
                else [f"No drop path: {base} has no stochastic depth (its constructor refuses drop_path_rate)."]
            ),
            f"Not tuned for {base}: the lr{', drop path' if drop_path else ''} and batch are the ConvNeXt-T recipe's. "
            "channels_last and",
            "torch.compile are off (not measured for this model; try them with `recipe check --benchmark`).",
        ]
        if timm.models.model_entrypoint(base).__module__.startswith("timm_dog"):
            lines.append(f"{base} is defined by timm-dog (timm lacks it): its checkpoints need timm-dog installed.")
        head, rest = (
            {k: recipe[k] for k in ("device_modules", "model")},
            {k: v for k, v in recipe.items() if k not in ("device_modules", "model", "model_kwargs")},
        )
        body = yaml.safe_dump(head, sort_keys=False, default_flow_style=None)
        if "model_kwargs" in recipe:  # one line, so that the two files differ in two lines
            body += (
                yaml.safe_dump({"model_kwargs": recipe["model_kwargs"]}, default_flow_style=True, width=1000)[1:-2]
                + "\n"
            )
        body += yaml.safe_dump(rest, sort_keys=False, default_flow_style=None, width=120)
        texts[path] = "".join(f"# {line}".rstrip() + "\n" for line in "\n".join(lines).splitlines()) + body
    return texts


def _measured_cost(recipe: dict, gpus: int, images: int, device: str) -> str:
    """The header's cost line: ``recipe check --benchmark`` of ``recipe`` on ``device``, projected to ``gpus``."""
    result = benchmark_recipe(recipe, gpus=gpus, num_images=images, device=device)
    return (
        f"{result['projected_hours']:.3g} h on {gpus} x {result['device']} for the {result['epochs']} epochs "
        f"(measured by recipe check --benchmark: {result['images_per_second']:,.1f} img/s per device at batch "
        f"{result['batch_size']}, {result['img_size']}², AMP {result['amp']}, torch {result['torch']}; peak "
        f"{result['peak_memory_bytes'] / 2**30:.1f} GiB; training steps only)"
    )


def benchmark_recipe(
    recipe,
    gpus: int = 1,
    num_images: int | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    steps: int = 10,
    warmup: int = 2,
) -> dict:
    """Train-step throughput of a recipe's model with its batch size, AMP, memory layout and torch.compile setting,
    and the projected hours of the whole recipe on ``gpus`` such devices (linear scaling, steps only). ``recipe``:
    a recipe file, or its mapping."""
    path = None if isinstance(recipe, dict) else recipe
    recipe = recipe if path is None else load_recipe(path)
    known, _ = train_py_args()
    args = SimpleNamespace(**{**known, **{k: v for k, v in recipe.items() if k in known}})
    torch_device = resolve_device(device)
    model = timm.create_model(
        args.model,
        num_classes=args.num_classes,
        drop_rate=args.drop,
        drop_path_rate=args.drop_path,
        **(args.model_kwargs or {}),
    )
    img_size = resolve_data_config(vars(args), model=model)["input_size"][-1]
    args.lr = args.lr or args.lr_base  # the value does not change the speed
    optimizer = create_optimizer_v2(model, **optimizer_kwargs(cfg=args), **(args.opt_kwargs or {}))
    result = train_steps(
        model,
        batch_size or args.batch_size,
        img_size,
        device=torch_device,
        amp_dtype=args.amp_dtype if args.amp else None,
        channels_last=bool(args.channels_last),
        compile_backend=args.torchcompile,
        compile_mode=args.torchcompile_mode,
        optimizer=optimizer,
        smoothing=args.smoothing or 0.0,
        clip_grad=args.clip_grad,
        clip_mode=args.clip_mode,
        steps=steps,
        warmup=warmup,
    )
    epochs = args.epochs + (args.cooldown_epochs or 0)
    images = num_images or default_train_images(args, path)
    result.update(
        model=args.model,
        epochs=epochs,
        train_images=images,
        gpus=gpus,
        projected_hours=epochs * images / (result["images_per_second"] * gpus) / 3600,
    )
    return result


def write_new_recipes(texts: dict) -> list:
    """Write both files (all or none), through partial files."""
    with writing(*texts) as partials:
        for partial, text in zip(partials, texts.values()):
            partial.write_text(text, encoding="utf-8")
    return list(texts)
