"""Core speed and memory: dog_kernels throughput, create_model overhead of *_dog twins, start-up cost.

Warm: create_model timed in this process after a warm-up. Cold: in a fresh interpreter (first use
of every torch op included), which also gives the peak RSS.

Everything is measured interleaved in one run and reported as medians and ratios (the machine is
noisy; nothing here is a test). Usage: python benchmarks/bench_core.py [--repeats 5] [--quick]
"""

import argparse
import statistics
import subprocess
import sys
import time

MODELS = ["convnext_tiny", "convmixer_768_32", "efficientnet_b0", "convnext_xxlarge"]

CREATE = """
import resource, sys, time, timm
t = time.perf_counter()
model = timm.create_model(sys.argv[1])
seconds = time.perf_counter() - t
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def kernels_per_second(repeats: int) -> float:
    import torch

    from timm_dog import dog_kernels

    dog_kernels(1000, 7)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        dog_kernels(1_000_000, 7, dtype=torch.float32)
        times.append(time.perf_counter() - start)
    return 1_000_000 / statistics.median(times)


def create_warm(name: str) -> float:
    """Seconds inside create_model in this (warmed-up) interpreter."""
    import gc

    import timm

    start = time.perf_counter()
    model = timm.create_model(name)
    seconds = time.perf_counter() - start
    del model
    gc.collect()
    return seconds


def create(name: str) -> tuple:
    """(seconds inside create_model, peak RSS in KiB) in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", CREATE, name], capture_output=True, text=True, check=True)
    seconds, rss = out.stdout.split()
    return float(seconds), int(rss)


def startup(repeats: int) -> tuple:
    """Medians of `python -c pass` wall time and of the autoload hook's own import time in it."""
    walls, hook = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True, text=True, check=True
        )
        walls.append(time.perf_counter() - start)
        line = next(x for x in out.stderr.splitlines() if x.rstrip().endswith("timm_dog_autoload"))
        hook.append(int(line.split("|")[1]) / 1e6)
    return statistics.median(walls), statistics.median(hook)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="skip convnext_xxlarge")
    args = parser.parse_args()

    rate = kernels_per_second(args.repeats)
    print(f"dog_kernels, 7x7 fp32: {rate:,.0f} kernels/s (median of {args.repeats} x 1,000,000)")

    wall, hook = startup(max(args.repeats, 20))
    print(
        f"python -c pass: {wall * 1000:.1f} ms, of which the autoload hook {hook * 1000:.2f} ms "
        f"({100 * hook / wall:.1f} %)"
    )

    print("\ncreate_model(X_dog) vs create_model(X), interleaved, medians")
    print(
        f"{'model':<18} {'warm X s':>9} {'warm ratio':>10} {'cold X s':>9} {'cold ratio':>10} "
        f"{'X MiB':>7} {'RSS ratio':>9}"
    )
    for name in MODELS[:-1] if args.quick else MODELS:
        create_warm(name), create_warm(name + "_dog")  # warm-up
        warm, cold = {name: [], name + "_dog": []}, {name: [], name + "_dog": []}
        for _ in range(args.repeats):
            for variant in warm:
                warm[variant].append(create_warm(variant))
        for _ in range(args.repeats):
            for variant in cold:
                cold[variant].append(create(variant))
        wb, wd = (statistics.median(warm[v]) for v in warm)
        cb, cd = (statistics.median(c[0] for c in cold[v]) for v in cold)
        rb, rd = (statistics.median(c[1] for c in cold[v]) for v in cold)
        print(f"{name:<18} {wb:>9.3f} {wd / wb:>10.3f} {cb:>9.3f} {cd / cb:>10.3f} {rb / 1024:>7.0f} {rd / rb:>9.3f}")


if __name__ == "__main__":
    main()
