import math

import pytest
import timm
import torch
from reproducible import assert_matches_recorded
from timm.layers import Conv2dSame, MixedConv2d, create_conv2d
from torch import nn

from timm_dog import DogInitReport, DogLayer, dog_init_, is_depthwise
from timm_dog.init import depthwise_kernels, depthwise_weights


def test_is_depthwise():
    assert is_depthwise(nn.Conv2d(8, 8, 3, groups=8))
    assert is_depthwise(nn.Conv2d(8, 16, 3, groups=8))  # depth multiplier 2
    assert is_depthwise(Conv2dSame(8, 8, 5, groups=8))  # timm's Conv2d subclass
    assert is_depthwise(create_conv2d(8, 8, 3, depthwise=True))
    assert not is_depthwise(nn.Conv2d(8, 8, 3))
    assert not is_depthwise(nn.Conv2d(8, 8, 3, groups=2))
    assert not is_depthwise(nn.Conv2d(1, 1, 3, groups=1))
    assert not is_depthwise(nn.Linear(3, 3))
    assert not is_depthwise("conv")


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 12, 3)
        self.mixed = MixedConv2d(12, 12, kernel_size=[3, 5, 7], depthwise=True)
        self.same = Conv2dSame(12, 24, 5, groups=12)
        self.pointwise_dw = nn.Conv2d(24, 24, 1, groups=24)
        self.head = nn.Linear(24, 2)


def test_finds_nested_subclassed_and_multiplier_convs():
    model = Mixed()
    report = dog_init_(model, seed=0)
    names = {layer.name: layer for layer in report.layers}
    assert set(names) == {"mixed.0", "mixed.1", "mixed.2", "same"}
    assert names["same"].kernels == 24 and names["same"].dog_kernels == 24
    assert names["mixed.2"].kernel_size == (7, 7)
    assert report.skipped == [("pointwise_dw", "kernel 1x1: nothing to shape (all samples on one ring)")]
    weight = model.same.weight[:, 0].double()
    assert torch.allclose(weight.sum(dim=(1, 2)), torch.zeros(24, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(weight.clamp(min=0).sum(dim=(1, 2)), torch.full((24,), 0.5, dtype=torch.float64), atol=1e-6)


def test_stem_and_head_untouched():
    model = Mixed()
    stem, head = model.stem.weight.clone(), model.head.weight.clone()
    dog_init_(model)
    assert torch.equal(stem, model.stem.weight) and torch.equal(head, model.head.weight)


@pytest.mark.parametrize("share", [0.0, 0.3, 0.45, 0.7, 1.0])
def test_share_sets_round_share_c_kernels_and_keeps_the_rest(share):
    conv = nn.Conv2d(50, 50, 7, groups=50)
    native = conv.weight.detach().clone()
    report = dog_init_(nn.Sequential(conv), share=share, seed=1)
    changed = (conv.weight != native).flatten(1).any(dim=1)
    assert changed.sum().item() == round(share * 50) == report.kernels_set
    assert torch.equal(conv.weight[~changed], native[~changed])
    dog = conv.weight[changed, 0].double()
    assert torch.allclose(dog.sum(dim=(1, 2)), torch.zeros(len(dog), dtype=torch.float64), atol=1e-6)


def test_seed_gives_bit_identical_weights():
    models = []
    for _ in range(3):
        torch.manual_seed(0)  # identical native init
        models.append(timm.create_model("convnext_atto"))
    a, b, c = models
    torch.manual_seed(99)  # the global RNG must not matter once a seed is given
    dog_init_(a, seed=7, share=0.6)
    dog_init_(b, seed=7, share=0.6)
    dog_init_(c, seed=8, share=0.6)
    kernels = lambda m: depthwise_kernels(m)[(7, 7)]  # noqa: E731
    assert torch.equal(kernels(a), kernels(b))
    assert not torch.equal(kernels(a), kernels(c))


def test_without_seed_the_global_rng_decides():
    models = []
    for seed in (123, 123, 124):
        model = nn.Sequential(nn.Conv2d(16, 16, 5, groups=16))
        nn.init.zeros_(model[0].weight)
        torch.manual_seed(seed)
        dog_init_(model, share=0.5)
        models.append(model[0].weight.clone())
    assert torch.equal(models[0], models[1]) and not torch.equal(models[0], models[2])


def test_on_ratio_and_fixed_gamma():
    conv = nn.Conv2d(64, 64, 5, groups=64)
    dog_init_(nn.Sequential(conv), gamma=0.3, on_ratio=1.0)
    from timm_dog import dog_kernel

    assert torch.allclose(conv.weight[:, 0], dog_kernel(5, 0.3).expand(64, 5, 5))
    dog_init_(nn.Sequential(conv), gamma=0.3, on_ratio=0.0)
    assert torch.allclose(conv.weight[:, 0], -dog_kernel(5, 0.3).expand(64, 5, 5))


def test_scale_match_and_float():
    conv = nn.Conv2d(128, 128, 7, groups=128)
    native_std = conv.weight.std().item()
    report = dog_init_(nn.Sequential(conv), scale="match", seed=0)
    assert conv.weight.std().item() == pytest.approx(native_std, rel=1e-4)
    assert report.layers[0].scale != 1.0
    dog_init_(nn.Sequential(conv), scale=1.0, seed=0)
    paper = conv.weight.clone()
    report = dog_init_(nn.Sequential(conv), scale=2.0, seed=0)
    assert torch.allclose(conv.weight, 2 * paper) and report.layers[0].scale == 2.0


def test_weight_dtype_is_kept():
    conv = nn.Conv2d(8, 8, 3, groups=8).to(torch.bfloat16)
    dog_init_(nn.Sequential(conv))
    assert conv.weight.dtype == torch.bfloat16 and torch.isfinite(conv.weight.float()).all()


def test_report():
    report = dog_init_(timm.create_model("convnext_atto"), share=0.5, seed=0)
    assert isinstance(report, DogInitReport) and len(report.layers) == 12
    assert report.kernels_total == sum(layer.kernels for layer in report.layers)
    assert "12 depthwise layers" in str(report)


def test_no_depthwise_warns_and_returns_empty_report():
    with pytest.warns(UserWarning, match="no depthwise convolution"):
        report = dog_init_(timm.create_model("resnet18"))
    assert not report and report.layers == [] and report.kernels_set == 0


def test_condconv_experts_are_shaped():
    report = dog_init_(timm.create_model("efficientnet_cc_b0_4e"), seed=0)
    assert not report.skipped
    assert {layer.name: layer.kernels for layer in report.layers}["blocks.4.0.conv_dw"] == 4 * 480  # experts x out


def test_meta_device_reports_what_would_be_set():
    with torch.device("meta"):
        model = nn.Sequential(nn.Conv2d(4, 4, 3, groups=4), nn.Conv2d(6, 6, 1, groups=6))
    report = dog_init_(model, share=0.5, seed=0)
    assert report.layers == [DogLayer("0", (3, 3), 4, 2, 1.0)]
    assert report.skipped == [("1", "kernel 1x1: nothing to shape (all samples on one ring)")]
    assert model[0].weight.is_meta
    assert math.isnan(dog_init_(model, scale="match").layers[0].scale)  # the native std is unknown


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(gamma=1.2), ValueError, "gamma"),
        (dict(gamma=(0.4, 0.2)), ValueError, "reversed"),
        (dict(share=1.5), ValueError, r"share must be a number in \[0, 1\]"),
        (dict(share=-0.1), ValueError, "share"),
        (dict(on_ratio=2), ValueError, "on_ratio"),
        (dict(scale="kaiming"), ValueError, "'paper', 'match'"),
        (dict(scale=-1.0), ValueError, "positive"),
        (dict(scale=float("inf")), ValueError, "positive finite"),
        (dict(seed="1"), ValueError, r"seed must be None or an int in \[-2\*\*63, 2\*\*64 - 1\]"),
        (dict(seed=2**64), ValueError, r"seed must be None or an int in \[-2\*\*63, 2\*\*64 - 1\]"),
        (dict(seed=-(2**63) - 1), ValueError, r"seed must be None or an int in \[-2\*\*63"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    model = nn.Sequential(nn.Conv2d(4, 4, 3, groups=4))
    before = model[0].weight.clone()
    with pytest.raises(error, match=match):
        dog_init_(model, **kwargs)
    assert torch.equal(before, model[0].weight)  # nothing half-done


def test_not_a_module():
    with pytest.raises(TypeError, match="expects a torch.nn.Module; got dict"):
        dog_init_({"weight": torch.zeros(3)})


def test_seed_range_ends_are_accepted():
    weights = []
    for seed in (2**64 - 1, -1):  # torch wraps negative seeds: -1 is 2**64 - 1
        conv = nn.Conv2d(8, 8, 5, groups=8)
        dog_init_(nn.Sequential(conv), seed=seed)
        weights.append(conv.weight.detach().clone())
    assert torch.equal(*weights)


def test_seeded_init_matches_recorded():
    """Existing users' seeds keep their weights: recorded on an AMD EPYC (AVX-512, torch 2.14.1 with MKL),
    compared within tests/reproducible.py's tolerance (on that machine the bits have not moved since
    before the scale checks and the gather rewrite)."""
    model = nn.Sequential(
        nn.Conv2d(64, 64, 7, groups=64), nn.Conv2d(64, 64, 3, groups=64), nn.Conv2d(64, 128, 5, groups=64)
    )
    dog_init_(model, seed=0, scale=2.0)
    assert_matches_recorded(torch.cat([m.weight.detach().flatten() for m in model]), 4.071896722493355)


@pytest.mark.parametrize(
    "share,scale,recorded",
    [(1.0, "paper", 2.294645373576294), (0.6, "paper", 0.6656042750010258), (0.6, "match", 0.3248451319717674)],
)
def test_seeded_twin_matches_recorded(share, scale, recorded):
    """A twin's depthwise weights (with share < 1 timm's native init of the rest, from torch.manual_seed),
    recorded like the test above."""
    torch.manual_seed(0)
    model = timm.create_model("convnext_atto_dog", dog_seed=0, dog_share=share, dog_scale=scale)
    assert_matches_recorded(torch.cat([w.detach().flatten() for w in depthwise_weights(model).values()]), recorded)


def _two_layers(second_dtype=torch.float32):
    model = nn.Sequential(nn.Conv2d(16, 16, 7, groups=16), nn.Conv2d(16, 16, 5, groups=16))
    model[1].to(second_dtype)
    return model, [m.weight.detach().clone() for m in model]


def _unchanged(model, before):
    return all(torch.equal(m.weight, b) for m, b in zip(model, before))


@pytest.mark.parametrize(
    "dtype,scale,match",
    [
        (torch.float32, 1e308, r"scale=1e\+308 overflows torch.float32 in layer 0: .* at most 6.81e\+38"),
        (
            torch.float16,
            1e6,
            r"scale=1000000.0 overflows torch.float16 in layer 1: .* above 6.55e\+04; .* at most 1.31e\+05",
        ),
        (torch.float64, 1e300, r"overflows torch.float32 in layer 0"),
        (torch.float32, 1e-320, r"scale=1e-320 underflows torch.float32 in layer 0: .* smallest normal value 1.18e-38"),
        (torch.float32, 1e-40, r"underflows torch.float32 in layer 0"),
        (torch.float16, 1e-6, r"underflows torch.float16 in layer 1: .* 6.1e-05"),
    ],
)
def test_scale_out_of_the_dtype_range_is_refused_and_nothing_written(dtype, scale, match):
    model, before = _two_layers(dtype)
    if dtype == torch.float64:
        model.to(dtype)
        before = [b.to(dtype) for b in before]
    with pytest.raises(ValueError, match=match):
        dog_init_(model, scale=scale, seed=0)
    assert _unchanged(model, before)  # the first layer, which fits, is not written either


@pytest.mark.parametrize(
    "dtype,scale",
    [
        (torch.float32, 1e-36),
        (torch.float32, 1e38),
        (torch.float16, 1e-3),
        (torch.float16, 1e5),
        (torch.float16, "match"),
        (torch.bfloat16, 1e-30),
    ],
)
def test_scales_the_dtype_holds_are_kept(dtype, scale):
    model, _ = _two_layers(dtype)
    model.to(dtype)
    report = dog_init_(model, scale=scale, seed=0)
    assert report.kernels_set == 32 and all(torch.isfinite(m.weight).all() for m in model)


@pytest.mark.parametrize("fill", [0.0, 0.3, float("nan")])
def test_match_on_constant_native_weights_is_refused(fill):
    model, _ = _two_layers()
    nn.init.constant_(model[1].weight, fill)
    before = [m.weight.detach().clone() for m in model]
    with pytest.raises(ValueError, match=r"scale='match' in layer 1: its native weights are (all equal|not finite)"):
        dog_init_(model, scale="match")
    for m, b in zip(model, before):
        torch.testing.assert_close(m.weight.detach(), b, rtol=0, atol=0, equal_nan=True)


def test_dog_model_creation_logs_one_line_under_train_py_logging(tmp_path):
    """train.py calls timm's setup_default_logging; creating a *_dog model then logs what DoG init did."""
    import logging

    from timm.utils import setup_default_logging

    before, level = list(logging.root.handlers), logging.root.level
    setup_default_logging(log_path=str(tmp_path / "train.log"))
    try:
        timm.create_model("convnext_atto_dog", num_classes=10, dog_seed=3, dog_share=0.5)
        timm.create_model("convnext_atto", num_classes=10)  # the baseline logs nothing
    finally:
        for handler in set(logging.root.handlers) - set(before):
            handler.close()
            logging.root.removeHandler(handler)
        logging.root.setLevel(level)
    lines = [line for line in (tmp_path / "train.log").read_text().splitlines() if "timm_dog" in line]
    assert len(lines) == 1, lines
    assert "[    INFO]" in lines[0]
    assert lines[0].endswith(
        "convnext_atto_dog: DoG init set 12/12 depthwise layers, 920/1,840 kernels "
        "(γ U(0, 0.5), on-ratio 0.5, share 0.5, scale paper, seed 3)"
    )


# --- patterns and frozen kernels (issue 19; the rest is in test_controls.py) ---------------------


@pytest.mark.parametrize(
    "value,expected",
    [(False, False), (True, True), ("false", False), ("True", True), ("no", False), ("Off", False), ("yes", True)],
)
def test_trainable_takes_bools_and_their_command_line_spelling(value, expected):
    conv = nn.Conv2d(8, 8, 5, groups=8)
    report = dog_init_(nn.Sequential(conv), seed=0, trainable=value)
    assert report.frozen == (0 if expected else 8) and conv.weight.requires_grad == expected


@pytest.mark.parametrize("value", [0, 1, "n", None, "False "])
def test_trainable_refuses_anything_else(value):
    with pytest.raises(
        ValueError,
        match=r"trainable must be True or False, or one of the words "
        r"true/yes/on/false/no/off \(False keeps the structured kernels "
        r"fixed in training\); got",
    ):
        dog_init_(nn.Sequential(nn.Conv2d(8, 8, 5, groups=8)), trainable=value)


def test_report_and_log_name_a_control_pattern_and_frozen_kernels(caplog):
    with caplog.at_level("INFO", logger="timm_dog"):
        model = timm.create_model(
            "convnext_atto_dog", dog_seed=3, dog_share=0.5, dog_pattern="box", dog_trainable=False
        )
    assert model.dog_init_report.summary() == "DoG init: 12 depthwise layers, 920/1840 kernels set, 920 frozen"
    assert caplog.messages[-1].endswith(
        "(γ U(0, 0.5), on-ratio 0.5, share 0.5, scale paper, seed 3, pattern box, frozen)"
    )


def test_freezing_twice_keeps_both_sets_frozen():
    from timm_dog.freeze import frozen_mask

    conv = nn.Conv2d(10, 10, 3, groups=10)
    dog_init_(nn.Sequential(conv), share=0.5, seed=0, trainable=False)
    first = frozen_mask(conv.weight).clone()
    dog_init_(nn.Sequential(conv), share=0.5, seed=1, trainable=False)
    assert (frozen_mask(conv.weight) >= first).all() and frozen_mask(conv.weight).sum() > first.sum()
    conv(torch.randn(1, 10, 5, 5)).sum().backward()
    assert not conv.weight.grad[frozen_mask(conv.weight)].any() and conv.weight.grad[~frozen_mask(conv.weight)].any()
