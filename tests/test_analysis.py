import json

import pytest
import timm
import torch
from click.testing import CliRunner
from PIL import Image

from timm_dog import dog_kernels
from timm_dog.analysis import analyze_model, cluster, dog_fit, normalise
from timm_dog.cli import main
from timm_dog.init import depthwise_kernels


def _mix(n_on, n_off, n_random, k=7, noise=0.02, seed=0):
    g = torch.Generator().manual_seed(seed)
    on = dog_kernels(n_on, k, on_ratio=1.0, generator=g)
    off = dog_kernels(n_off, k, on_ratio=0.0, generator=g)
    kernels = torch.cat([on, off])
    kernels = kernels + noise * kernels.abs().amax() * torch.randn(kernels.shape, generator=g)
    return torch.cat([kernels, 0.05 * torch.randn(n_random, k, k, generator=g)])


@pytest.mark.parametrize("n_on,n_off,n_random", [(600, 200, 200), (300, 300, 400), (100, 500, 400)])
@pytest.mark.parametrize("k", [5, 7, 9])
def test_synthetic_make_up_is_recovered(n_on, n_off, n_random, k):
    fractions = cluster(_mix(n_on, n_off, n_random, k))["fractions"]
    total = n_on + n_off + n_random
    assert fractions["excitatory-centre"] == pytest.approx(n_on / total, abs=0.03)
    assert fractions["inhibitory-centre"] == pytest.approx(n_off / total, abs=0.03)
    assert fractions["other"] == pytest.approx(n_random / total, abs=0.03)


def test_dog_fit_separates_dog_from_noise():
    fit = dog_fit(_mix(300, 300, 400))
    assert (fit[:600] > 0.9).float().mean() > 0.97 and (fit[600:] > 0.8).float().mean() < 0.03


def test_normalise():
    data = normalise(torch.tensor([[[1.0, 3.0], [5.0, 9.0]], [[2.0, 2.0], [2.0, 2.0]]]))
    assert data.shape == (2, 4) and data[0].tolist() == [0.0, 0.25, 0.5, 1.0] and not data[1].any()


def test_fresh_dog_model_is_centre_surround_and_native_is_not():
    dog = analyze_model(timm.create_model("convnext_tiny_dog", dog_seed=0))
    native = analyze_model(timm.create_model("convnext_tiny"))
    assert dog["centre_surround_fraction"] >= 0.9 and dog["dog_fit_above"] >= 0.9
    assert native["centre_surround_fraction"] <= 0.3 and native["dog_fit_above"] <= 0.1
    assert dog["sizes"]["7x7"]["kernels"] == 6624


def test_share_shows_up_in_the_dog_fit():
    result = analyze_model(timm.create_model("convnext_atto_dog", dog_share=0.5, dog_seed=0))
    assert result["dog_fit_above"] == pytest.approx(0.5, abs=0.02)


def test_no_depthwise_is_an_error():
    with pytest.raises(ValueError, match="no depthwise kernels"):
        analyze_model(timm.create_model("resnet18"))


def test_cli_analyze_side_by_side(tmp_path):
    out, js = tmp_path / "clusters.png", tmp_path / "analysis.json"
    result = CliRunner().invoke(main, ["analyze", "convnext_atto_dog", "convnext_atto", "--json", str(js),
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    numbers = json.loads(js.read_text())
    assert numbers["convnext_atto_dog"]["centre_surround_fraction"] >= 0.9
    assert numbers["convnext_atto"]["centre_surround_fraction"] < 0.5
    assert Image.open(out).size[0] > 300 and (tmp_path / "clusters_1.png").exists()
    assert "convnext_atto_dog" in result.output and "7x7" in result.output


def test_cli_analyze_checkpoint_and_local_dir(tmp_path):
    model = timm.create_model("convnext_atto_dog", num_classes=10)
    path = tmp_path / "model.pth"
    torch.save(model.state_dict(), path)
    result = CliRunner().invoke(main, ["analyze", "convnext_atto", "--checkpoint", str(path)])
    assert result.exit_code == 0, result.output  # the checkpoint's 10 classes are taken from its head
    torch.save(timm.create_model("convnext_femto").state_dict(), path)
    result = CliRunner().invoke(main, ["analyze", "convnext_atto", "--checkpoint", str(path)])
    assert result.exit_code == 1 and "does not match convnext_atto: " in result.output  # reported, no traceback
    assert "Traceback" not in result.output
    timm.models.save_for_hf(timm.create_model("convnext_atto_dog", dog_seed=1), tmp_path / "hf")
    result = CliRunner().invoke(main, ["analyze", f"local-dir:{tmp_path / 'hf'}", "--json", str(tmp_path / "a.json")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "a.json").read_text())[f"local-dir:{tmp_path / 'hf'}"]["dog_fit_above"] == 1.0
    result = CliRunner().invoke(main, ["analyze", "local-dir:/nonexistent"])
    assert result.exit_code == 1 and "no config.json" in result.output


def test_reparameterizable_models_are_measured_fused_by_default():
    """mobileone_s0 trains parallel kxk branches that timm fuses into one depthwise conv for inference: the kernels
    that run are the fused ones (3,728); fused=False gives the branches (14,912). The model itself is not fused."""
    model = timm.create_model("mobileone_s0_dog", dog_seed=0)
    fused, branches = analyze_model(model), analyze_model(model, fused=False)
    assert (fused["fused"], fused["kernels"]) == (True, 3728)
    assert (branches["fused"], branches["kernels"]) == (False, 14912)
    assert fused["centre_surround_fraction"] > 0.99
    assert model.training and len(depthwise_kernels(model)[3, 3]) == 14912  # the caller's model: as it was
    assert analyze_model(timm.create_model("convnext_atto"))["fused"] is False  # nothing to fuse
