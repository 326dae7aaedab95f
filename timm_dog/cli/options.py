"""Options, parameter types and helpers that several commands share."""

from __future__ import annotations

import difflib
from pathlib import Path

import click

from ..constants import SEED_MAX, SEED_MIN  # torch, timm … are imported by the commands that need them
from ..errors import TimmDogError
from ..outputs import OutputError, check_output

GAMMA_HELP = "γ: a number in [0, 1), or a range LOW,HIGH sampled per kernel"


class GammaType(click.ParamType):
    """'0.3' -> 0.3; '0,0.5' -> (0.0, 0.5)."""

    name = "gamma"

    def convert(self, value, param, ctx):
        from ..dog import check_gamma  # here, not at the top: dog imports torch, and `--help` does not need it

        if isinstance(value, (float, tuple)):
            return value
        try:
            parts = [float(p) for p in str(value).replace(":", ",").split(",")]
        except ValueError:
            self.fail(f"{value!r} is not {GAMMA_HELP}", param, ctx)
        try:
            return check_gamma(parts[0] if len(parts) == 1 else tuple(parts))
        except TimmDogError as error:
            self.fail(f"{value!r}: {error}" if "gamma" in str(error) else f"{value!r} is not {GAMMA_HELP}", param, ctx)


class OutputPath(click.Path):
    """An output file ending in one of ``suffixes`` (a tuple, or a function giving one), or a folder: checked
    by :func:`timm_dog.outputs.check_output` while the command line is parsed, before any work."""

    def __init__(self, suffixes=None, folder=False):
        super().__init__(file_okay=not folder, dir_okay=folder, path_type=Path)
        self.suffixes, self.folder = suffixes, folder

    def convert(self, value, param, ctx):
        path = super().convert(value, param, ctx)
        try:
            return check_output(path, self.suffixes() if callable(self.suffixes) else self.suffixes, self.folder)
        except OutputError as error:
            self.fail(str(error), param, ctx)


def dog_options(f):
    f = click.option(
        "--seed",
        type=click.IntRange(SEED_MIN, SEED_MAX),
        default=None,
        help="Seed for bit-identical kernels, in [-2**63, 2**64 - 1] (default: torch's RNG).",
    )(f)
    f = click.option(
        "--scale",
        default="paper",
        show_default=True,
        help="'paper', 'match' (native init's std) or a positive multiplier.",
    )(f)
    f = click.option(
        "--share", type=float, default=1.0, show_default=True, help="Fraction of each layer's kernels that get DoG."
    )(f)
    f = click.option(
        "--on-ratio", type=float, default=0.5, show_default=True, help="Probability that a kernel is on-centre."
    )(f)
    return click.option("--gamma", type=GammaType(), default="0,0.5", show_default=True, help=GAMMA_HELP)(f)


def device_option(f):
    return click.option(
        "--device",
        default="auto",
        show_default=True,
        help="auto (CUDA when torch sees one, else the CPU), cpu, cuda or cuda:N; for an .onnx "
        "SOURCE, onnxruntime's CUDA or CPU provider.",
    )(f)


def workers_option(f):
    return click.option(
        "--workers",
        "-j",
        type=click.IntRange(0),
        default=None,
        help="Loader processes that read and preprocess images (default: this machine's CPU cores).",
    )(f)


def threads_option(f):
    return click.option(
        "--threads",
        type=click.IntRange(1),
        default=None,
        help="CPU threads for inference: torch's, or the ONNX file's session's (default: the physical cores).",
    )(f)


def dog_args(gamma, on_ratio, share, scale, seed) -> dict:
    """The DoG options, checked by the library; its refusal names the option (exit status 2)."""
    from ..init import check_dog_args  # here, not at the top: init imports torch

    try:
        scale = float(scale)
    except ValueError:
        pass
    try:
        return check_dog_args(gamma, on_ratio, share, scale, seed)
    except TimmDogError as error:
        raise click.BadParameter(str(error)) from None


def checked_device(device: str, **hint) -> str:
    """--device resolved by the library (auto: CUDA when torch sees one); its refusal names the option."""
    from ..runtime import resolve_device  # here, not at the top: only the commands that run a model need it

    try:
        return resolve_device(device)
    except TimmDogError as error:
        raise click.BadParameter(str(error), param_hint="--device") from None


def create(name: str, **kwargs):
    """timm's model ``name``; an unknown name is a usage error with the names it may have meant."""
    import timm  # here, not at the top: `timm-dog --help` and `list` start without timm

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else " See `timm-dog list`."
        raise click.UsageError(f"unknown model {name!r}.{hint}")
    return timm.create_model(name, **kwargs)


def named(source: str, error) -> str:
    """The error's message, led by the SOURCE it concerns unless it names it already."""
    return str(error) if source in str(error) else f"{source}: {error}"


def load(
    source, checkpoint=None, device="auto", amp=None, checkpoint_option="--checkpoint", threads=None, use_ema=False
):
    """``runtime.load_classifier``, its refusal led by SOURCE and naming the option its checkpoint came from; a note
    when a model name comes without trained weights."""
    from ..runtime import load_classifier  # here, not at the top: predict on an .onnx file imports no torch

    if threads and not source.endswith(".onnx"):  # an .onnx file's session takes them itself
        import torch

        torch.set_num_threads(threads)
    try:
        classifier = load_classifier(source, checkpoint, device, amp, threads, use_ema)
    except TimmDogError as error:
        raise TimmDogError(named(source, str(error).replace("--checkpoint", checkpoint_option))) from None
    if not checkpoint and not source.endswith(".onnx") and not source.startswith(("hf-hub:", "local-dir:")):
        click.echo(
            f"note: {source} has no trained weights here (a fresh init): give {checkpoint_option}, "
            f"hf-hub: or local-dir: for a trained model",
            err=True,
        )
    return classifier
