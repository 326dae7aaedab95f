"""Calibration of report's comparison of inits, by simulation (tests/simulation.py's generative models).

Table 1: null experiments (both inits equally good; per-run ability normal, images of varying difficulty): how often
the old method (evaluate.mcnemar on the pooled seed-paired predictions, report.paired_bootstrap's interval) and
timm_dog.stats.compare_runs (run-level) call the inits different (p < 0.05; interval excluding 0).
Table 2: false-positive rate, 95 % coverage of the true Δ and power at Δ = 1 point of the new method, per generative
model, pairing and runs per arm. Every rate with its Monte-Carlo std (sqrt(r(1 − r)/experiments)).

Usage: python benchmarks/bench_stats.py [--experiments 2000] [--images 5000]
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from simulation import simulate  # noqa: E402

from timm_dog.evaluate import mcnemar  # noqa: E402
from timm_dog.report import paired_bootstrap  # noqa: E402
from timm_dog.stats import compare_runs, image_variance, run_test  # noqa: E402

CHUNK = 200  # experiments simulated at once (memory)


def _rate(hits: np.ndarray) -> str:
    r = hits.mean()
    return f"{100 * r:.1f} % ± {100 * np.sqrt(r * (1 - r) / len(hits)):.1f}"


def _experiments(model, experiments, runs, delta, scale, paired, images, seed):
    for start in range(0, experiments, CHUNK):
        yield simulate(
            model, min(CHUNK, experiments - start), runs, delta, scale, paired, seed=seed + start, images=images
        )


def old_vs_new(experiments: int, images: int) -> None:
    print(
        f"Null experiments ({experiments} per cell, {images} validation images, logistic model, runs paired by seed):"
        " p < 0.05 / 95 % interval excluding 0, old method → run-level (compare_runs)\n"
    )
    print("| spread of top-1 between runs (std) | 1 run per arm | 3 runs per arm | 5 runs per arm |\n|---|---|---|---|")
    for scale in (0.0, 0.06, 0.2):
        cells, stds = [], []
        for runs in (1, 3, 5):
            old_p, old_ci, new_p, new_ci = [], [], [], []
            for a, b in _experiments("logistic", experiments, runs, 0.0, scale, True, images, seed=runs):
                for x, y in zip(a, b):
                    old_p.append(mcnemar(x.ravel(), y.ravel())["p_value"] < 0.05)
                    low, high = paired_bootstrap(x, y)
                    old_ci.append(low > 0 or high < 0)
                if runs == 1:  # compare_runs: an interval over the images only
                    new_ci += [not (c.ci[0] <= 0 <= c.ci[1]) for c in map(compare_runs, a, b)]
                    continue
                top1_a, top1_b = 100 * a.mean(-1), 100 * b.mean(-1)  # compare_runs's test, all experiments at once
                r = run_test(top1_a, top1_b, 1e4 * image_variance(a, b, True), True)
                new_p += list(r["p_value"] < 0.05)
                new_ci += list((r["low"] > 0) | (r["high"] < 0))
                stds += list(top1_a.var(-1, ddof=1))
            cells.append(
                f"{_rate(np.array(old_p))} / {_rate(np.array(old_ci))} → "
                + ("no p" if runs == 1 else _rate(np.array(new_p)))
                + f" / {_rate(np.array(new_ci))}"
            )
        print(f"| ~{np.sqrt(np.mean(stds)):.2f} points | " + " | ".join(cells) + " |")
    print(
        "\nWith one run per arm compare_runs gives no p-value; its interval covers the validation images only "
        "(the same question as McNemar's: these two networks on these images).\n"
    )


def calibration(experiments: int, images: int) -> None:
    print(
        f"compare_runs by simulation ({experiments} experiments per cell, {images} images): false-positive rate at "
        "α 0.05, coverage of the true Δ by the 95 % interval (at Δ 0 and 1 point), power at Δ = 1 point\n"
    )
    print(
        "| model | pairing | top-1 std between runs | runs per arm | false positives | coverage (Δ 0) | "
        "coverage (Δ 1) | power (Δ 1) |\n|---|---|---|---|---|---|---|---|"
    )
    for model, scale in (("logistic", 0.1), ("logistic", 0.15), ("heavy", 0.01), ("heavy", 0.06)):
        for paired in (True, False):
            for runs in (2, 3, 5):
                out, std = {}, []
                for delta in (0.0, 1.0):
                    rejected, covered = [], []
                    for a, b in _experiments(model, experiments, runs, delta, scale, paired, images, seed=runs):
                        top1_a, top1_b = 100 * a.mean(-1), 100 * b.mean(-1)
                        r = run_test(top1_a, top1_b, 1e4 * image_variance(a, b, paired), paired)
                        rejected.append(r["p_value"] < 0.05)
                        covered.append((r["low"] <= delta) & (delta <= r["high"]))
                        std.append(top1_a.var(-1, ddof=1))
                    out[delta] = np.concatenate(rejected), np.concatenate(covered)
                pairing = "by seed" if paired else "unpaired"
                print(
                    f"| {model} | {pairing} | {np.sqrt(np.mean(np.concatenate(std))):.2f} | {runs} | "
                    f"{_rate(out[0.0][0])} | {_rate(out[0.0][1])} | {_rate(out[1.0][1])} | "
                    f"{_rate(out[1.0][0])} |"
                )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--experiments", type=int, default=2000)
    parser.add_argument("--images", type=int, default=5000)
    args = parser.parse_args()
    old_vs_new(args.experiments, args.images)
    calibration(args.experiments, 2000)


if __name__ == "__main__":
    main()
