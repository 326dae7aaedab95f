"""``list``, ``scan``, ``inspect`` and ``show``: the twins, the scan that decides them, and their kernels.

torch and timm are imported inside the commands that need them: ``timm-dog list`` starts without them."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from ..errors import TimmDogError
from ..outputs import JSON, check_output, figure_suffixes
from .app import main, skipped_lines
from .options import OutputPath, create, dog_args, dog_options


@main.command("list")
@click.argument("pattern", default="*_dog")
@click.option("--table", is_flag=True, help="A Markdown table per family (timm module), with counts.")
def list_models(pattern, table):
    """List models in timm's registry matching PATTERN (default: every *_dog model)."""
    from importlib.metadata import version

    from .. import scan

    names = None if table else scan.committed_twins(pattern, version("timm"))  # without importing timm
    if names is None:
        import timm  # only when the committed scan cannot decide

        names = timm.list_models(pattern)
        for line in skipped_lines():
            click.echo(line, err=True)
    if not names:
        raise click.ClickException(f"no model matches {pattern!r}")
    click.echo(scan.family_table(names) if table else "\n".join(names))


@main.command("scan")
@click.option(
    "--out",
    "-o",
    type=OutputPath(JSON),
    default=None,
    help="JSON file to write [default: where the twins are read from, in the user cache].",
)
def scan_models(out):
    """Scan the installed timm for depthwise models: the list that decides which *_dog twins exist."""
    import timm  # here and below: `timm-dog list` starts without torch and timm

    from .. import scan
    from ..progress import progress

    default = scan.user_dir() / scan.data_name(timm.__version__)
    out = out or check_output(default, JSON)
    names = scan.entrypoints()
    with progress(total=len(names), desc=f"scanning timm {timm.__version__} on the meta device", unit="model") as bar:
        data = scan.scan(names, progress=lambda name: bar.update(1))
    scan.write(data, out)
    found, families = len(data["models"]), len({entry["family"] for entry in data["models"].values()})
    click.echo(
        f"{found} models with shapeable depthwise convs in {families} families; "
        f"{len(data['exceptions'])} exceptions; {data['scanned']} scanned in {data['seconds']} s"
    )
    if out.resolve() == default.resolve():
        click.echo(f"wrote {out}: the next process that imports timm registers its {found} twins")
    else:
        click.echo(f"wrote {out}; twins are read from {default}: copy it there to use it")


def _std(weight) -> float:
    return weight.detach().float().std().item()


@main.command()
@click.argument("model")
@dog_options
def inspect(model, gamma, on_ratio, share, scale, seed):
    """Each depthwise layer of MODEL: kernel, channels, native init std, and what DoG would set."""
    import timm

    from ..init import depthwise_weights, dog_init_
    from ..models import base_of

    args = dog_args(gamma, on_ratio, share, scale, seed)
    base = base_of(model) if timm.is_model(base_of(model)) else model
    net = create(base)
    native = {name: _std(weight) for name, weight in depthwise_weights(net).items()}
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        report = dog_init_(net, **args)
    click.echo(f"{model} (native init from {base}): {sum(p.numel() for p in net.parameters()):,} parameters")
    header = f"{'layer':<36} {'kernel':>6} {'channels':>8} {'native std':>10} {'DoG set':>7} {'std after':>9}"
    click.echo(header)
    click.echo("-" * len(header))
    for layer in report.layers:
        after = _std(net.get_submodule(layer.name).weight)
        click.echo(
            f"{layer.name:<36} {'x'.join(map(str, layer.kernel_size)):>6} {layer.kernels:>8} "
            f"{native[layer.name]:>10.4f} {layer.dog_kernels:>7} {after:>9.4f}"
        )
    click.echo(str(report) if report.layers else f"{model}: no depthwise convolution to initialize")


def _patterns(pattern: str) -> list:
    """--pattern: each a known pattern, each once."""
    from ..dog import check_pattern

    try:
        patterns = [check_pattern(p) for p in pattern.split(",")]
    except TimmDogError as error:
        raise click.BadParameter(str(error), param_hint="--pattern") from None
    twice = next((p for i, p in enumerate(patterns) if p in patterns[:i]), None)
    if twice:
        raise click.BadParameter(f"{pattern!r}: {twice} is given twice; give each pattern once", param_hint="--pattern")
    return patterns


def _gammas(gammas: str) -> list:
    """--gammas: numbers, each a γ."""
    from ..dog import check_gamma

    try:
        values = [float(g) for g in gammas.split(",")]
    except ValueError as error:
        raise click.BadParameter(f"{gammas!r}: {error}", param_hint="--gammas") from None
    try:
        return [check_gamma(g) for g in values]
    except TimmDogError as error:
        raise click.BadParameter(f"{gammas!r}: {error}", param_hint="--gammas") from None


@main.command()
@click.option("--kernel-size", "-k", type=int, default=7, show_default=True, help="Kernel size (parameter mode).")
@click.option("--gammas", default="0.1,0.2,0.3,0.4,0.5", show_default=True, help="Comma-separated γ, one column each.")
@click.option("--model", default=None, help="Draw N random depthwise kernels of this created model instead.")
@click.option("--num", "-n", type=int, default=50, show_default=True, help="Kernels to draw from --model.")
@dog_options
@click.option(
    "--pattern",
    default="dog",
    show_default=True,
    help="dog, or a control: gaussian, impulse, box; several (comma-separated) side by side.",
)
@click.option("--out", "-o", type=OutputPath(figure_suffixes), default=Path("dog_kernels.png"), show_default=True)
def show(kernel_size, gammas, model, num, gamma, on_ratio, share, scale, seed, pattern, out):
    """Draw DoG kernels to a PNG: on/off rows for several γ, or kernels of a real --model."""
    import torch

    from ..init import depthwise_kernels
    from ..plots import plot_dog_grid, plot_kernels, plot_patterns

    args = dog_args(gamma, on_ratio, share, scale, seed)  # checked in both modes
    patterns = _patterns(pattern)
    if model is None:
        values = _gammas(gammas)
        try:
            if len(patterns) > 1:
                path = plot_patterns(kernel_size, values, patterns, out)
            else:
                path = plot_dog_grid(kernel_size, values, out, patterns[0])
        except TimmDogError as error:  # only a refusal blames the option; any other error is a bug (a traceback)
            raise click.BadParameter(str(error), param_hint="--kernel-size") from None
        what = (
            f"on-centre {', '.join(patterns)}"
            if len(patterns) > 1
            else f"on/off {'DoG' if patterns[0] == 'dog' else patterns[0]}"
        )
        click.echo(f"wrote {path}: {what} kernels, k={kernel_size}, γ={', '.join(f'{g:g}' for g in values)}")
        return
    if len(patterns) > 1:
        raise click.BadParameter(f"{pattern!r}: give one pattern with --model", param_hint="--pattern")
    if num < 1:
        raise click.BadParameter("must be >= 1", param_hint="--num")
    args["pattern"] = patterns[0]
    kwargs = {f"dog_{k}": v for k, v in args.items()} if model.endswith("_dog") else {}
    kernels = depthwise_kernels(create(model, **kwargs))
    if not kernels:
        raise click.ClickException(f"{model} has no depthwise convolution")
    size = max(kernels, key=lambda s: len(kernels[s]))
    pool = kernels[size]
    generator = torch.Generator().manual_seed(seed if seed is not None else 0)
    picked = pool[torch.randperm(len(pool), generator=generator)[:num]]
    title = f"{model}: {len(picked)} random depthwise {size[0]}x{size[1]} kernels"
    if kwargs and args["share"] == 0:
        title += f" (share 0: all native, no {'DoG' if args['pattern'] == 'dog' else args['pattern']} kernels)"
    elif kwargs:
        title += f" (share {args['share']:g}, γ {args['gamma']}" + (
            f", pattern {args['pattern']})" if args["pattern"] != "dog" else ")"
        )
    path = plot_kernels(picked, out, title=title)
    click.echo(f"wrote {path}: {title}")
