"""Only the init differs (DESIGN.md §6, issue 23): a *_dog twin leaves torch's global generator exactly as its base
model leaves it, so a DoG run and its native run with the same --seed see the same batches, augmentation and
drop-path; without dog_seed its kernels are still random per global seed and reproducible for the same one."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from torch import nn

from timm_dog import dog_init_
from timm_dog.init import depthwise_kernels

MOBILE = "mobilenetv3_small_050"
CASES = [
    (MOBILE, {}),
    *[(MOBILE, {"dog_pattern": p}) for p in ("gaussian", "impulse", "box")],
    (MOBILE, {"dog_share": 0.5}),
    (MOBILE, {"dog_share": 0.0}),
    (MOBILE, {"dog_share": 0.5, "dog_trainable": False}),
    (MOBILE, {"dog_scale": "match", "dog_pattern": "box", "dog_gamma": 0.3}),
    ("convnext_atto", {}),
    ("convnext_atto", {"dog_share": 0.3, "dog_pattern": "impulse", "dog_trainable": "false"}),
    ("convmixer_512", {"dog_share": 0.7}),
]


@pytest.mark.parametrize("base,kwargs", CASES, ids=[f"{b}-{k}" for b, k in CASES])
def test_a_twin_leaves_the_global_generator_as_its_base_model_leaves_it(base, kwargs):
    after = []
    for name, extra in ((base, {}), (base + "_dog", kwargs)):
        torch.manual_seed(0)
        model = timm.create_model(name, num_classes=10, **extra)
        after.append((torch.random.get_rng_state(), torch.rand(1).item()))
    assert model.dog_init_report.kernels_set == sum(
        round(kwargs.get("dog_share", 1.0) * layer.kernels) for layer in model.dog_init_report.layers
    )
    (native_state, native_next), (twin_state, twin_next) = after
    assert twin_next == native_next and torch.equal(twin_state, native_state)


def test_without_dog_seed_the_twin_is_random_per_global_seed_and_reproducible():
    def kernels(seed, **kwargs):
        torch.manual_seed(seed)
        return depthwise_kernels(timm.create_model("convnext_atto_dog", **kwargs))[(7, 7)]

    assert torch.equal(kernels(0), kernels(0))
    assert not torch.equal(kernels(0), kernels(1))
    assert torch.equal(kernels(0, dog_seed=5), kernels(1, dog_seed=5))  # dog_seed keeps its meaning


def test_dog_init_without_seed_reads_the_global_generator_and_says_the_seed(caplog):
    def conv():
        layer = nn.Conv2d(32, 32, 5, groups=32)
        nn.init.zeros_(layer.weight)
        return layer

    a, b, c = conv(), conv(), conv()
    torch.manual_seed(3)
    before = torch.random.get_rng_state()
    report = dog_init_(nn.Sequential(a), share=0.5)
    assert torch.equal(torch.random.get_rng_state(), before)  # read, not advanced
    dog_init_(nn.Sequential(b), share=0.5, seed=report.seed)  # the seed it used redraws the same kernels
    assert torch.equal(a.weight, b.weight) and report.kernels_set == 16
    torch.manual_seed(4)
    dog_init_(nn.Sequential(c), share=0.5)
    assert not torch.equal(a.weight, c.weight)
    with caplog.at_level(logging.INFO, logger="timm_dog"):
        torch.manual_seed(3)
        model = timm.create_model("convnext_atto_dog", num_classes=10)
    assert f"seed {model.dog_init_report.seed} (from torch's global generator)" in caplog.text


@pytest.fixture(scope="module")
def tiny_digits(digits, tmp_path_factory):
    """digits with 10 training and 5 validation images per class."""
    import shutil

    data = tmp_path_factory.mktemp("tiny-digits")
    for split, count in (("train", 10), ("val", 5)):
        for folder in sorted((digits / split).iterdir()):
            (data / split / folder.name).mkdir(parents=True)
            for image in sorted(folder.iterdir())[:count]:
                shutil.copyfile(image, data / split / folder.name / image.name)
    return data


@pytest.mark.slow
def test_train_py_native_and_twin_runs_with_one_seed_see_the_same_batches(tiny_digits, tmp_path):
    """Real train.py ($TIMM_TRAIN_PY), 1 epoch at 32 px: tests/batch_hashes.py logs every training batch the model
    sees. The twin without dog_seed (as the shipped recipes and sweeps run it) sees the native run's batches; the
    twin with dog_share 0 holds the native weights and so writes the native run's summary.csv, number for number."""
    from conftest import REAL_RUN_RECIPE

    train_py = os.environ.get("TIMM_TRAIN_PY")
    if not train_py or not Path(train_py).is_file():
        pytest.skip("set TIMM_TRAIN_PY to timm's train.py (from a clone of timm's repository) for real train.py runs")
    tests = str(Path(__file__).parent)
    runs = {
        "native": ("convnext_atto", []),
        "dog": ("convnext_atto_dog", []),
        "share0": ("convnext_atto_dog", ["--model-kwargs", "dog_share=0"]),
    }
    for name, (model, extra) in runs.items():
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "BATCH_HASHES": str(tmp_path / f"{name}.batches"),
            "PYTHONPATH": os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH")) if p),
        }
        command = [
            sys.executable,
            train_py,
            "--data-dir",
            str(tiny_digits),
            "--model",
            model,
            "--seed",
            "3",
            "--output",
            str(tmp_path),
            "--experiment",
            name,
            *REAL_RUN_RECIPE,
            "-b",
            "25",
            "--img-size",
            "32",
            "--epochs",
            "1",
            "--device-modules",
            "batch_hashes",
            *extra,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
    batches = {name: (tmp_path / f"{name}.batches").read_text().splitlines() for name in runs}
    assert len(batches["native"]) == 4 and len(set(batches["native"])) == 4
    assert batches["dog"] == batches["native"] and batches["share0"] == batches["native"]
    summary = {name: (tmp_path / name / "summary.csv").read_text() for name in runs}
    assert summary["share0"] == summary["native"] and summary["dog"] != summary["native"]
