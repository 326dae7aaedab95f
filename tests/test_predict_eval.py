"""predict and eval on torch and ONNX sources; McNemar's exact test."""

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from timm_dog.cli import main
from timm_dog.evaluate import class_mapping, evaluate, mcnemar, open_dataset, predict
from timm_dog.preprocess import sample_photos
from timm_dog.runtime import load_classifier


@pytest.fixture(scope="module")
def onnx_file(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "digits.onnx"
    result = CliRunner().invoke(
        main, ["export", "convnext_atto_dog", "--checkpoint", str(checkpoint), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


def _predictions(output):
    """{image: [(label, percent), ...]} from predict's output."""
    table, image = {}, None
    for line in output.splitlines()[1:]:
        if line.startswith(("  note:", "note:")):
            continue
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
    torch_out = runner.invoke(
        main,
        [
            "predict",
            "convnext_atto_dog",
            "--checkpoint",
            str(checkpoint),
            "-k",
            "3",
            "--device",
            "cpu",
            "--threads",
            "1",
            *map(str, images),
        ],
    )
    onnx_out = runner.invoke(
        main, ["predict", str(onnx_file), "-k", "3", "--device", "cpu", "--threads", "1", *map(str, images)]
    )
    assert torch_out.exit_code == 0 and onnx_out.exit_code == 0, torch_out.output + onnx_out.output
    assert torch_out.output.splitlines()[0] == "convnext_atto on torch (cpu, fp32)" and torch_threads == [1]
    assert (
        onnx_out.output.splitlines()[0]
        == "convnext_atto on onnxruntime (CPUExecutionProvider, 1 thread, no spinning, ORT_ENABLE_ALL)"
    )
    a, b = _predictions(torch_out.output), _predictions(onnx_out.output)
    assert list(a) == list(b) == [str(p) for p in images]
    for image in a:
        assert [label for label, _ in a[image]] == [label for label, _ in b[image]]
        assert all(label.startswith("class_") for label, _ in a[image])  # a bare checkpoint has no label names
        np.testing.assert_allclose([p for _, p in a[image]], [p for _, p in b[image]], atol=0.011)
    assert sum(a[image][0][0] == "class_7" for image in a) >= 2  # the trained model sees the 7s


BLOCKER = """import sys


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "timm", "onnx"):
            raise ImportError(f"{name} is blocked: predict on an .onnx file must not import it")


sys.meta_path.insert(0, Blocker())
"""


def test_predict_on_onnx_runs_where_torch_timm_and_onnx_cannot_be_imported(onnx_file, digits, tmp_path):
    """The console script, in a process whose sitecustomize makes importing torch, timm or onnx fail, gives
    the same predictions as in this process (where they import)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    images = [str(p) for p in sorted((digits / "val" / "3").iterdir())[:2]]
    args = ["predict", str(onnx_file), "-k", "3", "--device", "cpu", "--threads", "1", *images]
    root = str(Path(__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), root])}
    probe = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert probe.returncode == 1 and "torch is blocked" in probe.stderr  # the blocker works
    script = Path(sys.executable).with_name("timm-dog")
    done = subprocess.run([str(script), *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "blocked" not in done.stderr
    assert done.stdout == CliRunner().invoke(main, args).output
    assert done.stdout.splitlines()[0].startswith("convnext_atto on onnxruntime (CPUExecutionProvider, 1 thread")


def test_predict_on_a_torch_source_where_torch_cannot_be_imported_says_so(digits, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    image = str(sorted((digits / "val" / "3").iterdir())[0])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).parents[1])])}
    script = Path(sys.executable).with_name("timm-dog")
    done = subprocess.run(
        [str(script), "predict", "convnext_atto_dog", image], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "convnext_atto_dog: loading it needs torch and timm" in done.stderr and "give an .onnx file" in done.stderr


def test_predict_imagenet_labels_and_bad_image(tmp_path):
    runner = CliRunner()
    photo = sample_photos()[0]
    result = runner.invoke(main, ["predict", "mobilenetv3_small_050_dog", str(photo), "-k", "2"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 5 and lines[0].startswith("note: mobilenetv3_small_050_dog has no trained weights")
    assert "%" in lines[3]
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
    assert result.exit_code == 1 and "not a train.py checkpoint, torch file or safetensors file" in result.output


def test_eval_torch_vs_onnx_same_numbers_and_json(checkpoint, onnx_file, digits, tmp_path, monkeypatch):
    out = tmp_path / "cmp.json"
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # the test process keeps its threads
    result = CliRunner().invoke(
        main,
        [
            "eval",
            "convnext_atto_dog",
            "--checkpoint",
            str(checkpoint),
            "--data-dir",
            str(digits),
            "--compare",
            str(onnx_file),
            "--json",
            str(out),
            "--device",
            "cpu",
            "--threads",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    a, b = report["a"], report["b"]
    assert a["num_images"] == b["num_images"] == 360 and a["dataset"]["split"] == "validation"
    assert a["top1"] > 50 and a["top1"] == pytest.approx(b["top1"], abs=0.3)  # fp32 ONNX: at most 1 flip
    assert a["loss"] == pytest.approx(b["loss"], abs=1e-4) and a["top5"] >= a["top1"]
    assert a["backend"] == "torch (cpu, fp32)" and b["backend"].startswith("onnxruntime (")
    assert b["backend"].endswith(", 2 threads, no spinning, ORT_ENABLE_ALL)")
    header, row_a, row_b = result.output[result.output.index("source  ") :].split("\n")[:3]  # after the progress bars
    end = header.index("images") + len("images")
    assert row_a[end - 4 : end] == row_b[end - 4 : end] == " 360"  # the backend column fits both backends
    assert a["images_per_second"] > 0 and a["dataset"]["class_names"] == [str(i) for i in range(10)]
    assert report["mcnemar"]["p_value"] == pytest.approx(1.0, abs=1e-9) or report["top1_difference"] != 0
    assert "McNemar exact p = " in result.output


def test_eval_accepts_a_timm_dataset_name(checkpoint, digits, tmp_path):
    reports = []
    for index, extra in enumerate(([], ["--dataset", "torch/image_folder"], ["--dataset", "folder"])):
        out = tmp_path / f"{index}.json"
        result = CliRunner().invoke(
            main,
            [
                "eval",
                "convnext_atto_dog",
                "--checkpoint",
                str(checkpoint),
                "--data-dir",
                str(digits),
                "--json",
                str(out),
                *extra,
            ],
        )
        assert result.exit_code == 0, result.output
        reports.append(json.loads(out.read_text()))
    assert reports[1]["dataset"]["name"] == "torch/image_folder" and reports[1]["num_images"] == 360
    for report in reports[1:]:  # timm's own folder reader (folder) and torchvision's (torch/image_folder) alike
        assert (reports[0]["top1"], reports[0]["loss"]) == pytest.approx((report["top1"], report["loss"]))
    result = CliRunner().invoke(
        main, ["eval", "convnext_atto_dog", "--data-dir", str(digits), "--dataset", "torch/cifar10"]
    )
    assert result.exit_code == 1 and "cannot open dataset 'torch/cifar10'" in result.output


def test_eval_compare_dog_vs_native_init_reports_a_p_value(checkpoint, digits, tmp_path):
    import timm
    from safetensors.torch import save_file

    untrained = tmp_path / "untrained.safetensors"  # native init, the checkpoint's 10 classes
    save_file(timm.create_model("convnext_atto", num_classes=10).state_dict(), str(untrained))
    result = CliRunner().invoke(
        main,
        [
            "eval",
            "convnext_atto_dog",
            "--checkpoint",
            str(checkpoint),
            "--data-dir",
            str(digits),
            "--compare",
            "convnext_atto",
            "--compare-checkpoint",
            str(untrained),
            "--json",
            str(tmp_path / "r.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["top1_difference"] == pytest.approx(report["a"]["top1"] - report["b"]["top1"])
    assert 0 <= report["mcnemar"]["p_value"] < 0.05  # trained vs untrained: a real difference
    # an ImageNet model's 1000 classes are not the digits' 10: no number, an error
    result = CliRunner().invoke(
        main,
        [
            "eval",
            "convnext_atto_dog",
            "--checkpoint",
            str(checkpoint),
            "--data-dir",
            str(digits),
            "--compare",
            "convnext_atto",
        ],
    )
    assert result.exit_code == 1 and "the data has 10 class folders but the model has 1000 classes" in result.output


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
    result = runner.invoke(
        main, ["eval", "convnext_atto_dog", "--checkpoint", str(checkpoint), "--data-dir", str(tmp_path / "b")]
    )
    assert result.exit_code == 1 and "the data has 12 class folders but the model has 10 classes" in result.output
    result = runner.invoke(
        main, ["eval", "convnext_atto_dog", "--data-dir", str(tmp_path), "--compare-checkpoint", str(checkpoint)]
    )
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


def _eval(*args):
    """(exit code, output, JSON report or None) of `timm-dog eval ARGS --json`."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "r.json"
        result = CliRunner().invoke(main, ["eval", *map(str, args), "--json", str(out)])
        return result.exit_code, result.output, json.loads(out.read_text()) if out.exists() else None


def _copy_classes(digits, folder, classes, split="val"):
    import shutil

    for name in classes:
        shutil.copytree(digits / "val" / name, folder / split / name)
    return folder


def test_eval_on_a_subset_of_classes_maps_folders_by_name(checkpoint, staged, digits, tmp_path):
    subset = _copy_classes(digits, tmp_path / "sub", ["3", "4", "5"])
    # the expected top-1: the full evaluation's accuracy on the images of classes 3-5
    data, info = open_dataset(str(digits))
    full = evaluate(load_classifier(f"local-dir:{staged.folder}"), data, progress=False, dataset_info=info)
    targets = np.array([target for _, target in data.reader.samples])
    expected = 100.0 * full.correct[np.isin(targets, [3, 4, 5])].mean()
    for source in (f"local-dir:{staged.folder}", staged.folder / "onnx" / "model.onnx"):
        code, output, report = _eval(source, "--data-dir", subset)
        assert code == 0, output
        assert report["num_images"] == 110 and report["top1"] == pytest.approx(expected, abs=1e-9) and expected > 50
        assert "classes by name: 3 class folders matched" in output
    # the checkpoint has no class names: by position only, so 3 folders for 10 classes is refused
    code, output, _ = _eval("convnext_atto_dog", "--checkpoint", checkpoint, "--data-dir", subset)
    assert code == 1 and "the data has 3 class folders but the model has 10 classes" in output
    assert "Traceback" not in output
    # folders that are none of the names: refused, naming them
    (subset / "val" / "3").rename(subset / "val" / "three")
    code, output, _ = _eval(f"local-dir:{staged.folder}", "--data-dir", subset)
    assert code == 1 and "1 of 3 class folders match none of the model's 10 class names: three" in output


def test_eval_compare_uses_one_class_rule_for_both(checkpoint, staged, digits, tmp_path):
    code, output, report = _eval(
        f"local-dir:{staged.folder}",
        "--data-dir",
        digits,
        "--compare",
        "convnext_atto_dog",
        "--compare-checkpoint",
        checkpoint,
    )
    assert code == 0, output
    assert "classes by position: the 10 class folders in sorted order" in output  # one source is unnamed
    assert report["a"]["top1"] == report["b"]["top1"] and report["mcnemar"]["p_value"] == 1.0  # same weights
    assert report["a"]["dataset"]["class_mapping"] == report["b"]["dataset"]["class_mapping"]
    subset = _copy_classes(digits, tmp_path / "sub", ["3", "4", "5"])
    code, output, _ = _eval(
        f"local-dir:{staged.folder}",
        "--data-dir",
        subset,
        "--compare",
        "convnext_atto_dog",
        "--compare-checkpoint",
        checkpoint,
    )
    assert code == 1 and "the data has 3 class folders but the model has 10 classes" in output


def test_class_mapping_by_imagenet_wordnet_ids_and_descriptions():
    from types import SimpleNamespace

    from timm.data import ImageNetInfo

    info = ImageNetInfo("imagenet-1k")
    labels = list(info.label_descriptions())
    folders = SimpleNamespace(class_to_idx={"n01443537": 0, info.label_descriptions()[0]: 1, "n01530575": 2})
    (index,), rule = class_mapping(folders, labels)
    assert index.tolist() == [1, 0, 10] and rule.startswith("by name")
    with pytest.raises(ValueError, match="1 of 1 class folders match none of the model's 1000 class names: cat"):
        class_mapping(SimpleNamespace(class_to_idx={"cat": 0}), labels)


def test_eval_split_must_exist(checkpoint, digits, tmp_path):
    code, output, _ = _eval("convnext_atto_dog", "--checkpoint", checkpoint, "--data-dir", digits, "--split", "test")
    assert code == 1 and "no split 'test' in" in output and "splits found: train, val" in output
    assert "Traceback" not in output
    code, output, report = _eval(
        "convnext_atto_dog", "--checkpoint", checkpoint, "--data-dir", digits, "--split", "valid"
    )
    assert code == 0 and report["num_images"] == 360 and f"split 'valid': {digits / 'val'}" in output
    code, output, report = _eval("convnext_atto_dog", "--checkpoint", checkpoint, "--data-dir", digits / "val")
    assert code == 0 and report["num_images"] == 360
    assert f"no split sub-folders in {digits / 'val'}: its class folders are used as they are" in output


@pytest.fixture(scope="module")
def digits16(digits, tmp_path_factory):
    """digits' val split again, as 16-bit grayscale PNGs of the same pictures (value × 257)."""
    root = tmp_path_factory.mktemp("digits16")
    for path in (digits / "val").rglob("*.png"):
        out = root / "val" / path.parent.name / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(Image.open(path)).astype(np.uint16) * 257).save(out)
    return root


def test_16bit_images_give_the_8bit_results(checkpoint, onnx_file, digits, digits16):
    for source in (["convnext_atto_dog", "--checkpoint", checkpoint], [onnx_file]):
        reports = [_eval(*source, "--data-dir", folder)[2] for folder in (digits, digits16)]
        assert (reports[0]["top1"], reports[0]["loss"]) == (reports[1]["top1"], reports[1]["loss"])
        images = [
            folder / "val" / "7" / name
            for folder in (digits, digits16)
            for name in sorted(p.name for p in (digits / "val" / "7").iterdir())[:2]
        ]
        output = CliRunner().invoke(main, ["predict", *map(str, source), *map(str, images)]).output
        predictions = list(_predictions(output).values())
        assert predictions[:2] == predictions[2:]


def _with_metadata(onnx_file, folder, **changes):
    import onnx

    model = onnx.load(str(onnx_file))
    props = {p.key: p.value for p in model.metadata_props}
    props.update({k: json.dumps(v) for k, v in changes.items() if v is not None})
    props = {k: v for k, v in props.items() if changes.get(k, 0) is not None}
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, props)
    path = folder / "bad.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(std=[0.5, 0.0, 0.5]), "metadata std=[0.5, 0.0, 0.5] is invalid: expected 3 finite positive numbers"),
        (dict(input_size=[3, 0, 32]), "metadata input_size=[3, 0, 32] is invalid: expected [3, height, width]"),
        (dict(mean=[0.5, 0.5]), "metadata mean=[0.5, 0.5] is invalid: expected 3 finite numbers"),
        (dict(crop_pct=0), "metadata crop_pct=0 is invalid: expected a number in (0, 2]"),
        (dict(crop_pct=7), "metadata crop_pct=7 is invalid: expected a number in (0, 2]"),
        (dict(label_names=[str(i) for i in range(9)]), "metadata label_names has 9 names but num_classes is 10"),
        (
            dict(label_names=[str(i) for i in range(9)], num_classes=None),
            "metadata label_names has 9 names but the graph's output width is 10",
        ),
        (dict(interpolation="cubic"), "metadata interpolation 'cubic' is not one of"),
    ],
)
def test_inconsistent_onnx_metadata_is_refused_when_opened(onnx_file, tmp_path, changes, message):
    path = _with_metadata(onnx_file, tmp_path, **changes)
    result = CliRunner().invoke(main, ["predict", str(path), str(sample_photos()[0])])
    assert result.exit_code == 1 and f"{path}: {message}" in result.output, result.output
    assert "Traceback" not in result.output


def test_a_text_file_as_checkpoint_says_what_it_is_not(tmp_path):
    text = tmp_path / "notes.pth"
    text.write_text("epoch: 1\nlr: 0.1\n")
    result = CliRunner().invoke(
        main, ["predict", "convnext_atto_dog", "--checkpoint", str(text), str(sample_photos()[0])]
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{text} is not a train.py checkpoint, torch file or safetensors file (it is a text file)" in result.output
    assert "weights_only" not in result.output


def test_device_and_amp_on_the_cpu(checkpoint, onnx_file, digits):
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the CPU-only errors")
    code, output, fp32 = _eval("convnext_atto_dog", "--checkpoint", checkpoint, "--data-dir", digits, "--device", "cpu")
    assert code == 0 and fp32["backend"] == "torch (cpu, fp32)", output
    # bf16 autocast on the CPU: within 1 point of top-1 (3 of 360 images) and 0.01 of the loss of fp32
    code, output, bf16 = _eval(
        "convnext_atto_dog", "--checkpoint", checkpoint, "--data-dir", digits, "--amp", "bf16", "-j", "1"
    )
    assert code == 0 and bf16["backend"] == "torch (cpu, bf16)", output
    assert bf16["top1"] == pytest.approx(fp32["top1"], abs=1.0) and bf16["loss"] == pytest.approx(
        fp32["loss"], abs=0.01
    )
    for source in (["convnext_atto_dog", "--checkpoint", checkpoint], [onnx_file]):
        for device, message in (
            ("cuda", "device 'cuda': "),
            ("cuda:1", "device 'cuda:1': "),
            ("bogus", "device 'bogus' is not one of auto, cpu, cuda, cuda:N"),
        ):
            code, output, report = _eval(*source, "--data-dir", digits, "--device", device)
            assert code == 1 and message in output and "Traceback" not in output and report is None
    code, output, _ = _eval(onnx_file, "--data-dir", digits, "--amp", "bf16")
    assert code == 1 and "--amp applies to torch sources" in output
    photo = str(sample_photos()[0])
    result = CliRunner().invoke(main, ["predict", str(onnx_file), photo, "--device", "cpu"])
    assert result.exit_code == 0 and result.output.startswith("convnext_atto on onnxruntime (CPUExecutionProvider, ")
    result = CliRunner().invoke(main, ["predict", "convnext_atto_dog", photo, "--device", "cuda"])
    assert result.exit_code == 1 and "torch sees no CUDA device" in result.output
    result = CliRunner().invoke(main, ["analyze", "convnext_atto_dog", "--device", "cuda"])
    assert result.exit_code == 2 and "torch sees no CUDA device" in result.output


def test_resolve_device():
    import torch

    from timm_dog.runtime import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    for bad in ("gpu", "cuda:", "cpu:0", "cuda:-1", ""):
        with pytest.raises(ValueError, match="is not one of auto, cpu, cuda, cuda:N"):
            resolve_device(bad)


def test_unreadable_image_in_a_worker_is_one_line(checkpoint, digits, tmp_path):
    _copy_classes(digits, tmp_path, [str(i) for i in range(10)])
    photo = tmp_path / "photo.png"
    Image.open(sample_photos()[0]).save(photo)
    (tmp_path / "val" / "3" / "cut.png").write_bytes(photo.read_bytes()[:5000])  # a valid header, truncated data
    code, output, _ = _eval("convnext_atto_dog", "--checkpoint", checkpoint, "--data-dir", tmp_path, "-j", "2")
    assert code == 1 and "Traceback" not in output
    assert "cannot read an image of the dataset: cannot read image " in output  # the worker's message, no class
    assert "cut.png: image file is truncated" in output


def test_a_file_that_is_not_an_image_is_named_not_replaced(checkpoint, digits, tmp_path):
    """timm's ImageDataset would serve the next image instead and count it twice (361 images of 360)."""
    _copy_classes(digits, tmp_path, [str(i) for i in range(10)])
    (tmp_path / "val" / "3" / "notes.png").write_text("not an image")
    code, output, _ = _eval("convnext_atto_dog", "--checkpoint", checkpoint, "--data-dir", tmp_path, "-j", "0")
    assert code == 1 and "Traceback" not in output and "361" not in output
    assert "notes.png: cannot identify image file" in output


def test_preprocessing_pickles_for_loader_workers(onnx_file, digits):
    import pickle

    import timm

    from timm_dog.runtime import model_classifier

    image = Image.open(next((digits / "val" / "4").iterdir()))
    for classifier in (
        load_classifier(str(onnx_file), device="cpu"),
        model_classifier(timm.create_model("convnext_atto", num_classes=10), "convnext_atto"),
    ):
        copy = pickle.loads(pickle.dumps(classifier.preprocess))
        np.testing.assert_array_equal(copy(image), classifier.preprocess(image))


def test_a_safetensors_checkpoint_takes_the_data_config_beside_it(staged, checkpoint, digits, caplog):
    """The Hub folder's model.safetensors with its config.json (32 px, mean/std 0.5) scores as the checkpoint it
    came from; alone, it says which default preprocessing it falls back to (was: 15.83 % silently)."""
    import logging
    import shutil

    weights = staged.folder / "model.safetensors"
    _, _, by_checkpoint = _eval("convnext_atto_dog", "--checkpoint", checkpoint, "--data-dir", digits, "-j", "0")
    _, _, by_safetensors = _eval("convnext_atto_dog", "--checkpoint", weights, "--data-dir", digits, "-j", "0")
    assert by_safetensors["top1"] == pytest.approx(by_checkpoint["top1"])
    assert by_safetensors["loss"] == pytest.approx(by_checkpoint["loss"], abs=1e-4)
    alone = digits.parent / "alone.safetensors"
    shutil.copyfile(weights, alone)
    with caplog.at_level(logging.WARNING, logger="timm_dog"):
        load_classifier("convnext_atto_dog", str(alone), device="cpu")
    assert "carries no data config" in caplog.text and "default preprocessing (3x224x224, bicubic" in caplog.text


def test_bad_sources_and_data_are_one_line(onnx_file, checkpoint, digits, tmp_path):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    bomb = tmp_path / "huge.png"  # a valid PNG that claims 60000 x 60000 pixels (a decompression bomb)
    bomb.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00"))
        + chunk(b"IEND", b"")
    )
    loose = tmp_path / "loose"
    loose.mkdir()
    Image.new("RGB", (8, 8)).save(loose / "a.png")
    cases = [
        (["predict", str(onnx_file), str(bomb)], 1, f"cannot read image {bomb}: Image size (3600000000 pixels)"),
        (
            ["eval", str(onnx_file), "--data-dir", str(digits), "--dataset", "bogus/foo"],
            1,
            "unknown --dataset 'bogus/foo': give a timm dataset name starting with torch/",
        ),
        (["eval", str(onnx_file), "--data-dir", str(loose)], 1, f"{loose} has images directly inside it"),
        (["analyze", str(onnx_file)], 2, "analyze reads the kernels of a torch model"),
        (["predict", f"local-dir:{tmp_path}/none", str(bomb)], 1, "no config.json in that folder"),
        (
            [
                "eval",
                str(onnx_file),
                "--data-dir",
                str(digits),
                "--compare",
                str(onnx_file),
                "--compare-checkpoint",
                str(checkpoint),
            ],
            1,
            "--compare-checkpoint applies to a model name",
        ),
    ]
    for args, code, message in cases:
        result = CliRunner().invoke(main, args)
        assert result.exit_code == code and message in result.output, (args, result.output)
        assert "Traceback" not in result.output and "-----" not in result.output
        assert result.output.count(args[1]) <= 1 or args[0] == "eval"  # the SOURCE is named once


def test_a_bare_model_name_says_it_has_no_trained_weights():
    result = CliRunner().invoke(main, ["predict", "mobilenetv3_small_050_dog", str(sample_photos()[0]), "-k", "1"])
    assert result.exit_code == 0, result.output
    assert "note: mobilenetv3_small_050_dog has no trained weights here (a fresh init)" in result.output


def test_predict_runs_in_batches_and_yields_each_batch_when_it_has_run(digits):
    from timm_dog.preprocess import Preprocess
    from timm_dog.runtime import Classifier

    batches = []

    def run(batch):
        batches.append(len(batch))
        return np.zeros((len(batch), 3))

    classifier = Classifier(
        source="s",
        backend="b",
        architecture="a",
        labels=["x", "y", "z"],
        preprocess=Preprocess(input_size=(3, 8, 8)),
        run=run,
    )
    paths = sorted((digits / "val" / "1").iterdir())[:5]
    predictions = predict(classifier, paths, batch_size=2, top_k=1)
    first = next(predictions)
    assert batches == [2] and first.path == str(paths[0])  # streamed: one batch read and run, not all five
    assert [p.path for p in predictions] == [str(p) for p in paths[1:]] and batches == [2, 2, 1]


def test_predict_batch_size_gives_the_same_predictions(checkpoint, digits):
    images = [str(p) for p in sorted((digits / "val" / "2").iterdir())[:5]]
    outputs = [
        CliRunner().invoke(
            main, ["predict", "convnext_atto_dog", "--checkpoint", str(checkpoint), "-k", "2", *args, *images]
        )
        for args in ([], ["--batch-size", "2"])
    ]
    assert all(out.exit_code == 0 for out in outputs), outputs[0].output + outputs[1].output
    one, two = map(_predictions, (out.output for out in outputs))
    assert list(one) == list(two) == images
    for image in images:
        assert [label for label, _ in one[image]] == [label for label, _ in two[image]]
        np.testing.assert_allclose([p for _, p in one[image]], [p for _, p in two[image]], atol=0.011)
    result = CliRunner().invoke(main, ["predict", "convnext_atto_dog", "--batch-size", "0", images[0]])
    assert result.exit_code == 2 and "--batch-size" in result.output


def test_predict_ignores_exif_rotation_like_timms_loader_and_says_so(checkpoint, tmp_path):
    """A JPEG and a PNG with an EXIF Orientation tag give the predictions of the same pixels without it (what
    timm's loader, validate.py and eval see), with a note per image and a summary line."""
    pixels = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 24, 3), dtype=np.uint8))
    files = {}
    for suffix, orientation in ((".jpg", 6), (".png", 3)):
        exif = Image.Exif()
        exif[0x0112] = orientation
        files[suffix] = (tmp_path / f"tagged{suffix}", tmp_path / f"plain{suffix}")
        pixels.save(files[suffix][0], exif=exif.tobytes(), quality=95) if suffix == ".jpg" else pixels.save(
            files[suffix][0], exif=exif
        )
        pixels.save(files[suffix][1], quality=95) if suffix == ".jpg" else pixels.save(files[suffix][1])
        with Image.open(files[suffix][0]) as image:
            assert image.getexif()[0x0112] == orientation  # Pillow wrote the tag
    paths = [str(p) for pair in files.values() for p in pair]
    result = CliRunner().invoke(
        main, ["predict", "convnext_atto_dog", "--checkpoint", str(checkpoint), "-k", "3", *paths]
    )
    assert result.exit_code == 0, result.output
    table = _predictions(result.output)
    assert table[paths[0]] == table[paths[1]] and table[paths[2]] == table[paths[3]]
    lines = result.output.splitlines()
    for path, note in (
        (paths[0], "EXIF Orientation 6 (viewers show it rotated 90° clockwise)"),
        (paths[2], "EXIF Orientation 3 (viewers show it rotated 180°)"),
    ):
        assert (
            lines[lines.index(path) + 1] == f"  note: {note} ignored: the model sees the pixels as stored, as "
            "timm's loader and validate.py do"
        )
    assert result.output.count("note: EXIF") == 2
    assert "note: 2 of 4 images carry an EXIF rotation that was ignored" in result.output


def test_eval_compare_fp32_against_amp(checkpoint, digits):
    """--compare-amp gives OTHER_SOURCE its own precision (bf16 autocast runs on the CPU), so the same weights in
    fp32 and in AMP are compared on the same images; without it, both run under --amp and a note says so."""
    same = [
        "convnext_atto_dog",
        "--checkpoint",
        checkpoint,
        "--data-dir",
        digits,
        "-j",
        "0",
        "--compare",
        "convnext_atto_dog",
        "--compare-checkpoint",
        checkpoint,
    ]
    code, output, report = _eval(*same, "--compare-amp", "bf16")
    assert code == 0, output
    assert (report["a"]["backend"], report["b"]["backend"]) == ("torch (cpu, fp32)", "torch (cpu, bf16)")
    assert abs(report["top1_difference"]) <= 1.0 and report["mcnemar"]["p_value"] > 0.05
    code, output, report = _eval(*same, "--amp", "bf16", "--compare-amp", "fp32")
    assert code == 0 and (report["a"]["backend"], report["b"]["backend"]) == ("torch (cpu, bf16)", "torch (cpu, fp32)")
    code, output, report = _eval(*same, "--amp", "bf16")
    assert code == 0 and report["a"]["backend"] == report["b"]["backend"] == "torch (cpu, bf16)"
    assert "note: both sources run under bf16 autocast (--amp); --compare-amp fp32 evaluates" in output
    code, output, _ = _eval("convnext_atto_dog", "--data-dir", digits, "--compare-amp", "bf16")
    assert code == 2 and "--compare-amp needs --compare" in output


def test_a_checkpoint_given_as_the_model_says_where_it_goes(checkpoint, digits):
    runner = CliRunner()
    result = runner.invoke(main, ["eval", str(checkpoint), "--data-dir", str(digits)])
    assert result.exit_code == 1 and "a weights file goes after --checkpoint, with the" in result.output, result.output
    result = runner.invoke(
        main,
        [
            "eval",
            "convnext_atto_dog",
            "--checkpoint",
            str(checkpoint),
            "--data-dir",
            str(digits),
            "--compare",
            str(checkpoint),
        ],
    )
    assert result.exit_code == 1 and "goes after --compare-checkpoint, with the" in result.output, result.output
