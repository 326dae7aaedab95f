"""Control patterns (gaussian, impulse, box) and frozen structured kernels (dog_trainable=False)."""

import os
import socket
import subprocess
import sys
import textwrap

import pytest
import timm
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from timm.optim import create_optimizer_v2
from timm.utils import ModelEmaV3

from timm_dog import dog_init_, dog_kernel, dog_kernels
from timm_dog.dog import PATTERNS, dog_sigma, is_shapeable
from timm_dog.freeze import frozen_mask
from timm_dog.init import depthwise_weights
from timm_dog.sweep import parse_grid

CONTROLS = ("gaussian", "impulse", "box")


def _q(kh, kw):
    y = torch.arange(kh, dtype=torch.float64) - (kh - 1) / 2
    x = torch.arange(kw, dtype=torch.float64) - (kw - 1) / 2
    return y[:, None] ** 2 / kh**2 + x[None, :] ** 2 / kw**2


def _draws(n, seed, gamma=(0.0, 0.5), on_ratio=0.5):
    """dog_kernels' own draws, redone here: γ per kernel, then on/off per kernel."""
    g = torch.Generator().manual_seed(seed)
    low, high = gamma
    gammas = low + (high - low) * torch.rand(n, generator=g, dtype=torch.float64)
    return gammas, torch.rand(n, generator=g, dtype=torch.float64) < on_ratio


def _expected(pattern, kh, kw, gamma, on):
    """Each control from its definition (docs/patterns.md), float64."""
    q = _q(kh, kw)
    q0 = q.min()
    g = min(max(gamma, 1e-12), 1 - 1e-9)
    if pattern == "impulse":
        values = (q == q0).double()
    elif pattern == "box":
        values = (q <= max(g * g / 4, q0.item())).double()
    else:  # the DoG's centre Gaussian exp(−r²/(2γ²σ²)), σ per axis (σx from kw, σy from kh)
        y = torch.arange(kh, dtype=torch.float64) - (kh - 1) / 2
        x = torch.arange(kw, dtype=torch.float64) - (kw - 1) / 2
        sx, sy = dog_sigma(kw, g) * g, dog_sigma(kh, g) * g
        exponent = -(x[None, :] ** 2) / (2 * sx * sx) - y[:, None] ** 2 / (2 * sy * sy)
        values = torch.exp(exponent - exponent.max())  # relative to the peak: no underflow to 0/0
    return values / values.sum() * (0.5 if on else -0.5)


sizes = st.one_of(st.integers(3, 12), st.tuples(st.integers(1, 9), st.integers(1, 9)))
gammas = st.floats(0.0, 1.0, exclude_max=True)


@settings(max_examples=300, deadline=None)
@given(size=sizes, gamma=gammas, on=st.booleans(), pattern=st.sampled_from(CONTROLS))
def test_control_properties(size, gamma, on, pattern):
    """Finite for every γ (0 included), sums to ±0.5, one sign, mirror-symmetric, peak at the centre tap(s)."""
    kh, kw = (size, size) if isinstance(size, int) else size
    if not is_shapeable((kh, kw)):
        with pytest.raises(ValueError, match="one ring"):
            dog_kernel((kh, kw), gamma, pattern=pattern)
        return
    kernel = dog_kernel((kh, kw), gamma, on_center=on, dtype=torch.float64, pattern=pattern)
    assert kernel.shape == (kh, kw) and torch.isfinite(kernel).all()
    assert kernel.sum().item() == pytest.approx(0.5 if on else -0.5, abs=1e-12)
    signed = kernel if on else -kernel
    assert (signed >= 0).all()
    assert torch.equal(kernel, kernel.flip(0)) and torch.equal(kernel, kernel.flip(1))
    centre = signed[(kh - 1) // 2 : kh // 2 + 1, (kw - 1) // 2 : kw // 2 + 1]
    assert (centre > 0).all() and (centre == signed.max()).all()
    assert torch.allclose(kernel, _expected(pattern, kh, kw, gamma, on), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize(
    "size,centre",
    [
        (7, [(3, 3)]),
        (9, [(4, 4)]),
        (4, [(1, 1), (1, 2), (2, 1), (2, 2)]),
        ((1, 7), [(0, 3)]),
        ((1, 4), [(0, 1), (0, 2)]),
        ((7, 1), [(3, 0)]),
        ((3, 4), [(1, 1), (1, 2)]),
    ],
)
def test_impulse_puts_all_mass_on_the_centre(size, centre):
    kernel = dog_kernel(size, 0.3, dtype=torch.float64, pattern="impulse")
    expected = torch.zeros_like(kernel)
    for yx in centre:
        expected[yx] = 0.5 / len(centre)
    assert torch.equal(kernel, expected)
    assert torch.equal(dog_kernel(size, 0.3, on_center=False, pattern="impulse"), -expected.float())


@pytest.mark.parametrize(
    "k,gamma,taps",
    [
        (7, 0.0, 1),
        (7, 0.2, 1),
        (7, 0.3, 5),
        (7, 0.45, 9),
        (9, 0.5, 21),
        (4, 0.0, 4),
        (4, 0.3, 4),
        (4, 0.8, 12),
        (3, 0.9, 5),
        (3, 0.99, 9),
    ],
)
def test_box_is_uniform_inside_radius_k_gamma_over_2(k, gamma, taps):
    """Taps with x² + y² <= (kγ/2)², at least the centre tap(s), each 0.5 / taps."""
    kernel = dog_kernel(k, gamma, dtype=torch.float64, pattern="box")
    inside = kernel > 0
    assert inside.sum().item() == taps
    assert torch.allclose(kernel[inside], torch.full((taps,), 0.5 / taps, dtype=torch.float64), rtol=0, atol=1e-15)


def test_gaussian_limits_are_the_impulse_and_a_broad_blob():
    for size in (7, 4, (1, 5)):
        assert torch.equal(dog_kernel(size, 0.0, pattern="gaussian"), dog_kernel(size, 0.0, pattern="impulse"))
    broad = dog_kernel(7, 1 - 1e-12, dtype=torch.float64, pattern="gaussian")
    assert broad.min() > 0.1 * broad.max()


@pytest.mark.parametrize("pattern", CONTROLS)
@pytest.mark.parametrize("size", [7, 4, (1, 5), (3, 1)])
def test_controls_keep_the_dog_draw(pattern, size):
    """Same seed: the same γ and on/off per kernel as DoG (the controls differ from DoG in shape only)."""
    kh, kw = (size, size) if isinstance(size, int) else size
    dog = dog_kernels(300, size, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    control = dog_kernels(300, size, generator=torch.Generator().manual_seed(5), dtype=torch.float64, pattern=pattern)
    gammas, on = _draws(300, 5)
    centre = (slice(None), (kh - 1) // 2, (kw - 1) // 2)
    assert torch.equal(dog[centre] > 0, on) and torch.equal(control[centre] > 0, on)
    expected = torch.stack([_expected(pattern, kh, kw, g, o) for g, o in zip(gammas.tolist(), on.tolist())])
    assert torch.allclose(control, expected, rtol=1e-9, atol=1e-15)
    again = dog_kernels(300, size, generator=torch.Generator().manual_seed(5), dtype=torch.float64, pattern=pattern)
    assert torch.equal(control, again)


def test_dog_pattern_is_the_default():
    for dtype in (torch.float32, torch.float64):
        a = dog_kernels(500, 7, generator=torch.Generator().manual_seed(0), dtype=dtype)
        b = dog_kernels(500, 7, generator=torch.Generator().manual_seed(0), dtype=dtype, pattern="dog")
        assert torch.equal(a, b)
    assert torch.equal(dog_kernel(5, 0.3), dog_kernel(5, 0.3, pattern="dog"))


@pytest.mark.parametrize("pattern", ["ring", "DoG", "", None, 1])
def test_unknown_pattern_is_explained(pattern):
    with pytest.raises(ValueError, match="pattern must be one of dog, gaussian, impulse, box"):
        dog_kernels(4, 7, pattern=pattern)
    with pytest.raises(ValueError, match="pattern must be one of"):
        dog_init_(torch.nn.Conv2d(4, 4, 3, groups=4), pattern=pattern)


@pytest.mark.parametrize("pattern", CONTROLS)
def test_dog_init_controls_choose_the_same_kernels_with_the_same_sign(pattern):
    convs = {}
    for name in ("dog", pattern):
        torch.manual_seed(0)
        conv = torch.nn.Conv2d(64, 64, 7, groups=64)
        native = conv.weight.detach().clone()
        dog_init_(torch.nn.Sequential(conv), share=0.6, seed=3, pattern=name)
        convs[name] = (conv.weight.detach()[:, 0].double(), (conv.weight != native).flatten(1).any(1))
    (dog, dog_set), (control, control_set) = convs["dog"], convs[pattern]
    assert torch.equal(dog_set, control_set) and dog_set.sum() == round(0.6 * 64)
    assert torch.equal(dog[dog_set, 3, 3].sign(), control[control_set, 3, 3].sign())
    sums = control[control_set].sum((1, 2))
    assert torch.allclose(sums.abs(), torch.full_like(sums, 0.5), atol=1e-6)
    assert torch.equal(dog[~dog_set], control[~control_set])  # the native kernels


@pytest.mark.parametrize("pattern", CONTROLS)
def test_match_scale_gives_the_native_std(pattern):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(32, 32, 5, groups=32)
    native_std = conv.weight.std().item()
    report = dog_init_(torch.nn.Sequential(conv), scale="match", seed=0, pattern=pattern)
    assert conv.weight.std().item() == pytest.approx(native_std, rel=1e-4)
    assert report.layers[0].scale != 1.0


def test_twin_kwarg_and_its_errors():
    model = timm.create_model("convnext_atto_dog", num_classes=4, dog_seed=0, dog_pattern="impulse")
    kernels = model.stages[0].blocks[0].conv_dw.weight[:, 0]
    assert (kernels.abs().flatten(1).argmax(1) == 24).all()  # the centre of 7x7
    with pytest.raises(ValueError, match="pattern must be one of dog, gaussian, impulse, box; got 'ring'"):
        timm.create_model("convnext_atto_dog", dog_pattern="ring")
    with pytest.raises(ValueError, match="trainable must be True or False"):
        timm.create_model("convnext_atto_dog", dog_trainable=0)


def test_sweep_grid_takes_patterns_and_trainable():
    assert parse_grid(["dog_pattern=dog,gaussian,impulse,box"]) == {"dog_pattern": list(PATTERNS)}
    assert parse_grid(["dog_trainable=true,false"]) == {"dog_trainable": [True, False]}
    with pytest.raises(ValueError, match="grid value dog_pattern='ring': pattern must be one of"):
        parse_grid(["dog_pattern=dog,ring"])


def test_show_draws_the_patterns(tmp_path):
    from click.testing import CliRunner

    from timm_dog.cli import main

    out = tmp_path / "patterns.png"
    result = CliRunner().invoke(
        main, ["show", "--pattern", "dog,gaussian,impulse,box", "--gammas", "0.1,0.3,0.5", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "dog, gaussian, impulse, box" in result.output and out.stat().st_size > 1000
    result = CliRunner().invoke(main, ["show", "--pattern", "box", "--out", str(tmp_path / "box.png")])
    assert result.exit_code == 0 and "box kernels" in result.output
    result = CliRunner().invoke(
        main,
        [
            "show",
            "--model",
            "convnext_atto_dog",
            "--pattern",
            "gaussian",
            "--num",
            "8",
            "--out",
            str(tmp_path / "m.png"),
        ],
    )
    assert result.exit_code == 0 and "pattern gaussian" in result.output, result.output
    for args, match in (
        (["--pattern", "ring"], "pattern must be one of dog, gaussian, impulse, box"),
        (["--model", "convnext_atto_dog", "--pattern", "dog,box"], "one pattern with --model"),
    ):
        result = CliRunner().invoke(main, ["show", *args, "--out", str(tmp_path / "x.png")])
        assert result.exit_code == 2 and match in result.output and "Traceback" not in result.output


# --- frozen kernels ------------------------------------------------------------------------------


def _frozen_model(share=0.5, trainable=False, **kwargs):
    return timm.create_model(
        "convnext_atto_dog", num_classes=10, dog_seed=0, dog_share=share, dog_trainable=trainable, **kwargs
    )


def _masks(model):
    return {name: frozen_mask(model.get_submodule(name).weight) for name in depthwise_weights(model)}


def _train(model, steps, optimizer, ema=None, net=None):
    net = model if net is None else net
    g = torch.Generator().manual_seed(0)
    for step in range(steps):
        x, y = torch.randn(4, 3, 32, 32, generator=g), torch.randint(0, 10, (4,), generator=g)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # as train.py --clip-grad
        optimizer.step()
        optimizer.zero_grad()
        if ema is not None:
            ema.update(model, step)


def _check_frozen(init, state, masks):
    for name, mask in masks.items():
        key = f"{name}.weight"
        assert torch.equal(state[key][mask], init[key][mask]), f"{key}: a frozen kernel moved"
        assert not torch.equal(state[key][~mask], init[key][~mask]), f"{key}: the native kernels did not train"


def test_frozen_kernels_survive_adamw_weight_decay_and_ema():
    model = _frozen_model()
    assert model.dog_init_report.frozen == model.dog_init_report.kernels_set == 920
    masks = _masks(model)
    assert all(m is not None and m.any() and not m.all() for m in masks.values())
    init = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = create_optimizer_v2(model, "adamw", lr=1e-2, weight_decay=0.05)
    ema = ModelEmaV3(model, decay=0.9)
    _train(model, 4, optimizer, ema)
    _check_frozen(init, model.state_dict(), masks)
    _check_frozen(init, ema.module.state_dict(), masks)
    key, mask = "stages.0.blocks.0.conv_dw.weight", masks["stages.0.blocks.0.conv_dw"]
    twin = _frozen_model(trainable=True)  # the same DoG kernels, trainable: they move
    assert frozen_mask(twin.get_parameter(key)) is None and torch.equal(twin.state_dict()[key][mask], init[key][mask])
    _train(twin, 1, create_optimizer_v2(twin, "adamw", lr=1e-2, weight_decay=0.05))
    assert (twin.state_dict()[key][mask] != init[key][mask]).all()


def test_frozen_under_sgd_momentum_and_compile():
    model = _frozen_model(share=0.3)
    masks, init = _masks(model), {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = create_optimizer_v2(model, "momentum", lr=0.1, weight_decay=0.05)
    _train(model, 3, optimizer, net=torch.compile(model, backend="aot_eager"))  # AOTAutograd, as inductor
    _check_frozen(init, model.state_dict(), masks)


def test_all_frozen_weight_needs_no_gradient():
    model = _frozen_model(share=1.0)
    weight = model.stages[0].blocks[0].conv_dw.weight
    assert not weight.requires_grad and frozen_mask(weight).all()
    init = weight.detach().clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.05)  # handed every parameter
    _train(model, 2, optimizer)
    assert torch.equal(weight, init) and weight.grad is None
    assert model.stages[0].blocks[0].conv_dw.bias.requires_grad


def test_frozen_state_dict_is_plain_and_loads_in_plain_timm(tmp_path):
    model = _frozen_model()
    plain = timm.create_model("convnext_atto", num_classes=10).state_dict()
    state = model.state_dict()
    assert list(state) == list(plain) and all(state[k].shape == plain[k].shape for k in plain)
    path = tmp_path / "frozen.pth"
    torch.save(state, path)
    _plain_timm_loads(path, "convnext_atto", state["stages.0.blocks.0.conv_dw.weight"])


def _plain_timm_loads(path, base, expected_dw):
    """A process without timm-dog (TIMM_DOG_AUTOLOAD=0) builds ``base`` and loads ``path`` strictly."""
    code = textwrap.dedent(f"""
        import sys, timm, torch
        from timm.models import load_checkpoint
        assert "timm_dog" not in sys.modules and not timm.is_model("{base}_dog")
        model = timm.create_model("{base}", num_classes=10)
        load_checkpoint(model, {str(path)!r}, strict=True)
        torch.save(model.stages[0].blocks[0].conv_dw.weight.detach(), {str(path) + ".dw"!r})
    """)
    env = {**os.environ, "TIMM_DOG_AUTOLOAD": "0"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert torch.equal(torch.load(str(path) + ".dw"), expected_dw)


def test_loaded_values_are_the_ones_kept():
    model = _frozen_model()
    other = _frozen_model(trainable=True, dog_pattern="box")
    model.load_state_dict(other.state_dict())
    masks, init = _masks(model), {k: v.clone() for k, v in model.state_dict().items()}
    _train(model, 2, create_optimizer_v2(model, "adamw", lr=1e-2, weight_decay=0.05))
    _check_frozen(init, model.state_dict(), masks)


DDP_WORKER = textwrap.dedent("""
    import json, os
    import torch, timm
    import torch.distributed as dist
    from timm.optim import create_optimizer_v2
    from timm_dog.freeze import frozen_mask

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(rank)
    model = timm.create_model("convnext_atto_dog", num_classes=10, dog_seed=0, dog_share=0.5, dog_trainable=False)
    weight = model.stages[1].blocks[0].conv_dw.weight
    mask, init = frozen_mask(weight), weight.detach().clone()
    optimizer = create_optimizer_v2(model, "adamw", lr=1e-2, weight_decay=0.05)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    for _ in range(2):
        x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))  # a different batch on each rank
        torch.nn.functional.cross_entropy(ddp(x), y).backward()
        optimizer.step()
        optimizer.zero_grad()
    out = [torch.empty_like(weight) for _ in range(2)]
    dist.all_gather(out, weight.detach())
    print(json.dumps({"frozen": bool(torch.equal(weight[mask], init[mask])),
                      "trained": not torch.equal(weight[~mask], init[~mask]),
                      "same_on_ranks": bool(torch.equal(out[0], out[1]))}))
    dist.destroy_process_group()
""")


@pytest.mark.slow
def test_frozen_under_ddp(tmp_path):
    import json

    script = tmp_path / "worker.py"
    script.write_text(DDP_WORKER)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [
        subprocess.Popen(
            [sys.executable, str(script)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={
                **os.environ,
                "RANK": str(r),
                "WORLD_SIZE": "2",
                "LOCAL_RANK": str(r),
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(port),
                "OMP_NUM_THREADS": "1",
            },
        )
        for r in range(2)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        assert json.loads(out.strip().splitlines()[-1]) == {"frozen": True, "trained": True, "same_on_ranks": True}


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("TIMM_TRAIN_PY"), reason="set TIMM_TRAIN_PY to timm's train.py")
def test_frozen_kernels_through_train_py(tmp_path):
    """One epoch of timm's train.py (AdamW, weight decay 0.05, EMA, grad clipping) on a few digits: the
    checkpoint's frozen kernels are the init's, bit for bit, and plain timm loads it."""
    from timm_dog.demo import write_digits_imagefolder

    root = write_digits_imagefolder(tmp_path / "digits")
    for split, keep in (("train", 8), ("val", 2)):
        for folder in (root / split).iterdir():
            for extra in sorted(folder.iterdir())[keep:]:
                extra.unlink()
    kwargs = ["dog_trainable=False", "dog_seed=0", "dog_share=0.5"]
    cmd = [
        sys.executable,
        os.environ["TIMM_TRAIN_PY"],
        "--data-dir",
        str(root),
        "--val-split",
        "val",
        "--model",
        "convnext_atto_dog",
        "--model-kwargs",
        *kwargs,
        "--num-classes",
        "10",
        "--input-size",
        "3",
        "32",
        "32",
        "--mean",
        "0.5",
        "0.5",
        "0.5",
        "--std",
        "0.5",
        "0.5",
        "0.5",
        "--epochs",
        "1",
        "-b",
        "16",
        "--opt",
        "adamw",
        "--weight-decay",
        "0.05",
        "--lr",
        "1e-2",
        "--warmup-epochs",
        "0",
        "--clip-grad",
        "1.0",
        "--model-ema",
        "--device",
        "cpu",
        "--workers",
        "0",
        "--output",
        str(tmp_path / "out"),
        "--experiment",
        "frozen",
        "--seed",
        "1",
    ]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = torch.load(tmp_path / "out" / "frozen" / "last.pth.tar", map_location="cpu", weights_only=False)
    assert checkpoint["args"].model_kwargs["dog_trainable"] is False  # ParseKwargs: literal_eval('False')
    model = _frozen_model()  # the same kwargs and seed: the init
    masks, init = _masks(model), model.state_dict()
    _check_frozen(init, checkpoint["state_dict"], masks)
    _check_frozen(init, checkpoint["state_dict_ema"], masks)
    plain = tmp_path / "plain.pth"
    torch.save(checkpoint["state_dict"], plain)
    _plain_timm_loads(plain, "convnext_atto", checkpoint["state_dict"]["stages.0.blocks.0.conv_dw.weight"])


def test_condconv_experts_freeze_the_kernels_that_got_structure():
    from timm.layers import CondConv2d

    conv = CondConv2d(8, 8, 3, padding=1, groups=8, num_experts=3)
    native = conv.weight.detach().clone()
    report = dog_init_(torch.nn.Sequential(conv), share=0.5, seed=0, trainable=False)
    mask = frozen_mask(conv.weight)
    changed = (conv.weight != native).view(24, 9).any(1)
    assert mask.shape == conv.weight.shape and report.frozen == 12 == changed.sum()
    assert torch.equal(mask.view(24, 9).all(1), changed) and torch.equal(mask.view(24, 9).any(1), changed)


def test_show_refuses_a_repeated_pattern_and_titles_share_0_as_native(tmp_path):
    from click.testing import CliRunner

    from timm_dog.cli import main

    result = CliRunner().invoke(main, ["show", "--pattern", "dog,box,dog", "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "'dog,box,dog': dog is given twice; give each pattern once" in result.output
    result = CliRunner().invoke(
        main,
        [
            "show",
            "--model",
            "convnext_atto_dog",
            "--share",
            "0",
            "--pattern",
            "impulse",
            "--num",
            "8",
            "--out",
            str(tmp_path / "m.png"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "8 random depthwise 7x7 kernels (share 0: all native, no impulse kernels)" in result.output
    assert "pattern impulse" not in result.output
