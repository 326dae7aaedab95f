"""Output files and folders: checked before the work, written under hidden partial names, moved into place at
the end.

The rules, the same for every command: a missing folder is created when the output is written (and removed
again if that write fails); a folder in which this user cannot create a file is refused, and so is an
unsupported extension. ``.NAME.partial*`` files are removed on failure, on SIGINT and SIGTERM (the CLI turns
SIGTERM into KeyboardInterrupt, so every ``finally`` runs) and when the next write of NAME starts.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from .errors import TimmDogError

JSON = (".json",)


class OutputError(TimmDogError):
    """An output that cannot be written where it was asked for, saying why and what is allowed."""


def figure_suffixes() -> tuple:
    """The extensions matplotlib's savefig writes (.png, .pdf, .svg, …)."""
    from matplotlib.backend_bases import FigureCanvasBase

    return tuple(f".{ext}" for ext in sorted(FigureCanvasBase.get_supported_filetypes()))


def check_output(path, suffixes: Sequence[str] | None = None, folder: bool = False) -> Path:
    """Refuse ``path`` (a file, or a folder if ``folder``) before any work: an extension not in ``suffixes``, a
    file where a folder must be (or the reverse), a folder in which no file can be created. Creates nothing."""
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        allowed = suffixes[0] if len(suffixes) == 1 else "one of " + ", ".join(suffixes)
        raise OutputError(f"{path} must end in {allowed}")
    if path.exists() and path.is_dir() != folder:
        raise OutputError(f"{path} is a {'file' if folder else 'folder'}; give a {'folder' if folder else 'file'}")
    existing = next(p for p in ([path] if folder else []) + [path.parent, *path.parent.parents] if p.exists())
    if not existing.is_dir():
        raise OutputError(f"{existing} is a file, not a folder: cannot write {path}")
    try:  # os.access says yes to root even on a read-only folder: really create a file
        tempfile.NamedTemporaryFile(dir=existing, prefix=".timm-dog-probe-").close()
    except OSError as error:
        raise OutputError(f"cannot create files in {existing} ({error.strerror}): cannot write {path}") from None
    return path


def partial_name(path) -> Path:
    """The hidden name ``path`` is written under until it is complete."""
    path = Path(path)
    return path.with_name(f".{path.name}.partial")


def remove_partials(path) -> None:
    """Remove the ``.NAME.partial*`` files (and folders) that a write of ``path`` leaves while it runs."""
    path = Path(path)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.partial*"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def writing(*paths) -> Iterator[list]:
    """Yield the partial names of ``paths`` (their folders created, stale partials removed). When the block ends
    without error, move them all into place; if the block or one move fails, remove every partial, every output
    already moved, and the folders created here."""
    paths = [Path(p) for p in paths]
    created = []
    for path in paths:
        missing = [p for p in [path.parent, *path.parent.parents] if not p.exists()]
        path.parent.mkdir(parents=True, exist_ok=True)
        created += missing
        remove_partials(path)
    moved, done = [], False
    try:
        yield [partial_name(p) for p in paths]
        for path in paths:
            os.replace(partial_name(path), path)
            moved.append(path)
        done = True
    finally:
        for path in paths:
            remove_partials(path)
        if not done:
            for path in moved:
                path.unlink(missing_ok=True)
            for folder in sorted(created, key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):  # not empty: it holds other files
                    folder.rmdir()


def write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` through its partial name."""
    with writing(path) as (partial,):
        partial.write_text(text)
    return Path(path)
