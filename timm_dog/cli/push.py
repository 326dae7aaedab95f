"""``push``: stage a checkpoint as a Hub repository and upload it in one commit (the library's hub.staging, stage and
push)."""

from __future__ import annotations

import click

from .app import main
from .options import OutputPath


@main.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("--model", "model_name", required=True, help="The *_dog model the checkpoint was trained as.")
@click.option("--repo", "repo_id", required=True, help="ORG/NAME on the Hugging Face Hub.")
@click.option(
    "--eval-json",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="`timm-dog eval … --json` measured on this checkpoint.",
)
@click.option(
    "--recipe",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="train.py's args.yaml (default: the checkpoint's own args, or args.yaml beside it).",
)
@click.option("--ema", is_flag=True, help="Publish the checkpoint's EMA weights (state_dict_ema).")
@click.option("--fp16", is_flag=True, help="Also publish onnx/model_fp16.onnx.")
@click.option(
    "--int8",
    "int8_dir",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    metavar="DIR",
    help="Also publish onnx/model_int8.onnx, calibrated on the images in DIR.",
)
@click.option(
    "--verify-images",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    metavar="DIR",
    help="Images for the ONNX check (default: scikit-learn's two photos).",
)
@click.option("--license", "license_", default="apache-2.0", show_default=True)
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    help="Hub dataset id(s) for the card (e.g. imagenet-1k), needed when --eval-json was measured on an "
    "ImageFolder; repeat for more.",
)
@click.option(
    "--stage-dir",
    type=OutputPath(folder=True),
    default=None,
    help="Stage here (and keep it); default: a temporary folder.",
)
@click.option("--dry-run", is_flag=True, help="Stage and show what would be uploaded; upload nothing.")
@click.option("--private", is_flag=True, help="Create the repository as private.")
@click.option("--revision", default=None, help="Branch to commit to (created if missing).")
@click.option("--create-pr", is_flag=True, help="Open a pull request instead of committing to the branch.")
@click.option("--force", is_flag=True, help="Publish even without an eval JSON or with a failing ONNX check.")
@click.option(
    "--report",
    "report_json",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="`timm-dog report`'s report.json with this checkpoint: adds a 'DoG vs native init' card section.",
)
def push(
    checkpoint,
    model_name,
    repo_id,
    eval_json,
    recipe,
    ema,
    fp16,
    int8_dir,
    verify_images,
    license_,
    datasets,
    stage_dir,
    dry_run,
    private,
    revision,
    create_pr,
    force,
    report_json,
):
    """Stage CHECKPOINT as a Hub repository (safetensors, config, ONNX, eval, card) and upload it in one commit."""
    from .. import hub  # here, not at the top: hub imports torch and timm
    from ..trainpy.args import read_train_args

    with hub.staging(stage_dir, upload=not dry_run) as folder:  # a temporary one is removed, whatever happens
        record = read_train_args(recipe) if recipe else None
        staged = hub.stage(
            checkpoint,
            model_name,
            folder,
            repo_id=repo_id,
            eval_json=eval_json,
            recipe=record,
            use_ema=ema,
            fp16=fp16,
            int8_calibration=int8_dir,
            verify_images=verify_images,
            license=license_,
            datasets=datasets,
            force=force,
            report=report_json,
            log=click.echo,
        )
        click.echo(f"staged {staged.architecture} for {repo_id} in {staged.folder}:\n{staged.listing()}")
        if dry_run:
            click.echo("dry run: nothing uploaded")
            return
        url = hub.push(staged, repo_id, private=private, revision=revision, create_pr=create_pr)
        click.echo(f"pushed {len(staged.files)} files in one commit: {url}")
