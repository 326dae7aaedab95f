"""Install the lowest versions that pyproject.toml allows into a fresh virtual environment and run the fast tests.

    python benchmarks/check_floors.py                          # in .venv-floors: pytest -m "not slow"
    python benchmarks/check_floors.py --venv /tmp/floors -- tests/test_models.py -x   # other pytest arguments

The versions are the pip constraints file benchmarks/floors.txt (``name==floor`` for every dependency
of pyproject.toml; tests/test_floors.py keeps the two equal). pip installs ``.[onnxruntime,dev]``
under those constraints (each floor's own dependencies, such as numpy, at the newest version they allow),
the script checks that every floor is the version installed, runs pytest in the repository with the
environment's interpreter (the installed package is tested, as in CI), and prints the date, the
installed versions and pytest's closing line as Markdown rows for docs/compatibility.md.
Exit status: pytest's, or 2 when an installed version is not its floor.
"""

import argparse
import datetime
import json
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOORS = ROOT / "benchmarks" / "floors.txt"
SHOWN = ("numpy", "pillow", "onnx-ir", "protobuf")  # versions that pip chose and the results depend on


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def floors(path: Path = FLOORS) -> dict:
    """``{name: version}`` of the constraints file ``path``."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonical(name)] = version.strip()
    return pins


def installed(python: Path) -> dict:
    listing = subprocess.run(
        [str(python), "-m", "pip", "list", "--format", "json"], check=True, capture_output=True, text=True
    ).stdout
    return {canonical(entry["name"]): entry["version"] for entry in json.loads(listing)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv-floors", help="where to create it (emptied first)")
    parser.add_argument("pytest_args", nargs="*", help='after --: pytest arguments [default: -m "not slow"]')
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(args.venv)], check=True)
    python = args.venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-c", str(FLOORS), f"{ROOT}[onnxruntime,dev]"], check=True)
    versions, pins = installed(python), floors()
    wrong = {
        name: versions.get(name) for name, floor in pins.items() if (versions.get(name) or "").split("+")[0] != floor
    }
    if wrong:
        print(f"not installed at their floors: {wrong}", file=sys.stderr)
        return 2
    command = [str(python), "-m", "pytest", "-p", "no:cacheprovider", *(args.pytest_args or ["-m", "not slow"])]
    start = datetime.datetime.now()
    run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    last = ""
    for line in run.stdout:
        print(line, end="", flush=True)
        last = line.strip() or last
    run.wait()
    shown = [f"{name} {versions[name]}" for name in (*pins, *SHOWN) if name in versions]
    print(
        f"\n| checked | {start:%Y-%m-%d}, Python {platform.python_version()}, {platform.system()} "
        f"{platform.machine()} |\n| installed | {', '.join(shown)} |\n"
        f"| `pytest {' '.join(args.pytest_args or ['-m', repr('not slow')])}` | {last.strip('= ')} "
        f"(exit status {run.returncode}) |"
    )
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
