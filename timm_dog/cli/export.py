"""``export``: SOURCE to ONNX, verified against PyTorch (the library's export_onnx).

The library modules are imported inside the command: `timm-dog --help` starts without torch and timm."""

from __future__ import annotations

import click

from ..constants import CALIBRATION_IMAGES, EXPORTER, OPSET
from ..outputs import JSON
from .app import main
from .options import OutputPath


@main.command()
@click.argument("source")
@click.option(
    "--out",
    "-o",
    type=OutputPath((".onnx",)),
    required=True,
    help="The .onnx file; --fp16/--int8 add <stem>_fp16.onnx / <stem>_int8.onnx beside it. Each is "
    "written as a hidden .NAME.partial beside it until verified; one left by a killed run (kill -9) "
    "is removed by the next export to the same --out.",
)
@click.option(
    "--checkpoint",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Weights for a model-name SOURCE (train.py checkpoint or safetensors).",
)
@click.option(
    "--opset",
    type=click.IntRange(17, 23),
    default=OPSET,
    show_default=True,
    help="ONNX opset; 20 and later write GELU as one Gelu node, which onnxruntime runs fastest.",
)
@click.option(
    "--exporter",
    type=click.Choice(["dynamo", "torchscript"]),
    default=EXPORTER,
    show_default=True,
    help="torch.onnx exporter; dynamo falls back to TorchScript when it fails, and says why.",
)
@click.option(
    "--simplify/--no-simplify",
    default=True,
    show_default=True,
    help="Constant folding and graph clean-up (onnxscript's optimizer).",
)
@click.option("--fp16", is_flag=True, help="Also write an fp16 model (fp32 inputs and outputs).")
@click.option(
    "--int8",
    "int8_dir",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    metavar="DIR",
    help="Also write a static int8 (QDQ) model calibrated on images of DIR (of DIR/train when DIR "
    "holds split folders: train/, val/, …).",
)
@click.option(
    "--calibration-images",
    type=click.IntRange(1),
    default=CALIBRATION_IMAGES,
    show_default=True,
    metavar="N",
    help="int8 calibration on at most N images of DIR, drawn evenly over its (class) folders.",
)
@click.option(
    "--verify-images",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    metavar="DIR",
    help="Images for the PyTorch-vs-onnxruntime check (default: scikit-learn's two photos).",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="Where the check runs: PyTorch on auto (CUDA when torch sees one, else the CPU), cpu, cuda or "
    "cuda:N (TF32 off), against onnxruntime's CUDA provider there when onnxruntime-gpu is installed, "
    "else its CPU one. The file written is the same on every device.",
)
@click.option(
    "--json", "json_out", type=OutputPath(JSON), default=None, help="Write the export and verification report here."
)
def export(
    source,
    out,
    checkpoint,
    opset,
    exporter,
    simplify,
    fp16,
    int8_dir,
    calibration_images,
    verify_images,
    device,
    json_out,
):
    """Export SOURCE to ONNX with its preprocessing as metadata; verify it against PyTorch on real images."""
    from ..onnx import ExportError, export_onnx
    from ..runtime import resolve_device
    from ..sources import load_model
    from ..trainpy.checkpoints import published_architecture

    if source.endswith(".onnx"):
        raise click.UsageError("SOURCE is already an ONNX file; give a model name, hf-hub: or local-dir:")
    device = resolve_device(device)  # before the model is loaded
    try:
        model, _ = load_model(source, checkpoint)
        result = export_onnx(
            model,
            out,
            opset=opset,
            dynamo=exporter == "dynamo",
            simplify=simplify,
            fp16=fp16,
            int8_calibration=int8_dir,
            calibration_images=calibration_images,
            verify_images=verify_images,
            device=device,
            architecture=published_architecture(model.pretrained_cfg.get("architecture", source)),
            report=json_out,
            log=click.echo,
        )
    except ExportError as error:  # says that nothing was written
        raise click.ClickException(f"{error}; no file was written") from None
    for precision, path in result.files.items():
        click.echo(
            f"wrote {path} ({precision}, {result.exporter} exporter, opset {opset}, {path.stat().st_size / 1e6:.1f} MB)"
        )
    if json_out:
        click.echo(f"wrote {json_out}")
