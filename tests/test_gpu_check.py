"""benchmarks/gpu_check.py without a GPU: it skips, says why, and exits 0 (nothing in CI needs a GPU)."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "gpu_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_gpu_check_skips_without_cuda(tmp_path):
    log = tmp_path / "gpu_check.log"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--log", str(log)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "SKIP: torch" in result.stdout and "sees no CUDA device; this check needs one GPU" in result.stdout
    assert log.read_text() == result.stdout


def test_gpu_check_usage():
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--cpu-smoke" in result.stdout and "--train-py" in result.stdout
