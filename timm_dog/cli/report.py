"""``report``: DoG-init runs of train.py against their native-init runs (the library's report module).

The library modules are imported inside the command: `timm-dog --help` starts without torch and timm."""

from __future__ import annotations

from pathlib import Path

import click

from .app import main
from .options import OutputPath, device_option, workers_option


@main.command("report")
@click.argument("run_dirs", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--data-dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The validation ImageFolder every checkpoint is evaluated on.",
)
@click.option("--ema", is_flag=True, help="Evaluate the checkpoints' EMA weights (state_dict_ema).")
@click.option(
    "--unfused",
    is_flag=True,
    help="Kernel survival of re-parameterizable models on their training branches (default: fused).",
)
@click.option("--out", "-o", type=OutputPath(folder=True), default=Path("report"), show_default=True)
@click.option("--batch-size", "-b", type=click.IntRange(1), default=64, show_default=True)
@workers_option
@device_option
@click.option(
    "--amp",
    type=click.Choice(["bf16", "fp16"]),
    default=None,
    help="Autocast the models to this precision (default: off, fp32).",
)
@click.option(
    "--run-std",
    type=click.FloatRange(0, min_open=True),
    default=None,
    metavar="POINTS",
    help="Std of one run's top-1 (points) for planning the runs an arm with one run needs [default: 1.0, "
    "a conservative guess].",
)
def report_command(run_dirs, data_dir, ema, unfused, out, batch_size, workers, device, amp, run_std):
    """Does the DoG init train better models than the native init? Compares *_dog runs of train.py (every arm: DoG,
    frozen, control patterns) with their native-init runs (RUN_DIRS), one row per base model and settings, over
    training runs (paired by seed when every arm has the same seeds) and validation images: Table 1 rows, run-level
    tests, curves, kernels."""
    from ..report import build_report, group_runs, read_run, write_report

    if run_std is not None and not run_std <= 100:  # nan and inf pass click's FloatRange
        raise click.BadParameter(
            f"{run_std}: a run std is a finite number of points, at most 100", param_hint="--run-std"
        )

    rows, unpaired = group_runs([read_run(folder) for folder in run_dirs])
    for run in unpaired:
        click.echo(f"left out: {run['folder']}: {run['why']}", err=True)
    report = build_report(
        rows, unpaired, data_dir, ema, batch_size, workers, device=device, amp=amp, fused=not unfused, run_std=run_std
    )
    paths = write_report(report, rows, out)
    click.echo((out / "report.md").read_text())
    click.echo("wrote " + ", ".join(str(p) for p in paths))
