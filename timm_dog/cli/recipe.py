"""``recipe list|show|new``: recipes for timm's train.py (written by the library); ``check``: recipe_check.py.

The library modules are imported inside the commands: `timm-dog --help` starts without torch and timm."""

from __future__ import annotations

import click

from ..outputs import write_text
from .app import main
from .options import OutputPath


@main.group()
def recipe():
    """Recipes for timm's train.py."""


@recipe.command("list")
def recipe_list():
    """The recipes shipped with timm-dog: name, model, dataset, epochs and cost (where measured)."""
    from ..recipes import describe_shipped

    rows = describe_shipped()
    width = max(len(r["name"]) for r in rows)
    model_width = max(len(str(r["model"])) for r in rows)
    click.echo(f"{'name':<{width}}  {'model':<{model_width}}  {'dataset':<8}  {'epochs':>6}  cost")
    for r in rows:
        click.echo(
            f"{r['name']:<{width}}  {r['model']:<{model_width}}  {r['dataset']:<8}  {r['epochs']:>6}  {r['cost']}"
        )
    click.echo(
        f"\n`timm-dog recipe show NAME` prints one, `--out FILE` writes it for train.py --config; "
        f"they are in {rows[0]['path'].parents[1]}"
    )


@recipe.command("show")
@click.argument("name")
@click.option(
    "--out",
    "-o",
    type=OutputPath((".yaml", ".yml")),
    default=None,
    help="Write the recipe to this file (e.g. for train.py --config) instead of printing it.",
)
def recipe_show(name, out):
    """Print the recipe NAME (a shipped recipe's name, see `recipe list`, or a file), or write it to --out."""
    from ..recipes import resolve_recipe

    text = resolve_recipe(name).read_text(encoding="utf-8")
    if out is None:
        click.echo(text, nl=False)
        return
    write_text(out, text)
    click.echo(f"wrote {out}: python train.py --config {out} --data-dir DATA_DIR (from a clone of timm)")


@recipe.command("new")
@click.argument("model")
@click.option(
    "--dataset",
    default="imagenet",
    show_default=True,
    help="imagenet, cifar10, or the path of an ImageFolder with train/<class>/ and validation/<class>/.",
)
@click.option("--epochs", type=click.IntRange(1), default=50, show_default=True)
@click.option(
    "--gpus",
    type=click.IntRange(1),
    default=8,
    show_default=True,
    help="GPUs the launch commands and the header's global batch and lr are written for.",
)
@click.option("--batch-size", type=click.IntRange(1), default=128, show_default=True, help="Per GPU.")
@click.option(
    "--out",
    "-o",
    type=OutputPath(folder=True),
    required=True,
    help="Folder for the two recipes (created; existing recipes are never overwritten).",
)
@click.option(
    "--benchmark",
    is_flag=True,
    help="Measure the cost (recipe check --benchmark on --device) and write it in the headers.",
)
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda or cuda:N.")
def recipe_new(model, dataset, epochs, gpus, batch_size, out, benchmark, device):
    """Write a DoG recipe for the twin MODEL and its native-init baseline (the paper's 50-epoch protocol, the
    model's own data config); the two differ only in the model and the DoG kwargs."""
    from ..recipes import new_recipes, write_new_recipes

    texts = new_recipes(
        model,
        out,
        dataset=dataset,
        epochs=epochs,
        gpus=gpus,
        batch_size=batch_size,
        benchmark_device=device if benchmark else None,
    )
    paths = write_new_recipes(texts)
    click.echo(f"wrote {paths[0]} and its baseline {paths[1]}")
    click.echo(f"check them before booking GPUs: timm-dog recipe check {' '.join(map(str, paths))} --gpus {gpus}")
