"""ONNX export with the preprocessing in the file's metadata, verified against PyTorch on real images.

Every file is written to a hidden ``.partial`` name first and moved into place only after onnxruntime has
reproduced PyTorch's logits within the gate of its precision, so a divergent (or interrupted) export leaves
nothing behind (see :mod:`timm_dog.outputs`).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from .constants import CALIBRATION_IMAGES, EXPORTER, OPSET, SPLIT_ALIASES, SPLIT_NAMES  # noqa: F401  (EXPORTER: re-exported, timm_dog.onnx.EXPORTER)
from .errors import TimmDogError
from .outputs import JSON, check_output, remove_partials, writing
from .preprocess import Preprocess, image_files, open_image, sample_photos
from .sessions import INPUT, OUTPUT, decode_metadata, describe_session, inference_session, physical_cores  # noqa: F401

logger = logging.getLogger(__name__)

MAX_BYTES = 2 * 1024**3  # protobuf's limit for one self-contained file
VERIFY_BATCH = 32


@dataclass(frozen=True)
class Gate:
    """What a precision must reproduce: max |Δ| ≤ rel_max_abs × max(1, max |logit|), cosine, top-1 agreement."""

    rel_max_abs: float | None
    min_cosine: float
    min_top1_agreement: float

    def describe(self) -> str:
        parts = [f"max|Δ| ≤ {self.rel_max_abs:g}·max(1, max|logit|)"] if self.rel_max_abs else []
        return ", ".join(
            parts + [f"cosine ≥ {self.min_cosine:g}", f"top-1 agreement ≥ {self.min_top1_agreement * 100:g} %"]
        )

    def close(self, max_abs_diff: float, logit_scale: float, cosine: float) -> bool:
        """Whether logits that differ by ``max_abs_diff`` with ``cosine`` meet the max|Δ| and cosine gates."""
        return bool(
            np.isfinite(max_abs_diff)
            and (self.rel_max_abs is None or max_abs_diff <= self.rel_max_abs * max(1.0, logit_scale))
            and cosine >= self.min_cosine
        )


GATES = {
    "fp32": Gate(rel_max_abs=1e-4, min_cosine=0.99999, min_top1_agreement=1.0),
    "fp16": Gate(rel_max_abs=None, min_cosine=0.999, min_top1_agreement=1.0),
    "int8": Gate(rel_max_abs=None, min_cosine=0.95, min_top1_agreement=0.9),
}
SUFFIX = {"fp32": "", "fp16": "_fp16", "int8": "_int8"}


class ExportError(TimmDogError):
    """The export failed or diverged from PyTorch; no output file was left."""


def percent(count: int, total: int) -> str:
    """'359/360 (99.72 %)': rounded down, so that one disagreement never reads 100.00 %."""
    return f"{count}/{total} ({10000 * count // total / 100:.2f} %)"


@dataclass
class Verification:
    """The images in batches of up to ``VERIFY_BATCH`` (``images`` rows compared), and the first image alone
    (the batch-1 row: the batch dimension is dynamic), each through PyTorch and onnxruntime."""

    precision: str
    images: int
    top1_agreed: int  # of ``images``
    max_abs_diff: float
    logit_scale: float
    cosine: float  # the lowest of the ``images`` rows
    batch1_max_abs_diff: float
    batch1_cosine: float
    batch1_top1_agrees: bool
    gate: Gate
    torch: str = ""  # what ran on the PyTorch side, e.g. 'torch (cuda:0, fp32, TF32 off)'
    session: str = ""  # the onnxruntime session that ran, see describe_session

    @property
    def top1_agreement(self) -> float:
        return self.top1_agreed / self.images

    @property
    def batch1_passed(self) -> bool:
        """The batch-1 row meets the max|Δ| and cosine gates, and its top-1 agrees where the gate wants 100 %."""
        return self.gate.close(self.batch1_max_abs_diff, self.logit_scale, self.batch1_cosine) and (
            self.batch1_top1_agrees or self.gate.min_top1_agreement < 1
        )

    @property
    def passed(self) -> bool:
        return (
            self.gate.close(self.max_abs_diff, self.logit_scale, self.cosine)
            and self.top1_agreement >= self.gate.min_top1_agreement
            and self.batch1_passed
        )

    def summary(self) -> str:
        return (
            f"{self.precision}: {self.images} images in batches of up to {VERIFY_BATCH}, {self.torch} against "
            f"onnxruntime ({self.session}): top-1 agreement {percent(self.top1_agreed, self.images)}, max|Δ| "
            f"{self.max_abs_diff:.3g} (logit scale {self.logit_scale:.3g}), lowest cosine {self.cosine:.6f}; "
            f"batch-1 row (the first image again, alone): "
            f"max|Δ| {self.batch1_max_abs_diff:.3g}, top-1 {'agrees' if self.batch1_top1_agrees else 'differs'} "
            f"-> {'PASS' if self.passed else 'FAIL'} (gate: {self.gate.describe()})"
        )

    def to_dict(self) -> dict:
        return {
            "precision": self.precision,
            "torch": self.torch,
            "onnxruntime": self.session,
            "images": self.images,
            "top1_agreed": self.top1_agreed,
            "top1_agreement": self.top1_agreement,
            "max_abs_diff": self.max_abs_diff,
            "logit_scale": self.logit_scale,
            "cosine": self.cosine,
            "batch1": {
                "max_abs_diff": self.batch1_max_abs_diff,
                "cosine": self.batch1_cosine,
                "top1_agrees": self.batch1_top1_agrees,
                "passed": self.batch1_passed,
            },
            "gate": self.gate.describe(),
            "passed": bool(self.passed),
            "summary": self.summary(),
        }


@dataclass
class ExportResult:
    files: dict  # precision -> Path
    exporter: str
    opset: int
    verifications: list

    def to_dict(self) -> dict:
        return {
            "files": {k: str(v) for k, v in self.files.items()},
            "exporter": self.exporter,
            "opset": self.opset,
            "verification": [v.to_dict() for v in self.verifications],
        }


def label_names(model) -> list:
    """Class names: the model's ``label_names``, ImageNet's descriptions, or ``class_<i>``."""
    from timm.data import ImageNetInfo, infer_imagenet_subset

    names = model.pretrained_cfg.get("label_names")
    if names and len(names) == model.num_classes:
        return [names[i] for i in range(model.num_classes)] if isinstance(names, dict) else list(names)
    subset = infer_imagenet_subset(model)
    if subset:
        return list(ImageNetInfo(subset).label_descriptions())
    return [f"class_{i}" for i in range(model.num_classes)]


def model_metadata(model, architecture: str | None = None) -> dict:
    """What inference needs besides the graph, as ONNX metadata_props (JSON values)."""
    from . import __version__

    props = {
        **Preprocess.from_model(model).to_config(),
        "label_names": label_names(model),
        "num_classes": model.num_classes,
        "architecture": architecture or model.pretrained_cfg.get("architecture"),
        "producer": f"timm-dog {__version__}",
    }
    return {k: json.dumps(v) for k, v in props.items()}


def read_metadata(path) -> dict:
    """The metadata of an ONNX file written by :func:`export_onnx`, decoded and checked."""
    model = onnx.load(str(path), load_external_data=False)
    dims = model.graph.output[0].type.tensor_type.shape.dim if model.graph.output else []
    width = dims[1].dim_value if len(dims) == 2 and dims[1].HasField("dim_value") else None
    return decode_metadata({p.key: p.value for p in model.metadata_props}, path, width)


def verification_providers(device: torch.device) -> list:
    """onnxruntime's providers for a check on ``device``: its CUDA provider on that GPU when onnxruntime has one
    (onnxruntime-gpu), else the CPU."""
    import onnxruntime as ort

    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


@contextlib.contextmanager
def no_tf32():
    """fp32 matmuls and convolutions in full precision on CUDA (no TF32) inside the block, as before it after."""
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(matmul, "fp32_precision"):  # torch >= 2.9
        saved = matmul.fp32_precision, conv.conv.fp32_precision
        matmul.fp32_precision = conv.conv.fp32_precision = "ieee"
        try:
            yield
        finally:
            matmul.fp32_precision, conv.conv.fp32_precision = saved
    else:
        saved = matmul.allow_tf32, conv.allow_tf32
        matmul.allow_tf32 = conv.allow_tf32 = False
        try:
            yield
        finally:
            matmul.allow_tf32, conv.allow_tf32 = saved


def verify(model, onnx_path, images: Sequence, precision: str = "fp32", device="cpu") -> Verification:
    """Run ``images`` (a float tensor [N, 3, H, W]) through PyTorch on ``device`` (TF32 off) and onnxruntime
    (:func:`verification_providers`), in batches of up to ``VERIFY_BATCH``, and once more the first image alone."""
    device = torch.device(device)
    session = inference_session(onnx_path, verification_providers(device))
    model = model.to(device)
    chunks = list(images.split(VERIFY_BATCH)) + [images[:1]]
    with torch.inference_mode(), no_tf32():
        want = np.concatenate([model(chunk.to(device)).double().cpu().numpy() for chunk in chunks])
    got = np.concatenate([session.run([OUTPUT], {INPUT: chunk.numpy()})[0] for chunk in chunks]).astype(np.float64)
    diff = np.where(np.isfinite(got).all(axis=1), np.abs(got - want).max(axis=1), np.inf)
    cosine = np.nan_to_num((got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1) + 1e-30))
    agrees = got.argmax(1) == want.argmax(1)
    n = len(images)
    return Verification(
        precision=precision,
        images=n,
        top1_agreed=int(agrees[:n].sum()),
        max_abs_diff=float(diff[:n].max()),
        logit_scale=float(np.abs(want).max()),
        cosine=float(cosine[:n].min()),
        batch1_max_abs_diff=float(diff[n]),
        batch1_cosine=float(cosine[n]),
        batch1_top1_agrees=bool(agrees[n]),
        gate=GATES[precision],
        torch=f"torch ({device}, fp32{', TF32 off' * (device.type == 'cuda')})",
        session=describe_session(session),
    )


def export_onnx(
    model,
    out,
    *,
    opset: int = OPSET,
    dynamo: bool = True,
    simplify: bool = True,
    fp16: bool = False,
    int8_calibration: str | None = None,
    calibration_images: int = CALIBRATION_IMAGES,
    verify_images: str | None = None,
    device="cpu",
    architecture: str | None = None,
    report=None,
    log: Callable[[str], None] = logger.info,
) -> ExportResult:
    """Export ``model`` (on the CPU) to ``out`` (+ ``_fp16`` / ``_int8`` variants, the int8 one calibrated on
    up to ``calibration_images`` images of ``int8_calibration``, see :func:`calibration_sample`), verify each with
    PyTorch on ``device`` (see :func:`verify`), then move them into place, together with ``report`` (a JSON file
    of :meth:`ExportResult.to_dict`) when given. The files do not depend on ``device``."""
    out = check_output(out, (".onnx",))
    report = check_output(report, JSON) if report else None
    n_bytes = sum(p.numel() * 4 for p in model.parameters())
    if n_bytes >= MAX_BYTES:
        raise TimmDogError(f"the weights take {n_bytes / 1024**3:.1f} GiB in fp32: one ONNX file holds less than 2 GiB")
    model = model.eval()
    preprocess = Preprocess.from_model(model)
    paths = image_files(verify_images) if verify_images else sample_photos()
    images = torch.from_numpy(np.stack([preprocess(open_image(p)) for p in paths]))
    calibration = None
    if int8_calibration:
        found, where = calibration_files(int8_calibration)
        calibration = calibration_sample(found, calibration_images)
        classes = len({path.parent for path in found})
        log(
            f"int8 calibration: {len(calibration):,} of the {len(found):,} images under {where} "
            f"({classes} folder{'s' * (classes != 1)}, drawn evenly; --calibration-images sets the number)"
        )

    precisions = ["fp32"] + ["fp16"] * fp16 + ["int8"] * bool(calibration)
    variants = {p: out.with_name(f"{out.stem}{suffix}.onnx") for p, suffix in SUFFIX.items()}
    for path in variants.values():  # what a killed run left, of every variant of this output
        remove_partials(path)
    files = {p: variants[p] for p in precisions}
    with writing(*files.values(), *([report] if report else [])) as partials:
        partial = dict(zip(precisions, partials))
        exporter = _torch_export(
            model,
            images[:2] if len(images) > 1 else images.repeat(2, 1, 1, 1),
            partial["fp32"],
            opset,
            dynamo,
            simplify,
            log,
        )
        metadata = model_metadata(model, architecture)
        _set_metadata(partial["fp32"], metadata)
        if fp16:
            _to_fp16(partial["fp32"], partial["fp16"], metadata)
        if calibration:
            quantize_int8(partial["fp32"], partial["int8"], calibration, preprocess, metadata)
        verifications = []
        try:
            for precision in precisions:
                check = verify(model, partial[precision], images, precision, device)
                log(check.summary())
                verifications.append(check)
        finally:
            model.cpu()
        failed = [v for v in verifications if not v.passed]
        if failed:
            raise ExportError("; ".join(f"{v.precision} export diverges from PyTorch: {v.summary()}" for v in failed))
        if calibration:
            _compare_int8_speed(partial["fp32"], partial["int8"], images.numpy(), log)
        result = ExportResult(files=files, exporter=exporter, opset=opset, verifications=verifications)
        if report:
            partials[-1].write_text(json.dumps(result.to_dict(), indent=2))
    return result


def calibration_files(folder) -> tuple:
    """(image files, where they are, in words) for ``--int8 FOLDER``: the images of its train split (train/ or
    training/) when it holds split folders (train/, val/, test/, …), so that no validation image tunes the
    quantization; else every image under it. A ValueError when it holds splits but no train split."""
    root = Path(folder)
    splits = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name in SPLIT_NAMES) if root.is_dir() else []
    if not splits:
        return image_files(root), str(root)
    train = next((root / name for name in SPLIT_ALIASES[0] if (root / name).is_dir()), None)
    if train is None:
        raise TimmDogError(
            f"--int8 {root} holds the split folders {', '.join(splits)} but no train/ (or training/): "
            f"give the folder of the images to calibrate on, e.g. {root / splits[0]}"
        )
    return image_files(train), f"{train} (its train split: {root} holds the split folders {', '.join(splits)})"


def calibration_sample(files: list, count: int) -> list:
    """Up to ``count`` of ``files`` drawn evenly over their folders (the classes of an ImageFolder): each folder
    gives an equal share (a smaller one all it has, the rest shared by the others), spread over its sorted files."""
    if count < 1:
        raise TimmDogError(f"--calibration-images {count}: give at least 1")
    folders: dict = {}
    for path in sorted(files):
        folders.setdefault(path.parent, []).append(path)
    chosen, left = [], min(count, len(files))
    for i, members in enumerate(sorted(folders.values(), key=len)):
        take = min(len(members), left // (len(folders) - i))
        chosen += [members[j] for j in np.linspace(0, len(members) - 1, take).round().astype(int)] if take else []
        left -= take
    return sorted(chosen)


def session_latency_ms(path, batch: np.ndarray, runs: int = 5) -> float:
    """Median ms of ``runs`` runs of ``batch`` in a fresh session of ``path``, after one warm-up run."""
    import time

    session = inference_session(path)
    session.run([OUTPUT], {INPUT: batch})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run([OUTPUT], {INPUT: batch})
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def _compare_int8_speed(fp32, int8, images: np.ndarray, log, batch: int = 8) -> None:
    """Time the fp32 and int8 files at ``batch`` (each in its own block) and say so; a warning if int8 is slower."""
    x = np.ascontiguousarray(np.resize(images, (batch, *images.shape[1:])), dtype=np.float32)
    fp32_ms, int8_ms = session_latency_ms(fp32, x), session_latency_ms(int8, x)
    log(
        f"int8 speed on this machine: {int8_ms:.1f} ms per batch of {batch} against fp32's {fp32_ms:.1f} ms "
        f"({fp32_ms / int8_ms:.2f}x, median of 5)"
    )
    if int8_ms > fp32_ms:
        log(
            f"warning: the int8 file is slower than fp32 on this machine ({int8_ms:.1f} ms against "
            f"{fp32_ms:.1f} ms per batch of {batch}): use the fp32 file here, or measure on the machine that will "
            "run it"
        )


def _torch_export(model, example, path, opset, dynamo, simplify, log) -> str:
    """torch.onnx's dynamo exporter, or the TorchScript one (as asked, or when dynamo fails)."""
    if dynamo:
        try:
            with torch.inference_mode(False), _quiet():
                torch.onnx.export(
                    model,
                    (example,),
                    str(path),
                    dynamo=True,
                    opset_version=opset,
                    external_data=False,
                    input_names=[INPUT],
                    output_names=[OUTPUT],
                    optimize=simplify,
                    dynamic_shapes=({0: torch.export.Dim("batch")},),
                )
            return "dynamo"
        except OSError:  # writing the file failed: TorchScript would fail the same way
            raise
        except Exception as error:  # any exporter failure: fall back, and say why
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            log(f"dynamo exporter failed ({type(error).__name__}: {reason[:300]}); falling back to TorchScript")
    try:
        with _quiet():
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
            )
    except OSError:
        raise
    except Exception as error:  # neither exporter can trace this model
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(
            f"the TorchScript exporter cannot export this model either ({type(error).__name__}: "
            f"{reason.split('  [')[0][:200]})"
        ) from None
    if simplify:
        import onnxscript.optimizer

        onnx.save(onnxscript.optimizer.optimize(onnx.load(str(path))), str(path))
    return "torchscript"


class _quiet:
    """Silence the exporters' and quantizer's progress prints, logs and warnings (errors still raise)."""

    def __enter__(self):
        import contextlib
        import io
        import warnings

        self._stack = contextlib.ExitStack()
        self._stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        self._stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
        self._stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        self._stack.callback(logging.disable, logging.NOTSET)
        return self

    def __exit__(self, *exc):
        return self._stack.__exit__(*exc)


def _set_metadata(path, metadata: dict, model: onnx.ModelProto | None = None) -> None:
    """Write ``model`` (default: the file at ``path``) to ``path`` with ``metadata``, after onnx's full check."""
    model = model if model is not None else onnx.load(str(path))
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, metadata)
    model.producer_name = "timm-dog"
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def _to_fp16(src, dst, metadata) -> None:
    """Weights and activations in fp16; inputs and outputs stay fp32."""
    import onnx_ir
    from onnxruntime.transformers.float16 import convert_float_to_float16

    with _quiet():
        converted = onnx_ir.from_proto(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True))
    converted.graph.sort()  # the converter appends its input casts at the end of the node list
    _set_metadata(dst, metadata, onnx_ir.to_proto(converted))


def quantize_int8(
    src,
    dst,
    calibration: list,
    preprocess: Preprocess,
    metadata: dict,
    *,
    quant_format: str = "QDQ",
    pre_process: bool = True,
    exclude_stem_head: bool = True,
) -> None:
    """Static int8 quantization (int8 weights per channel, uint8 activations) calibrated on ``calibration``:
    ``quant_format`` QDQ or QOperator, after onnxruntime's ``quant_pre_process`` or not, with the first
    convolution (stem) and the last Conv/Gemm/MatMul (head) left in fp32 or not. The defaults were the fastest
    at full agreement for ConvNeXt (docs/measurements.md, benchmarks/bench_onnx.py int8)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    from .progress import progress

    bar = progress(calibration, desc="int8 calibration", unit="image")  # on stderr, which _quiet silences

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.files = iter(bar)

        def get_next(self):
            path = next(self.files, None)
            return None if path is None else {INPUT: preprocess(open_image(path))[None]}

    prepared = Path(str(dst) + ".pre")
    try:
        with _quiet():
            if pre_process:
                quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
            source = str(prepared if pre_process else src)
            weighted = [n.name for n in onnx.load(source).graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
            quantize_static(
                source,
                str(dst),
                Reader(),
                quant_format=QuantFormat[quant_format],
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=[weighted[0], weighted[-1]] if exclude_stem_head and weighted else [],
            )
    finally:
        bar.close()
        prepared.unlink(missing_ok=True)
    _set_metadata(dst, metadata)
