"""ONNX export: parity with PyTorch in real onnxruntime sessions, metadata, fallback, divergence, reduced precision."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import timm
import torch
from click.testing import CliRunner
from PIL import Image

from timm_dog.cli import main
from timm_dog.onnx import (
    EXPORTER,
    GATES,
    OPSET,
    ExportError,
    Verification,
    _compare_int8_speed,
    _torch_export,
    calibration_files,
    calibration_sample,
    describe_session,
    export_onnx,
    inference_session,
    no_tf32,
    physical_cores,
    read_metadata,
    verification_providers,
)
from timm_dog.outputs import OutputError
from timm_dog.preprocess import Preprocess, open_image, sample_photos
from timm_dog.trainpy.checkpoints import load_checkpoint


def _photos(model):
    preprocess = Preprocess.from_model(model)
    return np.stack([preprocess(open_image(p)) for p in sample_photos()])


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["convnext_atto_dog", "convmixer_512_dog", "mobilenetv3_small_100_dog", "efficientnet_b0_dog"]
)
def test_parity_per_family(name, tmp_path):
    torch.manual_seed(0)
    model = timm.create_model(name).eval()
    lines = []
    result = export_onnx(model, tmp_path / "model.onnx", log=lines.append)
    assert result.exporter == "dynamo" and result.opset == 20
    (check,) = result.verifications
    assert check.passed and check.top1_agreement == 1.0, check.summary()
    assert check.max_abs_diff <= 1e-4 * max(1.0, check.logit_scale)
    # an independent session, batch 3 (export traced batch 2): dynamic batch, same logits as torch
    images = np.concatenate([_photos(model), _photos(model)[:1]])
    got = inference_session(tmp_path / "model.onnx").run(["logits"], {"input": images})[0]
    with torch.inference_mode():
        want = model(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4 * max(1.0, np.abs(want).max()), rtol=0)
    assert any("PASS" in line for line in lines)


@pytest.mark.slow
def test_parity_of_a_reparameterizable_family(tmp_path):
    """fastvit_t8 with DoG init (MobileOne and large-kernel branches, RepMixer, ConvMlp): parity relative to
    its logits, which are small (~1e-4) in a freshly initialized FastViT."""
    from timm_dog import dog_init_

    torch.manual_seed(0)
    model = timm.create_model("fastvit_t8").eval()
    assert dog_init_(model, seed=0).zeroed
    result = export_onnx(model, tmp_path / "model.onnx", log=lambda line: None)
    (check,) = result.verifications
    assert result.exporter == "dynamo" and check.passed and check.top1_agreement == 1.0, check.summary()
    assert check.logit_scale > 0 and check.max_abs_diff <= 1e-4 * check.logit_scale, check.summary()


def test_metadata_is_enough_for_inference_without_torch(tmp_path):
    model = timm.create_model("convnext_atto_dog", num_classes=1000).eval()
    export_onnx(model, tmp_path / "m.onnx", log=lambda line: None)
    meta = read_metadata(tmp_path / "m.onnx")
    assert meta["input_size"] == [3, 224, 224] and meta["interpolation"] == "bicubic"
    assert meta["crop_pct"] == 0.875 and meta["crop_mode"] == "center"
    assert meta["mean"] == pytest.approx([0.485, 0.456, 0.406]) and meta["std"] == pytest.approx([0.229, 0.224, 0.225])
    assert len(meta["label_names"]) == 1000 and meta["label_names"][0].startswith("tench")
    assert meta["architecture"] == "convnext_atto_dog" and meta["producer"].startswith("timm-dog")
    proto = onnx.load(str(tmp_path / "m.onnx"))
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)  # one file
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # dynamic batch
    assert {p.key for p in proto.metadata_props} >= {
        "input_size",
        "mean",
        "std",
        "interpolation",
        "crop_pct",
        "crop_mode",
        "label_names",
    }


class _Wrapped(torch.nn.Module):
    """A tiny timm model behind a forward that an exporter handles in a chosen, real way."""

    def __init__(self, forward):
        super().__init__()
        self.net = timm.create_model("mobilenetv3_small_050_dog", num_classes=4)
        self.pretrained_cfg, self.num_classes, self._forward = self.net.pretrained_cfg, 4, forward

    def forward(self, x):
        return self._forward(self.net, x)


def _data_dependent(net, x):  # torch.export cannot trace Python control flow on tensor values
    y = net(x)
    return y if y.abs().sum() >= 0 else -y


def _export_aware(net, x):  # differs from eager only while exporting: a real divergent export
    y = net(x)
    return y + 1.0 if torch.compiler.is_exporting() else y


def test_falls_back_to_torchscript_and_says_why(tmp_path):
    lines = []
    result = export_onnx(_Wrapped(_data_dependent).eval(), tmp_path / "m.onnx", log=lines.append)
    assert result.exporter == "torchscript" and result.verifications[0].passed
    assert any(line.startswith("dynamo exporter failed (") and "falling back to TorchScript" in line for line in lines)


def test_divergent_export_fails_and_leaves_no_file(tmp_path):
    with pytest.raises(ExportError, match="fp32 export diverges from PyTorch: .*FAIL"):
        export_onnx(_Wrapped(_export_aware).eval(), tmp_path / "model.onnx", log=lambda line: None)
    assert list(tmp_path.iterdir()) == []


def test_fp16_and_int8_variants(tmp_path, digits, checkpoint):
    model, _, _ = load_checkpoint("convnext_atto_dog", checkpoint)  # trained: int8 has real logits to keep
    result = export_onnx(
        model,
        tmp_path / "model.onnx",
        fp16=True,
        int8_calibration=digits / "train" / "1",
        verify_images=digits / "val",
        log=lambda line: None,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model_fp16.onnx", "model_int8.onnx"]
    by = {v.precision: v for v in result.verifications}
    assert by["fp16"].gate == GATES["fp16"] and by["fp16"].passed
    assert by["int8"].gate == GATES["int8"] and by["int8"].passed
    int8 = onnx.load(str(tmp_path / "model_int8.onnx"))
    assert any(n.op_type == "QuantizeLinear" for n in int8.graph.node)
    fp16 = onnx.load(str(tmp_path / "model_fp16.onnx"))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in fp16.graph.initializer)
    assert read_metadata(tmp_path / "model_int8.onnx")["input_size"] == [3, 32, 32]
    assert by["int8"].images == 360 and by["int8"].top1_agreement >= 0.9


def test_cli_export_report_and_errors(tmp_path):
    runner = CliRunner()
    out = tmp_path / "atto.onnx"
    for stale in (".atto.onnx.partial", ".atto_int8.onnx.partial.pre"):  # left by a killed run
        (tmp_path / stale).write_text("stale")
    report_path = tmp_path / "new" / "dir" / "r.json"  # missing folders are created
    result = runner.invoke(
        main,
        [
            "export",
            "mobilenetv3_small_050_dog",
            "--out",
            str(out),
            "--exporter",
            "torchscript",
            "--opset",
            "17",
            "--json",
            str(report_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "fp32: 2 images" in result.output and "PASS" in result.output
    assert f"wrote {out} (fp32, torchscript exporter, opset 17" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["atto.onnx", "new"]  # stale partials removed
    report = json.loads(report_path.read_text())
    assert report["exporter"] == "torchscript" and report["verification"][0]["passed"] is True
    assert onnx.load(str(out)).opset_import[0].version == 17
    for args, message in [
        (["export", "nope_dog", "--out", str(tmp_path / "x.onnx")], "unknown model 'nope_dog'"),
        (["export", "convnext_atto_dog", "--out", str(tmp_path / "x.pt")], "x.pt must end in .onnx"),
        (["export", "convnext_atto_dog", "--out", str(out / "x.onnx")], "atto.onnx is a file, not a folder"),
        (["export", str(out), "--out", str(tmp_path / "x.onnx")], "already an ONNX file"),
    ]:
        result = runner.invoke(main, args)
        assert result.exit_code != 0 and message in result.output, result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "x.onnx").exists()


def test_an_unwritable_file_is_not_an_exporter_failure(read_only):
    lines = []
    model = torch.nn.Conv2d(3, 4, 3).eval()
    with pytest.raises(PermissionError):
        _torch_export(model, torch.zeros(2, 3, 8, 8), read_only / "m.onnx", 18, True, False, lines.append)
    assert not any("falling back" in line for line in lines)  # TorchScript would not write it either


def test_outputs_are_refused_before_the_export(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="file is a file, not a folder"):  # before minutes of export, not after
        export_onnx(
            timm.create_model("mobilenetv3_small_050_dog"), tmp_path / "m.onnx", report=tmp_path / "file" / "r.json"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_sigterm_during_export_leaves_no_file(tmp_path):
    from PIL import Image

    (tmp_path / "calib").mkdir()
    for i in range(2):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(
            tmp_path / "calib" / f"{i}.png"
        )
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from timm_dog.cli import main; main()",
            "export",
            "mobilenetv3_small_050_dog",
            "--out",
            str(out / "m.onnx"),
            "--int8",
            str(tmp_path / "calib"),
            "--json",
            str(out / "r.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not (out.is_dir() and any(".partial" in p.name for p in out.iterdir())):
        assert proc.poll() is None and time.monotonic() < deadline, "the export ended before writing a partial"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "Aborted!" in stderr and "Traceback" not in stderr
    assert not out.exists()  # the partials, and the folder the export created


@pytest.mark.slow
def test_the_partials_of_an_export_killed_by_sigkill_are_removed_by_the_next_run(tmp_path):
    """Issue 23, point 14: SIGKILL (kill -9) cannot be caught, so the killed export leaves its hidden
    .NAME.partial files beside --out; the next run of the same command removes them and writes the files."""
    out = tmp_path / "out"
    args = [
        "export",
        "mobilenetv3_small_050_dog",
        "--out",
        str(out / "m.onnx"),
        "--exporter",
        "torchscript",
        "--json",
        str(out / "r.json"),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from timm_dog.cli import main; main()", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not (out.is_dir() and any(".partial" in p.name for p in out.iterdir())):
        assert proc.poll() is None and time.monotonic() < deadline, "the export ended before writing a partial"
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=60)
    left = sorted(p.name for p in out.iterdir())
    assert left and all(name.startswith(".") and ".partial" in name for name in left), left
    assert ".m.onnx.partial" in left  # beside --out, as `export --help` and docs/cli.md say
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["m.onnx", "r.json"]
    help_text = " ".join(CliRunner().invoke(main, ["export", "--help"]).output.split())
    assert (
        "written as a hidden .NAME.partial beside it until verified; one left by a killed run (kill -9) is "
        "removed by the next export to the same --out" in help_text
    )


class _CondConvNet(torch.nn.Module):
    """A CondConv2d with per-sample expert weights (as in efficientnet_cc_*): neither ONNX exporter traces it."""

    def __init__(self):
        from timm.layers import CondConv2d

        super().__init__()
        self.conv = CondConv2d(3, 8, 3, padding=1, num_experts=2)
        self.head = torch.nn.Linear(8, 10)
        self.num_classes = 10
        self.pretrained_cfg = {
            "input_size": (3, 32, 32),
            "mean": (0.5,) * 3,
            "std": (0.5,) * 3,
            "crop_pct": 1.0,
            "interpolation": "bilinear",
        }

    def forward(self, x):
        routing = torch.sigmoid(x.mean((2, 3))[:, :1].repeat(1, 2))
        return self.head(self.conv(x, routing).mean((2, 3)))


def test_a_model_no_exporter_can_trace_is_one_clear_error(tmp_path):
    with pytest.raises(
        ExportError,
        match=r"the TorchScript exporter cannot export this model either "
        r"\(SymbolicValueError: Unsupported: ONNX export of convolution",
    ):
        export_onnx(_CondConvNet(), tmp_path / "m.onnx", log=lambda line: None)
    assert list(tmp_path.iterdir()) == []


def _identity_onnx(path):
    """A one-node ONNX file (input -> logits): enough to open a session in milliseconds."""
    info = [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, ["batch", 4]) for n in ("input", "logits")]
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["input"], ["logits"])], "g", info[:1], info[1:])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)]), str(path))
    return path


def test_sessions_use_the_physical_cores_without_spinning_all_optimizations(tmp_path):
    import onnxruntime as ort

    path = _identity_onnx(tmp_path / "id.onnx")
    for threads, want in ((None, physical_cores()), (1, 1)):
        session = inference_session(path, threads=threads)
        options = session.get_session_options()
        assert options.intra_op_num_threads == want
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
        assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert describe_session(session) == "CPUExecutionProvider, 1 thread, no spinning, ORT_ENABLE_ALL"
    assert 1 <= physical_cores() <= len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    "available, want",
    [
        (["CUDAExecutionProvider", "CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"]),
        (["AzureExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"]),
    ],
)
def test_provider_selection_takes_cuda_when_onnxruntime_gpu_has_it(available, want, monkeypatch):
    import onnxruntime as ort

    opened = {}
    monkeypatch.setattr(ort, "get_available_providers", lambda: available)
    monkeypatch.setattr(
        ort, "InferenceSession", lambda path, options, providers: opened.update(options=options, providers=providers)
    )
    inference_session("model.onnx", threads=3)
    assert opened["providers"] == want  # the same options on every provider
    assert opened["options"].intra_op_num_threads == 3


class _TinyGelu(torch.nn.Module):
    """Conv -> GELU -> pool -> linear with a timm pretrained_cfg: the smallest model export_onnx takes."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc, self.num_classes = torch.nn.Conv2d(3, 8, 3, stride=4), torch.nn.Linear(8, 4), 4
        self.pretrained_cfg = {
            **timm.models.get_pretrained_cfg("mobilenetv3_small_050").to_dict(),
            "input_size": (3, 32, 32),
        }

    def forward(self, x):
        return self.fc(torch.nn.functional.gelu(self.conv(x)).mean((2, 3)))


def test_default_route_writes_native_gelu(tmp_path):
    """The default export (dynamo, opset 20) writes GELU as one Gelu node: at opset 18 the dynamo graph's
    Erf/Div/Mul is left unfused by onnxruntime (measured: up to 29 % slower, docs/measurements.md's route table)."""
    result = export_onnx(_TinyGelu().eval(), tmp_path / "m.onnx", log=lambda line: None)
    assert (result.exporter, result.opset) == (EXPORTER, OPSET) == ("dynamo", 20) and result.verifications[0].passed
    ops = {n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node}
    assert "Gelu" in ops and "Erf" not in ops
    export = main.commands["export"].params
    assert {p.name: p.default for p in export if p.name in ("opset", "exporter")} == {"opset": 20, "exporter": "dynamo"}


def test_export_warns_when_int8_is_slower(tmp_path, digits, checkpoint, monkeypatch):
    timed = []  # injected timings: the real ones are measured at export time, never asserted
    monkeypatch.setattr(
        "timm_dog.onnx.session_latency_ms",
        lambda path, batch: (
            timed.append((Path(path).name, batch.shape)) or (12.5 if "_int8" in Path(path).name else 10.0)
        ),
    )
    result = CliRunner().invoke(
        main,
        [
            "export",
            "convnext_atto_dog",
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(tmp_path / "m.onnx"),
            "--exporter",
            "torchscript",
            "--int8",
            str(digits / "train" / "1"),
            "--verify-images",
            str(digits / "val" / "3"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert timed == [(".m.onnx.partial", (8, 3, 32, 32)), (".m_int8.onnx.partial", (8, 3, 32, 32))]
    assert (
        "int8 speed on this machine: 12.5 ms per batch of 8 against fp32's 10.0 ms (0.80x, median of 5)"
        in result.output
    )
    assert (
        "warning: the int8 file is slower than fp32 on this machine (12.5 ms against 10.0 ms per batch of 8): use "
        "the fp32 file here, or measure on the machine that will run it"
    ) in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m_int8.onnx"]  # a slow int8 is still written
    lines = []
    monkeypatch.setattr("timm_dog.onnx.session_latency_ms", lambda path, batch: 5.0 if "_int8" in path else 10.0)
    _compare_int8_speed("m.onnx", "m_int8.onnx", np.zeros((3, 3, 4, 4), np.float32), lines.append)
    assert lines == ["int8 speed on this machine: 5.0 ms per batch of 8 against fp32's 10.0 ms (2.00x, median of 5)"]


def _verification(agreed, images, precision="fp32", batch1_agrees=True):
    return Verification(
        precision=precision,
        images=images,
        top1_agreed=agreed,
        max_abs_diff=1e-6,
        logit_scale=5.0,
        cosine=1.0,
        batch1_max_abs_diff=1e-6,
        batch1_cosine=1.0,
        batch1_top1_agrees=batch1_agrees,
        gate=GATES[precision],
        torch="torch (cpu, fp32)",
        session="CPUExecutionProvider",
    )


def test_verification_counts_what_it_compared_and_never_rounds_up():
    """One disagreement in 360 is 359/360 (99.72 %), never '100%'; the batch-1 row is its own item."""
    check = _verification(359, 360)
    assert "top-1 agreement 359/360 (99.72 %)" in check.summary() and check.summary().endswith(
        "top-1 agrees -> FAIL (gate: max|Δ| ≤ 0.0001·max(1, max|logit|), cosine ≥ 0.99999, top-1 agreement ≥ 100 %)"
    )
    assert "(99.99 %)" in _verification(99_999, 100_000).summary()  # rounded down, not up to 100.00
    assert "360/360 (100.00 %)" in _verification(360, 360).summary() and _verification(360, 360).passed
    assert not _verification(360, 360, batch1_agrees=False).passed  # fp32: the batch-1 row must agree too
    assert _verification(330, 360, "int8", batch1_agrees=False).passed  # int8's gate allows disagreements
    record = check.to_dict()
    assert (record["images"], record["top1_agreed"], record["top1_agreement"]) == (360, 359, 359 / 360)
    assert record["batch1"] == {"max_abs_diff": 1e-6, "cosine": 1.0, "top1_agrees": True, "passed": True}
    assert record["summary"] == check.summary() and record["passed"] is False


def test_calibration_images_are_drawn_evenly_over_folders(tmp_path):
    files = [tmp_path / folder / f"{i:02d}.png" for folder, n in (("a", 2), ("b", 10), ("c", 11)) for i in range(n)]
    chosen = calibration_sample(files, 12)
    by_folder = {folder: [p.name for p in chosen if p.parent.name == folder] for folder in "abc"}
    # the small folder gives all it has, the others share the rest, each spread over its files (not its first ones)
    assert by_folder == {
        "a": ["00.png", "01.png"],
        "b": ["00.png", "02.png", "04.png", "07.png", "09.png"],
        "c": ["00.png", "02.png", "05.png", "08.png", "10.png"],
    }
    assert calibration_sample(files, 100) == sorted(files) and len(calibration_sample(files, 1)) == 1
    with pytest.raises(ValueError, match="at least 1"):
        calibration_sample(files, 0)


def test_int8_calibration_takes_the_train_split_of_a_folder_of_splits(tmp_path, digits):
    """Issue 23, point 13: --int8 on a dataset root calibrates on train/ alone and says so (was: train and
    validation images together); a folder without split folders is taken whole; splits without train are refused."""
    train = sorted(p for p in (digits / "train").rglob("*.png"))
    assert calibration_files(digits) == (
        train,
        f"{digits / 'train'} (its train split: {digits} holds the split folders train, val)",
    )
    assert calibration_files(digits / "val") == (sorted((digits / "val").rglob("*.png")), str(digits / "val"))
    for split in ("validation", "test"):
        (tmp_path / split / "cat").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / split / "cat" / "0.png")
    with pytest.raises(
        ValueError,
        match=f"--int8 {tmp_path} holds the split folders test, validation but no train/ "
        rf"\(or training/\): give the folder of the images to calibrate on, e.g. ",
    ):
        calibration_files(tmp_path)
    (tmp_path / "training" / "dog").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "training" / "dog" / "1.png")
    assert calibration_files(tmp_path)[0] == [tmp_path / "training" / "dog" / "1.png"]


def test_cli_int8_calibration_is_capped_with_progress_and_the_json_is_what_was_printed(tmp_path, digits, checkpoint):
    report = tmp_path / "export.json"
    result = CliRunner().invoke(
        main,
        [
            "export",
            "convnext_atto_dog",
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(tmp_path / "m.onnx"),
            "--exporter",
            "torchscript",
            "--int8",
            str(digits),
            "--calibration-images",
            "30",
            "--verify-images",
            str(digits / "val" / "3"),
            "--json",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    found = len([p for p in (digits / "train").rglob("*.png")])  # the train split only (issue 23, point 13)
    assert (
        f"int8 calibration: 30 of the {found:,} images under {digits / 'train'} (its train split: {digits} holds "
        "the split folders train, val) (10 folders, drawn evenly" in result.output
    )
    assert "int8 calibration: 100%" in result.stderr and "30/30" in result.stderr  # tqdm, one line per redraw
    assert "\r" not in result.stderr
    for check in json.loads(report.read_text())["verification"]:
        assert check["summary"] in result.output  # the JSON holds the numbers that were printed
        assert f"{check['top1_agreed']}/{check['images']} (" in check["summary"]
        assert check["images"] == len(list((digits / "val" / "3").glob("*.png")))
        assert check["torch"] == "torch (cpu, fp32)" and check["onnxruntime"].startswith("CPUExecutionProvider")


def test_export_device_the_file_is_the_same_and_cuda_is_one_line(tmp_path, checkpoint):
    def export(*args):
        return CliRunner().invoke(
            main, ["export", "convnext_atto_dog", "--checkpoint", str(checkpoint), "--exporter", "torchscript", *args]
        )

    first, second = (
        export("--out", str(tmp_path / "cpu.onnx"), "--device", "cpu"),
        export("--out", str(tmp_path / "auto.onnx")),
    )
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert (tmp_path / "cpu.onnx").read_bytes() == (tmp_path / "auto.onnx").read_bytes()
    assert "torch (cpu, fp32) against onnxruntime (CPUExecutionProvider" in first.output
    for device, message in (
        ("cuda", "Error: device 'cuda': torch sees no CUDA device; use --device cpu or auto"),
        ("cuda:1", "device 'cuda:1': torch sees no CUDA device"),
        ("tpu", "device 'tpu' is not one of auto, cpu, cuda, cuda:N"),
    ):
        if device.startswith("cuda") and torch.cuda.is_available():
            continue
        result = export("--out", str(tmp_path / "x.onnx"), "--device", device)
        assert result.exit_code == 1 and len(result.output.splitlines()) == 1 and message in result.output, (
            result.output
        )
    assert not (tmp_path / "x.onnx").exists()


def test_verification_runs_onnxruntime_where_torch_runs(monkeypatch):
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert verification_providers(torch.device("cuda", 1)) == [
        ("CUDAExecutionProvider", {"device_id": 1}),
        "CPUExecutionProvider",
    ]
    assert verification_providers(torch.device("cpu")) == ["CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])  # onnxruntime, no -gpu
    assert verification_providers(torch.device("cuda", 0)) == ["CPUExecutionProvider"]


def test_no_tf32_during_the_check_and_as_before_after():
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    before = matmul.fp32_precision, conv.fp32_precision
    with no_tf32():
        assert (matmul.fp32_precision, conv.fp32_precision) == ("ieee", "ieee")
    assert (matmul.fp32_precision, conv.fp32_precision) == before
