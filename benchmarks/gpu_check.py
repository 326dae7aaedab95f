"""GPU check of timm-dog: about 6 minutes on one GPU, with no network (issue 12 §5).

Needs a Python that has torch, timm and onnxruntime; a timm-dog wheel built beforehand in .whl/
(`pip wheel --no-deps -w .whl .`); timm's train.py (--train-py, default ./timm-src/train.py).
Steps, each logged as PASS / FAIL / SKIP with its seconds, everything also written to --log:

1. pip install --no-index --no-deps .whl/*.whl
2. training-step throughput pairs (timm_dog.benchmark.train_steps): convnext_tiny, convmixer_512,
   hornet_tiny_7x7 and their *_dog twins; AMP fp16 / bf16 x channels_last / NCHW; batch 128, 224²
3. timm's train.py with recipes/imagenet/convnext_tiny_dog.yaml on sklearn's digits, 2 epochs at 64 px,
   without and with --torchcompile
4. timm-dog eval --device cuda on that checkpoint
5. timm-dog recipe check recipes/imagenet/convnext_tiny_dog.yaml --benchmark --gpus 8 (compiled, as the recipe says)

Without CUDA every step is skipped and it says why (exit 0); --cpu-smoke runs the same steps on the CPU
at toy sizes, to check the script itself. Exit status 1 when a step fails.
Usage: python benchmarks/gpu_check.py [--train-py PATH] [--log gpu_check.log] [--no-install] [--cpu-smoke]
"""

import argparse
import glob
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "imagenet" / "convnext_tiny_dog.yaml"
SMOKE_RECIPE = ROOT / "recipes" / "cifar10" / "mobilenetv2_100_dog.yaml"
PAIRS = ("convnext_tiny", "convmixer_512", "hornet_tiny_7x7")
SETTINGS = [(amp, cl) for amp in ("float16", "bfloat16") for cl in (True, False)]
CLI = "from timm_dog.cli import main; main()"


class Check:
    def __init__(self, log_path: Path):
        self.log_path, self.failed = log_path, []
        log_path.write_text("")

    def log(self, line: str = ""):
        print(line, flush=True)
        with open(self.log_path, "a") as f:
            f.write(line + "\n")

    def step(self, name: str, function, *args):
        self.log(f"\n== {name}")
        start = time.perf_counter()
        try:
            outcome = function(*args) or "PASS"
        except Exception as error:  # a step's failure is logged; the next steps still run
            outcome = f"FAIL {type(error).__name__}: {str(error).strip().splitlines()[-1] if str(error) else ''}"
            self.failed.append(name)
        self.log(f"-> {outcome} ({time.perf_counter() - start:.0f} s)")

    def run(self, command: list, timeout: int):
        """Run a command; its output goes to the log; a non-zero exit raises."""
        self.log("$ " + " ".join(map(str, command)))
        result = subprocess.run(
            list(map(str, command)), capture_output=True, text=True, timeout=timeout, cwd=tempfile.gettempdir()
        )
        output = (result.stdout + result.stderr).strip().splitlines()
        for line in output[-40:]:
            self.log("  " + line)
        if result.returncode:
            raise RuntimeError(f"exit status {result.returncode}: {output[-1] if output else ''}")


def install(check: Check):
    wheels = glob.glob(str(ROOT / ".whl" / "*.whl"))
    if not wheels:
        raise FileNotFoundError(f"no wheel in {ROOT / '.whl'}: build one first with `pip wheel --no-deps -w .whl .`")
    check.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--force-reinstall", *wheels], 120)


def throughput(check: Check, device, batch: int, size: int, steps: int, pairs):
    import timm
    import torch

    from timm_dog.benchmark import device_name, train_steps

    check.log(
        f"{device_name(device)}, torch {torch.__version__}, timm {timm.__version__}: batch {batch}, {size}², "
        f"AdamW, grad clip 1.0, {steps} timed steps after 3 warm-up, synthetic data"
    )
    check.log(f"{'model':<24} {'AMP':<9} {'layout':<14} {'img/s':>8} {'peak GiB':>9} {'dog/base':>9}")
    failures = 0
    for base in pairs:
        for amp, channels_last in SETTINGS:
            speeds = {}
            for name in (base, base + "_dog"):
                try:
                    model = timm.create_model(name)
                    r = train_steps(
                        model,
                        batch,
                        size,
                        device=device,
                        amp_dtype=amp,
                        channels_last=channels_last,
                        clip_grad=1.0,
                        steps=steps,
                        warmup=3,
                    )
                except Exception as error:  # e.g. out of memory: the row says so
                    failures += 1
                    check.log(f"{name:<24} {amp:<9} {'':<14} FAIL {str(error).splitlines()[0][:80]}")
                    continue
                finally:
                    model = None
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                speeds[name] = r["images_per_second"]
                ratio = f"{speeds[name] / speeds[base]:.3f}" if name != base and base in speeds else ""
                check.log(
                    f"{name:<24} {amp:<9} {'channels_last' if channels_last else 'NCHW':<14} "
                    f"{r['images_per_second']:>8,.0f} {r['peak_memory_bytes'] / 2**30:>9.2f} {ratio:>9}"
                )
    if failures:
        raise RuntimeError(f"{failures} measurements failed")


def train_py(
    check: Check, train_script: Path, digits: Path, out: Path, device: str, size: int, epochs: int, compile_: bool
):
    command = [
        sys.executable,
        train_script,
        "--config",
        RECIPE,
        "--data-dir",
        digits,
        "--train-split",
        "train",
        "--val-split",
        "val",
        "--num-classes",
        10,
        "--img-size",
        size,
        "--epochs",
        epochs,
        "--warmup-epochs",
        0,
        "-b",
        64,
        "--workers",
        4,
        "--log-interval",
        10,
        "--device",
        device,
        "--output",
        out,
        "--experiment",
        "compiled" if compile_ else "eager",
        "--model-kwargs",
        "dog_seed=0",
    ]
    if device == "cpu":
        command += ["--amp-dtype", "bfloat16"]  # CPU autocast: bf16
    # the recipe sets torchcompile: inductor; an empty backend turns it off for the eager run
    check.run(command + ["--torchcompile", "inductor" if compile_ else ""], 240)
    summary = (out / ("compiled" if compile_ else "eager") / "summary.csv").read_text().strip().splitlines()
    check.log(f"summary.csv, last epoch: {summary[-1]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-py", type=Path, default=ROOT / "timm-src" / "train.py")
    parser.add_argument("--log", type=Path, default=Path("gpu_check.log"))
    parser.add_argument("--no-install", action="store_true", help="timm-dog is installed already")
    parser.add_argument("--cpu-smoke", action="store_true", help="toy sizes on the CPU, to check this script")
    args = parser.parse_args()
    check = Check(args.log.resolve())
    start = time.perf_counter()
    import torch

    if not torch.cuda.is_available() and not args.cpu_smoke:
        check.log(
            f"SKIP: torch {torch.__version__} sees no CUDA device; this check needs one GPU "
            "(--cpu-smoke runs it on the CPU at toy sizes)"
        )
        return 0
    cuda = torch.cuda.is_available() and not args.cpu_smoke
    device = torch.device("cuda" if cuda else "cpu")
    check.log(
        f"GPU check of timm-dog on {torch.cuda.get_device_name(0) if cuda else 'the CPU (smoke test)'}, "
        f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}"
    )
    if args.no_install:
        check.log("\n== install: skipped (--no-install)")
    else:
        check.step("install the wheel (offline)", install, check)
    if cuda:
        check.step("train-step throughput, batch 128, 224²", throughput, check, device, 128, 224, 10, PAIRS)
    else:
        check.step("train-step throughput (toy)", throughput, check, device, 4, 64, 2, ("convnext_atto",))
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    from timm_dog.demo import write_digits_imagefolder

    digits = write_digits_imagefolder(work / "digits")
    if not args.train_py.is_file():
        check.log(f"\n== train.py\n-> FAIL no train.py at {args.train_py} (give --train-py)")
        check.failed.append("train.py")
    else:
        size, epochs = (64, 2) if cuda else (32, 1)
        check.step(
            f"train.py {RECIPE.name}, digits, {epochs} epochs",
            train_py,
            check,
            args.train_py,
            digits,
            work / "runs",
            device.type,
            size,
            epochs,
            False,
        )
        if cuda:
            check.step(
                f"train.py {RECIPE.name} --torchcompile inductor",
                train_py,
                check,
                args.train_py,
                digits,
                work / "runs",
                device.type,
                size,
                epochs,
                True,
            )
        else:
            check.log("\n== train.py --torchcompile: SKIP on the CPU smoke test")
    checkpoint = work / "runs" / "eager" / "model_best.pth.tar"
    check.step(
        f"timm-dog eval --device {device.type}",
        check.run,
        [
            sys.executable,
            "-c",
            CLI,
            "eval",
            "convnext_tiny_dog",
            "--checkpoint",
            checkpoint,
            "--data-dir",
            digits,
            "--device",
            device.type,
        ],
        120,
    )
    # on the CPU: the CIFAR recipe (ConvNeXt's compiles for minutes there, and CPU fp16 autocast crawls)
    recipe, bench = (RECIPE, []) if cuda else (SMOKE_RECIPE, ["--benchmark-steps", 2])
    check.step(
        f"timm-dog recipe check {recipe.name} --benchmark",
        check.run,
        [
            sys.executable,
            "-c",
            CLI,
            "recipe",
            "check",
            recipe,
            "--benchmark",
            "--gpus",
            8,
            "--device",
            device.type,
            "--aug-samples",
            8,
            "--steps",
            1,
            *bench,
        ],
        240,
    )
    check.log(
        f"\n{len(check.failed)} failed ({', '.join(check.failed) or 'none'}); "
        f"total {time.perf_counter() - start:.0f} s; log: {check.log_path}"
    )
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
