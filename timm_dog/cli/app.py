"""The ``timm-dog`` group: the one error policy, SIGTERM as Ctrl-C, and ``--version``."""

from __future__ import annotations

import signal
import threading

import click

from .. import __version__
from ..errors import TimmDogError

ISSUES = "https://github.com/timm-dog/timm-dog/issues"
REFUSALS = (TimmDogError, OSError)  # how the library refuses: RecipeError, PushError, ExportError, OutputError, …
CLICK_EXITS = (click.ClickException, click.exceptions.Exit, click.Abort)  # click's own (Exit, Abort: RuntimeErrors)


def _message(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:  # "x: Permission denied", not "[Errno 13] …"
        return f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    return str(error)


def versions() -> str:
    """'timm-dog V (timm V, torch V)', read from the installed distributions: no import of timm or torch."""
    from importlib.metadata import PackageNotFoundError, version  # here: only a bug's report needs it (start-up)

    def of(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return f"timm-dog {__version__} (timm {of('timm')}, torch {of('torch')})"


def bug_line() -> str:
    return (
        f"This is a bug in timm-dog, not a problem with your input: please report it at {ISSUES} with the "
        f"command, this traceback and the versions: {versions()}"
    )


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class _Main(click.Group):
    """Every command runs here. A refusal (:class:`TimmDogError`, ``OSError``) becomes one line "Error: …" and exit
    status 1 (click's usage errors: 2); any other exception is a bug: it propagates (Python shows its traceback, exit
    status 1) with a line asking to report it. SIGTERM interrupts like Ctrl-C (KeyboardInterrupt), so every
    ``finally`` runs and partial files are removed."""

    def invoke(self, ctx):
        main_thread = threading.current_thread() is threading.main_thread()  # signal handlers live there
        previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
        try:
            return super().invoke(ctx)
        except (BrokenPipeError, *CLICK_EXITS):  # `timm-dog list | head`: click's own quiet exit
            raise
        except REFUSALS as error:
            raise click.ClickException(_message(error)) from None
        except Exception as error:  # a bug: Python shows its traceback, exit status 1, and this line under it
            if hasattr(error, "add_note"):  # Python 3.11+
                error.add_note(bug_line())
            else:
                click.echo(bug_line(), err=True)
            raise
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def skipped_lines() -> list:
    """One line per family of models that could not load on the installed timm (imports timm)."""
    import timm

    from ..models import SKIPPED

    return [
        f"skipped on timm {timm.__version__}: the {family} models and their twins ({reason})"
        for family, reason in SKIPPED.items()
    ]


def _version(ctx, param, value):
    if not value or ctx.resilient_parsing:
        return
    import timm  # here, not at the top: `timm-dog --help` and `list` start without torch and timm
    import torch

    click.echo(f"timm-dog {__version__} (timm {timm.__version__}, torch {torch.__version__})")
    for line in skipped_lines():
        click.echo(line)
    ctx.exit()


@click.group(cls=_Main)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_version,
    help="Show the versions of timm-dog, timm and torch, and any family skipped, and exit.",
)
def main():
    """DoG (Difference-of-Gaussians) init for depthwise convolutions in timm models."""
