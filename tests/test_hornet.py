import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import timm
import torch
from torch.utils.flop_counter import FlopCounterMode

import timm_dog  # noqa: F401

# Rao et al. 2022, Table 1 / 2: parameters (M) and GFLOPs at 224
PAPER = {
    "hornet_tiny_7x7": (22, 4.0),
    "hornet_tiny_gf": (23, 3.9),
    "hornet_small_7x7": (50, 8.8),
    "hornet_small_gf": (50, 8.7),
    "hornet_base_7x7": (87, 15.6),
    "hornet_base_gf": (88, 15.5),
}


@pytest.mark.parametrize("name", PAPER)
def test_parameter_counts_match_the_paper(name):
    with torch.device("meta"):
        model = timm.create_model(name)
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    assert millions == pytest.approx(PAPER[name][0], rel=0.025)
    assert timm.is_model(f"{name}_dog")


@pytest.mark.parametrize("name", ["hornet_tiny_7x7", "hornet_tiny_gf"])
def test_gflops_match_the_paper(name):
    model = timm.create_model(name).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    assert counter.get_total_flops() / 2e9 == pytest.approx(PAPER[name][1], rel=0.03)


def test_timm_features():
    model = timm.create_model("hornet_tiny_7x7", num_classes=0).eval()
    x = torch.randn(2, 3, 64, 64)
    assert model(x).shape == (2, 512)
    model.reset_classifier(5)
    assert model(x).shape == (2, 5) and model.get_classifier().out_features == 5
    assert model.pretrained_cfg["input_size"] == (3, 224, 224)
    features = timm.create_model("hornet_tiny_gf", features_only=True, out_indices=(1, 3))(x)
    assert [f.shape for f in features] == [(2, 128, 8, 8), (2, 512, 2, 2)]
    weight = timm.create_model("hornet_small_7x7").stages[2].blocks[0].mlp[0].weight
    assert weight.std().item() == pytest.approx(0.02, rel=0.05)  # timm's trunc-normal 0.02
    model.set_grad_checkpointing()
    model.train()(x).sum().backward()


def test_state_dict_keys_and_shapes_are_unchanged():
    # sha256 of "key:shape;..." as the HorNet of 2026-12-01 wrote them: existing checkpoints still load
    for name, digest in (("hornet_tiny_7x7", "c3de7af6ac74c01b"), ("hornet_tiny_gf", "55e24e676a111246")):
        with torch.device("meta"):
            model = timm.create_model(name)
        keys = ";".join(f"{k}:{tuple(v.shape)}" for k, v in model.state_dict().items())
        assert hashlib.sha256(keys.encode()).hexdigest()[:16] == digest, name


def test_constructor_follows_timms_contract():
    with pytest.raises(TypeError, match="drop_path_rat"):
        timm.create_model("hornet_tiny_7x7_dog", drop_path_rat=0.1)
    model = timm.create_model("hornet_tiny_gf", in_chans=1, device="meta", dtype=torch.bfloat16)
    assert model.in_chans == 1
    assert {(p.device.type, p.dtype) for p in model.parameters()} == {("meta", torch.bfloat16)}
    model.eval().reset_classifier(7)
    assert (model.head.weight.device.type, model.head.weight.dtype) == ("meta", torch.bfloat16)
    assert not model.head.training


def test_gf_runs_in_bf16():
    model = timm.create_model("hornet_tiny_gf", num_classes=5).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        reference = model(x)
        out = model.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), reference, atol=0.05 * reference.abs().max().item())


def test_forward_intermediates_and_pruning():
    model = timm.create_model("hornet_tiny_gf", num_classes=5).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        final, intermediates = model.forward_intermediates(x)
        assert torch.equal(final, model.forward_features(x))
        assert [f.shape[1:] for f in intermediates] == [(64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2)]
        assert torch.equal(
            model.forward_intermediates(x, indices=[1], stop_early=True, intermediates_only=True)[0], intermediates[1]
        )
        assert model.prune_intermediate_layers([1]) == [1]
        assert len(model.stages) == 2 and model.num_features == 128 and model.num_classes == 0
        assert torch.equal(model.forward_features(x), intermediates[1])
    getter = timm.create_model("hornet_tiny_7x7_dog", features_only=True, feature_cls="getter", out_indices=(0, 2))
    assert getter.feature_info.channels() == [64, 256] and len(getter.model.stages) == 3


@pytest.mark.parametrize("name", ["hornet_tiny_gf", "hornet_tiny_7x7"])
def test_fx_traces_with_timms_notrace_functions(name):
    from timm.models import create_feature_extractor

    model = timm.create_model(name, num_classes=5).eval()
    extractor = create_feature_extractor(model, return_nodes=["stages.3", "head"])
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(extractor(x)["head"], model(x))


TORCHSCRIPT = """
import timm, torch
with timm.set_scriptable(True):
    model = timm.create_model("hornet_tiny_gf", num_classes=5).eval()
x = torch.randn(1, 3, 64, 64)
with torch.no_grad():
    assert torch.allclose(torch.jit.script(model)(x), model(x), atol=1e-5)
"""


def test_torchscript():
    """In a fresh process: TorchScript's compiler reads global torch state, and once in a whole-suite run it refused
    torch's own Conv2d ("builtin cannot be used as a value: F.pad") after other tests, never alone."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", TORCHSCRIPT], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]


def test_dog_twins_initialize_the_gnconv_depthwise_convs():
    report = timm.create_model("hornet_tiny_7x7_dog", dog_seed=0).dog_init_report
    assert len(report.layers) == 25 and {layer.kernel_size for layer in report.layers} == {(7, 7)}
    gf = timm.create_model("hornet_tiny_gf_dog", dog_seed=0).dog_init_report
    assert {layer.kernel_size for layer in gf.layers} == {(7, 7), (3, 3)}  # the GF's local 3x3 half too


@pytest.mark.slow
@pytest.mark.parametrize("name", ["hornet_tiny_7x7_dog", "hornet_tiny_gf_dog"])
def test_onnx_export_parity(name, tmp_path):
    import onnxruntime as ort

    model = timm.create_model(name, num_classes=10).eval()
    path = tmp_path / "model.onnx"
    torch.onnx.export(
        model,
        (torch.randn(2, 3, 64, 64),),
        str(path),
        dynamo=True,
        input_names=["input"],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        external_data=False,
        verbose=False,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(3, 3, 64, 64)  # another batch size than exported with
    onnx_out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        torch_out = model(x).numpy()
    assert np.abs(onnx_out - torch_out).max() <= 1e-4 * np.abs(torch_out).max()
    assert (onnx_out.argmax(1) == torch_out.argmax(1)).all()


def test_plain_timm_cannot_load_and_timm_dog_can(tmp_path):
    model = timm.create_model("hornet_tiny_7x7_dog", num_classes=4, dog_seed=0).eval()
    timm.models.save_for_hf(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert any("timm-dog" in note for note in config["pretrained_cfg"]["notes"])
    x = torch.randn(1, 3, 64, 64)
    np.save(tmp_path / "x.npy", x.numpy())
    with torch.no_grad():
        np.save(tmp_path / "ref.npy", model(x).numpy())
    code = (
        f"import numpy as np, timm, torch\n"
        f"m = timm.create_model('local-dir:{tmp_path}', pretrained=True).eval()\n"
        f"y = m(torch.from_numpy(np.load('{tmp_path}/x.npy'))).detach().numpy()\n"
        f"print(float(np.abs(y - np.load('{tmp_path}/ref.npy')).max()))"
    )
    env = {k: v for k, v in os.environ.items() if k != "TIMM_DOG_AUTOLOAD"}
    ok = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert float(ok.stdout.strip().splitlines()[-1]) < 1e-5
    plain = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**env, "TIMM_DOG_AUTOLOAD": "0"}
    )
    assert plain.returncode != 0 and "Unknown model" in plain.stderr


def test_loads_on_a_timm_without_get_device_dtype():
    """timm < 1.0.29 lacks timm.layers.get_device_dtype: HorNet's own stands in, with the same device and dtype."""
    code = (
        "import timm.layers, torch\n"
        "vars(timm.layers).pop('get_device_dtype', None)\n"
        "import timm_dog.models, timm\n"
        "m = timm.create_model('hornet_tiny_7x7_dog', num_classes=3, device='meta', dtype=torch.bfloat16)\n"
        "m.reset_classifier(5)\n"
        "print(timm_dog.models.SKIPPED, timm_dog.models.hornet.get_device_dtype.__module__, m.head.weight.device,\n"
        "      m.head.weight.dtype, m.head.out_features)"
    )
    env = {**{k: v for k, v in os.environ.items() if k != "TIMM_DOG_AUTOLOAD"}, "TIMM_DOG_AUTOLOAD": "0"}
    ok = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split() == ["{}", "timm_dog.models.hornet", "meta", "torch.bfloat16", "5"]
