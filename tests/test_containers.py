"""dog_init_ on every kind of depthwise conv timm has: real timm layers and blocks, no stand-ins."""

import pytest
import timm
import torch
import torch.nn.functional as F
from timm.layers import BlurPool2d, CondConv2d, Conv2dSame, MixedConv2d
from timm.models.byobnet import MobileOneBlock
from timm.models.fastvit import MobileOneBlock as FastVitMobileOneBlock
from timm.models.fastvit import ReparamLargeKernelConv, RepConditionalPosEnc
from timm.models.ghostnet import GhostBottleneckV3, GhostModuleV3
from timm.models.inception_next import InceptionDWConv2d
from timm.models.repghost import RepGhostModule
from timm.models.repvit import RepVggDw
from timm.utils.model import reparameterize_model
from torch import nn

try:
    from timm.models.lcnetv2 import RepDepthwiseSeparable
except ImportError:  # older timm releases have no LCNetV2 (benchmarks/check_floors.py tests the floor)
    RepDepthwiseSeparable = None

from timm_dog import dog_init_, dog_kernels
from timm_dog.analysis import analyze_model
from timm_dog.dog import is_shapeable
from timm_dog.init import depthwise_kernels


def is_dog(kernels, atol=1e-5):
    """Each kernel [n, kh, kw] sums to 0 with its positive part summing to 0.5."""
    flat = kernels.detach().double().flatten(1)
    return bool(
        torch.allclose(flat.sum(1), torch.zeros(len(flat), dtype=torch.float64), atol=atol)
        and torch.allclose(flat.clamp(min=0).sum(1), torch.full((len(flat),), 0.5, dtype=torch.float64), atol=atol)
    )


def polarity(kernels):
    kh, kw = kernels.shape[-2:]
    return kernels[:, (kh - 1) // 2 : kh // 2 + 1, (kw - 1) // 2 : kw // 2 + 1].sum((1, 2)).sign()


def shaped_convs(module):
    return [
        m
        for m in module.modules()
        if isinstance(m, nn.Conv2d) and m.groups == m.in_channels > 1 and is_shapeable(tuple(m.kernel_size))
    ]


def condconv(channels=8, experts=4, multiplier=1):
    return CondConv2d(channels, multiplier * channels, 3, padding=1, groups=channels, num_experts=experts)


def test_condconv_each_expert_gets_its_own_dog_kernels():
    torch.manual_seed(0)
    conv = condconv(experts=4, multiplier=2)
    report = dog_init_(nn.Sequential(conv), seed=0)
    [layer] = report.layers
    assert (layer.name, layer.kernels, layer.dog_kernels) == ("0", 4 * 16, 4 * 16)  # experts x out_channels
    experts = conv.weight.view(4, 16, 3, 3)
    assert is_dog(experts.flatten(0, 1))
    assert len({tuple(k.flatten().tolist()) for k in experts.flatten(0, 1)}) == 64  # own γ / polarity each
    # timm's own forward with all routing on expert 2 convolves with expert 2's DoG kernels
    x = torch.randn(1, 8, 10, 10)
    routing = F.one_hot(torch.tensor([2]), 4).float()
    expected = F.conv2d(x, experts[2].unsqueeze(1), padding=1, groups=8)
    assert torch.allclose(conv(x, routing), expected, atol=1e-6)
    assert depthwise_kernels(nn.Sequential(conv))[(3, 3)].shape == (64, 3, 3)


def test_condconv_share_counts_expert_kernels():
    conv = condconv(experts=4)
    native = conv.weight.detach().clone().view(32, 3, 3)
    report = dog_init_(nn.Sequential(conv), share=0.25, seed=0)
    changed = (conv.weight.view(32, 3, 3) != native).flatten(1).any(1)
    assert changed.sum() == report.kernels_set == 8


def test_condconv_model_keeps_the_other_layers_kernels():
    """efficientnet_cc_*: CondConv kernels are drawn last, so every other layer is as before they were shaped."""
    torch.manual_seed(0)
    model = timm.create_model("efficientnet_cc_b0_4e")
    torch.manual_seed(0)
    stripped = timm.create_model("efficientnet_cc_b0_4e")
    hidden = {n for n, m in model.named_modules() if isinstance(m, CondConv2d)}
    for name in hidden:  # the same model without its CondConv layers
        parent, _, child = name.rpartition(".")
        setattr(stripped.get_submodule(parent), child, nn.Identity())
    report = dog_init_(model, seed=3, share=0.7)
    dog_init_(stripped, seed=3, share=0.7)
    depthwise = {n for n in hidden if model.get_submodule(n).groups > 1}
    assert not report.skipped and len(depthwise) == 8 and {layer.name for layer in report.layers} >= depthwise
    plain = [(n, p) for n, p in model.named_parameters() if n.rsplit(".", 1)[0] not in hidden]
    assert all(torch.equal(p, stripped.get_parameter(n)) for n, p in plain)


def test_unknown_conv_like_layer_is_reported_not_guessed():
    class GroupedConvLike(nn.Module):  # a layer timm-dog does not know: reported, left alone
        def __init__(self):
            super().__init__()
            self.in_channels = self.groups = 4
            self.weight = nn.Parameter(torch.zeros(4, 9))

    model = nn.Sequential(nn.Conv2d(4, 4, 3, groups=4), GroupedConvLike())
    report = dog_init_(model, seed=0)
    assert report.skipped == [("1", "GroupedConvLike is not an nn.Conv2d; left untouched")]
    assert torch.equal(model[1].weight, torch.zeros(4, 9))


def test_mixed_same_band_and_multiplier_convs():
    model = nn.Sequential(
        MixedConv2d(12, 12, kernel_size=[3, 5, 7], depthwise=True),
        Conv2dSame(12, 24, 5, groups=12),  # depth multiplier 2
        InceptionDWConv2d(64, band_kernel_size=11),  # 3x3, 1x11 and 11x1
    )
    report = dog_init_(model, seed=0)
    sizes = {layer.name: (layer.kernel_size, layer.kernels) for layer in report.layers}
    assert sizes == {
        "0.0": ((3, 3), 4),
        "0.1": ((5, 5), 4),
        "0.2": ((7, 7), 4),
        "1": ((5, 5), 24),
        "2.dwconv_hw": ((3, 3), 8),
        "2.dwconv_w": ((1, 11), 8),
        "2.dwconv_h": ((11, 1), 8),
    }
    assert all(is_dog(conv.weight[:, 0]) for conv in shaped_convs(model))
    band = model[2].dwconv_w.weight[:, 0, 0]  # 1-D DoG profiles, peak or trough in the middle
    assert torch.equal(band.abs().argmax(1), torch.full((8,), 5))


def test_blurpool_filter_is_a_buffer_and_never_touched():
    model = nn.Sequential(nn.Conv2d(8, 8, 3, groups=8), BlurPool2d(8, filt_size=3))
    filt = model[1].filt.clone()
    report = dog_init_(model, seed=0)
    assert [layer.name for layer in report.layers] == ["0"] and not report.skipped
    assert torch.equal(model[1].filt, filt)
    assert len(depthwise_kernels(model)[(3, 3)]) == 8


BLOCKS = {  # the re-parameterizable blocks timm fuses with reparameterize_model
    "MobileOneBlock": lambda: MobileOneBlock(16, 16, 3, group_size=1, num_conv_branches=3),
    "fastvit.MobileOneBlock": lambda: FastVitMobileOneBlock(16, 16, 3, group_size=1, num_conv_branches=2),
    "ReparamLargeKernelConv": lambda: ReparamLargeKernelConv(16, 16, 7, 1, group_size=1, small_kernel=3),
    "RepVggDw": lambda: RepVggDw(16, 3),
    "RepVggDw-legacy": lambda: RepVggDw(16, 3, legacy=True),
    "RepCPE": lambda: RepConditionalPosEnc(16, spatial_shape=(7, 7)),
    "RepGhostModule": lambda: RepGhostModule(8, 16),
    "GhostModuleV3": lambda: GhostModuleV3(8, 32),
    "RepDepthwiseSeparable": lambda: RepDepthwiseSeparable(16, 16, dw_kernel_size=5, use_rep=True),
}
if RepDepthwiseSeparable is None:
    del BLOCKS["RepDepthwiseSeparable"]
ZEROED = {
    "MobileOneBlock": ["0.conv_scale.bn.weight"],
    "fastvit.MobileOneBlock": ["0.conv_scale.bn.weight"],
    "RepVggDw": ["0.conv1.weight"],
    "RepVggDw-legacy": ["0.conv1.bn.weight"],
    "GhostModuleV3": ["0.cheap_rpr_scale.bn1.weight"],
    "RepDepthwiseSeparable": ["0.dw_conv_list.2.bn.weight"],
}


@pytest.mark.parametrize("kind", BLOCKS)
def test_reparameterizable_block_fuses_to_centre_surround(kind):
    torch.manual_seed(0)
    model = nn.Sequential(BLOCKS[kind]()).eval()
    report = dog_init_(model, seed=0)
    convs = shaped_convs(model)
    assert len(report.layers) == len(convs) >= 1 and not any("not an nn.Conv2d" in r for _, r in report.skipped)
    assert all(is_dog(conv.weight[:, 0]) for conv in convs)
    # one polarity per kernel index in all kxk branches; the 1x1 scale branch starts at zero
    assert all(torch.equal(polarity(conv.weight[:, 0]), polarity(convs[0].weight[:, 0])) for conv in convs)
    assert report.zeroed == ZEROED.get(kind, [])
    assert all(not model.get_parameter(name).any() for name in report.zeroed)
    assert analyze_model(reparameterize_model(model))["centre_surround_fraction"] == 1.0


def test_ghostnetv3_bottleneck_and_its_ghost_modules_are_separate_blocks():
    torch.manual_seed(0)
    model = nn.Sequential(GhostBottleneckV3(16, 32, 24, stride=2)).eval()
    report = dog_init_(model, seed=0)
    block = model[0]
    assert report.zeroed == [
        "0.dw_rpr_scale.bn1.weight",
        "0.ghost1.cheap_rpr_scale.bn1.weight",
        "0.ghost2.cheap_rpr_scale.bn1.weight",
    ]
    for branches in (block.dw_rpr_conv, block.ghost1.cheap_rpr_conv, block.ghost2.cheap_rpr_conv):
        kernels = [b.conv.weight[:, 0] for b in branches]
        assert all(is_dog(k) and torch.equal(polarity(k), polarity(kernels[0])) for k in kernels)
    assert analyze_model(reparameterize_model(model))["centre_surround_fraction"] == 1.0


def test_block_branches_share_the_chosen_kernels():
    model = nn.Sequential(MobileOneBlock(32, 32, 3, group_size=1, num_conv_branches=3))
    block = model[0]
    native = [b.conv.weight.detach().clone() for b in block.conv_kxk]
    report = dog_init_(model, share=0.5, seed=1)
    changed = [(b.conv.weight != n).flatten(1).any(1) for b, n in zip(block.conv_kxk, native)]
    assert changed[0].sum() == 16 and all(torch.equal(c, changed[0]) for c in changed)
    assert report.kernels_set == 48
    assert torch.equal(block.conv_scale.bn.weight == 0, changed[0])  # zeroed only where DoG went


def test_share_zero_changes_nothing_in_a_block():
    model = nn.Sequential(MobileOneBlock(16, 16, 3, group_size=1, num_conv_branches=2))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    report = dog_init_(model, share=0.0, seed=0)
    assert report.kernels_set == 0 and report.zeroed == []
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


@pytest.mark.parametrize("name", ["fastvit_t8", "mobileone_s0", "repvit_m1", "ghostnetv3_050", "lcnetv2_small"])
def test_models_fused_by_timm_keep_centre_surround_kernels(name):
    """After timm's reparameterize_model every fused depthwise kernel scores as centre-surround (was 83-96 %)."""
    if not timm.is_model(name):
        pytest.skip(f"timm {timm.__version__} has no {name}")
    torch.manual_seed(0)
    model = timm.create_model(name)
    dog_init_(model, seed=0)
    result = analyze_model(reparameterize_model(model.eval()))
    assert result["centre_surround_fraction"] >= 0.99, result["sizes"].keys()


def test_dog_kernels_are_drawn_as_before_outside_blocks():
    """A plain depthwise conv gets exactly the kernels dog_kernels draws for the seed."""
    conv = nn.Conv2d(32, 32, 5, groups=32)
    dog_init_(nn.Sequential(conv), seed=5)
    assert torch.equal(conv.weight[:, 0], dog_kernels(32, 5, generator=torch.Generator().manual_seed(5)))
