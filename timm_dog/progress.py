"""Progress of long work (tqdm on stderr), readable in a terminal and in a log file."""

import sys

from tqdm.auto import tqdm

LOG_INTERVAL = 10.0  # seconds between progress lines when stderr is not a terminal


class _Lines:
    """tqdm's redraws as lines of their own, for a log: no carriage returns, no padding, no empty lines."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").rstrip()
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress(iterable=None, **kwargs) -> tqdm:
    """A tqdm bar on stderr: redrawn in place in a terminal; elsewhere (a log, a pipe) a line at most every
    ``LOG_INTERVAL`` seconds, and the last one."""
    terminal = sys.stderr.isatty()
    kwargs.setdefault("mininterval", 0.1 if terminal else LOG_INTERVAL)
    return tqdm(iterable, file=sys.stderr if terminal else _Lines(sys.stderr), dynamic_ncols=terminal, **kwargs)
