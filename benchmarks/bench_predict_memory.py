"""Peak memory and start-up of `timm-dog predict` against the number of images: flat when it runs in batches.

For each COUNT, `timm-dog predict MODEL` on COUNT small PNGs (random 32x32 pixels, upscaled by the model's own
preprocessing) runs in a fresh process, started by a wrapper process of its own that reports its child's peak
resident memory (resource.getrusage(RUSAGE_CHILDREN).ru_maxrss) and wall time, so no count sees another's peak.
Prints the peak and the time per count, and the ratio of the largest count's peak to the smallest's (1.0: flat).
``--onnx`` first exports MODEL (fresh init) to an .onnx file with `timm-dog export` and measures predict on that
file, in processes where importing torch, timm or onnx fails (a sitecustomize that blocks them), as a user
without torch runs it; the time of one image is then mostly start-up (imports and the onnxruntime session).
TREE (default: the installed package) is put first on PYTHONPATH, to measure another version.
Usage: python benchmarks/bench_predict_memory.py [--counts 100 1000] [--model mobilenetv3_small_050_dog]
       [--batch-size 32] [--onnx] [--tree TREE]
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

WRAPPER = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); subprocess.run(sys.argv[1:], check=True, "
    "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t)"
)
CLI = "from timm_dog.cli import main; main()"
BLOCKER = """import sys


class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "timm", "onnx"):
            raise ImportError(name + " is blocked")


sys.meta_path.insert(0, Blocker())
"""


def peak_mib(files: list, model: str, batch_size, path: list) -> tuple:
    """(peak RSS in MiB, seconds) of one `timm-dog predict` of ``files``, in a process of its own."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [*path, os.environ.get("PYTHONPATH")])))
    command = [sys.executable, "-c", CLI, "predict", model, *map(str, files)]
    command += ["--batch-size", str(batch_size)] if batch_size else []  # none: a version without the option
    out = subprocess.run([sys.executable, "-c", WRAPPER, *command], capture_output=True, text=True, env=env, check=True)
    kib, seconds = out.stdout.split()
    return int(kib) / 1024, float(seconds)  # ru_maxrss is in KiB on Linux


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--model", default="mobilenetv3_small_050_dog")
    parser.add_argument("--batch-size", type=int, default=32, help="0: do not pass --batch-size")
    parser.add_argument("--onnx", action="store_true", help="predict with an exported .onnx file, torch blocked")
    parser.add_argument("--tree", default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        files = [Path(folder) / f"{i:05d}.png" for i in range(max(args.counts))]
        for path in files:
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
        tree = args.tree and os.path.abspath(args.tree)
        path, model = [tree], args.model
        if args.onnx:
            model = str(Path(folder) / f"{args.model}.onnx")
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [tree, os.environ.get("PYTHONPATH")])))
            subprocess.run(
                [sys.executable, "-c", CLI, "export", args.model, "--out", model],
                check=True,
                env=env,
                stdout=subprocess.DEVNULL,
            )
            (Path(folder) / "sitecustomize.py").write_text(BLOCKER)
            path = [folder, tree]
            print(f"{Path(model).name}: {Path(model).stat().st_size / 2**20:.1f} MiB; torch, timm, onnx blocked")
        peaks = {}
        for count in args.counts:
            peaks[count], seconds = peak_mib(files[:count], model, args.batch_size, path)
            print(f"{count:>6} images: peak RSS {peaks[count]:,.0f} MiB, {seconds:.2f} s", flush=True)
    low, high = min(args.counts), max(args.counts)
    print(
        f"{args.model}{' (ONNX)' * args.onnx}, batch {args.batch_size or 'all'}: peak at {high} images / "
        f"peak at {low} = {peaks[high] / peaks[low]:.2f}"
    )


if __name__ == "__main__":
    main()
