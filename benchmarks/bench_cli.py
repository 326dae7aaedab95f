"""Start-up cost of the command line: `timm-dog --help` and `timm-dog list` in fresh interpreters, against
`python -c "import click"` (the floor: Python and click), interleaved in one run.

The plugin's own time is a command's median minus the floor's; the target is under 1 s for both. Each TREE (a
folder holding a `timm_dog` package, put first on PYTHONPATH) is timed with the others, e.g. before/after a change:
    git archive HEAD~1 timm_dog timm_dog_autoload.py | tar -x -C /tmp/before && \\
    python benchmarks/bench_cli.py /tmp/before .
Usage: python benchmarks/bench_cli.py [--repeats 7] [TREE ...]   (default TREE: this checkout)
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

FLOOR = ["-c", "import click"]
COMMANDS = {
    "--help": ["-c", "from timm_dog.cli import main; main()", "--help"],
    "list": ["-c", "from timm_dog.cli import main; main()", "list"],
}


def once(args, tree) -> float:
    env = dict(os.environ, PYTHONPATH=tree or "")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode cached, as for an installed package
    with tempfile.TemporaryDirectory() as cwd:  # `python -c` puts the working directory first on sys.path
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], stdout=subprocess.DEVNULL, env=env, cwd=cwd, check=True)
        return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    trees = [os.path.abspath(tree) for tree in args.trees or [os.path.dirname(os.path.dirname(__file__)) or "."]]
    times = {("floor", None): []} | {(name, tree): [] for tree in trees for name in COMMANDS}
    for tree in trees + [None]:  # warm the bytecode caches
        once(FLOOR, tree)
        for command in COMMANDS.values():
            tree and once(command, tree)
    for _ in range(args.repeats):
        for (name, tree), values in times.items():
            values.append(once(FLOOR if name == "floor" else COMMANDS[name], tree))
    floor = statistics.median(times["floor", None])
    print(
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end; {args.repeats} runs each, "
        f"interleaved; medians"
    )
    print(f"python -c 'import click': {floor:.3f} s (the floor)")
    for (name, tree), values in times.items():
        if name != "floor":
            median = statistics.median(values)
            own = median - floor
            print(
                f"{tree}: timm-dog {name}: {median:.3f} s, {median / floor:.2f}x the floor, plugin's own "
                f"{own:.3f} s ({'under' if own < 1 else 'OVER'} the 1 s target)"
            )


if __name__ == "__main__":
    main()
