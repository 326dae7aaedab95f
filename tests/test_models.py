import pytest
import timm
import torch
from timm.data import resolve_data_config

import timm_dog  # noqa: F401  (registers, also without the autoload)
from timm_dog.init import depthwise_kernels
from timm_dog.models import BASES, DOG_KWARGS


def _is_dog_kernel_set(kernels: torch.Tensor) -> bool:
    k = kernels.double()
    return bool(
        torch.allclose(k.sum(dim=(1, 2)), torch.zeros(len(k), dtype=torch.float64), atol=1e-5)
        and torch.allclose(k.clamp(min=0).sum(dim=(1, 2)), torch.full((len(k),), 0.5, dtype=torch.float64), atol=1e-5)
    )


def test_every_base_has_a_twin():
    assert "convmixer_512" in BASES  # the paper's model, defined by this package
    assert {f"{b}_dog" for b in BASES} == set(timm.list_models("*_dog"))
    for name in (
        "convnext_tiny_dog",
        "convnextv2_atto_dog",
        "convmixer_512_dog",
        "mobilenetv2_100_dog",
        "mobilenetv3_large_100_dog",
        "mobilenetv4_conv_small_dog",
        "efficientnet_b0_dog",
        "tf_efficientnet_b0_dog",
        "tf_efficientnetv2_s_dog",
    ):
        assert timm.is_model(name)


def test_twins_have_no_weights_and_keep_the_data_config():
    assert not set(timm.list_models("*_dog", pretrained=True))
    for name in ("convnext_tiny", "efficientnet_b3", "tf_efficientnet_b0", "mobilenetv4_conv_small"):
        base = resolve_data_config(pretrained_cfg=timm.models.get_pretrained_cfg(name).to_dict())
        twin = resolve_data_config(pretrained_cfg=timm.models.get_pretrained_cfg(f"{name}_dog").to_dict())
        assert base == twin


@pytest.mark.parametrize(
    "name",
    [
        "convnext_atto_dog",
        "convmixer_512_dog",
        "mobilenetv3_small_050_dog",
        "efficientnet_b0_dog",
        "mobilenetv4_conv_small_dog",
        "mobilenetv2_035_dog",
    ],
)
def test_twin_is_dog_initialized_with_base_architecture(name):
    base = name[:-4]
    twin, plain = timm.create_model(name), timm.create_model(base)
    assert type(twin) is type(plain)
    assert {k: v.shape for k, v in twin.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}
    for size, kernels in depthwise_kernels(twin).items():
        assert _is_dog_kernel_set(kernels), size
    assert twin.dog_init_report.kernels_set == twin.dog_init_report.kernels_total > 0
    assert twin.pretrained_cfg["architecture"] == name
    assert twin.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_convmixer_512_matches_the_paper():
    model = timm.create_model("convmixer_512")
    assert len(model.blocks) == 12 and model.num_features == 512
    assert model.blocks[0][0].fn[0].kernel_size == (9, 9) and model.stem[0].kernel_size == (7, 7)
    assert sum(p.numel() for p in model.parameters()) == 4_270_056


def test_dog_kwargs_reach_dog_init():
    model = timm.create_model(
        "convnext_atto_dog",
        dog_share=0.5,
        dog_gamma=0.3,
        dog_on_ratio=1.0,
        dog_seed=0,
        num_classes=10,
        drop_path_rate=0.1,
    )
    report = model.dog_init_report
    assert report.kernels_set == sum(round(0.5 * layer.kernels) for layer in report.layers)
    assert model.num_classes == 10
    kernels = depthwise_kernels(model)[(7, 7)]
    centres = kernels[:, 3, 3]
    assert (centres == timm_dog.dog_kernel(7, 0.3)[3, 3]).sum() == report.kernels_set


def test_same_dog_seed_same_model():
    torch.manual_seed(0)
    a = timm.create_model("mobilenetv3_small_050_dog", dog_seed=5)
    torch.manual_seed(0)
    b = timm.create_model("mobilenetv3_small_050_dog", dog_seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_dog_gamma_as_list_and_scale_string_like_train_py_passes_them():
    model = timm.create_model("convnext_atto_dog", dog_gamma=[0.0, 1.0], dog_scale="match")
    assert model.dog_init_report.layers[0].scale != 1.0


@pytest.mark.parametrize(
    "name", ["convnext_atto_dog", "efficientnet_b0_dog", "convmixer_512_dog", "mobilenetv3_small_050_dog"]
)
def test_features_only(name):
    model = timm.create_model(name, features_only=True, out_indices=(1, 2))
    features = model(torch.randn(1, 3, 64, 64))
    assert len(features) == 2 and model.dog_init_report.layers
    for kernels in depthwise_kernels(model).values():
        assert _is_dog_kernel_set(kernels)


def test_pretrained_is_refused_with_alternatives():
    with pytest.raises(
        RuntimeError, match=r"no pretrained weights.*timm.create_model\('convnext_tiny', pretrained=True\)"
    ):
        timm.create_model("convnext_tiny_dog", pretrained=True)
    with pytest.raises(RuntimeError, match=r"Invalid pretrained tag \(in1k\)"):
        timm.create_model("convnext_tiny_dog.in1k")


def test_weights_from_an_overlay_are_loaded_not_overwritten(tmp_path):
    source = timm.create_model("convnext_atto")
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    model = timm.create_model("convnext_atto_dog", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    assert not hasattr(model, "dog_init_report")
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), model.state_dict().values()))


def test_checkpoint_path_overwrites_dog(tmp_path):
    source = timm.create_model("convnext_atto", num_classes=10)
    path = tmp_path / "checkpoint.pth"
    torch.save({"state_dict": source.state_dict()}, path)
    model = timm.create_model("convnext_atto_dog", num_classes=10, checkpoint_path=str(path))
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), model.state_dict().values()))


def test_bad_dog_kwargs_fail_before_building():
    with pytest.raises(ValueError, match="did you mean 'dog_gamma'"):
        timm.create_model("convnext_atto_dog", dog_gama=0.3)
    with pytest.raises(ValueError, match="share"):
        timm.create_model("convnext_atto_dog", dog_share=2)
    assert set(DOG_KWARGS) == {
        "dog_gamma",
        "dog_on_ratio",
        "dog_share",
        "dog_scale",
        "dog_seed",
        "dog_pattern",
        "dog_trainable",
    }


def test_twins_module_is_not_a_timm_module():
    # timm names a model's module by the last part of its path: the twins' must be none of timm's own
    from timm.models._registry import _model_entrypoints, _model_to_module

    timm_modules = {_model_to_module[n] for n, fn in _model_entrypoints.items() if fn.__module__.startswith("timm.")}
    assert {_model_to_module[f"{b}_dog"] for b in BASES}.isdisjoint(timm_modules)
    assert timm.list_models(module="twins") == [n for n in timm.list_models("twins_*") if not n.endswith("_dog")]
    assert len(timm.list_models(module="twins")) == 6  # timm 1.0.31's Twins-SVT/PCPVT


def _conformance_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "timm_conformance.py"
    spec = importlib.util.spec_from_file_location("timm_conformance", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_conformance_table_tells_the_twins_failures_from_timms():
    script = _conformance_script()
    twins = [
        dict(test="t", model=m, outcome=o, message="boom")
        for m, o in (("a_dog", "failed"), ("b_dog", "failed"), ("c_dog", "passed"), ("d_dog", "skipped"))
    ]
    bases = [
        dict(test="t", model="a", outcome="passed", message=""),
        dict(test="t", model="b", outcome="passed"),
        dict(test="t", model="b", outcome="failed"),
    ]  # b: one of its tagged names fails
    rows, failures = script.table(twins, bases)
    assert rows == {"t": [1, 2, 1, 1]}
    assert failures == ["a_dog t: ours: the base passes: boom", "b_dog t: timm's: the base fails too: boom"]
    rows, failures = script.table(twins, bases, own={"b"})  # b is an architecture timm-dog defines
    assert rows == {"t": [1, 2, 2, 1]} and failures[1] == "b_dog t: ours: timm-dog's own architecture (fails too): boom"
    default = script.default_models()
    assert {"hornet_tiny_gf_dog", "hornet_base_7x7_dog", "convmixer_512_dog", "test_convnext_dog"} <= set(default)
    assert "convnext_atto_dog" not in default and len(default) == 55  # 50 families, + 5 more HorNets


@pytest.mark.slow
def test_timms_own_model_tests_pass_on_the_plugins_models(tmp_path):
    # timm's tests/test_models.py from its sdist (benchmarks/timm_conformance.py), on the plugin's own
    # architectures (tiny HorNets, both kinds, and convmixer_512) and two small families; skips offline
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[1] / "benchmarks" / "timm_conformance.py"
    models = "hornet_tiny_7x7_dog,hornet_tiny_gf_dog,convmixer_512_dog,test_convnext_dog,test_efficientnet_dog"
    tests = (
        "test_model_default_cfgs,test_model_default_cfgs_non_std,test_model_forward_intermediates,"
        "test_model_forward_intermediates_features,test_model_forward_fx"
    )
    out = tmp_path / "outcomes.json"
    run = subprocess.run(
        [sys.executable, str(script), "--models", models, "--tests", tests, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if run.returncode == 3:
        pytest.skip(run.stderr.strip().splitlines()[-1])
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
    twins = json.loads(out.read_text())["twins"]
    passed = {(r["test"], r["model"]) for r in twins if r["outcome"] == "passed"}
    for model in models.split(","):  # every test ran and passed on every model (*mixer_* are timm's "non std")
        assert {(t, model) for t in tests.split(",")[2:]} <= passed
        assert {("test_model_default_cfgs", model), ("test_model_default_cfgs_non_std", model)} & passed
    assert "| test_model_forward_intermediates |" in run.stdout


# --- one rule for every spelling of a dog_* value: twins, report arms, sweeps (issue 23) ---------------------------


def _train_py_model_kwargs(*pairs) -> dict:
    """model_kwargs as train.py has them from `--model-kwargs KEY=VALUE …` (timm's ParseKwargs)."""
    import argparse

    from timm.utils import ParseKwargs

    parser = argparse.ArgumentParser()
    parser.add_argument("--model-kwargs", nargs="*", default={}, action=ParseKwargs)
    return parser.parse_args(["--model-kwargs", *pairs]).model_kwargs


@pytest.mark.parametrize(
    "text", ["no", "No", "OFF", "yes", "on", "true", "False", "fAlse", "0", "1", "y", "n", "null", "~", "None", "maybe"]
)
def test_sweep_and_the_twin_read_dog_trainable_by_one_rule(text):
    """A grid value reaches train.py through a recipe YAML (read by yaml.safe_load), a --model-kwargs value through
    ParseKwargs: both are accepted, or both refused, and mean the same."""
    from timm_dog.models.dog_twins import pop_dog_kwargs
    from timm_dog.sweep import parse_grid

    def outcome(value):
        try:  # the value the twin reads from it, or its refusal (up to the value quoted)
            return pop_dog_kwargs({"dog_trainable": value()})["trainable"]
        except ValueError as error:
            return "refused: " + str(error).split("; got")[0].split(": ", 1)[-1]

    swept = outcome(lambda: parse_grid([f"dog_trainable={text}"])["dog_trainable"][0])
    command_line = outcome(lambda: _train_py_model_kwargs(f"dog_trainable={text}")["dog_trainable"])
    assert swept == command_line


def test_sweep_refuses_two_spellings_of_one_value():
    from timm_dog.sweep import parse_grid

    with pytest.raises(ValueError, match="the value 'fAlse' is given twice \\(the twins read it as False\\)"):
        parse_grid(["dog_trainable=false,fAlse"])
    assert parse_grid(["dog_trainable=no,yes"]) == {"dog_trainable": [False, True]}


@pytest.mark.parametrize(
    "pairs,arm",
    [
        *[((f"dog_trainable={text}",), "dog frozen") for text in ("False", "false", "FALSE", "'false'", "no", "Off")],
        *[((f"dog_trainable={text}",), "dog") for text in ("True", "true", "yes", "on")],
        (("dog_share=1", "dog_gamma=0,0.5", "dog_scale=paper", "dog_on_ratio=.5", "dog_seed=3"), "dog"),
        (("dog_gamma=[0.0,0.5]", "dog_share=1.0"), "dog"),
        (("dog_scale=2", "dog_pattern=box", "dog_trainable=false"), "box frozen scale 2.0"),
        (("dog_scale=2.0", "dog_pattern='box'", "dog_trainable=False"), "box frozen scale 2.0"),
    ],
)
def test_every_spelling_that_train_py_writes_and_the_twin_takes_names_one_arm(pairs, arm, tmp_path):
    """The twin gets the kwargs as parsed; report reads them from args.yaml (train.py's yaml.safe_dump)."""
    import yaml

    from timm_dog.trainpy.runs import Run

    kwargs = _train_py_model_kwargs(*pairs)
    model = timm.create_model("mobilenetv3_small_050_dog", num_classes=10, **kwargs)
    assert model.dog_init_report.frozen == (model.dog_init_report.kernels_set if "frozen" in arm else 0)
    args = yaml.safe_load(yaml.safe_dump({"model": "mobilenetv3_small_050_dog", "model_kwargs": kwargs}))
    run = Run(tmp_path, args, {}, tmp_path / "last.pth.tar")
    assert run.arm == arm
