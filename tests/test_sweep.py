from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from timm_dog.cli import main
from timm_dog.recipes import check_recipe
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


@pytest.mark.parametrize("spec,match", [("gamma=0.1", "KEY=V1"), ("dog_gamma", "KEY=V1"), ("dog_share=[", "values")])
def test_bad_grid(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_grid([spec])


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
