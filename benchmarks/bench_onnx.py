"""onnxruntime (fp32 and static int8) vs PyTorch eager on the CPU, batch 1 and 8, in one run.

For each model: export with timm-dog (verified), quantize to int8 calibrated on real images (scikit-learn's
digits, upscaled), time median latency, and measure int8's top-1 agreement with fp32 PyTorch on real images
(the digits and scikit-learn's two photos). Fresh DoG-initialized weights unless --checkpoint is given, so
int8 agreement here is a pessimistic figure (untrained logits are close together).

Usage: python benchmarks/bench_onnx.py [--models convnext_tiny_dog convmixer_512_dog mobilenetv3_large_100_dog]
                                       [--repeats 20] [--images 64]
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import timm
import torch

from timm_dog.demo import write_digits_imagefolder
from timm_dog.onnx import INPUT, OUTPUT, export_onnx, inference_session, model_metadata, quantize_int8
from timm_dog.preprocess import Preprocess, image_files, open_image, sample_photos


def median_ms(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def bench(name: str, images: list, calibration: list, repeats: int, work: Path) -> dict:
    torch.manual_seed(0)
    model = timm.create_model(name).eval()
    preprocess = Preprocess.from_model(model)
    fp32, int8 = work / f"{name}.onnx", work / f"{name}_int8.onnx"
    export_onnx(model, fp32, log=lambda line: None)
    quantize_int8(fp32, int8, calibration, preprocess, model_metadata(model))
    sessions = {"fp32": inference_session(fp32), "int8": inference_session(int8)}
    row = {"model": name}
    for batch in (1, 8):
        x = np.random.default_rng(0).standard_normal((batch, *preprocess.input_size), dtype=np.float32)
        xt = torch.from_numpy(x)
        with torch.inference_mode():
            row[f"torch_b{batch}"] = median_ms(lambda: model(xt), repeats)
        for precision, session in sessions.items():
            row[f"ort_{precision}_b{batch}"] = median_ms(lambda: session.run([OUTPUT], {INPUT: x}), repeats)
    real = np.stack([preprocess(open_image(p)) for p in images])
    with torch.inference_mode():
        want = torch.cat([model(torch.from_numpy(real[i:i + 16])) for i in range(0, len(real), 16)]).numpy()
    got = np.concatenate([sessions["int8"].run([OUTPUT], {INPUT: real[i:i + 16]})[0] for i in range(0, len(real), 16)])
    row["int8_top1_agreement"] = float((got.argmax(1) == want.argmax(1)).mean())
    return row


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["convnext_tiny_dog", "convmixer_512_dog",
                                                         "mobilenetv3_large_100_dog"])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--images", type=int, default=64, help="real images for int8 agreement (+2 photos)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        digits = image_files(write_digits_imagefolder(work / "digits"))
        images = digits[:: max(1, len(digits) // args.images)][: args.images] + sample_photos()
        calibration = digits[1:: max(1, len(digits) // 32)][:32]
        rows = [bench(name, images, calibration, args.repeats, work) for name in args.models]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; latency in ms, median of {args.repeats}; "
          f"int8 agreement on {len(images)} real images\n")
    print("| model | torch b1 | ORT fp32 b1 | speed-up b1 | torch b8 | ORT fp32 b8 | speed-up b8 | ORT int8 b1 | "
          "int8 vs fp32 b1 | ORT int8 b8 | int8 vs fp32 b8 | int8 top-1 agreement |")
    print("|---" * 12 + "|")
    for r in rows:
        print(f"| {r['model']} | {r['torch_b1']:.1f} | {r['ort_fp32_b1']:.1f} | {r['torch_b1'] / r['ort_fp32_b1']:.2f}x "
              f"| {r['torch_b8']:.1f} | {r['ort_fp32_b8']:.1f} | {r['torch_b8'] / r['ort_fp32_b8']:.2f}x "
              f"| {r['ort_int8_b1']:.1f} | {r['ort_fp32_b1'] / r['ort_int8_b1']:.2f}x | {r['ort_int8_b8']:.1f} "
              f"| {r['ort_fp32_b8'] / r['ort_int8_b8']:.2f}x | {r['int8_top1_agreement']:.0%} |")


if __name__ == "__main__":
    main()
