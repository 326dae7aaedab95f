"""predict and eval on torch and ONNX sources; McNemar's exact test."""
import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from timm_dog.cli import main
from timm_dog.evaluate import mcnemar
from timm_dog.preprocess import sample_photos


@pytest.fixture(scope="module")
def onnx_file(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "digits.onnx"
    result = CliRunner().invoke(main, ["export", "convnext_atto_dog", "--checkpoint", str(checkpoint), "--out",
                                       str(out)])
    assert result.exit_code == 0, result.output
    return out


def _predictions(output):
    """{image: [(label, percent), ...]} from predict's output."""
    table, image = {}, None
    for line in output.splitlines()[1:]:
        if not line.startswith(" "):
            image = line
            table[image] = []
        else:
            percent, label = line.split()
            table[image].append((label, float(percent.rstrip("%"))))
    return table


def test_predict_torch_and_onnx_agree_with_label_names(checkpoint, onnx_file, digits, monkeypatch):
    images = sorted((digits / "val" / "7").iterdir())[:3]
    runner = CliRunner()
    torch_threads = []
    monkeypatch.setattr(torch, "set_num_threads", torch_threads.append)  # the test process keeps its threads
    torch_out = runner.invoke(main, ["predict", "convnext_atto_dog", "--checkpoint", str(checkpoint), "-k", "3",
                                     "--threads", "1", *map(str, images)])
    onnx_out = runner.invoke(main, ["predict", str(onnx_file), "-k", "3", "--threads", "1", *map(str, images)])
    assert torch_out.exit_code == 0 and onnx_out.exit_code == 0, torch_out.output + onnx_out.output
    assert torch_out.output.splitlines()[0] == "convnext_atto on torch (cpu)" and torch_threads == [1]
    assert onnx_out.output.splitlines()[0] in (
        f"convnext_atto on onnxruntime ({provider}, 1 thread, no spinning, ORT_ENABLE_ALL)"
        for provider in ("CPUExecutionProvider", "CUDAExecutionProvider"))
    a, b = _predictions(torch_out.output), _predictions(onnx_out.output)
    assert list(a) == list(b) == [str(p) for p in images]
    for image in a:
        assert [label for label, _ in a[image]] == [label for label, _ in b[image]]
        assert all(label.startswith("class_") for label, _ in a[image])  # a bare checkpoint has no label names
        np.testing.assert_allclose([p for _, p in a[image]], [p for _, p in b[image]], atol=0.011)
    assert sum(a[image][0][0] == "class_7" for image in a) >= 2  # the trained model sees the 7s


def test_predict_imagenet_labels_and_bad_image(tmp_path):
    runner = CliRunner()
    photo = sample_photos()[0]
    result = runner.invoke(main, ["predict", "mobilenetv3_small_050_dog", str(photo), "-k", "2"])
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == 4 and "%" in result.output.splitlines()[2]
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    result = runner.invoke(main, ["predict", "mobilenetv3_small_050_dog", str(bad)])
    assert result.exit_code == 1 and "cannot read image" in result.output and "Traceback" not in result.output
    result = runner.invoke(main, ["predict", str(tmp_path / "missing.onnx"), str(photo)])
    assert result.exit_code == 1 and "missing.onnx does not exist" in result.output
    (tmp_path / "garbage.onnx").write_text("not a model")
    result = runner.invoke(main, ["predict", str(tmp_path / "garbage.onnx"), str(photo)])
    assert result.exit_code == 1 and "onnxruntime cannot load" in result.output and "INVALID_PROTOBUF" in result.output
    result = runner.invoke(main, ["predict", "mobilenetv3_small_050_dog", "--checkpoint", str(bad), str(photo)])
    assert result.exit_code == 1 and "not a readable train.py checkpoint" in result.output


def test_eval_torch_vs_onnx_same_numbers_and_json(checkpoint, onnx_file, digits, tmp_path, monkeypatch):
    out = tmp_path / "cmp.json"
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # the test process keeps its threads
    result = CliRunner().invoke(main, ["eval", "convnext_atto_dog", "--checkpoint", str(checkpoint), "--data-dir",
                                       str(digits), "--compare", str(onnx_file), "--json", str(out), "--threads", "2"])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    a, b = report["a"], report["b"]
    assert a["num_images"] == b["num_images"] == 360 and a["dataset"]["split"] == "validation"
    assert a["top1"] > 50 and a["top1"] == pytest.approx(b["top1"], abs=0.3)  # fp32 ONNX: at most 1 flip
    assert a["loss"] == pytest.approx(b["loss"], abs=1e-4) and a["top5"] >= a["top1"]
    assert a["backend"] == "torch (cpu)" and b["backend"].startswith("onnxruntime (")
    assert b["backend"].endswith(", 2 threads, no spinning, ORT_ENABLE_ALL)")
    header, row_a, row_b = result.output[result.output.index("source  "):].split("\n")[:3]  # after the progress bars
    end = header.index("images") + len("images")
    assert row_a[end - 4:end] == row_b[end - 4:end] == " 360"  # the backend column fits both backends
    assert a["images_per_second"] > 0 and a["dataset"]["class_names"] == [str(i) for i in range(10)]
    assert report["mcnemar"]["p_value"] == pytest.approx(1.0, abs=1e-9) or report["top1_difference"] != 0
    assert "McNemar exact p = " in result.output


def test_eval_accepts_a_timm_dataset_name(checkpoint, digits, tmp_path):
    reports = []
    for extra in ([], ["--dataset", "torch/image_folder"]):
        out = tmp_path / f"{len(extra)}.json"
        result = CliRunner().invoke(main, ["eval", "convnext_atto_dog", "--checkpoint", str(checkpoint), "--data-dir",
                                           str(digits), "--json", str(out), *extra])
        assert result.exit_code == 0, result.output
        reports.append(json.loads(out.read_text()))
    assert reports[1]["dataset"]["name"] == "torch/image_folder" and reports[1]["num_images"] == 360
    assert (reports[0]["top1"], reports[0]["loss"]) == pytest.approx((reports[1]["top1"], reports[1]["loss"]))
    result = CliRunner().invoke(main, ["eval", "convnext_atto_dog", "--data-dir", str(digits), "--dataset",
                                       "torch/cifar10"])
    assert result.exit_code == 1 and "cannot open dataset 'torch/cifar10'" in result.output


def test_eval_compare_dog_vs_native_init_reports_a_p_value(checkpoint, digits, tmp_path):
    result = CliRunner().invoke(main, ["eval", "convnext_atto_dog", "--checkpoint", str(checkpoint), "--data-dir",
                                       str(digits), "--compare", "convnext_atto", "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["top1_difference"] == pytest.approx(report["a"]["top1"] - report["b"]["top1"])
    assert 0 <= report["mcnemar"]["p_value"] < 0.05  # trained vs untrained: a real difference


def test_eval_errors(checkpoint, tmp_path):
    runner = CliRunner()
    (tmp_path / "a" / "x").mkdir(parents=True)
    result = runner.invoke(main, ["eval", "convnext_atto_dog", "--data-dir", str(tmp_path / "a")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    for i in range(12):  # more classes than the checkpoint's 10
        folder = tmp_path / "b" / f"c{i:02d}"
        folder.mkdir(parents=True)
        from PIL import Image

        Image.new("RGB", (8, 8)).save(folder / "img.png")
    result = runner.invoke(main, ["eval", "convnext_atto_dog", "--checkpoint", str(checkpoint), "--data-dir",
                                  str(tmp_path / "b")])
    assert result.exit_code == 1 and "but the model has 10 classes" in result.output
    result = runner.invoke(main, ["eval", "convnext_atto_dog", "--data-dir", str(tmp_path), "--compare-checkpoint",
                                  str(checkpoint)])
    assert result.exit_code == 2 and "--compare-checkpoint needs --compare" in result.output


def test_mcnemar_reference_values():
    a = np.array([True] * 6 + [False] * 1 + [True] * 10)
    b = np.array([False] * 6 + [True] * 1 + [True] * 10)
    assert mcnemar(a, b) == {"only_a_correct": 6, "only_b_correct": 1, "p_value": pytest.approx(0.125)}
    assert mcnemar(a, a)["p_value"] == 1.0
    with pytest.raises(ValueError, match="same images"):
        mcnemar(a, a[:-1])


@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=60))
def test_mcnemar_is_the_exact_binomial_tail(pairs):
    a, b = (np.array(x) for x in zip(*pairs))
    result = mcnemar(a, b)
    n, k = result["only_a_correct"] + result["only_b_correct"], min(result["only_a_correct"], result["only_b_correct"])
    expected = 1.0 if n == 0 else min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)
    assert result["p_value"] == pytest.approx(expected)
    assert mcnemar(b, a)["p_value"] == pytest.approx(result["p_value"])
