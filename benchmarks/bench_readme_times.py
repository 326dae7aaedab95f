"""The times the README states, measured with their conditions: `timm-dog demo` (default: all of it, as the
README's first command runs it after the install) and, with --tests, the test suite (`pytest -q`, then without
the slow tests, `pytest -q -m "not slow"`).

Each is one run in a fresh process from a temporary folder; it prints the wall time, the CPU time (user + system,
all threads: less sensitive to other work than the wall time), the CPU count and the load average before and after
(other work on the machine slows the wall time).
Usage: python benchmarks/bench_readme_times.py [--tests] [--skip-demo]
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(label: str, args, cwd) -> None:
    before, cpu = os.getloadavg()[0], resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seconds = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    tail = (result.stdout.strip().splitlines() or [""])[-1]
    print(
        f"{label}: {seconds:.0f} s wall, {cpu_seconds:.0f} CPU-s, exit {result.returncode}; {os.cpu_count()} CPUs, "
        f"load average "
        f"{before:.2f} before, {os.getloadavg()[0]:.2f} after; last line: {tail}"
    )
    if result.returncode:
        print(result.stderr[-2000:], file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", action="store_true", help="Also time the test suite, whole and without slow tests.")
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {sys.executable}")
    if not args.skip_demo:
        with tempfile.TemporaryDirectory() as folder:
            timed(
                "timm-dog demo",
                [
                    sys.executable,
                    "-c",
                    "from timm_dog.cli import main; main()",
                    "demo",
                    "--out",
                    str(Path(folder) / "timm-dog-demo"),
                ],
                folder,
            )
    if args.tests:
        timed("pytest -q", [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], ROOT)
        timed(
            'pytest -q -m "not slow"',
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow"],
            ROOT,
        )


if __name__ == "__main__":
    main()
