"""Import cost of the twins: `import timm; timm.list_models('*_dog')` timed in fresh interpreters.

Each TREE (a folder holding a `timm_dog` package, put first on PYTHONPATH) is timed interleaved with
the others in one run: the whole command with the autoload, and the plugin's own part (with the
autoload off: `import timm_dog` after `import timm`, then the listing), which the noise of
importing torch does not blur. Plain timm is the floor of the first. Medians in ms.
Usage: python benchmarks/bench_import.py [--repeats 10] TREE [TREE ...]
Before/after a change: git archive HEAD~1 timm_dog | tar -x -C /tmp/before && \\
    python benchmarks/bench_import.py /tmp/before .
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

WHOLE = (
    "import time; t = time.perf_counter(); import timm; n = len(timm.list_models('*_dog')); "
    "print(1000 * (time.perf_counter() - t), n)"
)
PLUGIN = (
    "import time, timm; t = time.perf_counter(); import timm_dog; n = len(timm.list_models('*_dog')); "
    "print(1000 * (time.perf_counter() - t), n)"
)


def once(code: str, tree, autoload: bool) -> tuple:
    env = dict(os.environ, PYTHONPATH=tree or "", TIMM_DOG_AUTOLOAD="1" if autoload else "0")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode cached, as for an installed package
    with tempfile.TemporaryDirectory() as cwd:  # `python -c` puts the working directory first on sys.path
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, check=True)
    ms, count = out.stdout.split()
    return float(ms), int(count)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    trees = [os.path.abspath(tree) for tree in args.trees]
    whole = {None: []} | {tree: [] for tree in trees}
    plugin = {tree: [] for tree in trees}
    counts = {}
    for tree in trees:  # warm-up: writes the bytecode
        once(PLUGIN, tree, False)
    for _ in range(args.repeats):
        for tree in whole:
            ms, counts[tree] = once(WHOLE, tree, tree is not None)
            whole[tree].append(ms)
        for tree in plugin:
            plugin[tree].append(once(PLUGIN, tree, False)[0])
    floor = statistics.median(whole[None])
    print(
        f"{'source':<32} {'twins':>6} {'whole median ms':>16} {'min':>7} {'- plain timm':>13} "
        f"{'plugin median ms':>17} {'min':>6}"
    )
    for tree, times in whole.items():
        median = statistics.median(times)
        own = f"{statistics.median(plugin[tree]):>17.1f} {min(plugin[tree]):>6.1f}" if tree else ""
        print(
            f"{tree or 'plain timm':<32} {counts[tree]:>6} {median:>16.1f} {min(times):>7.1f} "
            f"{median - floor:>13.1f} {own}"
        )


if __name__ == "__main__":
    main()
