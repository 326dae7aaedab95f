"""Exported ONNX files without torch: onnxruntime sessions, and the metadata that ``timm_dog.onnx`` writes,
decoded and checked. ``predict`` and ``eval`` of an .onnx file import this, never torch, timm or onnx."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .errors import TimmDogError
from .preprocess import Preprocess

INPUT, OUTPUT = "input", "logits"


def decode_metadata(props: dict, path, outputs: int | None = None) -> dict:
    """metadata_props (JSON strings) -> values, checked against each other and against the graph's
    ``outputs`` (its number of logits, when static); a TimmDogError that names the file and the key."""
    missing = [k for k in ("input_size", "mean", "std", "label_names") if k not in props]
    if missing:
        raise TimmDogError(
            f"{path} lacks the metadata timm-dog writes ({', '.join(missing)}): export it with `timm-dog export`"
        )
    meta = {}
    for key, value in props.items():
        try:
            meta[key] = json.loads(value)
        except ValueError:
            raise TimmDogError(f"{path}: metadata {key!r} is not JSON: {value[:60]!r}") from None

    def bad(key, allowed):
        return TimmDogError(f"{path}: metadata {key}={json.dumps(meta[key])[:80]} is invalid: {allowed}")

    def numbers(value, count):
        return (
            isinstance(value, list)
            and len(value) == count
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in value)
        )

    size = meta["input_size"]
    if not (numbers(size, 3) and size[0] == 3 and all(int(v) == v and v > 0 for v in size)):
        raise bad("input_size", "expected [3, height, width] with positive integer sizes")
    if not numbers(meta["mean"], 3):
        raise bad("mean", "expected 3 finite numbers")
    if not (numbers(meta["std"], 3) and min(meta["std"]) > 0):
        raise bad("std", "expected 3 finite positive numbers")
    if "crop_pct" in meta and not (numbers([meta["crop_pct"]], 1) and 0 < meta["crop_pct"] <= 2):
        raise bad("crop_pct", "expected a number in (0, 2] (timm's configs use 0.75-1.0; above 1 pads the image)")
    labels = meta["label_names"]
    if not (isinstance(labels, list) and labels and all(isinstance(v, str) for v in labels)):
        raise bad("label_names", "expected a non-empty list of strings")
    for key, count in (("num_classes", meta.get("num_classes")), ("the graph's output width", outputs)):
        if count is not None and count != len(labels):
            raise TimmDogError(f"{path}: metadata label_names has {len(labels)} names but {key} is {count}")
    try:
        Preprocess.from_config(meta)
    except (TypeError, ValueError) as error:
        raise TimmDogError(f"{path}: metadata {error}") from None
    return meta


def physical_cores() -> int:
    """Physical cores this process may run on (hyper-threads of one core counted once)."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topology / "physical_package_id").read_text(), (topology / "core_id").read_text()))
        except OSError:  # no sysfs topology (not Linux): count the CPU itself
            cores.add(cpu)
    return max(1, len(cores))


def inference_session(path, providers: list | None = None, threads: int | None = None):
    """An onnxruntime session on ``providers`` (default: CUDA when onnxruntime-gpu sees a GPU, else the CPU):
    ``threads`` intra-op threads (default: the physical cores), spinning off (idle threads sleep instead of
    taking CPU from other sessions and from torch), every graph optimization (ORT_ENABLE_ALL)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads or physical_cores()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = providers or [
        p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()
    ]
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as error:  # onnxruntime's own exception classes (InvalidProtobuf, Fail, …) derive from Exception
        raise TimmDogError(f"onnxruntime cannot load {path}: {str(error).strip().splitlines()[0]}") from None


def describe_session(session) -> str:
    """What runs, as the session reports it, e.g. 'CPUExecutionProvider, 2 threads, no spinning, ORT_ENABLE_ALL'."""
    options = session.get_session_options()
    spinning = options.get_session_config_entry("session.intra_op.allow_spinning")
    threads = options.intra_op_num_threads
    return (
        f"{session.get_providers()[0]}, {threads} thread{'s' * (threads != 1)}, "
        f"{'spinning' if spinning != '0' else 'no spinning'}, {options.graph_optimization_level.name}"
    )
