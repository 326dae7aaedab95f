"""The ``timm-dog`` command line (click): one module per command group, options and printing only.

``main`` is the console script (pyproject's ``timm-dog = "timm_dog.cli:main"``); importing a command module
registers its commands on it."""

from . import analyze, demo, eval, export, models, predict, push, recipe, recipe_check, report, sweep  # noqa: F401  (registers)
from .app import main

__all__ = ["main"]
