"""`timm-dog list`, `scan`, `inspect` and `show` (timm_dog.cli.models)."""

import pytest
from PIL import Image


def test_list(cli):
    result = cli("list")
    names = result.output.split()
    assert result.exit_code == 0 and "convnext_tiny_dog" in names and "convmixer_512_dog" in names
    assert all(n.endswith("_dog") for n in names)
    assert cli("list", "convmixer_512*").output.split() == ["convmixer_512", "convmixer_512_dog"]
    result = cli("list", "nothing_like_this*")
    assert result.exit_code == 1 and "no model matches" in result.output


def test_inspect(cli):
    result = cli("inspect", "convnext_atto_dog", "--share", "0.5", "--seed", "0")
    assert result.exit_code == 0, result.output
    assert "stages.0.blocks.0.conv_dw" in result.output and "7x7" in result.output
    assert "DoG init: 12 depthwise layers" in result.output
    row = next(line for line in result.output.splitlines() if line.startswith("stages.0.blocks.0.conv_dw"))
    assert row.split()[2:5][0] == "40" and row.split()[4] == "20"  # channels, DoG set = round(0.5 * 40)


def test_inspect_condconv_and_reparameterizable_models(cli):
    result = cli("inspect", "efficientnet_cc_b0_4e_dog", "--seed", "0")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith("blocks.4.0.conv_dw"))
    assert row.split()[1:3] == ["5x5", "1920"]  # 4 experts x 480 kernels
    result = cli("inspect", "mobileone_s0", "--seed", "0")
    assert result.exit_code == 0 and "zeroed stages.0.0.conv_scale.bn.weight: 1x1 scale branch" in result.output


def test_inspect_model_without_depthwise(cli):
    result = cli("inspect", "resnet18")
    assert result.exit_code == 0 and "no depthwise convolution" in result.output


def test_inspect_unknown_model_suggests(cli):
    result = cli("inspect", "convnext_tiyn_dog")
    assert result.exit_code == 2 and "Did you mean: convnext_tiny_dog" in result.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["inspect", "convnext_atto_dog", "--gamma", "1.5"], "0 <= gamma < 1"),
        (["inspect", "convnext_atto_dog", "--gamma", "0.5,0.1"], "reversed"),
        (["inspect", "convnext_atto_dog", "--share", "1.5"], "share must be a number in [0, 1]"),
        (["inspect", "convnext_atto_dog", "--scale", "huge"], "'paper', 'match'"),
        (["show", "-k", "1"], "no centre-surround pattern"),
        (["show", "--gammas", "0.1,x"], "--gammas"),
        (["demo", "--model", "convnext_atto"], "not a *_dog model"),
        (["inspect", "convnext_atto_dog", "--seed", str(2**64)], "is not in the range"),
        (["show", "-k", "1025"], "kernel_size must be an int in [1, 1024]"),
    ],
)
def test_bad_input(cli, args, message):
    result = cli(*args)
    assert result.exit_code == 2 and message in result.output


def test_inspect_refuses_an_overflowing_scale(cli):
    result = cli("inspect", "convnext_atto_dog", "--scale", "1e308", "--seed", "0")
    assert result.exit_code == 1 and "nan" not in result.output
    assert "scale=1e+308 overflows torch.float32 in layer stages.0.blocks.0.conv_dw" in result.output


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("--share", "1.5", "share must be a number in [0, 1]"),
        ("--on-ratio", "-1", "on_ratio must be a number in [0, 1]"),
        ("--scale", "huge", "'paper', 'match'"),
        ("--scale", "inf", "positive finite"),
    ],
)
def test_show_checks_dog_options_without_model(cli, tmp_path, option, value, message):
    out = tmp_path / "fig.png"
    result = cli("show", option, value, "-o", out)
    assert result.exit_code == 2 and message in result.output and not out.exists()


def test_show_parameters(cli, tmp_path):
    out = tmp_path / "fig.png"
    result = cli("show", "-k", 9, "--gammas", "0.1,0.3,0.5", "-o", out)
    assert result.exit_code == 0 and "γ=0.1, 0.3, 0.5" in result.output
    assert Image.open(out).size[0] > 200


def test_show_model_kernels(cli, tmp_path):
    out = tmp_path / "kernels.png"
    result = cli(
        "show", "--model", "convnext_atto_dog", "--num", 50, "--share", 0.7, "--gamma", 0.5, "--seed", 0, "-o", out
    )
    assert result.exit_code == 0, result.output
    assert "50 random depthwise 7x7 kernels (share 0.7, γ 0.5)" in result.output
    assert Image.open(out).format == "PNG"


def test_list_reads_the_registry_when_the_committed_scan_may_not_decide(tmp_path, monkeypatch):
    """A user scan (its names are checked against timm), another timm version or a pattern that is not only twins:
    timm's own list decides."""
    import timm

    from timm_dog import scan

    assert scan.committed_twins("convnext_at*_dog", timm.__version__) == [
        "convnext_atto_dog",
        "convnext_atto_ols_dog",
        "convnext_atto_rms_dog",
    ]
    assert scan.committed_twins("convnext_*", timm.__version__) is None
    assert scan.committed_twins("*_dog", "0.0.1") is None
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "timm-dog").mkdir()
    (tmp_path / "timm-dog" / scan.data_name(timm.__version__)).write_text("{}")
    assert scan.committed_twins("*_dog", timm.__version__) is None
