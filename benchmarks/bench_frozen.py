"""Cost of frozen DoG kernels (dog_trainable=False) per training step, as a ratio against the unfrozen twin.

One training step as train.py runs it: forward, cross-entropy, backward, grad-norm clipping, timm's
AdamW (weight decay 0.05) step, zero_grad, ModelEmaV3 update. The frozen model pays a gradient mask per
depthwise weight and a save/restore of those weights around the optimizer step; with share 1 its
depthwise weights need no gradient at all. Variants are timed interleaved, step by step, in one run,
and reported as medians (the machine is noisy; nothing here is a test).

Usage: python benchmarks/bench_frozen.py [--model convnext_atto_dog] [--steps 30] [--batch 16] [--img 64]
"""

import argparse
import statistics
import time

import timm
import torch
from timm.optim import create_optimizer_v2
from timm.utils import ModelEmaV3


def make(model: str, share: float, trainable: bool):
    net = timm.create_model(model, num_classes=10, dog_seed=0, dog_share=share, dog_trainable=trainable)
    return net, create_optimizer_v2(net, "adamw", lr=1e-3, weight_decay=0.05), ModelEmaV3(net, decay=0.999)


def step(net, optimizer, ema, x, y, index) -> float:
    start = time.perf_counter()
    torch.nn.functional.cross_entropy(net(x), y).backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    ema.update(net, index)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="convnext_atto_dog")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--img", type=int, default=64)
    args = parser.parse_args()
    variants = {
        "trainable, share 0.5": (0.5, True),
        "frozen, share 0.5": (0.5, False),
        "trainable, share 1": (1.0, True),
        "frozen, share 1": (1.0, False),
    }
    runs = {name: make(args.model, *spec) for name, spec in variants.items()}
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(args.batch, 3, args.img, args.img, generator=g), torch.randint(0, 10, (args.batch,), generator=g)
    times = {name: [] for name in runs}
    for index in range(args.steps + 3):  # 3 warm-up steps
        for name, run in runs.items():
            seconds = step(*run, x, y, index)
            if index >= 3:
                times[name].append(seconds)
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(
        f"{args.model}, batch {args.batch}, {args.img}x{args.img}, {args.steps} steps, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads (CPU)"
    )
    print(f"{'variant':<22} {'ms/step':>8} {'ratio':>7}")
    for name, median in medians.items():
        twin = medians[name.replace("frozen", "trainable")]
        print(f"{name:<22} {1000 * median:>8.1f} {median / twin:>7.3f}")


if __name__ == "__main__":
    main()
