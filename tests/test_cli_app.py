"""The command line's one error policy (timm_dog.cli.app): a refusal is one line, anything else is a bug."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from timm_dog import __version__, plots
from timm_dog.cli import main
from timm_dog.cli.app import ISSUES
from timm_dog.errors import TimmDogError
from timm_dog.outputs import OutputError


def _broken_kernel(*args, **kwargs):
    raise ValueError("operands could not be broadcast together")  # as numpy or torch would raise it


def test_a_value_error_inside_the_package_is_a_bug_not_a_bad_option(monkeypatch, tmp_path):
    """Issue 24: a ValueError raised inside dog_kernel is not "Invalid value for --kernel-size": it propagates (its
    traceback is shown) with a line asking to report it, with the versions."""
    monkeypatch.setattr(plots, "dog_kernel", _broken_kernel)
    result = CliRunner().invoke(main, ["show", "-k", "7", "-o", str(tmp_path / "k.png")])
    assert result.exit_code == 1 and type(result.exception) is ValueError
    assert "Invalid value" not in result.output and "Error:" not in result.output
    (note,) = result.exception.__notes__
    assert ISSUES in note and f"timm-dog {__version__} (timm " in note and ", torch " in note
    assert not (tmp_path / "k.png").exists()


def test_a_bug_in_a_real_process_shows_its_traceback_and_the_report_line(tmp_path):
    code = (
        "import timm_dog.plots as p\n"
        "def broken(*a, **k):\n    raise ValueError('inside the package')\n"
        "p.dog_kernel = broken\n"
        "from timm_dog.cli import main\n"
        f"main(['show', '-k', '7', '-o', {str(tmp_path / 'k.png')!r}], prog_name='timm-dog')"
    )
    root = str(Path(__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 1 and result.stdout == ""
    assert "Traceback (most recent call last)" in result.stderr and "ValueError: inside the package" in result.stderr
    assert "Invalid value for --kernel-size" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("This is a bug in timm-dog") and ISSUES in result.stderr
    assert result.stderr.strip().splitlines()[-2] == "ValueError: inside the package"  # the line under the traceback


@pytest.mark.parametrize(
    "error,line",
    [
        (TimmDogError("k must be odd; got 4"), "Error: k must be odd; got 4"),
        (OutputError("out.txt: the output must end in .png"), "Error: out.txt: the output must end in .png"),
        (PermissionError(13, "Permission denied", "/root/x.png"), "Error: /root/x.png: Permission denied"),
    ],
)
def test_a_refusal_is_one_line_and_exit_status_1(monkeypatch, tmp_path, error, line):
    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr(plots, "dog_kernel", refuse)
    result = CliRunner().invoke(main, ["show", "-k", "7", "-o", str(tmp_path / "k.png")], catch_exceptions=False)
    if isinstance(error, TimmDogError):  # a refusal from the kernel's checks names the option: a usage error
        assert result.exit_code == 2 and "Invalid value for --kernel-size" in result.output
        assert str(error) in result.output and "Traceback" not in result.output
        return
    assert result.exit_code == 1 and result.output == line + "\n"


def test_a_refusal_outside_option_checks_is_one_line(monkeypatch):
    from timm_dog import init

    def refuse(*args, **kwargs):
        raise TimmDogError("scale overflows torch.float32 in layer x")

    monkeypatch.setattr(init, "dog_init_", refuse)
    result = CliRunner().invoke(main, ["inspect", "convnext_atto_dog"], catch_exceptions=False)
    assert result.exit_code == 1 and result.output == "Error: scale overflows torch.float32 in layer x\n"


def test_usage_errors_keep_exit_status_2():
    result = CliRunner().invoke(main, ["show", "--no-such-option"])
    assert result.exit_code == 2 and "No such option" in result.output and "Traceback" not in result.output


def _fresh(code: str, **env):
    """Run ``code`` in a fresh interpreter (this checkout first on the path); its last stdout line as JSON."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).parents[1])
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]), **env}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


HEAVY = """
import contextlib, io, json, sys
from timm_dog.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        main({args!r})
    except SystemExit:
        pass
print(json.dumps({{"heavy": sorted(m for m in ("torch", "timm", "numpy", "matplotlib") if m in sys.modules),
                   "output": out.getvalue()}}))
"""


@pytest.mark.parametrize("args", [["--help"], ["recipe", "--help"], ["list"], ["list", "convnext_a*_dog"]])
def test_help_and_list_import_neither_torch_nor_timm(args):
    result = _fresh(HEAVY.format(args=args))
    assert result["heavy"] == [], result["heavy"]
    if args[0] == "list":
        import timm

        assert result["output"].split() == timm.list_models(args[1] if len(args) > 1 else "*_dog")


def test_version_names_timm_and_torch_and_nothing_skipped(cli):
    import timm
    import torch

    from timm_dog import __version__

    result = cli("--version")
    assert result.exit_code == 0
    assert result.output == f"timm-dog {__version__} (timm {timm.__version__}, torch {torch.__version__})\n"
