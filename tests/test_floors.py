"""The constraints file of floors (benchmarks/floors.txt, installed and tested by benchmarks/check_floors.py) is
pyproject.toml's floors, and the timm releases known to be wrong are excluded."""

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from check_floors import canonical, floors  # noqa: E402


def _requirements() -> list:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in project["dependencies"] + extras["onnxruntime"] + extras["dev"]]


def test_every_floor_is_in_the_constraints_file_and_nothing_else():
    lowest = {}
    for requirement in _requirements():
        bounds = [s.version for s in requirement.specifier if s.operator == ">="]
        assert len(bounds) == 1, f"{requirement} has no single floor (>=)"
        lowest[canonical(requirement.name)] = bounds[0]
    assert {name: Version(v) for name, v in floors().items()} == {name: Version(v) for name, v in lowest.items()}


def test_the_floors_are_allowed_and_timm_1_0_21_is_not():
    pins = floors()
    for requirement in _requirements():
        assert requirement.specifier.contains(pins[canonical(requirement.name)]), requirement
    timm = next(r for r in _requirements() if r.name == "timm")
    assert not timm.specifier.contains("1.0.21")  # its LayerScale ignores the init value
