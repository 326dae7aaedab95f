"""The package's refusals: one base class, so that the command line tells a refusal (one line) from a bug."""


class TimmDogError(ValueError):
    """Input that timm-dog refuses; the message says what was wrong and what is allowed.

    A ``ValueError`` for callers that catch those; the command line shows exactly this class (and ``OSError``) as
    one line, and anything else as a bug, with its traceback."""
