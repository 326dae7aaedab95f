"""How long `analyze` takes on a whole convnext_base (model creation excluded). Median of --repeats.

Usage: python benchmarks/bench_analyze.py [--model convnext_base] [--repeats 3]
"""

import argparse
import statistics
import time

import timm

from timm_dog.analysis import analyze_model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="convnext_base")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = timm.create_model(args.model)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = analyze_model(model)
        times.append(time.perf_counter() - start)
    print(
        f"analyze {args.model}: {result['kernels']:,} depthwise kernels in {statistics.median(times):.2f} s "
        f"(median of {args.repeats}); centre-surround fraction {result['centre_surround_fraction']:.3f}, "
        f"DoG fit > 0.8: {result['dog_fit_above']:.3f}"
    )


if __name__ == "__main__":
    main()
