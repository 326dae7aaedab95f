"""Figures of DoG and depthwise kernels (matplotlib, written to PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import torch  # noqa: E402

from .dog import dog_kernel, kernel_hw  # noqa: E402
from .outputs import writing  # noqa: E402

CMAP = "RdBu_r"  # red = positive (excitatory), blue = negative (inhibitory)


def _show(ax, kernel: torch.Tensor, title: str = ""):
    limit = float(kernel.abs().max()) or 1.0
    ax.imshow(kernel.numpy(), cmap=CMAP, vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def save_figure(fig, path) -> Path:
    """Save ``fig`` to ``path`` (its extension names the format) through a partial file, and close it."""
    path = Path(path)
    try:
        with writing(path) as (partial,):
            fig.savefig(
                partial, format=path.suffix[1:].lower() or plt.rcParams["savefig.format"], dpi=120, bbox_inches="tight"
            )
    finally:
        plt.close(fig)
    return path


def plot_dog_grid(kernel_size, gammas: Sequence[float], path, pattern: str = "dog") -> Path:
    """On-centre (top row) and off-centre (bottom row) DoG (or control ``pattern``) kernels for several γ
    (paper Fig. 3)."""
    fig, axes = plt.subplots(2, len(gammas), figsize=(1.4 * len(gammas), 3.1), squeeze=False)
    for col, gamma in enumerate(gammas):
        for row, on in enumerate((True, False)):
            kernel = dog_kernel(kernel_size, gamma, on_center=on, dtype=torch.float64, pattern=pattern)
            _show(axes[row][col], kernel, f"γ={gamma:g} {'on' if on else 'off'}")
    kh, kw = kernel_hw(kernel_size)
    fig.suptitle(f"{'DoG' if pattern == 'dog' else pattern} kernels, {kh}x{kw}", fontsize=9)
    return save_figure(fig, path)


def plot_patterns(kernel_size, gammas: Sequence[float], patterns: Sequence[str], path) -> Path:
    """On-centre kernels of several patterns side by side: one column per pattern, one row per γ."""
    fig, axes = plt.subplots(
        len(gammas), len(patterns), figsize=(1.4 * len(patterns), 1.45 * len(gammas) + 0.4), squeeze=False
    )
    for col, pattern in enumerate(patterns):
        for row, gamma in enumerate(gammas):
            kernel = dog_kernel(kernel_size, gamma, dtype=torch.float64, pattern=pattern)
            _show(axes[row][col], kernel, f"{pattern} γ={gamma:g}")
    kh, kw = kernel_hw(kernel_size)
    fig.suptitle(f"On-centre kernels, {kh}x{kw} (off-centre: the negation)", fontsize=9)
    return save_figure(fig, path)


def plot_kernels(kernels: torch.Tensor, path, title: str = "", columns: int = 10) -> Path:
    """A grid of kernels [n, kh, kw], each on its own symmetric colour scale."""
    n = len(kernels)
    rows = max(1, -(-n // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.0 * columns, 1.0 * rows + 0.4), squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index < n:
            _show(ax, kernels[index])
        else:
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def plot_clusters(
    clusters: list, kernels: torch.Tensor, labels, path, title: str = "", samples: int = 8, seed: int = 0
) -> Path:
    """One row per k-means cluster: ``samples`` random member kernels, then the cluster mean (paper Fig. 5)."""
    generator = torch.Generator().manual_seed(seed)
    fig, axes = plt.subplots(
        len(clusters), samples + 1, figsize=(1.0 * (samples + 1), 1.15 * len(clusters) + 0.4), squeeze=False
    )
    for row, (info, index) in enumerate(zip(clusters, range(len(clusters)))):
        members = torch.as_tensor((labels == index).nonzero()[0])
        picked = members[torch.randperm(len(members), generator=generator)[:samples]]
        for col in range(samples):
            ax = axes[row][col]
            if col < len(picked):
                _show(ax, kernels[picked[col]])
            else:
                ax.axis("off")
        mean = torch.as_tensor(info["mean"])
        _show(axes[row][samples], mean - mean.mean(), "mean")
        axes[row][0].set_ylabel(f"{info['name']}\n{100 * info['fraction']:.0f} %", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def plot_curves(runs: Sequence[tuple], path, title: str = "") -> Path:
    """Train loss and eval top-1 per epoch, one line per run: ``runs`` is [(label, curves, is_dog)] with ``curves``
    holding lists "epoch", "train_loss" and "eval_top1" (train.py's summary.csv columns) and ``label`` saying which
    weights they are (EMA or not) and the evaluated checkpoint's epoch. DoG solid, native dashed."""
    fig, (loss_ax, top1_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    for index, (label, curves, is_dog) in enumerate(runs):
        style = dict(color=f"C{index}", linestyle="-" if is_dog else "--", marker="o", markersize=3, label=label)
        loss_ax.plot(curves["epoch"], curves["train_loss"], **style)
        top1_ax.plot(curves["epoch"], curves["eval_top1"], **style)
    for ax, name in ((loss_ax, "train loss"), (top1_ax, "train.py's eval top-1 (%)")):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    fig.legend(*top1_ax.get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def heatmap_png(
    values: Sequence[Sequence[float]],
    texts: Sequence[Sequence[str]],
    row_labels,
    col_labels,
    ylabel: str,
    xlabel: str,
    title: str,
    bar_label: str,
) -> bytes:
    """A heatmap of ``values`` (nan: empty cell) with ``texts`` written in its cells, rendered to PNG bytes (the
    caller writes it, together with the files it belongs to)."""
    import io
    import math

    fig, ax = plt.subplots(figsize=(1.4 * len(col_labels) + 2.2, 0.75 * len(row_labels) + 2.2))
    try:
        image = ax.imshow(values, cmap="viridis", aspect="auto")
        shown = [v for line in values for v in line if not math.isnan(v)]
        middle = (min(shown) + max(shown)) / 2 if shown else 0.0
        for i, line in enumerate(texts):
            for j, text in enumerate(line):
                if text:
                    ax.text(
                        j,
                        i,
                        text,
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="black" if values[i][j] > middle else "white",
                    )
        ax.set_xticks(range(len(col_labels)), list(col_labels))
        ax.set_yticks(range(len(row_labels)), list(row_labels))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        fig.colorbar(image, ax=ax, label=bar_label)
        ax.set_title(title, fontsize=7)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
        return buffer.getvalue()
    finally:
        plt.close(fig)


def bars_png(
    values: Sequence[float],
    errors: Sequence[float],
    texts: Sequence[str],
    labels: Sequence[str],
    baseline: Sequence[bool],
    xlabel: str,
    title: str,
) -> bytes:
    """Horizontal bars of ``values`` (± ``errors``; None: none) labelled ``labels``, ``texts`` written beside them,
    the ``baseline`` ones grey, rendered to PNG bytes (the caller writes it with the files it belongs to)."""
    import io

    fig, ax = plt.subplots(figsize=(8, 0.45 * len(values) + 2.0))
    try:
        rows = range(len(values))[::-1]  # the first bar on top
        ax.barh(rows, values, color=["0.6" if b else "tab:blue" for b in baseline])
        for row, value, error, text in zip(rows, values, errors, texts):
            if error:
                ax.errorbar(value, row, xerr=error, fmt="none", ecolor="black", capsize=3)
            ax.text(value + (error or 0.0), row, f"  {text}", va="center", fontsize=7)
        ax.set_yticks(list(rows), list(labels))
        ax.set_xlim(0, max(v + (e or 0.0) for v, e in zip(values, errors)) * 1.45 or 1.0)
        ax.set_xlabel(xlabel)
        ax.set_title(title, fontsize=7)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
        return buffer.getvalue()
    finally:
        plt.close(fig)
