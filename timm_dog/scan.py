"""Which timm entrypoints get a ``*_dog`` twin: a scan of the registry on the meta device.

A model qualifies when it has at least one depthwise conv DoG can shape: an ``nn.Conv2d`` or timm's
``CondConv2d`` with ``groups == in_channels > 1`` and a kernel whose samples lie on two rings or more
(not 1×1, 2×2).
The result is committed per timm version as ``timm_dog/data/twins-timm-<version>.json``.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = [
    "entrypoints",
    "scan",
    "write",
    "family_table",
    "family_of",
    "depthwise_kernel_sizes",
    "data_name",
    "user_dir",
    "PACKAGE_DIR",
    "SUFFIX",
]

SUFFIX = "_dog"
PACKAGE_DIR = Path(__file__).parent / "data"


def data_name(version: str) -> str:
    return f"twins-timm-{version}.json"


def user_dir() -> Path:
    """Where ``timm-dog scan`` writes by default and where the twins are looked up first."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "timm-dog"


def family_of(name: str) -> str:
    """The module that defines the entrypoint: 'convnext_tiny' -> 'convnext'."""
    from timm.models import model_entrypoint

    return model_entrypoint(name).__module__.rsplit(".", 1)[-1]


def depthwise_kernel_sizes(model) -> set:
    """Kernel sizes (kh, kw) of every depthwise conv of ``model``, shapeable or not: the layers ``dog_init_``
    walks (:func:`timm_dog.init.depthwise_weights`), so a listed model always has a layer to shape."""
    from .init import depthwise_weights

    return {tuple(weight.shape[-2:]) for weight in depthwise_weights(model).values()}


def _entry(name: str) -> tuple:
    """('model', {family, kernels, params}), ('exception', reason) or (None, None): no depthwise conv."""
    import timm
    import torch

    from .dog import is_shapeable

    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = timm.create_model(name, pretrained=False)
    except Exception as error:  # a model that cannot be built on the meta device: recorded, not fatal
        first_line = (str(error).strip().splitlines() or [""])[0][:160]
        return "exception", f"fails to build on the meta device: {type(error).__name__}: {first_line}"
    sizes = depthwise_kernel_sizes(model)
    shapeable = sorted(size for size in sizes if is_shapeable(size))
    if shapeable:
        params = sum(p.numel() for p in model.parameters())
        return "model", {"family": family_of(name), "kernels": [list(s) for s in shapeable], "params": params}
    if sizes:
        listed = ", ".join(f"{h}x{w}" for h, w in sorted(sizes))
        return "exception", f"only {listed} depthwise kernels: nothing to shape"
    return None, None


def entrypoints() -> list:
    """Every registered entrypoint but the twins (plugin architectures included)."""
    import timm

    return [name for name in timm.list_models() if not name.endswith(SUFFIX)]


def scan(names: Iterable[str], progress: Callable[[str], None] | None = None) -> dict:
    """Scan ``names`` (e.g. ``entrypoints()``) and return the data file's content.

    {"timm": version, "scanned": count, "seconds": time, "models": {name: {"family", "kernels",
    "params"}}, "exceptions": {name: reason}}; models without a depthwise conv are in neither mapping.
    """
    import timm

    names = list(names)
    models, exceptions = {}, {}
    start = time.perf_counter()
    for name in names:
        kind, value = _entry(name)
        if kind == "model":
            models[name] = value
        elif kind == "exception":
            exceptions[name] = value
        if progress:
            progress(name)
    return {
        "timm": timm.__version__,
        "scanned": len(names),
        "seconds": round(time.perf_counter() - start, 1),
        "models": models,
        "exceptions": exceptions,
    }


def write(data: dict, path: Path) -> None:
    """Write ``data`` as JSON to ``path`` through a hidden partial file."""
    from .outputs import write_text

    write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def family_table(names: Iterable[str]) -> str:
    """A Markdown table of ``names`` (twins or plain models) per family, with counts and a total."""
    import timm

    families: dict = {}
    for name in names:
        base = name[: -len(SUFFIX)] if name.endswith(SUFFIX) and timm.is_model(name[: -len(SUFFIX)]) else name
        families.setdefault(family_of(base), []).append(name)
    rows = ["| family | models | names |", "|---|---|---|"]
    rows += [
        f"| {family} | {len(members)} | {', '.join(f'`{n}`' for n in members)} |"
        for family, members in sorted(families.items())
    ]
    total, count = sum(map(len, families.values())), len(families)
    rows.append(f"| **total** | **{total}** | {count} {'family' if count == 1 else 'families'} |")
    return "\n".join(rows)


def committed_twins(pattern: str, timm_version: str) -> list | None:
    """The twins matching ``pattern`` (fnmatch, sorted as timm sorts) that the committed scan of ``timm_version``
    lists, read without importing timm: what ``timm.list_models(pattern)`` gives when that scan decides the twins.
    None when it may not: a user scan exists (its names are checked against timm), no committed scan is of that
    version, or the pattern may match a model that is not a twin."""
    committed = PACKAGE_DIR / data_name(timm_version)
    if not pattern.endswith(SUFFIX) or (user_dir() / data_name(timm_version)).exists() or not committed.is_file():
        return None
    twins = [name + SUFFIX for name in json.loads(committed.read_text())["models"]]
    return sorted(
        fnmatch.filter(twins, pattern),
        key=lambda name: [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", name.lower())],
    )
