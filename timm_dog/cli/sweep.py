"""``sweep BASE`` (``sweep grid``) and ``sweep collect``: γ × share grids of recipes, and their results.

The library modules are imported inside the commands: `timm-dog --help` starts without torch and timm."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import TimmDogError
from .app import main
from .options import OutputPath


class _DefaultGroup(click.Group):
    """A group whose first argument, when it is not a sub-command, goes to the default one."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["grid", *args]
        return super().parse_args(ctx, args)


@main.group(cls=_DefaultGroup)
def sweep():
    """γ × share grids: `sweep BASE.yaml` writes them, `sweep collect DIR…` gathers the results."""


@sweep.command("grid")
@click.argument("base")
@click.option(
    "--grid",
    "grid_specs",
    multiple=True,
    metavar="KEY=V1,V2,…",
    help="A dog_* kwarg and its values; repeat for more axes. Default: the CIFAR study's γ × share.",
)
@click.option("--out", "-o", type=OutputPath(folder=True), default=Path("sweep"), show_default=True)
@click.option("--print-commands", is_flag=True, help="Also print the train.py command of every point.")
@click.option("--gpus", type=click.IntRange(1), default=1, show_default=True, help="GPUs per run, for the commands.")
def sweep_grid(base, grid_specs, out, print_commands, gpus):
    """Write one recipe per grid point of BASE (a *_dog recipe file or a shipped recipe's name), plus its
    native-init baseline."""
    from ..recipes import resolve_recipe
    from ..sweep import DEFAULT_GRID, parse_grid, train_commands, write_sweep

    try:
        grid = parse_grid(grid_specs) if grid_specs else DEFAULT_GRID
        paths = write_sweep(resolve_recipe(base), grid, out)
    except TimmDogError as error:  # a bad --grid or BASE: a usage error, as click's own
        raise click.UsageError(str(error)) from None
    axes = " x ".join(f"{k} ({len(v)})" for k, v in grid.items())
    click.echo(f"wrote {len(paths)} recipes to {out}/: {axes} + baseline")
    if print_commands:
        click.echo("\n".join(train_commands(paths, gpus)))


@sweep.command("collect")
@click.argument("dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "-o", type=OutputPath(folder=True), default=Path("sweep-results"), show_default=True)
def sweep_collect(dirs, out):
    """Gather train.py's summary.csv files under DIRS into tables (CSV, Markdown) and figures: per recipe, a heatmap
    of dog_gamma × dog_share, or a bar chart when they do not both vary; each cell the mean ± std over its seeds."""
    from ..sweep import collect, write_results

    paths = write_results(collect(dirs), out)
    click.echo(paths["markdown"].read_text())
    click.echo(
        "wrote " + ", ".join(str(p) for p in [paths["csv"], paths["cells"], paths["markdown"], *paths["figures"]])
    )
