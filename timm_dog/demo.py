"""The demo: train a small ``*_dog`` model and its native-init twin on scikit-learn's real digits."""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path

import numpy as np
import timm
import torch
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from timm.data import create_dataset, create_loader
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from tqdm.auto import tqdm

from .evaluate import evaluate, open_dataset
from .hub import stage
from .init import depthwise_kernels
from .models import base_of
from .outputs import write_text
from .plots import plot_kernels
from .preprocess import open_image
from .runtime import load_classifier, model_classifier, torch_classifier
from .trainpy.data import check_not_training_images, training_data

MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
# how the demo's weights were trained, for the staged card (its checkpoint's args are a record, not train.py's)
TRAINED_WITH = "the timm-dog demo's own training loop (`timm_dog/demo.py`: timm's data loader, AdamW, cosine schedule)"


def write_digits_imagefolder(root, val_fraction: float = 0.2, seed: int = 0) -> Path:
    """Write scikit-learn's 1,797 8×8 digits as PNGs in ``root/{train,val}/<digit>/``."""
    root = Path(root)
    digits = load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    train_idx, val_idx = train_test_split(
        np.arange(len(images)), test_size=val_fraction, random_state=seed, stratify=digits.target
    )
    for split, indices in (("train", train_idx), ("val", val_idx)):
        for i in indices:
            folder = root / split / str(digits.target[i])
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[i], mode="L").save(folder / f"{i:04d}.png")
    return root


def _seed_everything(seed: int):
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def data_config(img_size: int) -> dict:
    """The demo's eval preprocessing (timm data config keys); stored in the trained model's pretrained_cfg."""
    return dict(
        input_size=(3, img_size, img_size),
        mean=MEAN,
        std=STD,
        interpolation="bilinear",
        crop_pct=1.0,
        crop_mode="center",
    )


def _train_loader(data_root, img_size: int, batch_size: int):
    train = create_dataset("", root=str(data_root), split="train", is_training=True)
    config = {k: v for k, v in data_config(img_size).items() if k != "crop_mode"}
    return create_loader(
        train,
        is_training=True,
        scale=(0.7, 1.0),
        ratio=(0.9, 1.1),
        hflip=0.0,
        color_jitter=None,
        batch_size=batch_size,
        use_prefetcher=False,
        num_workers=0,
        **config,
    )


def train_and_evaluate(
    model_name: str,
    data_root,
    epochs: int = 8,
    img_size: int = 32,
    batch_size: int = 64,
    lr: float = 4e-3,
    seed: int = 0,
    eval_each_epoch: bool = False,
    **model_kwargs,
):
    """Train ``model_name`` from scratch with timm's data, optimizer and scheduler; return (model, metrics, kernels
    before training). ``metrics["history"]`` has each epoch's mean train loss and, when validated then (the last
    epoch always, every epoch with ``eval_each_epoch``), its validation loss, top-1 and top-5."""
    _seed_everything(seed)
    model = timm.create_model(model_name, num_classes=10, **model_kwargs)
    model.pretrained_cfg = {**model.pretrained_cfg, **data_config(img_size), "num_classes": 10}
    before = depthwise_kernels(model)
    _seed_everything(seed + 1)  # same data order and augmentation for every model
    train_loader = _train_loader(data_root, img_size, batch_size)
    optimizer = create_optimizer_v2(model, "adamw", lr=lr, weight_decay=0.05)
    scheduler, _ = create_scheduler_v2(
        optimizer, "cosine", num_epochs=epochs, warmup_epochs=1, warmup_lr=lr / 10, updates_per_epoch=len(train_loader)
    )
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    start, step = time.perf_counter(), 0
    bar = tqdm(total=epochs * len(train_loader), desc=model_name, unit="step", leave=True)
    history = []
    for epoch in range(epochs):
        model.train()
        losses = []
        for images, targets in train_loader:
            loss = loss_fn(model(images), targets)
            losses.append(loss.item())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            scheduler.step_update(step)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
            bar.update()
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "lr": optimizer.param_groups[0]["lr"]})
        scheduler.step(epoch + 1)
        if eval_each_epoch or epoch == epochs - 1:
            data, info = open_dataset(str(data_root))
            report = evaluate(model_classifier(model, model_name), data, progress=False, dataset_info=info)
            history[-1]["eval"] = {"loss": report.loss, "top1": report.top1, "top5": report.top5}
    bar.close()
    metrics = {"top1": report.top1, "loss": report.loss, "images": report.num_images, "history": history}
    metrics.update(
        model=model_name,
        epochs=epochs,
        img_size=img_size,
        seconds=round(time.perf_counter() - start, 1),
        params=sum(p.numel() for p in model.parameters()),
    )
    return model, metrics, before


def run_demo(
    out_dir, model_name: str = "convnext_atto_dog", epochs: int = 8, img_size: int = 32, seed: int = 0, echo=print
) -> dict:
    """Digits ImageFolder → train the DoG model and its baseline → figures → eval, ONNX export verified,
    a staged Hub folder, and predictions from its ONNX file; all in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data_root = write_digits_imagefolder(out / "digits", seed=seed)
    echo(f"wrote scikit-learn digits as an ImageFolder: {data_root}")
    results, trained = [], {}
    for name in (model_name, base_of(model_name)):
        kwargs = {"dog_seed": seed} if name != base_of(name) else {}
        model, metrics, before = train_and_evaluate(name, data_root, epochs, img_size, seed=seed, **kwargs)
        trained[name] = model
        after = depthwise_kernels(model)
        size = max(before, key=lambda s: len(before[s]))  # the most common kernel size
        for label, kernels in (("before", before[size]), ("after", after[size])):
            path = plot_kernels(
                kernels[:40],
                out / f"kernels_{name}_{label}.png",
                title=f"{name}: 40 depthwise {size[0]}x{size[1]} kernels {label} training",
            )
            metrics[f"kernels_{label}"] = path.name
        results.append(metrics)
    summary = {"dataset": "sklearn digits (1,797 real 8x8 images), 80/20 split", "seed": seed, "runs": results}
    summary["ship"] = ship(out, trained[model_name], model_name, data_root, img_size, epochs, seed, echo)
    write_text(out / "summary.json", json.dumps(summary, indent=2))
    return summary


def ship(out: Path, model, model_name: str, data_root: Path, img_size: int, epochs: int, seed: int, echo) -> dict:
    """The publishing path on the trained DoG model: checkpoint → eval JSON → staged Hub folder (ONNX exported and
    verified, fp32 + int8) → predictions from that folder's ONNX file, with onnxruntime alone."""
    checkpoint = out / "checkpoint" / "model_best.pth.tar"
    checkpoint.parent.mkdir(exist_ok=True)
    args = argparse.Namespace(
        model=model_name,
        model_kwargs={"dog_seed": seed},
        num_classes=10,
        img_size=img_size,
        mean=MEAN,
        std=STD,
        interpolation="bilinear",
        crop_pct=1.0,
        epochs=epochs,
        lr=4e-3,
        opt="adamw",
        weight_decay=0.05,
        sched="cosine",
        warmup_epochs=1,
        smoothing=0.1,
        batch_size=64,
        seed=seed,
        data_dir=str(data_root.resolve()),
        train_split="train",
        val_split="val",
    )
    torch.save({"epoch": epochs - 1, "arch": model_name, "state_dict": model.state_dict(), "args": args}, checkpoint)
    data, info = open_dataset(str(data_root))
    check_not_training_images(info.get("folder"), training_data(vars(args)), checkpoint)
    report = evaluate(torch_classifier(model_name, str(checkpoint)), data, progress=False, dataset_info=info)
    write_text(out / "eval.json", json.dumps(report.to_dict(), indent=2))
    echo(
        f"eval {model_name} checkpoint: top-1 {report.top1:.2f} %, top-5 {report.top5:.2f} % on "
        f"{report.num_images} images -> {out / 'eval.json'}"
    )
    repo = out / "hub" / f"{model_name.replace('_', '-')}-digits"
    if repo.exists():
        shutil.rmtree(repo)
    staged = stage(
        checkpoint,
        model_name,
        repo,
        repo_id=f"timm-dog/{repo.name}",
        eval_json=out / "eval.json",
        int8_calibration=str(data_root / "train"),
        verify_images=str(data_root / "val"),
        datasets=("digits",),
        trained_with=TRAINED_WITH,
        log=echo,
    )
    echo(f"staged Hub repository {staged.folder}:\n{staged.listing()}")
    onnx = load_classifier(str(staged.folder / "onnx" / "model.onnx"))
    images = [sorted((data_root / "val" / str(d)).iterdir())[0] for d in (0, 3, 7)]
    ranked = onnx.top_k(onnx.run(np.stack([onnx.preprocess(open_image(p)) for p in images])), 1)
    predictions = {
        str(p.relative_to(data_root)): {"label": r[0][0], "probability": r[0][1]} for p, r in zip(images, ranked)
    }
    echo(
        f"predict with {onnx.backend}: "
        + ", ".join(f"{k} -> {v['label']} ({v['probability']:.0%})" for k, v in predictions.items())
    )
    return {
        "checkpoint": str(checkpoint),
        "eval": report.to_dict(),
        "hub_folder": str(staged.folder),
        "files": staged.files,
        "predictions": predictions,
    }
