from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from timm_dog.cli import main
from timm_dog.recipes import RecipeError, check_recipe
from timm_dog.sweep import DEFAULT_GRID, collect, parse_grid, write_results, write_sweep

ROOT = Path(__file__).parents[1]
CIFAR = ROOT / "recipes" / "cifar10" / "mobilenetv2_100_dog.yaml"
# Real outputs of timm's train.py (args.yaml + summary.csv), recorded from a 2x2 sweep of CIFAR
# recipe points trained 3 epochs on the demo's digits ImageFolder on the CPU.
RECORDED = Path(__file__).parent / "data" / "sweep_runs"


def test_default_grid_is_the_cifar_study(tmp_path):
    paths = write_sweep(CIFAR, DEFAULT_GRID, tmp_path)
    assert len(paths) == 7 * 5 + 1
    point = yaml.safe_load((tmp_path / "mobilenetv2_100_dog-gamma0.3-share0.45.yaml").read_text())
    assert point["model_kwargs"] == {"dog_gamma": 0.3, "dog_share": 0.45}
    assert point["experiment"] == "mobilenetv2_100_dog-gamma0.3-share0.45"
    baseline = yaml.safe_load((tmp_path / "mobilenetv2_100_dog-baseline.yaml").read_text())
    assert baseline["model"] == "mobilenetv2_100" and "model_kwargs" not in baseline
    base = yaml.safe_load(CIFAR.read_text())
    assert {k: v for k, v in point.items() if k not in ("model_kwargs", "experiment")} == \
           {k: v for k, v in base.items() if k != "model_kwargs"}


def test_a_generated_point_passes_recipe_check(tmp_path):
    paths = write_sweep(CIFAR, parse_grid(["dog_gamma=0.7", "dog_on_ratio=1.0"]), tmp_path)
    summary = check_recipe(paths[0], steps=1, aug_samples=8)
    assert summary["model_kwargs"] == {"dog_gamma": 0.7, "dog_share": 0.7, "dog_on_ratio": 1.0}


@pytest.mark.parametrize("spec,match", [
    ("gamma=0.1", "KEY=V1"), ("dog_gamma", "KEY=V1"), ("dog_share=[", "values"),
    ("dog_gamma=abc", r"grid value dog_gamma='abc': gamma .* must be a number with 0 <= gamma < 1"),
    ("dog_gamma=0.1,1.0", r"grid value dog_gamma=1.0: gamma"),
    ("dog_share=1.5", r"grid value dog_share=1.5: share must be a number in \[0, 1\]"),
    ("dog_share=true", "share must be a number"),
    ("dog_on_ratio=-0.1", "on_ratio must be a number"),
    ("dog_scale=big", "scale must be 'paper', 'match' or a positive number"),
    ("dog_scale=0", "positive finite"),
    ("dog_seed=2.5", "seed must be None or an int"),
    ("dog_seed=18446744073709551616", "seed must be None or an int in"),
    ("dog_share=", "empty value"),
    ("dog_share=0.3,,0.5", "empty value"),
    ("dog_seed=1, ", "empty value"),
    ("dog_share=0.3,0.5,0.3", "the value 0.3 is given twice"),
    ("dog_share=0.3,0.30", "the value 0.3 is given twice"),
])
def test_bad_grid(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_grid([spec])


def test_grid_key_twice_and_exponent_values():
    with pytest.raises(ValueError, match="dog_share is given twice"):
        parse_grid(["dog_share=0.3", "dog_share=0.5"])
    assert parse_grid(["dog_share=1e-1,0.5", "dog_scale=paper,2"]) == {"dog_share": [0.1, 0.5], "dog_scale": ["paper", 2]}


def test_write_sweep_checks_the_grid_and_the_base_before_writing(tmp_path):
    with pytest.raises(ValueError, match="grid value dog_share=2"):
        write_sweep(CIFAR, {"dog_share": [0.5, 2]}, tmp_path / "a")
    with pytest.raises(ValueError, match="the value 0.5 is given twice"):
        write_sweep(CIFAR, {"dog_share": [0.5, 0.5]}, tmp_path / "a")
    base = yaml.safe_load(CIFAR.read_text())
    bad = tmp_path / "bad_dog.yaml"
    bad.write_text(yaml.safe_dump({**base, "model_kwargs": {"dog_scale": "huge"}}))
    with pytest.raises(RecipeError, match="bad_dog.yaml: model_kwargs: scale must be"):
        write_sweep(bad, {"dog_share": [0.5]}, tmp_path / "a")
    bad.write_text(yaml.safe_dump({**base, "lr": "fast"}))  # the base's own values, as recipe check sees them
    with pytest.raises(RecipeError, match="bad_dog.yaml:\n  lr: 'fast' is not a number > 0"):
        write_sweep(bad, {"dog_share": [0.5]}, tmp_path / "a")
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("grid", [["dog_gamma=abc"], ["dog_share=0.3,0.3"], ["dog_share=0.3", "dog_gamma=0.1,"]])
def test_cli_sweep_bad_grid_writes_nothing(tmp_path, grid):
    args = ["sweep", str(CIFAR), "--out", str(tmp_path / "out")]
    for spec in grid:
        args += ["--grid", spec]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "grid" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_base_must_be_a_dog_recipe(tmp_path):
    result = CliRunner().invoke(main, ["sweep", str(ROOT / "recipes" / "cifar10" / "mobilenetv2_100.yaml"),
                                       "--out", str(tmp_path)])
    assert result.exit_code == 2 and "must train a *_dog model" in result.output


def test_cli_sweep_prints_commands(tmp_path):
    result = CliRunner().invoke(main, ["sweep", str(CIFAR), "--grid", "dog_share=0.3,0.9", "--out", str(tmp_path),
                                       "--print-commands", "--gpus", "8"])
    assert result.exit_code == 0, result.output
    assert "wrote 3 recipes" in result.output
    assert f"./distributed_train.sh 8 --config {tmp_path}/mobilenetv2_100_dog-share0.3.yaml" in result.output


def test_collect_recorded_train_py_runs(tmp_path):
    runs = collect([RECORDED])
    assert len(runs) == 5 and runs[-1]["baseline"] and runs[-1]["model"] == "mobilenetv2_100"
    cell = next(r for r in runs if r.get("dog_gamma") == 0.5 and r.get("dog_share") == 0.9)
    assert cell["epochs"] == 3 and cell["best_epoch"] == 1 and cell["best_top1"] == 21.39
    assert cell["final_top1"] == 21.11
    paths = write_results(runs, tmp_path)
    table = paths["markdown"].read_text()
    assert "| mobilenetv2_100_dog-gamma0.5-share0.9 | mobilenetv2_100_dog | 0.5 | 0.9 | 3 | 21.39 | 1 | 21.11 |" in table
    assert Image.open(paths["heatmap"]).size[0] > 300
    assert paths["csv"].read_text().count("\n") == 6


def test_cli_collect(tmp_path):
    result = CliRunner().invoke(main, ["sweep", "collect", str(RECORDED), "--out", str(tmp_path)])
    assert result.exit_code == 0 and "heatmap.png" in result.output
    result = CliRunner().invoke(main, ["sweep", "collect", str(tmp_path)])
    assert result.exit_code == 1 and "no summary.csv" in result.output


def _copy_run(tmp_path, summary: bytes) -> Path:
    run = tmp_path / "runs" / "one"
    run.mkdir(parents=True)
    source = next(RECORDED.glob("*/args.yaml"))
    (run / "args.yaml").write_text(source.read_text())
    (run / "summary.csv").write_bytes(summary)
    return run / "summary.csv"


@pytest.mark.parametrize("summary,match", [
    (b"epoch,eval_top1\n0,12.5\n1,twelve\n", r"summary.csv, line 3: epoch '1' must be an int and eval_top1 'twelve' a finite"),
    (b"epoch,eval_top1\n0,nan\n", r"summary.csv, line 2: .*eval_top1 'nan' a finite number"),
    (b"epoch,eval_top1\nfirst,12.5\n", r"summary.csv, line 2: epoch 'first' must be an int"),
    (b"eval_top1\n12.5\n", r"summary.csv, line 2: epoch None must be an int"),
    (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", r"summary.csv: not a UTF-8 CSV file"),
])
def test_collect_names_the_file_and_line(tmp_path, summary, match):
    path = _copy_run(tmp_path, summary)
    with pytest.raises(ValueError, match=match) as error:
        collect([tmp_path / "runs"])
    assert str(path) in str(error.value)
    result = CliRunner().invoke(main, ["sweep", "collect", str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and str(path) in result.output and "Traceback" not in result.output
