"""One interface for PyTorch and onnxruntime classifiers: preprocess an image, run a batch, name the classes."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .preprocess import Preprocess


@dataclass
class Classifier:
    source: str
    backend: str  # e.g. "torch (cpu)" or "onnxruntime (CPUExecutionProvider, 2 threads, no spinning, ORT_ENABLE_ALL)"
    architecture: str
    labels: list
    preprocess: Callable  # PIL image -> float32 array [3, H, W]
    run: Callable  # float32 array [N, 3, H, W] -> logits [N, classes]
    weights_sha256: Optional[str] = None

    def top_k(self, logits: np.ndarray, k: int = 5) -> list:
        """[(label, probability), ...] for each row, best first."""
        from scipy.special import softmax

        probs = softmax(np.asarray(logits, dtype=np.float64), axis=1)
        k = min(k, probs.shape[1])
        return [[(self.labels[i], float(row[i])) for i in np.argsort(-row, kind="stable")[:k]] for row in probs]


def load_classifier(source: str, checkpoint: Optional[str] = None, threads: Optional[int] = None) -> Classifier:
    """A timm name (+ checkpoint), ``hf-hub:``, ``local-dir:`` or an ``.onnx`` file (its session on ``threads``
    intra-op threads, default: the physical cores)."""
    if source.endswith(".onnx"):
        if checkpoint:
            raise ValueError("--checkpoint applies to a model name, not to an .onnx file")
        return _onnx_classifier(source, threads)
    return torch_classifier(source, checkpoint)


def torch_classifier(source: str, checkpoint: Optional[str] = None) -> Classifier:
    from .sources import load_model

    weights = file_sha256(checkpoint) if checkpoint else None
    return model_classifier(load_model(source, checkpoint), source, weights)


def model_classifier(model, source: str, weights_sha256: Optional[str] = None) -> Classifier:
    """A classifier around an in-memory timm model (put in eval mode), preprocessing from its ``pretrained_cfg``."""
    import torch
    from timm.data import create_transform, resolve_data_config

    from .onnx import label_names

    model = model.eval()
    transform = create_transform(**resolve_data_config({}, model=model))

    def run(batch):
        with torch.inference_mode():
            return model(torch.as_tensor(batch)).float().numpy()

    return Classifier(
        source=source, backend="torch (cpu)", architecture=model.pretrained_cfg.get("architecture", source),
        labels=label_names(model), preprocess=lambda image: transform(image).numpy(), run=run,
        weights_sha256=weights_sha256,
    )


def _onnx_classifier(path: str, threads: Optional[int] = None) -> Classifier:
    from .onnx import INPUT, OUTPUT, decode_metadata, describe_session, inference_session

    if not Path(path).is_file():
        raise ValueError(f"ONNX file {path} does not exist")
    session = inference_session(path, threads)
    metadata = decode_metadata(session.get_modelmeta().custom_metadata_map, path)
    return Classifier(
        source=path, backend=f"onnxruntime ({describe_session(session)})",
        architecture=metadata.get("architecture") or Path(path).stem, labels=metadata["label_names"],
        preprocess=Preprocess.from_config(metadata),
        run=lambda batch: session.run([OUTPUT], {INPUT: np.ascontiguousarray(batch, dtype=np.float32)})[0],
        weights_sha256=file_sha256(path),
    )


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
