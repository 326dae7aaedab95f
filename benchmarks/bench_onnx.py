"""CPU inference, measured one engine at a time: export routes, engines, int8.

Method: every engine (an onnxruntime session, torch eager, torch.compile) is timed in its own block —
warm-up, then ``--repeats`` timed runs — with the same stated number of threads; onnxruntime sessions are
opened by timm-dog's own ``inference_session`` (intra-op spinning off). ``--rounds`` repeats the sequence of
blocks and the median of all runs is reported, so a slow minute of a shared machine does not land on one
engine only. FLOPs are torch.utils.flop_counter's (convolutions and matmuls, 2 per multiply-add); the peak is
a large torch sgemm on the same threads.

  routes   onnxruntime fp32 latency of each export route (exporter × opset × simplify), batch 1
  engines  torch eager, torch.compile (inductor), onnxruntime fp32 (the default export), batch 1 and 8
  int8     a demo-trained model (digits at --img-size): int8 variants against fp32 onnxruntime at batch 8,
           top-1 agreement with fp32 and McNemar's exact test on the digits' validation images

Usage: python benchmarks/bench_onnx.py routes|engines|int8 [--models ...] [--routes dynamo-20 ...] [--repeats 10]
       [--rounds 3] [--threads N] [--no-compile] [--img-size 64] [--epochs 20]
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import timm
import torch

from timm_dog.onnx import (
    EXPORTER,
    INPUT,
    OPSET,
    OUTPUT,
    export_onnx,
    inference_session,
    model_metadata,
    physical_cores,
    quantize_int8,
)
from timm_dog.preprocess import Preprocess, image_files, open_image

FAMILIES = [
    "convnext_tiny_dog",
    "convmixer_512_dog",
    "mobilenetv3_large_100_dog",
    "efficientnet_b0_dog",
    "hornet_tiny_7x7_dog",
]
ROUTES = {
    f"{exporter}-{opset}{'' if simplify else '-nosimplify'}": (exporter, opset, simplify)
    for exporter in ("dynamo", "torchscript")
    for opset in (18, 20)
    for simplify in (True, False)
}


def timed(blocks: dict, repeats: int, rounds: int, warmup: int = 3) -> dict:
    """name -> callable; each timed in its own block per round; name -> median ms over all timed runs."""
    times = {name: [] for name in blocks}
    for _ in range(rounds):
        for name, fn in blocks.items():
            for _ in range(warmup):
                fn()
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def sgemm_peak_gflops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    ms = timed({"mm": lambda: torch.mm(a, b)}, repeats, 1)["mm"]
    return 2 * n**3 / ms / 1e6


def gflop(model, x) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x)
    return counter.get_total_flops() / 1e9


def session_fn(session, x):
    return lambda: session.run([OUTPUT], {INPUT: x})


def create(name: str, **kwargs):
    torch.manual_seed(0)
    return timm.create_model(name, **kwargs).eval()


def routes(args, work: Path):
    print(
        f"onnxruntime {__import__('onnxruntime').__version__} fp32, batch 1, {args.threads} threads, median ms of "
        f"{args.rounds} rounds × {args.repeats}; (default) = what `timm-dog export` writes\n"
    )
    routes = [ROUTES[r] for r in args.routes]
    print(
        "| model | " + " | ".join(f"{e} {o}{'' if s else ' no-simplify'}" for e, o, s in routes) + " | default / best |"
    )
    print("|---" * (len(routes) + 2) + "|")
    for name in args.models:
        model = create(name)
        x = np.random.default_rng(0).standard_normal((1, *model.pretrained_cfg["input_size"]), dtype=np.float32)
        blocks, fell_back = {}, set()
        for route in routes:
            exporter, opset, simplify = route
            path = work / f"{name}_{exporter}_{opset}_{simplify}.onnx"
            result = export_onnx(
                model, path, opset=opset, dynamo=exporter == "dynamo", simplify=simplify, log=lambda line: None
            )
            if result.exporter != exporter:
                fell_back.add(route)
            blocks[route] = session_fn(inference_session(path, threads=args.threads), x)
        ms = timed(blocks, args.repeats, args.rounds)
        default = (EXPORTER, OPSET, True)
        cells = [
            f"{ms[r]:.1f}{' (default)' * (r == default)}{' (fell back to torchscript)' * (r in fell_back)}"
            for r in routes
        ]
        print(f"| {name} | " + " | ".join(cells) + f" | {ms.get(default, float('nan')) / min(ms.values()):.3f} |")


def engines(args, work: Path):
    peak = sgemm_peak_gflops()
    print(
        f"torch {torch.__version__}, onnxruntime {__import__('onnxruntime').__version__}, {args.threads} threads; "
        f"median ms of {args.rounds} rounds × {args.repeats}; achieved GFLOP/s in brackets; "
        f"fp32 sgemm 2048³ on these threads: {peak:.0f} GFLOP/s\n"
    )
    names = ["torch eager"] + ["torch.compile"] * (not args.no_compile) + ["onnxruntime fp32"]
    print(
        "| model | GFLOP/img | "
        + " | ".join(f"{n} b{b}" for b in (1, 8) for n in names)
        + " | "
        + " | ".join(f"ORT vs {n} b{b}" for b in (1, 8) for n in names[:-1])
        + " |"
    )
    print("|---" * (2 + 2 * len(names) + 2 * len(names[:-1])) + "|")
    for name in args.models:
        model = create(name)
        path = work / f"{name}.onnx"
        export_onnx(model, path, log=lambda line: None)
        session = inference_session(path, threads=args.threads)
        row, flops = {}, None
        for batch in (1, 8):
            x = np.random.default_rng(0).standard_normal((batch, *model.pretrained_cfg["input_size"]), dtype=np.float32)
            xt = torch.from_numpy(x)
            flops = flops or gflop(model, xt[:1])
            blocks = {"torch eager": lambda model=model, xt=xt: model(xt)}
            if not args.no_compile:
                compiled = torch.compile(model, backend="inductor", dynamic=False)
                blocks["torch.compile"] = lambda compiled=compiled, xt=xt: compiled(xt)
            blocks["onnxruntime fp32"] = session_fn(session, x)
            with torch.inference_mode():
                for engine, ms in timed(blocks, args.repeats, args.rounds).items():
                    row[engine, batch] = ms
        cells = [f"{row[n, b]:.1f} ({flops * b / row[n, b] * 1000:.3g})" for b in (1, 8) for n in names]
        ratios = [f"{row[n, b] / row['onnxruntime fp32', b]:.2f}x" for b in (1, 8) for n in names[:-1]]
        print(f"| {name} | {flops:.2f} | " + " | ".join(cells + ratios) + " |")


def int8(args, work: Path):
    from timm_dog.demo import train_and_evaluate, write_digits_imagefolder
    from timm_dog.evaluate import mcnemar

    root = write_digits_imagefolder(work / "digits")
    calibration = image_files(root / "train")[::8][: args.calibration]
    val = image_files(root / "val")
    labels = np.array([int(Path(p).parent.name) for p in val])
    print(
        f"demo-trained models ({args.epochs} epochs on digits at {args.img_size}×{args.img_size}); int8 calibrated "
        f"on {len(calibration)} training digits; {len(val)} validation digits; batch 8, {args.threads} threads, "
        f"median ms of {args.rounds} rounds × {args.repeats}\n"
    )
    print("| model | variant | fp32 ms | int8 ms | int8 speed-up | top-1 fp32 | top-1 int8 | agreement | McNemar p |")
    print("|---" * 9 + "|")
    for name in args.models:
        torch.set_num_threads(1)  # training on a shared 2-core machine: one thread is many times faster
        model, _, _ = train_and_evaluate(name, root, epochs=args.epochs, img_size=args.img_size)
        torch.set_num_threads(args.threads)
        preprocess = Preprocess.from_model(model)
        images = np.stack([preprocess(open_image(p)) for p in val])
        fp32 = work / f"{name}.onnx"
        export_onnx(model, fp32, log=lambda line: None)
        metadata = model_metadata(model)
        sessions = {"fp32": inference_session(fp32, threads=args.threads)}
        for fmt in ("QDQ", "QOperator"):
            for pre in (True, False):
                for exclude in (False, True):
                    variant = f"{fmt}, pre-process {'on' if pre else 'off'}, stem+head {'fp32' if exclude else 'int8'}"
                    path = work / f"{name}_{fmt}_{pre}_{exclude}.onnx"
                    quantize_int8(
                        fp32,
                        path,
                        calibration,
                        preprocess,
                        metadata,
                        quant_format=fmt,
                        pre_process=pre,
                        exclude_stem_head=exclude,
                    )
                    sessions[variant] = inference_session(path, threads=args.threads)
        batch = images[:8]
        ms = timed({k: session_fn(s, batch) for k, s in sessions.items()}, args.repeats, args.rounds)
        top1 = {
            k: np.concatenate(
                [s.run([OUTPUT], {INPUT: images[i : i + 32]})[0] for i in range(0, len(images), 32)]
            ).argmax(1)
            for k, s in sessions.items()
        }
        for variant in list(sessions)[1:]:
            test = mcnemar(top1["fp32"] == labels, top1[variant] == labels)
            print(
                f"| {name} | {variant} | {ms['fp32']:.1f} | {ms[variant]:.1f} | {ms['fp32'] / ms[variant]:.2f}x "
                f"| {(top1['fp32'] == labels).mean():.2%} | {(top1[variant] == labels).mean():.2%} "
                f"| {(top1[variant] == top1['fp32']).mean():.2%} | {test['p_value']:.3g} |"
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", choices=["routes", "engines", "int8"])
    parser.add_argument("--models", nargs="+", default=None)
    parser.add_argument("--routes", nargs="+", choices=list(ROUTES), default=list(ROUTES), help="routes: which")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=physical_cores())
    parser.add_argument("--no-compile", action="store_true", help="engines: skip torch.compile (slow to compile)")
    parser.add_argument("--img-size", type=int, default=64, help="int8: the demo model's input size")
    parser.add_argument("--epochs", type=int, default=20, help="int8: demo training epochs")
    parser.add_argument("--calibration", type=int, default=64, help="int8: calibration images")
    args = parser.parse_args()
    args.models = args.models or (
        ["convnext_atto_dog", "mobilenetv3_large_100_dog"] if args.table == "int8" else FAMILIES
    )
    torch.set_num_threads(args.threads)
    print(f"load average {os.getloadavg()[0]:.2f} at start; ", end="")
    with tempfile.TemporaryDirectory() as tmp:
        {"routes": routes, "engines": engines, "int8": int8}[args.table](args, Path(tmp))
    print(f"\nload average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
