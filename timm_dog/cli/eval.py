"""``eval``: top-1, top-5, loss and images/s of SOURCE, or of two sources compared (McNemar). The rules and the
eval JSON are the library's (:mod:`timm_dog.evalrecord`); this module parses and prints.

The library modules are imported inside the command: `timm-dog --help` starts without torch and timm."""

from __future__ import annotations

import json

import click

from ..outputs import JSON, write_text
from .app import main
from .options import OutputPath, device_option, load, threads_option, workers_option


@main.command("eval")
@click.argument("source")
@click.option(
    "--data-dir",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="An ImageFolder (class sub-folders), or the root of a timm --dataset.",
)
@click.option("--dataset", default="", help="A timm dataset name (e.g. torch/cifar10); default: ImageFolder.")
@click.option("--split", default="validation", show_default=True)
@click.option("--download", is_flag=True, help="Let a torch/… or tfds/… --dataset download itself into --data-dir.")
@click.option(
    "--checkpoint", type=click.Path(exists=True, dir_okay=False), default=None, help="Weights for a model-name SOURCE."
)
@click.option(
    "--compare",
    default=None,
    metavar="OTHER_SOURCE",
    help="Evaluate OTHER_SOURCE on the same images and test the difference (McNemar, exact).",
)
@click.option(
    "--compare-checkpoint",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Weights for a model-name OTHER_SOURCE.",
)
@click.option("--ema", is_flag=True, help="Evaluate the --checkpoint's EMA weights (train.py's state_dict_ema).")
@click.option("--compare-ema", is_flag=True, help="Evaluate the --compare-checkpoint's EMA weights.")
@click.option("--batch-size", "-b", type=click.IntRange(1), default=32, show_default=True)
@workers_option
@device_option
@click.option(
    "--amp",
    type=click.Choice(["bf16", "fp16"]),
    default=None,
    help="Autocast a torch SOURCE to this precision (default: off, fp32); OTHER_SOURCE too, unless "
    "--compare-amp says otherwise.",
)
@click.option(
    "--compare-amp",
    type=click.Choice(["bf16", "fp16", "fp32"]),
    default=None,
    help="OTHER_SOURCE's own precision (fp32: no autocast), e.g. to test fp32 against AMP [default: --amp's].",
)
@threads_option
@click.option("--json", "json_out", type=OutputPath(JSON), default=None)
def eval_command(
    source,
    data_dir,
    dataset,
    split,
    download,
    checkpoint,
    compare,
    compare_checkpoint,
    ema,
    compare_ema,
    batch_size,
    workers,
    device,
    amp,
    compare_amp,
    threads,
    json_out,
):
    """Top-1, top-5, loss and images/s of SOURCE on a folder of labelled images."""
    from ..evalrecord import check_not_training_images, compare_precision, record, settings_differences, side_names
    from ..evaluate import class_mapping, evaluate, open_dataset

    for option, value in (("--compare-checkpoint", compare_checkpoint), ("--compare-amp", compare_amp)):
        if value and not compare:
            raise click.UsageError(f"{option} needs --compare")
    if compare_ema and not compare_checkpoint:
        raise click.UsageError("--compare-ema needs --compare-checkpoint")
    sources = [(source, checkpoint, ema, amp)]
    if compare:
        sources.append((compare, compare_checkpoint, compare_ema, compare_precision(amp, compare_amp)))
        if amp and compare_amp is None:
            click.echo(
                f"note: both sources run under {amp} autocast (--amp); --compare-amp fp32 evaluates {compare} in fp32",
                err=True,
            )
    data, info = open_dataset(data_dir, dataset, split, download)
    classifiers = [
        load(src, ckpt, device, precision, option, threads, use_ema)
        for (src, ckpt, use_ema, precision), option in zip(sources, ("--checkpoint", "--compare-checkpoint"))
    ]
    indices, rule = class_mapping(data, *(c.labels for c in classifiers))
    check_not_training_images(info, classifiers, split, log=_note)
    click.echo(f"data: {info.get('split_rule') or info['data_dir']}; classes {rule}")
    names = side_names(sources) if compare else [source]
    results = [
        evaluate(classifier, data, batch_size, workers, dataset_info=info, class_index=index, rule=rule, name=name)
        for classifier, index, name in zip(classifiers, indices, names)
    ]
    _table(results, split)
    differences = settings_differences(checkpoint, compare_checkpoint, log=_note) if compare else (None, None)
    report = record(results, differences)
    if compare:
        test = report["mcnemar"]
        click.echo(
            f"top-1 difference {report['top1_difference']:+.2f} points; McNemar exact p = {test['p_value']:.4g} "
            f"({test['only_a_correct']} images right only for {names[0]}, "
            f"{test['only_b_correct']} only for {names[1]})"
        )
        if differences[0] is not None:  # two train.py runs: not a question about their inits
            click.echo(
                "note: McNemar's test is about these two networks on these images; whether an init trains "
                "better models takes several training runs per init (timm-dog report compares them run by run)"
            )
    if json_out:
        write_text(json_out, json.dumps(report, indent=2))
        click.echo(f"wrote {json_out}")


def _note(line: str) -> None:
    click.echo(line, err=True)


def _table(results: list, split: str) -> None:
    """The numbers, and what each was measured on."""
    width = max(len("backend"), *(len(r.backend) for r in results))
    click.echo(f"{'source':<36} {'backend':<{width}} {'images':>6} {'top-1':>7} {'top-5':>7} {'loss':>7} {'img/s':>8}")
    for r in results:
        source_name = r.source if len(r.source) <= 36 else "…" + r.source[-35:]
        click.echo(
            f"{source_name:<36} {r.backend:<{width}} {r.num_images:>6} {r.top1:>7.2f} {r.top5:>7.2f} "
            f"{r.loss:>7.4f} {r.images_per_second:>8.1f}"
        )
    for r in results:  # what each number was measured on
        measured = r.weights.get("source") if r.weights else r.source
        if r.weights:
            measured = f"{measured}, {'EMA weights (state_dict_ema)' if r.weights['ema'] else 'weights (state_dict)'}"
            measured += f", epoch {r.weights['epoch']}" if r.weights.get("epoch") is not None else ""
        size = "x".join(map(str, r.input_size or []))
        training = r.weights and r.weights.get("source") in r.dataset.get("training_images_of", [])
        click.echo(
            f"measured on: {measured}; images at {size}"
            + (f"; its TRAINING images (--split {split}): training accuracy" if training else "")
        )
