"""One interface for PyTorch and onnxruntime classifiers: preprocess an image, run a batch, name the classes."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import TimmDogError
from .preprocess import Preprocess, to_rgb
from .sessions import INPUT, OUTPUT, decode_metadata, describe_session, inference_session


@dataclass
class Classifier:
    source: str
    backend: str  # what runs: "torch (cuda:0, bf16)", "onnxruntime (CPUExecutionProvider, 2 threads, no spinning, …)"
    architecture: str
    labels: list
    preprocess: Callable  # PIL image (any mode, see preprocess.to_rgb) -> float32 array [3, H, W]; picklable
    run: Callable  # float32 array [N, 3, H, W] -> logits [N, classes]
    weights_sha256: str | None = None  # torch: checkpoints.tensors_sha256 of the weights; ONNX: the file's SHA-256
    device: str = "cpu"  # where the batches go: "cpu" or "cuda:N"
    weights: dict | None = None  # torch: checkpoints.Weights.to_dict() (checkpoint, EMA or not, epoch, model args)

    def top_k(self, logits: np.ndarray, k: int = 5) -> list:
        """[(label, probability), ...] for each row, best first."""
        from scipy.special import softmax  # scipy: when probabilities are asked for only

        probs = softmax(np.asarray(logits, dtype=np.float64), axis=1)
        k = min(k, probs.shape[1])
        return [[(self.labels[i], float(row[i])) for i in np.argsort(-row, kind="stable")[:k]] for row in probs]


AMP = {"bf16": "bfloat16", "fp16": "float16"}


def resolve_device(spec: str = "auto"):
    """``auto`` (CUDA when torch sees one, else the CPU), ``cpu``, ``cuda`` or ``cuda:N`` -> a ``torch.device``
    (``cuda`` -> ``cuda:0``); a ValueError for anything else or a CUDA device torch does not see."""
    import torch  # not for ONNX files: the command line resolves devices before it loads a source

    index = _cuda_index(spec)
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if index >= count:
        seen = f"{count} CUDA device(s), cuda:0-{count - 1}" if count else "no CUDA device"
        raise TimmDogError(f"device {spec!r}: torch sees {seen}; use --device cpu or auto")
    return torch.device("cuda", index)


def load_classifier(
    source: str,
    checkpoint: str | None = None,
    device: str = "auto",
    amp: str | None = None,
    threads: int | None = None,
    use_ema: bool = False,
) -> Classifier:
    """A timm name (+ checkpoint), ``hf-hub:``, ``local-dir:`` or an ``.onnx`` file, on ``device``
    (see :func:`resolve_device`); ``amp`` (bf16/fp16 autocast) for torch sources only; an ONNX session's
    ``threads`` intra-op threads (default: the physical cores); ``use_ema``: a checkpoint's state_dict_ema."""
    if source.endswith(".onnx"):
        if use_ema:
            raise TimmDogError("--ema applies to a train.py checkpoint, not to an .onnx file")
        if checkpoint:
            raise TimmDogError("--checkpoint applies to a model name, not to an .onnx file")
        if amp:
            raise TimmDogError("--amp applies to torch sources; an ONNX file's precision is fixed at export (--fp16)")
        return _onnx_classifier(source, device, threads)
    return torch_classifier(source, checkpoint, device, amp, use_ema)


def torch_classifier(
    source: str, checkpoint: str | None = None, device: str = "auto", amp: str | None = None, use_ema: bool = False
) -> Classifier:
    try:
        from .sources import load_model
    except (
        ImportError
    ) as error:  # torch and timm: not for ONNX files; a torch-free install: predict and eval run .onnx files only
        raise TimmDogError(
            f"{source}: loading it needs torch and timm, which cannot be imported here ({error}); "
            "without them, give an .onnx file"
        ) from None

    device = resolve_device(device)  # before the model is loaded
    model, weights = load_model(source, checkpoint, use_ema)
    return model_classifier(model, source, weights, device, amp)


def model_classifier(model, source: str, weights=None, device="cpu", amp: str | None = None) -> Classifier:
    """A classifier around an in-memory timm model (put in eval mode, on ``device``; channels_last on CUDA),
    preprocessing from its ``pretrained_cfg``; ``amp`` ('bf16' or 'fp16') runs it under autocast. ``weights``:
    the model's :class:`checkpoints.Weights` (what it was loaded from), when known."""
    import torch  # torch, timm and onnx: not for ONNX files
    from timm.data import create_transform, resolve_data_config

    from .onnx import label_names

    device = resolve_device(str(device))
    if amp not in (None, *AMP):
        raise TimmDogError(f"amp {amp!r} is not one of {', '.join(AMP)}")
    memory_format = torch.channels_last if device.type == "cuda" else torch.preserve_format
    model = model.eval().to(device, memory_format=memory_format)
    transform = create_transform(**resolve_data_config({}, model=model))

    def run(batch):
        batch = torch.as_tensor(batch).to(device, non_blocking=True, memory_format=memory_format)
        with torch.inference_mode(), torch.autocast(device.type, getattr(torch, AMP[amp])) if amp else nullcontext():
            return model(batch).float().cpu().numpy()

    return Classifier(
        source=source,
        backend=f"torch ({device}, {amp or 'fp32'})",
        architecture=model.pretrained_cfg.get("architecture", source),
        labels=label_names(model),
        preprocess=TorchPreprocess(transform),
        run=run,
        device=str(device),
        weights_sha256=weights.sha256 if weights else None,
        weights=weights.to_dict() if weights else None,
    )


def onnx_providers(spec: str = "auto") -> list:
    """onnxruntime providers for a ``--device``: CUDA (device N) when asked, or for ``auto`` when onnxruntime
    lists it; the CPU otherwise. A ValueError for a CUDA device onnxruntime cannot use."""
    import onnxruntime as ort  # not for torch sources

    index = _cuda_index(spec)
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if spec == "cpu" or (spec == "auto" and not has_cuda):
        return ["CPUExecutionProvider"]
    if not has_cuda:
        raise TimmDogError(
            f"device {spec!r}: onnxruntime lists no CUDAExecutionProvider (it needs onnxruntime-gpu); "
            "use --device cpu or auto"
        )
    return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]


def _cuda_index(spec: str) -> int:
    """N of ``cuda:N`` (0 otherwise); a ValueError if ``spec`` is not auto, cpu, cuda or cuda:N."""
    match = re.fullmatch(r"auto|cpu|cuda(?::(\d+))?", spec)
    if not match:
        raise TimmDogError(f"device {spec!r} is not one of auto, cpu, cuda, cuda:N")
    return int(match.group(1) or 0)


@dataclass(frozen=True)
class TorchPreprocess:
    """timm's eval ``transform`` of :func:`to_rgb`'s image, as a float32 array (picklable for loader workers)."""

    transform: Callable

    def __call__(self, image) -> np.ndarray:
        return self.transform(to_rgb(image)).numpy()


def _onnx_classifier(path: str, device: str = "auto", threads: int | None = None) -> Classifier:
    if not Path(path).is_file():
        raise TimmDogError(f"ONNX file {path} does not exist")
    providers = onnx_providers(device)
    session = inference_session(path, providers, threads)
    ran = session.get_providers()[0]
    if device.startswith("cuda") and ran != "CUDAExecutionProvider":
        raise TimmDogError(f"device {device!r}: onnxruntime could not start its CUDA provider (it runs on {ran})")
    width = session.get_outputs()[0].shape[-1]  # an int when static, a name when dynamic
    metadata = decode_metadata(
        session.get_modelmeta().custom_metadata_map, path, width if isinstance(width, int) else None
    )
    return Classifier(
        source=path,
        backend=f"onnxruntime ({describe_session(session)})",
        architecture=metadata.get("architecture") or Path(path).stem,
        labels=metadata["label_names"],
        preprocess=Preprocess.from_config(metadata),
        run=lambda batch: session.run([OUTPUT], {INPUT: np.ascontiguousarray(batch, dtype=np.float32)})[0],
        weights_sha256=file_sha256(path),
        device=f"cuda:{_cuda_index(device)}" if "CUDA" in ran else "cpu",
    )


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
