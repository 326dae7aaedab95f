"""Training-step throughput and peak memory on this machine's device: `recipe check --benchmark` and the GPU check."""

from __future__ import annotations

import resource
import time

import torch
from timm.utils import dispatch_clip_grad

AMP_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return "cpu"


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def train_steps(
    model,
    batch_size: int,
    img_size: int,
    *,
    device: torch.device,
    amp_dtype: str | None = None,
    channels_last: bool = False,
    compile_backend: str | None = None,
    compile_mode: str | None = None,
    optimizer=None,
    smoothing: float = 0.0,
    clip_grad: float | None = None,
    clip_mode: str = "norm",
    steps: int = 10,
    warmup: int = 2,
) -> dict:
    """Real training steps (forward, loss, backward, clip, optimizer step) on synthetic images, as train.py runs
    them: autocast with ``amp_dtype`` (a GradScaler for float16 on CUDA), channels_last, ``torch.compile``.

    Returns images/s over ``steps`` steps after ``warmup`` (the first one, which compiles, is timed apart) and the
    peak memory: ``torch.cuda.max_memory_allocated`` on CUDA; on the CPU the growth of the process's peak RSS
    (ru_maxrss) over its RSS before, which undercounts if the process had already peaked higher.
    """
    model = model.to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = optimizer or torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    step_model = torch.compile(model, backend=compile_backend, mode=compile_mode) if compile_backend else model
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)
    dtype = AMP_DTYPES[amp_dtype] if amp_dtype else None
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 and device.type == "cuda" else None
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch_size, 3, img_size, img_size, generator=generator).to(device)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    targets = torch.randint(0, model.num_classes, (batch_size,), generator=generator).to(device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = loss_fn(step_model(images), targets)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            if clip_grad is not None:
                scaler.unscale_(optimizer)
                dispatch_clip_grad(model.parameters(), value=clip_grad, mode=clip_mode)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if clip_grad is not None:
                dispatch_clip_grad(model.parameters(), value=clip_grad, mode=clip_mode)
            optimizer.step()
        return loss

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    rss_before = _rss_bytes()
    start = time.perf_counter()
    loss = step()
    sync()
    first = time.perf_counter() - start
    for _ in range(max(warmup - 1, 0)):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync()
    seconds = time.perf_counter() - start
    if not torch.isfinite(loss):
        raise RuntimeError(f"non-finite loss {loss.item()} in the benchmark steps")
    if device.type == "cuda":
        peak, how = torch.cuda.max_memory_allocated(device), "torch.cuda.max_memory_allocated"
    else:
        peak, how = (
            max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before),
            "CPU peak RSS growth (ru_maxrss − RSS before; a lower bound if the process peaked earlier)",
        )
    return {
        "device": device_name(device),
        "torch": torch.__version__,
        "batch_size": batch_size,
        "img_size": img_size,
        "amp": amp_dtype or "off",
        "channels_last": channels_last,
        "compile": compile_backend or "off",
        "steps": steps,
        "warmup": warmup,
        "first_step_seconds": first,
        "images_per_second": batch_size * steps / seconds,
        "peak_memory_bytes": int(peak),
        "peak_memory": how,
    }


def describe(result: dict) -> str:
    """What ``benchmark_recipe`` measured, in three lines."""
    layout = "channels_last" if result["channels_last"] else "NCHW"
    return (
        f"benchmark on {result['device']}, torch {result['torch']}: {result['model']}, batch {result['batch_size']}, "
        f"{result['img_size']}², AMP {result['amp']}, {layout}, compile {result['compile']}\n"
        f"{result['images_per_second']:,.1f} img/s ({result['steps']} steps after {result['warmup']} warm-up; first "
        f"step {result['first_step_seconds']:.1f} s); peak memory {result['peak_memory_bytes'] / 2**30:.2f} GiB "
        f"({result['peak_memory']})\n"
        f"projected: {result['epochs']} epochs x {result['train_images']:,} images on {result['gpus']} such device(s) "
        f"= {result['projected_hours']:.{1 if result['projected_hours'] >= 1 else 3}f} h "
        f"(training steps only, linear scaling assumed; data loading and eval not included)"
    )
