"""`timm-dog demo` (timm_dog.cli.demo)."""

import json

import pytest


@pytest.mark.slow
def test_demo_one_epoch(cli, tmp_path):
    result = cli("demo", "--out", tmp_path, "--epochs", 1, "--img-size", 32)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    runs = {run["model"]: run for run in summary["runs"]}
    assert set(runs) == {"convnext_atto_dog", "convnext_atto"}
    assert all(0 <= run["top1"] <= 100 and run["images"] == 360 for run in runs.values())
    assert len(list((tmp_path / "digits" / "train").glob("*/*.png"))) == 1437
    for name in ("convnext_atto_dog", "convnext_atto"):
        for label in ("before", "after"):
            assert (tmp_path / f"kernels_{name}_{label}.png").stat().st_size > 1000
    assert "convnext_atto_dog" in result.output and "top-1 %" in result.output
    ship = summary["ship"]
    assert ship["eval"]["num_images"] == 360 and ship["eval"]["top1"] == pytest.approx(
        runs["convnext_atto_dog"]["top1"]
    )
    assert ship["files"] == [
        "README.md",
        "config.json",
        "eval_results.json",
        "model.safetensors",
        "onnx/model.onnx",
        "onnx/model_int8.onnx",
        "onnx/verification.json",
    ]
    hub_folder = tmp_path / "hub" / "convnext-atto-dog-digits"
    assert json.loads((hub_folder / "config.json").read_text())["architecture"] == "convnext_atto"
    assert [k.split("/")[1] for k in ship["predictions"]] == ["0", "3", "7"]  # val/<digit>/<file>
    assert all(p["label"] in "0123456789" for p in ship["predictions"].values())
    assert "fp32: 360 images" in result.output and "predict with onnxruntime" in result.output
