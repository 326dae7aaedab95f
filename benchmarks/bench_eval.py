"""`timm-dog eval` against timm's own validate.py: images/s on the same ImageFolder, model, batch size and
workers, in one run.

validate.py is not in the timm wheel: give a copy of it from timm's repository with --validate-py (copied out
of the clone, so that the clone's timm/ folder does not shadow the installed timm). Both commands run as
subprocesses, alternately, --repeats times each; the figure is images / wall-clock seconds of the whole command
(start-up, model load, data loading and the forward passes), best of the repeats. validate.py gets
--use-train-size, so that both use the model's eval data config (not its larger test_input_size). By default the
model is convnext_atto with a fresh 10-class init saved as a checkpoint, on scikit-learn's digits (360 val images).

Usage: python benchmarks/bench_eval.py --validate-py PATH [--data-dir DIR] [--model convnext_atto]
                                       [--checkpoint FILE] [--batch-size 64] [--workers N] [--device cpu]
                                       [--repeats 3]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(command: list) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--validate-py", required=True, type=Path, help="timm's validate.py (from its repository)")
    parser.add_argument("--data-dir", type=Path, default=None, help="an ImageFolder with val/ (default: digits)")
    parser.add_argument("--model", default="convnext_atto")
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: a fresh 10-class init")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not args.validate_py.is_file():
        sys.exit(f"--validate-py {args.validate_py}: no such file")

    with tempfile.TemporaryDirectory() as work:
        if args.data_dir is None:
            from timm_dog.demo import write_digits_imagefolder

            args.data_dir = write_digits_imagefolder(Path(work) / "digits")
        if args.checkpoint is None:
            import timm
            import torch

            args.checkpoint = Path(work) / "init.pth"
            torch.save({"state_dict": timm.create_model(args.model, num_classes=10).state_dict()}, args.checkpoint)
        images = sum(1 for p in (args.data_dir / "val").rglob("*") if p.is_file())
        common = ["--batch-size", str(args.batch_size), "--workers", str(args.workers), "--device", args.device]
        commands = {
            "timm-dog eval": [
                str(Path(sys.executable).parent / "timm-dog"),
                "eval",
                args.model,
                "--checkpoint",
                str(args.checkpoint),
                "--data-dir",
                str(args.data_dir),
                *common,
            ],
            "timm validate.py": [
                sys.executable,
                str(args.validate_py),
                "--data-dir",
                str(args.data_dir),
                "--model",
                args.model,
                "--checkpoint",
                str(args.checkpoint),
                "--split",
                "val",
                "--num-classes",
                "10",
                "--use-train-size",
                *common,
            ],  # timm-dog's input size
        }
        seconds = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, command in commands.items():
                seconds[name].append(timed(command))
    rates = {name: images / min(times) for name, times in seconds.items()}
    import torch

    print(
        f"{args.model}, {images} images, batch {args.batch_size}, {args.workers} workers, device {args.device}, "
        f"torch {torch.__version__}, best of {args.repeats}"
    )
    for name, rate in rates.items():
        print(f"{name:<18} {rate:8.1f} images/s (wall-clock, whole command)")
    print(f"ratio timm-dog / validate.py: {rates['timm-dog eval'] / rates['timm validate.py']:.2f}x")


if __name__ == "__main__":
    main()
