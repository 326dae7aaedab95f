"""``recipe check``: train.py's arguments and values, a few CPU training steps, the cost and the runs a comparison
needs (the checks are the library's: timm_dog.recipes).

The library modules are imported inside the command: `timm-dog --help` starts without torch and timm."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import TimmDogError
from .options import checked_device
from .recipe import recipe


@recipe.command("check")
@click.argument("files", nargs=-1, required=True)
@click.option("--steps", type=click.IntRange(0), default=2, show_default=True, help="CPU training steps to run.")
@click.option(
    "--gpus",
    type=click.IntRange(1),
    default=8,
    show_default=True,
    help="GPUs (world size) for the effective batch, lr and schedule.",
)
@click.option(
    "--train-py",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Validate keys against this train.py instead of the list kept here.",
)
@click.option(
    "--aug-samples",
    type=click.IntRange(8),
    default=2000,
    show_default=True,
    help="Real images pushed through the train transform.",
)
@click.option(
    "--benchmark",
    is_flag=True,
    help="Also time real training steps (recipe's batch, AMP, layout, compile) on --device.",
)
@click.option(
    "--num-images",
    type=click.IntRange(1),
    default=None,
    help="Training images per epoch (default: ImageNet-1k's 1,281,167; 45,000 for CIFAR recipes).",
)
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present), cpu, cuda or cuda:N.")
@click.option(
    "--batch-size", type=click.IntRange(1), default=None, help="Benchmark at this batch instead of the recipe's."
)
@click.option("--benchmark-steps", type=click.IntRange(1), default=10, show_default=True, help="Timed steps.")
@click.option(
    "--detect",
    type=float,
    default=None,
    metavar="POINTS",
    help="Plan: the runs per arm (and GPU-hours) that detect this Δ top-1 at 80 % power; needs --run-std.",
)
@click.option(
    "--run-std",
    "run_std",
    default=None,
    metavar="POINTS|REPORT_JSON",
    help="For --detect: the std of one run's top-1 in points, or an earlier report.json to take it from.",
)
def recipe_check(
    files,
    steps,
    gpus,
    train_py,
    aug_samples,
    benchmark,
    num_images,
    device,
    batch_size,
    benchmark_steps,
    detect,
    run_std,
):
    """Validate FILES (recipe files or shipped recipes' names) and build what train.py would build from them; run a
    few CPU steps (and, with --benchmark, time training steps on this machine's device and project the recipe's
    hours; with --detect, plan the runs per arm that a comparison of inits needs)."""
    from ..recipes import RecipeError, check_recipe, plan_runs, resolve_recipe

    if (detect is None) != (run_std is None):
        raise click.UsageError("--detect and --run-std go together: the Δ to detect and the spread of one run's top-1")
    if detect is not None:
        run_std, std_from = _run_std(run_std)
        if detect == 0:
            raise click.BadParameter(
                "0 cannot be detected: give the smallest Δ top-1 (points) that matters", param_hint="--detect"
            )
        if not abs(detect) <= 100:  # nan too
            raise click.BadParameter(f"{detect:g}: a Δ top-1 is at most 100 points", param_hint="--detect")

    if benchmark:
        from ..benchmark import describe  # torch: only for --benchmark
        from ..recipes import benchmark_recipe

        checked_device(device)
    failed = 0
    for name in files:
        try:
            path = resolve_recipe(name)
            s = check_recipe(
                path, steps=steps, gpus=gpus, train_py=train_py, aug_samples=aug_samples, train_images=num_images
            )
        except RecipeError as error:
            failed += 1
            click.echo(f"FAIL {error}\n", err=True)
            continue
        lr = s["lr"]
        click.echo(
            f"ok   {path}\n"
            f"     model {s['model']} {s['model_kwargs'] or ''}: {s['parameters']:,} parameters; {s['dog_init']}\n"
            f"     data {s['data_config']['input_size']} {s['data_config']['interpolation']} "
            f"crop {s['data_config']['crop_pct']}; train transform ran on {s['transform_images']} real images\n"
            f"     {s['optimizer']}, {s['epochs']} epochs x {lr['updates_per_epoch']} updates = {lr['steps']:,} steps; "
            f"lr {lr['base']:.3g} (warmup {lr['warmup']} from {lr['start']:.3g}, peak reached {lr['peak']:.3g}, "
            f"final {lr['final']:.3g})\n"
            f"     {s['gpus']} GPUs: global batch {s['global_batch']}; mixup/cutmix {'on' if s['mixup'] else 'off'}; "
            f"loss {s['loss']}; activations ~{s['activation_gib_per_gpu']} GiB per GPU\n"
            f"     CPU steps: loss {s['cpu_steps']}; keys checked against {s['train_py_args_from']}\n"
            + (_plan_line(plan_runs(path, detect, run_std), std_from) if detect is not None else "")
        )
        if benchmark:
            try:
                result = benchmark_recipe(path, gpus, num_images, device, batch_size, benchmark_steps)
            except RuntimeError as error:  # e.g. CUDA out of memory
                failed += 1
                click.echo(
                    f"FAIL {path}: benchmark: {str(error).splitlines()[0]} (try a smaller --batch-size)\n", err=True
                )
                continue
            click.echo("\n".join(f"     {line}" for line in describe(result).splitlines()) + "\n")
    if failed:
        raise click.ClickException(f"{failed} of {len(files)} recipes failed")


def _plan_line(plan: dict, std_from: str) -> str:
    cost = plan["cost"]
    line = (
        f"     plan: detecting Δ = {plan['delta']:+g} points at 80 % power (α 0.05, two-sided) with a run std of "
        f"{plan['run_std']:.3g} points ({std_from}) takes {plan['runs_per_arm']} runs per arm"
    )
    if cost is None:
        return line + "; GPU-hours unknown: the recipe's header states no measured cost (recipe check --benchmark)\n"
    gpus = "one GPU" if cost["gpus"] == 1 else f"{cost['gpus']} GPUs"
    return line + (
        f", {2 * plan['runs_per_arm']} runs with the baseline: {plan['gpu_hours']:,.0f} GPU-hours "
        f"({cost['hours']:g} h on {gpus} per run, from the recipe's Cost line)\n"
    )


def _run_std(value: str) -> tuple:
    """--run-std: (points, where from) from a number of points or an earlier report.json."""
    from ..report import run_std_of

    try:
        std = float(value)
    except ValueError:
        try:
            return run_std_of(value)
        except TimmDogError as error:  # ReportError
            raise click.BadParameter(str(error), param_hint="--run-std") from None
    if not std >= 0 or std == float("inf"):
        raise click.BadParameter(
            f"{value}: a run std is a finite number of points >= 0 (or a report.json)", param_hint="--run-std"
        )
    return std, "given"
