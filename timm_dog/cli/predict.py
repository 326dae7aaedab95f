"""``predict``: top-k labels of images. On an .onnx file it runs onnxruntime alone: neither torch, timm nor onnx is
imported (the library modules are imported inside the command)."""

from __future__ import annotations

import click

from .app import main
from .options import device_option, load, threads_option


@main.command()
@click.argument("source")
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--checkpoint", type=click.Path(exists=True, dir_okay=False), default=None, help="Weights for a model-name SOURCE."
)
@click.option("--top-k", "-k", type=click.IntRange(1), default=5, show_default=True)
@click.option(
    "--batch-size",
    "-b",
    type=click.IntRange(1),
    default=32,
    show_default=True,
    help="Images per batch; each batch is printed as soon as it has run.",
)
@device_option
@threads_option
def predict(source, images, checkpoint, top_k, batch_size, device, threads):
    """Classify IMAGES with SOURCE (a model, hf-hub:, local-dir: or an .onnx file): top-k with label names.
    EXIF rotation tags are ignored, as timm's loader does (a note says so per image)."""
    from ..evaluate import predict as run_predictions  # here, not at the top: see the module's docstring

    classifier = load(source, checkpoint, device, threads=threads)
    click.echo(f"{classifier.architecture} on {classifier.backend}")
    rotated = 0
    for prediction in run_predictions(classifier, images, batch_size, top_k):
        click.echo(prediction.path)
        if prediction.rotation_note:
            rotated += 1
            click.echo(f"  {prediction.rotation_note}")
        for label, prob in prediction.ranked:
            click.echo(f"  {prob:7.2%}  {label}")
    if rotated:
        click.echo(
            f"note: {rotated} of {len(images)} images carry an EXIF rotation that was ignored, so that the "
            "predictions are the ones timm's loader, validate.py and `timm-dog eval` give (docs/predict.md)",
            err=True,
        )
