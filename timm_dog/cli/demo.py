"""``demo``: the DoG twin and its native-init base trained on scikit-learn's digits."""

from __future__ import annotations

from pathlib import Path

import click

from .app import main
from .options import OutputPath


@main.command()
@click.option("--out", "-o", type=OutputPath(folder=True), default=Path("timm-dog-demo"), show_default=True)
@click.option(
    "--model", default="convnext_atto_dog", show_default=True, help="A *_dog model; its base is the baseline."
)
@click.option("--epochs", type=click.IntRange(1), default=8, show_default=True)
@click.option("--img-size", type=click.IntRange(32), default=32, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def demo(out, model, epochs, img_size, seed):
    """Train MODEL and its native-init twin on scikit-learn's real digits; save figures and a summary."""
    import timm  # here, not at the top: `timm-dog --help` and `list` start without torch and timm

    if not model.endswith("_dog") or not timm.is_model(model):
        raise click.BadParameter(f"{model!r} is not a *_dog model (see `timm-dog list`)", param_hint="--model")
    from ..demo import run_demo

    summary = run_demo(out, model, epochs=epochs, img_size=img_size, seed=seed, echo=click.echo)
    click.echo(f"\n{'model':<24} {'top-1 %':>8} {'val loss':>9} {'seconds':>8}")
    for run in summary["runs"]:
        click.echo(f"{run['model']:<24} {run['top1']:>8.2f} {run['loss']:>9.4f} {run['seconds']:>8.1f}")
    click.echo(f"\nfigures and summary.json in {out}/")
