"""Shared fixtures for the export / predict / eval / push tests: real digits, a trained checkpoint, a staged repo."""

import argparse
import json

import pytest
import torch

DIGITS_ARGS = dict(
    model="convnext_atto_dog",
    model_kwargs={"dog_seed": 0, "dog_share": 0.7},
    num_classes=10,
    img_size=32,
    mean=[0.5, 0.5, 0.5],
    std=[0.5, 0.5, 0.5],
    interpolation="bilinear",
    crop_pct=1.0,
    epochs=2,
    lr=4e-3,
    data_dir="/private/data/digits",
    output="/private/runs",
)


@pytest.fixture(scope="session")
def digits(tmp_path_factory):
    """scikit-learn's digits as an ImageFolder: train/ and val/ (360 images) with class folders 0-9."""
    from timm_dog.demo import write_digits_imagefolder

    return write_digits_imagefolder(tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="session")
def checkpoint(digits, tmp_path_factory):
    """A train.py-style checkpoint (state_dict + argparse args) of convnext_atto_dog after 2 epochs on digits."""
    from timm_dog.demo import train_and_evaluate

    model, _, _ = train_and_evaluate("convnext_atto_dog", digits, epochs=2, dog_seed=0, dog_share=0.7)
    path = tmp_path_factory.mktemp("run") / "model_best.pth.tar"
    torch.save(
        {
            "epoch": 0,
            "arch": "convnext_atto_dog",
            "state_dict": model.state_dict(),
            "args": argparse.Namespace(**DIGITS_ARGS),
            "version": 2,
        },
        path,
    )
    return path


@pytest.fixture(scope="session")
def eval_json(checkpoint, digits, tmp_path_factory):
    from click.testing import CliRunner

    from timm_dog.cli import main

    path = tmp_path_factory.mktemp("eval") / "eval.json"
    result = CliRunner().invoke(
        main,
        ["eval", "convnext_atto_dog", "--checkpoint", str(checkpoint), "--data-dir", str(digits), "--json", str(path)],
    )
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(scope="session")
def staged(checkpoint, eval_json, digits, tmp_path_factory):
    from timm_dog.hub import stage

    folder = tmp_path_factory.mktemp("stage") / "repo"
    repo = stage(
        checkpoint,
        "convnext_atto_dog",
        folder,
        repo_id="someone/convnext-atto-dog-digits",
        eval_json=eval_json,
        verify_images=digits / "val" / "3",
        datasets=("digits",),
        fp16=True,
        log=lambda line: None,
    )
    assert json.loads((folder / "config.json").read_text())["architecture"] == "convnext_atto"
    return repo


@pytest.fixture
def read_only(tmp_path):
    """A folder in which this user cannot create files: chmod 555 for a normal user; root ignores permissions,
    so for root sysfs, where nobody can create a file."""
    import tempfile
    from pathlib import Path

    def refuses(folder):
        try:
            tempfile.NamedTemporaryFile(dir=folder).close()
        except OSError:
            return True
        return False

    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    chosen = next((f for f in (folder, Path("/sys/fs")) if f.is_dir() and refuses(f)), None)
    if chosen is None:
        folder.chmod(0o755)
        pytest.skip("no folder here refuses new files to this user")
    yield chosen
    folder.chmod(0o755)


@pytest.fixture(scope="session")
def digits_300(digits, tmp_path_factory):
    """digits with 30 training images per class (train/) and the whole validation split (val/, 360 images)."""
    import shutil

    data = tmp_path_factory.mktemp("digits-300")
    for folder in sorted((digits / "train").iterdir()):
        (data / "train" / folder.name).mkdir(parents=True)
        for image in sorted(folder.iterdir())[:30]:
            shutil.copyfile(image, data / "train" / folder.name / image.name)
    (data / "val").symlink_to(digits / "val")
    return data


@pytest.fixture(scope="session")
def train_runs(digits_300, tmp_path_factory):
    """train.py output folders of convnext_atto_dog (dog_seed = seed) and convnext_atto, seeds 0 and 1, 2 epochs on
    30 digits per class at 32 px, validated on digits/val: args.yaml (train.py's defaults overlaid, as train.py
    writes all its arguments), summary.csv (timm's update_summary) and last/model_best.pth.tar with the saver's
    keys. {(model, seed): folder}."""
    import shutil

    import yaml
    from timm.utils import update_summary

    from timm_dog.demo import train_and_evaluate
    from timm_dog.recipes import train_py_args

    root, runs, data = tmp_path_factory.mktemp("train_runs"), {}, digits_300
    train_py_defaults = train_py_args()[0]  # args.yaml holds all of train.py's arguments
    for model in ("convnext_atto_dog", "convnext_atto"):
        for seed in (0, 1):
            kwargs = {"dog_seed": seed} if model.endswith("_dog") else {}
            net, metrics, _ = train_and_evaluate(model, data, epochs=2, seed=seed, eval_each_epoch=True, **kwargs)
            folder = root / f"{model}-s{seed}"
            folder.mkdir()
            args = argparse.Namespace(
                **{
                    **train_py_defaults,
                    **DIGITS_ARGS,
                    "model": model,
                    "model_kwargs": kwargs,
                    "seed": seed,
                    "data_dir": str(data),
                    "model_ema": False,
                    "experiment": f"{model}-s{seed}",
                }
            )
            (folder / "args.yaml").write_text(yaml.safe_dump(args.__dict__, default_flow_style=False))
            for row in metrics["history"]:
                update_summary(
                    row["epoch"],
                    {"loss": row["train_loss"]},
                    row["eval"],
                    str(folder / "summary.csv"),
                    lr=row["lr"],
                    write_header=row["epoch"] == 0,
                )
            torch.save(
                {
                    "epoch": 1,
                    "arch": model,
                    "optimizer": torch.optim.AdamW(net.parameters()).state_dict(),
                    "version": 2,
                    "args": args,
                    "state_dict": net.state_dict(),
                    "metric": float(metrics["top1"]),
                },
                folder / "last.pth.tar",
            )
            shutil.copyfile(folder / "last.pth.tar", folder / "model_best.pth.tar")
            runs[model, seed] = folder
    return runs


REAL_RUN_RECIPE = [
    "--num-classes",
    "10",
    "--mean",
    "0.5",
    "0.5",
    "0.5",
    "--std",
    "0.5",
    "0.5",
    "0.5",
    "--interpolation",
    "bilinear",
    "--crop-pct",
    "1.0",
    "-b",
    "32",
    "--lr",
    "0.004",
    "--opt",
    "adamw",
    "--sched",
    "cosine",
    "--warmup-epochs",
    "0",
    "--device",
    "cpu",
    "--workers",
    "0",
    "--no-prefetcher",
    "--scale",
    "0.7",
    "1",
    "--hflip",
    "0",
    "--color-jitter",
    "0",
    "--smoothing",
    "0",
]  # digits: no flips
EMA = ["--img-size", "32", "--gp", "max", "--model-ema", "--model-ema-decay", "0.9", "--epochs", "3"]
REAL_RUNS_VERSION = "convnext-atto-2"  # the kept runs' sub-folder: change it whenever REAL_RUNS changes
# name: (model, seed, extra train.py args); each trains on 30 digits per class and validates on digits/val
REAL_RUNS = {
    "dog-s0": ("convnext_atto_dog", 0, EMA),
    "native-s0": ("convnext_atto", 0, EMA),
    "dog-s1": ("convnext_atto_dog", 1, EMA),
    "native-s2": ("convnext_atto", 2, EMA),
    "dog-s2": ("convnext_atto_dog", 2, EMA),
    "native-s1": ("convnext_atto", 1, EMA),
    "dog-s0-48px": ("convnext_atto_dog", 0, ["--img-size", "48", "--epochs", "2"]),
    "native-s0-48px": ("convnext_atto", 0, ["--img-size", "48", "--epochs", "2"]),
    # --val-interval 2 over 2 epochs (epoch 1 validated), then --resume to 3 (epoch 2): two headers, rows 1 and 2
    "dog-s3-resumed": ("convnext_atto_dog", 3, ["--img-size", "32", "--epochs", "2", "--val-interval", "2"]),
}


@pytest.fixture(scope="session")
def real_runs(digits_300, tmp_path_factory):
    """Real timm train.py runs (the script named by $TIMM_TRAIN_PY; skipped without it) on digits, CPU, a few
    epochs each: {name: output folder} for the names of REAL_RUNS. Messy on purpose: EMA (which train.py
    validates and writes into summary.csv in place of the model's own numbers), --gp max, two image sizes,
    seeds 0-2 of each arm at 32 px (subsets of them: unequal seed sets), one seed of each at 48 px,
    --val-interval 2, and a run resumed with --resume (summary.csv gets a second header).
    $TIMM_DOG_REAL_RUNS names a folder that keeps them between pytest sessions (made once, by one session at a time,
    in its sub-folder REAL_RUNS_VERSION)."""
    import fcntl
    import os
    from pathlib import Path

    train_py = os.environ.get("TIMM_TRAIN_PY")
    if not train_py or not Path(train_py).is_file():
        pytest.skip("set TIMM_TRAIN_PY to timm's train.py (from a clone of timm's repository) for real train.py runs")
    cache = os.environ.get("TIMM_DOG_REAL_RUNS")  # a folder to keep the runs in between pytest sessions
    root = Path(cache) / REAL_RUNS_VERSION if cache else tmp_path_factory.mktemp("real_runs")
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:  # one pytest session makes them; the others wait for it
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "complete").is_file():
            _make_real_runs(root, train_py, digits_300)
    return {name: root / name for name in REAL_RUNS}


def _make_real_runs(root, train_py, digits_300):
    import os
    import shutil
    import subprocess
    import sys

    data = root / "digits-300"  # beside the runs: their args.yaml names it
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(digits_300, data, symlinks=False)

    def train(model, seed, extra, name):
        command = [
            sys.executable,
            train_py,
            "--data-dir",
            str(data),
            "--model",
            model,
            "--seed",
            str(seed),
            "--output",
            str(root),
            "--experiment",
            name,
            *REAL_RUN_RECIPE,
            *extra,
        ]
        if model.endswith("_dog"):
            command += ["--model-kwargs", f"dog_seed={seed}"]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"}
        )
        assert done.returncode == 0, done.stderr[-3000:]

    for name, (model, seed, extra) in REAL_RUNS.items():
        shutil.rmtree(root / name, ignore_errors=True)
        train(model, seed, extra, name)
    model, seed, extra = REAL_RUNS["dog-s3-resumed"]
    resume = ["--epochs", "3", "--val-interval", "2", "--resume", str(root / "dog-s3-resumed" / "last.pth.tar")]
    train(model, seed, ["--img-size", "32", *resume], "dog-s3-resumed")
    (root / "complete").write_text("")


@pytest.fixture(scope="session")
def ema_train_runs(train_runs, tmp_path_factory):
    """Seed-0 runs of train_runs as train.py writes them with --model-ema: timm's ModelEmaV3 (decay 0.5, moved once
    halfway to a fresh init, so its weights differ from the model's) saved by timm's CheckpointSaver
    (state_dict_ema), and summary.csv's last epoch holding the EMA weights' eval, as train.py validates the EMA in
    place of the model. {model: folder}."""
    import shutil

    import timm
    import yaml
    from timm.utils import CheckpointSaver, ModelEmaV3, update_summary

    from timm_dog.evaluate import evaluate, open_dataset
    from timm_dog.runtime import model_classifier
    from timm_dog.trainpy.checkpoints import load_checkpoint
    from timm_dog.trainpy.runs import read_summary

    root, runs = tmp_path_factory.mktemp("ema_runs"), {}
    for model_name in ("convnext_atto_dog", "convnext_atto"):
        source = train_runs[model_name, 0]
        folder = root / f"{model_name}-ema-s0"
        folder.mkdir()
        model, args, _ = load_checkpoint(model_name, source / "last.pth.tar")
        args = argparse.Namespace(**{**args, "model_ema": True, "model_ema_decay": 0.5, "experiment": folder.name})
        torch.manual_seed(0)
        ema = ModelEmaV3(model, decay=0.5)
        ema.update(timm.create_model("convnext_atto", num_classes=10))  # the architecture of both runs
        data, info = open_dataset(args.data_dir)
        result = evaluate(model_classifier(ema.module, model_name), data, progress=False, dataset_info=info)
        (folder / "args.yaml").write_text(yaml.safe_dump(vars(args), default_flow_style=False))
        for epoch, row in read_summary(source / "summary.csv").items():
            metrics = {"loss": row["eval_loss"], "top1": row["eval_top1"], "top5": row["eval_top5"]}
            if epoch == 1:
                metrics = {"loss": result.loss, "top1": result.top1, "top5": result.top5}
            update_summary(
                epoch,
                {"loss": row["train_loss"]},
                metrics,
                str(folder / "summary.csv"),
                lr=row["lr"],
                write_header=epoch == 0,
            )
        saver = CheckpointSaver(
            model,
            torch.optim.AdamW(model.parameters()),
            args=args,
            model_ema=ema,
            checkpoint_dir=str(folder),
            recovery_dir=str(folder),
            decreasing=False,
            max_history=1,
        )
        saver.save_checkpoint(1, metric=float(result.top1))
        shutil.copyfile(source / "summary.csv", folder / "model-summary.csv")  # the model's own evals, for tests
        runs[model_name] = folder
    return runs


@pytest.fixture(scope="session")
def handwritten_runs(digits_300, tmp_path_factory):
    """train.py output folders written with timm's own pieces, for CI (which has no train.py): mobilenetv3_small_050_dog
    (dog_seed 0, --gp max) trained by a small loop on 30 digits per class, checkpoints saved by timm's CheckpointSaver
    (state_dict_ema of a ModelEmaV3, decay 0.9), summary.csv by update_summary (the EMA's eval numbers when there is
    one, as train.py writes), args.yaml and the checkpoint's args = train.py's full default args overlaid.
    {"ema": 3 epochs at 32 px with EMA, "48px": 2 epochs at 48 px without}: output folders."""
    import yaml
    from timm.data import create_dataset, create_loader
    from timm.utils import CheckpointSaver, ModelEmaV3, update_summary

    from timm_dog.evaluate import evaluate, open_dataset
    from timm_dog.recipes import train_py_args
    from timm_dog.runtime import model_classifier

    model_name, root, runs = "mobilenetv3_small_050_dog", tmp_path_factory.mktemp("handwritten_runs"), {}
    val, info = open_dataset(str(digits_300))
    for name, size, epochs, ema in (("ema", 32, 3, True), ("48px", 48, 2, False)):
        folder = root / name
        folder.mkdir()
        args = argparse.Namespace(
            **{
                **train_py_args()[0],
                **dict(
                    model=model_name,
                    model_kwargs={"dog_seed": 0},
                    num_classes=10,
                    img_size=size,
                    gp="max",
                    mean=[0.5] * 3,
                    std=[0.5] * 3,
                    interpolation="bilinear",
                    crop_pct=1.0,
                    epochs=epochs,
                    batch_size=50,
                    lr=5e-3,
                    opt="adamw",
                    seed=0,
                    model_ema=ema,
                    model_ema_decay=0.9,
                    data_dir=str(digits_300),
                    output=str(root),
                    experiment=name,
                ),
            }
        )
        (folder / "args.yaml").write_text(yaml.safe_dump(args.__dict__, default_flow_style=False))
        torch.manual_seed(0)
        model = __import__("timm").create_model(model_name, num_classes=10, global_pool="max", dog_seed=0)
        model_ema = ModelEmaV3(model, decay=0.9) if ema else None
        optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
        loader = create_loader(
            create_dataset("", root=str(digits_300), split="train", is_training=True),
            input_size=(3, size, size),
            batch_size=50,
            is_training=True,
            use_prefetcher=False,
            num_workers=0,
            mean=(0.5,) * 3,
            std=(0.5,) * 3,
            interpolation="bilinear",
        )
        saver = CheckpointSaver(
            model,
            optimizer,
            args=args,
            model_ema=model_ema,
            checkpoint_dir=str(folder),
            recovery_dir=str(folder),
            max_history=2,
        )
        for epoch in range(epochs):
            model.train()
            for images, targets in loader:
                loss = torch.nn.functional.cross_entropy(model(images), targets)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if model_ema is not None:
                    model_ema.update(model)
            validated = model_ema.module if model_ema is not None else model
            validated.pretrained_cfg = {
                **validated.pretrained_cfg,
                "input_size": (3, size, size),
                "mean": (0.5,) * 3,
                "std": (0.5,) * 3,
                "interpolation": "bilinear",
                "crop_pct": 1.0,
            }
            result = evaluate(model_classifier(validated.eval(), model_name), val, progress=False, dataset_info=info)
            metrics = {"loss": float(result.loss), "top1": float(result.top1), "top5": float(result.top5)}
            update_summary(
                epoch, {"loss": loss.item()}, metrics, str(folder / "summary.csv"), lr=5e-3, write_header=epoch == 0
            )
            saver.save_checkpoint(epoch, metric=metrics["top1"])
        runs[name] = folder
    return runs


@pytest.fixture
def cli():
    """Run `timm-dog ARGS…` in click's runner: its result (exit code, output)."""
    from click.testing import CliRunner

    from timm_dog.cli import main

    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke
