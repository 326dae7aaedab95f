"""The layers of ARCHITECTURE.md hold (import-linter, function-level imports included) and the code is ruff-clean."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists() and shutil.which(name) is None:
        pytest.fail(f"{name} is not installed: pip install '.[dev]'")
    return str(path) if path.exists() else shutil.which(name)


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


def test_imports_point_down():
    done = _run(_tool("lint-imports"), "--no-cache")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_ruff_check_is_clean():
    done = _run(_tool("ruff"), "check", "timm_dog", "tests", "benchmarks", "timm_dog_autoload.py")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_ruff_format_is_kept():
    done = _run(_tool("ruff"), "format", "--check", "timm_dog", "tests", "benchmarks", "timm_dog_autoload.py")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
