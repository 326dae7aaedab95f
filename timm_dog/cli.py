"""The ``timm-dog`` command line (click): thin wrappers over the library."""
from __future__ import annotations

import difflib
import warnings
from pathlib import Path

import click
import timm
import torch

from .dog import check_gamma
from .init import check_dog_args, depthwise_kernels, dog_init_, is_depthwise
from .models import base_of

GAMMA_HELP = "γ: a number in [0, 1), or a range LOW,HIGH sampled per kernel"


class GammaType(click.ParamType):
    """'0.3' -> 0.3; '0,0.5' -> (0.0, 0.5)."""

    name = "gamma"

    def convert(self, value, param, ctx):
        if isinstance(value, (float, tuple)):
            return value
        try:
            parts = [float(p) for p in str(value).replace(":", ",").split(",")]
            return check_gamma(parts[0] if len(parts) == 1 else tuple(parts))
        except ValueError as error:
            self.fail(f"{value!r}: {error}" if "gamma" in str(error) else f"{value!r} is not {GAMMA_HELP}", param, ctx)


def _dog_options(f):
    f = click.option("--seed", type=int, default=None, help="Seed for bit-identical kernels (default: torch's RNG).")(f)
    f = click.option("--scale", default="paper", show_default=True,
                     help="'paper', 'match' (native init's std) or a positive multiplier.")(f)
    f = click.option("--share", type=float, default=1.0, show_default=True,
                     help="Fraction of each layer's kernels that get DoG.")(f)
    f = click.option("--on-ratio", type=float, default=0.5, show_default=True,
                     help="Probability that a kernel is on-centre.")(f)
    return click.option("--gamma", type=GammaType(), default="0,0.5", show_default=True, help=GAMMA_HELP)(f)


def _dog_args(gamma, on_ratio, share, scale, seed) -> dict:
    try:
        scale = float(scale)
    except ValueError:
        pass
    try:
        return check_dog_args(gamma, on_ratio, share, scale, seed)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _std(weight: torch.Tensor) -> float:
    return weight.detach().float().std().item()


def _create(name: str, **kwargs):
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else " See `timm-dog list`."
        raise click.UsageError(f"unknown model {name!r}.{hint}")
    try:
        return timm.create_model(name, **kwargs)
    except (ValueError, RuntimeError, TypeError) as error:
        raise click.ClickException(f"could not create {name}: {error}") from None


@click.group()
@click.version_option(package_name="timm-dog")
def main():
    """DoG (Difference-of-Gaussians) init for depthwise convolutions in timm models."""


@main.command("list")
@click.argument("pattern", default="*_dog")
def list_models(pattern):
    """List models in timm's registry matching PATTERN (default: every *_dog model)."""
    names = timm.list_models(pattern)
    if not names:
        raise click.ClickException(f"no model matches {pattern!r}")
    click.echo("\n".join(names))


@main.command()
@click.argument("model")
@_dog_options
def inspect(model, gamma, on_ratio, share, scale, seed):
    """Each depthwise layer of MODEL: kernel, channels, native init std, and what DoG would set."""
    args = _dog_args(gamma, on_ratio, share, scale, seed)
    base = base_of(model) if timm.is_model(base_of(model)) else model
    net = _create(base)
    native = {name: _std(m.weight) for name, m in net.named_modules() if is_depthwise(m)}
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


@main.command()
@click.option("--kernel-size", "-k", type=int, default=7, show_default=True, help="Kernel size (parameter mode).")
@click.option("--gammas", default="0.1,0.2,0.3,0.4,0.5", show_default=True, help="Comma-separated γ, one column each.")
@click.option("--model", default=None, help="Draw N random depthwise kernels of this created model instead.")
@click.option("--num", "-n", type=int, default=50, show_default=True, help="Kernels to draw from --model.")
@_dog_options
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), default=Path("dog_kernels.png"),
              show_default=True)
def show(kernel_size, gammas, model, num, gamma, on_ratio, share, scale, seed, out):
    """Draw DoG kernels to a PNG: on/off rows for several γ, or kernels of a real --model."""
    if model is None:
        try:
            values = [check_gamma(float(g)) for g in gammas.split(",")]
        except ValueError as error:
            raise click.BadParameter(f"{gammas!r}: {error}", param_hint="--gammas") from None
        from .plots import plot_dog_grid

        try:
            path = plot_dog_grid(kernel_size, values, out)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--kernel-size") from None
        click.echo(f"wrote {path}: on/off DoG kernels, k={kernel_size}, γ={', '.join(f'{g:g}' for g in values)}")
        return
    if num < 1:
        raise click.BadParameter("must be >= 1", param_hint="--num")
    args = _dog_args(gamma, on_ratio, share, scale, seed)
    kwargs = {f"dog_{k}": v for k, v in args.items()} if model.endswith("_dog") else {}
    net = _create(model, **kwargs)
    kernels = depthwise_kernels(net)
    if not kernels:
        raise click.ClickException(f"{model} has no depthwise convolution")
    size = max(kernels, key=lambda s: len(kernels[s]))
    pool = kernels[size]
    generator = torch.Generator().manual_seed(seed if seed is not None else 0)
    picked = pool[torch.randperm(len(pool), generator=generator)[:num]]
    from .plots import plot_kernels

    title = f"{model}: {len(picked)} random depthwise {size[0]}x{size[1]} kernels"
    if kwargs:
        title += f" (share {args['share']:g}, γ {args['gamma']})"
    path = plot_kernels(picked, out, title=title)
    click.echo(f"wrote {path}: {title}")


@main.command()
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("timm-dog-demo"),
              show_default=True)
@click.option("--model", default="convnext_atto_dog", show_default=True, help="A *_dog model; its base is the baseline.")
@click.option("--epochs", type=click.IntRange(1), default=8, show_default=True)
@click.option("--img-size", type=click.IntRange(32), default=32, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def demo(out, model, epochs, img_size, seed):
    """Train MODEL and its native-init twin on scikit-learn's real digits; save figures and a summary."""
    if not model.endswith("_dog") or not timm.is_model(model):
        raise click.BadParameter(f"{model!r} is not a *_dog model (see `timm-dog list`)", param_hint="--model")
    from .demo import run_demo

    summary = run_demo(out, model, epochs=epochs, img_size=img_size, seed=seed, echo=click.echo)
    click.echo(f"\n{'model':<24} {'top-1 %':>8} {'val loss':>9} {'seconds':>8}")
    for run in summary["runs"]:
        click.echo(f"{run['model']:<24} {run['top1']:>8.2f} {run['loss']:>9.4f} {run['seconds']:>8.1f}")
    click.echo(f"\nfigures and summary.json in {out}/")
