"""``analyze``: the paper's k-means clusters, DoG fit and surround antagonism of SOURCES' depthwise kernels (the loop
and its JSON record: :func:`timm_dog.analysis.analyze_sources`).

The library modules are imported inside the command: `timm-dog --help` starts without torch and timm."""

from __future__ import annotations

import json

import click

from ..outputs import JSON, figure_suffixes, write_text
from .app import main
from .options import OutputPath, checked_device, device_option


@main.command()
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "--checkpoint",
    "checkpoints",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Weights for a model-name SOURCE (train.py checkpoint or safetensors); once per SOURCE, in order.",
)
@click.option(
    "--json",
    "json_out",
    type=OutputPath(JSON),
    default=None,
    help="Write the numbers (centre_surround_fraction, surround_antagonism …), one entry per SOURCE, to "
    "this JSON file.",
)
@click.option(
    "--out",
    "-o",
    type=OutputPath(figure_suffixes),
    default=None,
    help="Cluster figure (first SOURCE, most common kernel size); one per SOURCE with a suffix.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="k-means seed.")
@click.option(
    "--fit-threshold",
    type=click.FloatRange(0, 1),
    default=0.8,
    show_default=True,
    help="DoG-fit correlation above which a kernel counts as DoG-like.",
)
@click.option(
    "--unfused",
    is_flag=True,
    help="Measure a re-parameterizable model's (MobileOne, FastViT, RepViT …) training-time branches "
    "instead of the fused kernels that run at inference (the default).",
)
@device_option
def analyze(sources, checkpoints, json_out, out, seed, fit_threshold, unfused, device):
    """Cluster the depthwise kernels of SOURCES (k-means, k = 3) as in the paper, and score their DoG fit and
    surround antagonism (antag.: opposite-sign surround mass / centre-sign mass; DoG 1, gaussian/impulse/box 0). Each
    SOURCE is labelled by its --checkpoint (or its name without one)."""
    from ..analysis import analyze_sources, label
    from ..plots import plot_clusters

    if checkpoints and len(checkpoints) != len(sources):
        raise click.BadParameter(
            f"give one --checkpoint per SOURCE ({len(sources)}), or none", param_hint="--checkpoint"
        )
    device = checked_device(device)
    onnx_sources = [source for source in sources if source.endswith(".onnx")]
    if onnx_sources:
        raise click.BadParameter(
            f"{onnx_sources[0]}: analyze reads the kernels of a torch model; give a model name "
            f"(+ --checkpoint), hf-hub: or local-dir:, not an .onnx file",
            param_hint="SOURCES",
        )
    given = list(zip(sources, checkpoints or [None] * len(sources)))
    labels = [label(*pair) for pair in given]
    twice = next((name for name in labels if labels.count(name) > 1), None)
    if twice:
        raise click.BadParameter(
            f"{twice} is given twice: each SOURCE (or --checkpoint) is analysed once", param_hint="SOURCES"
        )
    results = {}
    width = max(28, *map(len, labels))
    header = (
        f"{'source':<{width}} {'kernel':>6} {'kernels':>8} {'excit.':>7} {'inhib.':>7} {'other':>7} "
        f"{'c-s frac':>8} {'DoG fit>' + format(fit_threshold, 'g'):>10} {'antag.':>7}"
    )
    rows = analyze_sources(given, device, seed=seed, fit_threshold=fit_threshold, fused=not unfused)
    for i, (name, result, entry) in enumerate(rows):
        if i == 0:  # the table starts once there is a row to show, so that an error stays one line
            if unfused:
                click.echo(
                    "--unfused: re-parameterizable models are measured in their training-time branches, "
                    "not in the fused kernels that run at inference"
                )
            click.echo(header)
            click.echo("-" * len(header))
        results[name] = entry
        for size, s in result["sizes"].items():
            f = s["fractions"]
            click.echo(
                f"{name:<{width}} {size:>6} {s['kernels']:>8} {f['excitatory-centre']:>7.3f} "
                f"{f['inhibitory-centre']:>7.3f} {f['other']:>7.3f} {s['centre_surround_fraction']:>8.3f} "
                f"{s['dog_fit_above']:>10.3f} {s['surround_antagonism']:>7.3f}"
            )
        if result["fused"]:
            click.echo(
                f"  {name}: re-parameterizable: the fused kernels, as they run at inference (timm's "
                f"reparameterize_model on a copy); --unfused measures the training-time branches"
            )
        if out:
            size, s = max(result["sizes"].items(), key=lambda item: item[1]["kernels"])
            path = out if i == 0 else out.with_name(f"{out.stem}_{i}{out.suffix}")
            kind = "fused " if result["fused"] else ""
            plot_clusters(
                s["_cluster"]["clusters"],
                s["_kernels"],
                s["_cluster"]["assignment"],
                path,
                title=f"{name}: {size} {kind}depthwise kernels, k-means clusters",
            )
            click.echo(f"wrote {path}")
    if json_out:
        write_text(json_out, json.dumps(results, indent=2))
        click.echo(f"wrote {json_out}")
