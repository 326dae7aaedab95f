"""The judging path on real train.py runs ($TIMM_TRAIN_PY; skipped without it): every number equals what
train.py measured on the same weights, and says what it was measured on."""

import csv
import json

import pytest
from click.testing import CliRunner

from timm_dog.cli import main


def _last_row(folder) -> dict:
    with open(folder / "summary.csv", newline="") as f:
        rows = [row for row in csv.DictReader(f) if row.get("epoch") != "epoch"]
    return rows[-1]


def _eval(tmp_path, run, *extra):
    out = tmp_path / f"{run.name}.json"
    result = CliRunner().invoke(
        main,
        [
            "eval",
            _model(run),
            "--checkpoint",
            str(run / "last.pth.tar"),
            "--data-dir",
            _data(run),
            "--json",
            str(out),
            "--workers",
            "0",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def _model(run) -> str:
    import yaml

    return yaml.safe_load((run / "args.yaml").read_text())["model"]


def _data(run) -> str:
    import yaml

    return yaml.safe_load((run / "args.yaml").read_text())["data_dir"]


@pytest.mark.parametrize("name, ema", [("dog-s0", True), ("native-s0", True), ("dog-s0-48px", False)])
def test_eval_of_a_train_py_checkpoint_equals_train_py_own_eval(real_runs, tmp_path, name, ema):
    """train.py's last eval_top1 (the EMA weights' when it trains with --model-ema) is what `timm-dog eval` gives for
    the same weights: --gp max and the image size are rebuilt from the run's args, to 0.01 points."""
    run = real_runs[name]
    report = _eval(tmp_path, run, *(["--ema"] if ema else []))
    assert report["top1"] == pytest.approx(float(_last_row(run)["eval_top1"]), abs=0.01)
    assert report["weights"]["ema"] is ema and report["weights"]["epoch"] == int(_last_row(run)["epoch"])
    assert report["input_size"] == [3, 48, 48] if "48px" in name else [3, 32, 32]
    if name != "dog-s0-48px":
        assert report["weights"]["model_args"]["global_pool"] == "max"


def test_ema_and_plain_weights_have_different_fingerprints(real_runs, tmp_path):
    run = real_runs["dog-s0"]
    ema, plain = _eval(tmp_path, run, "--ema"), _eval(tmp_path / "..", run)
    assert ema["weights_sha256"] != plain["weights_sha256"] and not plain["weights"]["ema"]
