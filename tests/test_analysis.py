import json

import pytest
import timm
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from timm_dog import dog_kernels
from timm_dog.analysis import analyze_model, cluster, dog_fit, normalise, surround_antagonism
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


@settings(max_examples=60, deadline=None)
@given(
    kh=st.integers(1, 11),
    kw=st.integers(2, 11),
    gamma=st.floats(0.0, 0.999),
    on=st.booleans(),
    scale=st.floats(1e-4, 10.0),
)
def test_surround_antagonism_is_1_for_dog_and_0_for_the_controls(kh, kw, gamma, on, scale):
    """An antagonistic surround: every DoG (either polarity, any γ, size and scale) scores 1; the controls, which
    share its centre but have no surround of the other sign, score 0."""
    from timm_dog.dog import is_shapeable

    if not is_shapeable((kh, kw)):
        return
    kernels = {
        p: scale * dog_kernels(4, (kh, kw), gamma, on_ratio=float(on), pattern=p, dtype=torch.float64)
        for p in ("dog", "gaussian", "impulse", "box")
    }
    assert surround_antagonism(kernels["dog"]).tolist() == pytest.approx([1.0] * 4, abs=1e-9)
    for pattern in ("gaussian", "impulse", "box"):
        assert surround_antagonism(kernels[pattern]).tolist() == [0.0] * 4


def test_surround_antagonism_of_a_mix_and_of_edge_cases():
    kernels = torch.cat(
        [
            dog_kernels(30, 7, generator=torch.Generator().manual_seed(0)),
            dog_kernels(70, 7, generator=torch.Generator().manual_seed(1), pattern="gaussian"),
        ]
    )
    assert surround_antagonism(kernels).mean().item() == pytest.approx(0.3, abs=1e-6)
    assert surround_antagonism(torch.zeros(2, 3, 3)).tolist() == [0.0, 0.0]  # no centre sign: no antagonism
    ring = torch.ones(1, 3, 3)
    ring[0, 1, 1] = 0.1  # a weak centre inside a strong same-sign surround: none; the other sign: capped at 1
    assert surround_antagonism(ring).tolist() == [0.0] and surround_antagonism(
        ring * torch.where(torch.arange(9).reshape(1, 3, 3) == 4, 1.0, -1.0)
    ).tolist() == [1.0]


@pytest.mark.parametrize("model", ["convnext_atto_dog", "mobilenetv3_small_050_dog"])
def test_only_surround_antagonism_tells_dog_from_the_controls_at_init(model):
    """At init every pattern is centre-surround by the clusters and DoG-like by the fit; the antagonism alone
    separates DoG (near 1) from gaussian, impulse and box (near 0). A native init's random kernels score high too
    (documented: it needs the fit and the clusters beside it)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # k-means finds fewer distinct kernels than clusters for impulse
        results = {
            p: analyze_model(timm.create_model(model, dog_seed=0, dog_pattern=p))
            for p in ("dog", "gaussian", "impulse", "box")
        }
    assert results["dog"]["surround_antagonism"] > 0.99
    for pattern in ("gaussian", "impulse", "box"):
        assert results[pattern]["surround_antagonism"] < 0.01
        assert results[pattern]["centre_surround_fraction"] > 0.99  # what the older measures cannot tell apart
    for size in results["dog"]["sizes"].values():
        assert size["surround_antagonism"] > 0.99
    assert analyze_model(timm.create_model(model[: -len("_dog")]))["surround_antagonism"] > 0.5


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
    result = CliRunner().invoke(
        main, ["analyze", "convnext_atto_dog", "convnext_atto", "--json", str(js), "--out", str(out)]
    )
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


def test_cli_analyze_two_checkpoints_of_one_model(tmp_path):
    """Issue 15, point 7: `analyze X X --checkpoint a --checkpoint b` keeps an entry, rows and a figure per source,
    each labelled by its checkpoint (was: one JSON entry, rows sharing the label X)."""
    a, b = tmp_path / "a.pth", tmp_path / "b.pth"
    torch.save(timm.create_model("convnext_atto_dog", dog_seed=0).state_dict(), a)
    torch.save(timm.create_model("convnext_atto").state_dict(), b)  # native init, trained as the same model
    js, out = tmp_path / "analysis.json", tmp_path / "clusters.png"
    result = CliRunner().invoke(
        main,
        [
            "analyze",
            "convnext_atto_dog",
            "convnext_atto_dog",
            "--checkpoint",
            str(a),
            "--checkpoint",
            str(b),
            "--json",
            str(js),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    numbers = json.loads(js.read_text())
    assert list(numbers) == [str(a), str(b)]
    assert numbers[str(a)]["centre_surround_fraction"] >= 0.9 and numbers[str(b)]["centre_surround_fraction"] < 0.5
    assert numbers[str(a)]["checkpoint"] == str(a) and numbers[str(b)]["source"] == "convnext_atto_dog"
    assert numbers[str(a)]["weights"]["sha256"] != numbers[str(b)]["weights"]["sha256"]
    rows = [line for line in result.output.splitlines() if " 7x7 " in line]
    assert len(rows) == 2 and rows[0].startswith(str(a)) and rows[1].startswith(str(b))
    assert out.is_file() and (tmp_path / "clusters_1.png").is_file()
    result = CliRunner().invoke(
        main, ["analyze", "convnext_atto_dog", "convnext_atto_dog", "--checkpoint", str(a), "--checkpoint", str(a)]
    )
    assert result.exit_code == 2 and f"{a} is given twice" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_cli_analyze_measures_reparameterizable_models_fused(tmp_path):
    """Issue 15, point 20: mobileone_s0 is measured in the fused kernels that run (3,728), and says so; --unfused
    gives its training-time branches (14,912)."""
    js = tmp_path / "a.json"
    result = CliRunner().invoke(main, ["analyze", "mobileone_s0", "--json", str(js)])
    assert result.exit_code == 0, result.output
    entry = json.loads(js.read_text())["mobileone_s0"]
    assert (entry["fused"], entry["kernels"]) == (True, 3728)
    assert "mobileone_s0: re-parameterizable: the fused kernels" in result.output
    result = CliRunner().invoke(main, ["analyze", "mobileone_s0", "--unfused", "--json", str(js)])
    assert result.exit_code == 0, result.output
    entry = json.loads(js.read_text())["mobileone_s0"]
    assert (entry["fused"], entry["kernels"]) == (False, 14912)
    assert "--unfused: re-parameterizable models are measured in their training-time branches" in result.output


def test_cli_analyze_real_train_py_checkpoints(real_runs, tmp_path):
    """Two real train.py checkpoints of one model: an entry each, with the epoch and tensors they hold."""
    from timm_dog.trainpy.args import read_train_args

    model = read_train_args(real_runs["dog-s0"] / "args.yaml")["model"]
    a, b = real_runs["dog-s0"] / "last.pth.tar", real_runs["dog-s1"] / "last.pth.tar"
    js = tmp_path / "a.json"
    result = CliRunner().invoke(
        main, ["analyze", model, model, "--checkpoint", str(a), "--checkpoint", str(b), "--json", str(js)]
    )
    assert result.exit_code == 0, result.output
    numbers = json.loads(js.read_text())
    assert list(numbers) == [str(a), str(b)]
    assert [numbers[str(p)]["weights"]["epoch"] for p in (a, b)] == [2, 2]
    assert numbers[str(a)]["weights"]["sha256"] != numbers[str(b)]["weights"]["sha256"]
    assert not numbers[str(a)]["weights"]["ema"]


def test_analyze_sources_gives_each_source_its_label_and_json_record():
    from timm_dog.analysis import analyze_sources

    ((name, result, entry),) = analyze_sources([("convnext_atto_dog", None)], seed=0)
    assert name == "convnext_atto_dog" and entry["source"] == "convnext_atto_dog" and entry["checkpoint"] is None
    assert entry["kernels"] == result["kernels"] and entry["weights"]["source"] is not None
    assert "_kernels" not in entry["sizes"]["7x7"] and json.dumps(entry)
