"""The plugin under torch.distributed: 2 CPU processes (gloo), launched as torchrun and SLURM do."""

import os
import socket
import subprocess
import sys
import textwrap

import pytest

WORKER = textwrap.dedent("""
    import json, sys
    from types import SimpleNamespace
    import torch, timm
    import torch.distributed as dist
    from timm.utils import init_distributed_device, random_seed

    args = SimpleNamespace(device="cpu")
    device = init_distributed_device(args)  # train.py's own set-up: torchrun or SLURM variables
    assert args.distributed and args.world_size == 2 and dist.get_backend() == "gloo"
    random_seed(42, args.rank)  # as train.py: seed + rank

    def gathered(model):
        flat = torch.cat([p.detach().flatten() for p in model.parameters()])
        out = [torch.empty_like(flat) for _ in range(args.world_size)]
        dist.all_gather(out, flat)
        return all(torch.equal(out[0], o) for o in out)

    seeded = timm.create_model("convnext_atto_dog", num_classes=10, dog_seed=0)
    dw = [m.weight for m in seeded.modules() if getattr(m, "groups", 1) > 1]
    dws = torch.cat([w.detach().flatten() for w in dw])
    out = [torch.empty_like(dws) for _ in range(2)]
    dist.all_gather(out, dws)
    same_dog = torch.equal(out[0], out[1])

    unseeded = timm.create_model("convnext_atto_dog", num_classes=10)
    before = gathered(unseeded)
    ddp = torch.nn.parallel.DistributedDataParallel(unseeded)  # CPU: no device_ids
    after_wrap = gathered(ddp.module)
    optimizer = torch.optim.AdamW(ddp.parameters(), lr=1e-3)
    x = torch.randn(4, 3, 32, 32)  # a different batch on each rank
    loss = torch.nn.functional.cross_entropy(ddp(x), torch.randint(0, 10, (4,)))
    loss.backward()
    optimizer.step()
    after_step = gathered(ddp.module)
    print(json.dumps({"rank": args.rank, "same_dog_kernels": same_dog, "same_before_ddp": before,
                      "same_after_wrap": after_wrap, "same_after_step": after_step,
                      "loss_finite": bool(torch.isfinite(loss))}))
    dist.destroy_process_group()
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(tmp_path, env_for_rank):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    port = _free_port()
    procs = []
    for rank in range(2):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "RANK", "WORLD_SIZE", "LOCAL_"))}
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1", **env_for_rank(rank))
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        results.append(__import__("json").loads(out.strip().splitlines()[-1]))
    return results


def _check(results):
    assert sorted(r["rank"] for r in results) == [0, 1]
    for r in results:
        assert r["same_dog_kernels"], "the same dog_seed must give the same DoG kernels on every rank"
        assert not r["same_before_ddp"], "train.py seeds seed + rank: unseeded models differ before DDP"
        assert r["same_after_wrap"] and r["same_after_step"] and r["loss_finite"]


@pytest.mark.slow
def test_torchrun_style_launch(tmp_path):
    _check(
        _launch(tmp_path, lambda rank: dict(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2"))
    )


@pytest.mark.slow
def test_slurm_style_launch(tmp_path):
    _check(_launch(tmp_path, lambda rank: dict(SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank), SLURM_NTASKS="2")))
