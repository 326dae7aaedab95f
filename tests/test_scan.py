"""The scan that decides which models get a twin, its committed data, and the twins it gives."""

import json
import os
import random
import subprocess
import sys

import pytest
import timm
import torch
from click.testing import CliRunner

import timm_dog  # noqa: F401  (registers, also without the autoload)
from timm_dog.cli import main
from timm_dog.models import DATA_FILE
from timm_dog.models import dog_twins as twins
from timm_dog.scan import PACKAGE_DIR, data_name, family_table, scan

DATA = json.loads(DATA_FILE.read_text())
COMMITTED = PACKAGE_DIR / data_name(timm.__version__)
# with another timm, or a user's own scan in the cache folder, the committed data is not what is registered
committed_data = pytest.mark.skipif(DATA_FILE != COMMITTED, reason=f"the twins come from {DATA_FILE}")
FAMILY_SAMPLE = [
    "byobnet",
    "convmixer",
    "convnext",
    "efficientnet",
    "fastvit",
    "ghostnet",
    "hornet",
    "inception_next",
    "maxxvit",
    "metaformer",
    "mobilenetv3",
    "repvit",
]


def smallest_per_family() -> dict:
    """{family: its scanned model with the fewest parameters} (models the installed timm has)."""
    best = {}
    for name, entry in sorted(DATA["models"].items(), key=lambda item: item[1]["params"]):
        if timm.is_model(name):
            best.setdefault(entry["family"], name)
    return best


@committed_data
def test_the_data_is_the_installed_timms():
    assert DATA["timm"] == timm.__version__ and not DATA["exceptions"].keys() & DATA["models"].keys()
    assert len(DATA["models"]) > 500 and len({e["family"] for e in DATA["models"].values()}) >= 50


@committed_data
def test_committed_data_matches_a_fresh_scan_for_a_sample():
    by_family = {}
    for name, entry in sorted(DATA["models"].items(), key=lambda item: item[1]["params"]):
        by_family.setdefault(entry["family"], []).append(name)
    names = [name for family in FAMILY_SAMPLE for name in by_family[family][:2]]
    names += random.Random(0).sample(sorted(DATA["models"]), 6) + sorted(DATA["exceptions"])[:3]
    names += ["resnet18", "vit_tiny_patch16_224", "efficientnet_b0_g8_gn"]  # no depthwise conv: in neither
    fresh = scan(names)
    assert fresh["models"] == {n: DATA["models"][n] for n in names if n in DATA["models"]}
    assert fresh["exceptions"] == {n: DATA["exceptions"][n] for n in names if n in DATA["exceptions"]}
    assert "resnet18" not in DATA["models"] and "resnet18" not in DATA["exceptions"]


@committed_data
def test_existing_twins_keep_their_names():
    """The 132 twins of the former name patterns (less three grouped, not depthwise, models) all remain."""
    old = {
        n
        for n in timm.list_models(
            [
                "convnext*",
                "convmixer*",
                "mobilenetv2*",
                "mobilenetv3*",
                "mobilenetv4*",
                "efficientnet*",
                "tf_efficientnet*",
                "hornet*",
            ]
        )
        if not n.endswith("_dog")
    }
    old -= {"efficientnet_b0_g8_gn", "efficientnet_b0_g16_evos", "efficientnet_b3_g8_gn"}
    assert len(old) == 132 and {f"{n}_dog" for n in old} <= set(timm.list_models("*_dog"))


def test_every_scanned_model_has_a_twin_and_nothing_else_does():
    assert set(timm.list_models("*_dog")) == {f"{n}_dog" for n in DATA["models"] if timm.is_model(n)}


def _meta_report(name):
    with torch.device("meta"):
        return timm.create_model(name).dog_init_report


def test_twins_on_meta_report_layers_one_per_family():
    for family, name in smallest_per_family().items():
        report = _meta_report(f"{name}_dog")
        assert report.layers and report.kernels_set > 0, (family, name)


@pytest.mark.slow
def test_every_twin_on_meta_reports_layers():
    for name in timm.list_models("*_dog"):
        assert _meta_report(name).layers, name


# families whose smallest model fixes its input size at construction (position embeddings, windows)
SIZED_AT_CONSTRUCTION = {"coat", "efficientformer_v2", "gcvit", "maxxvit", "pit", "vitamin"}


@pytest.mark.parametrize("family,name", sorted(smallest_per_family().items()))
def test_forward_and_backward_at_64px_one_model_per_family(family, name):
    kwargs = dict(img_size=64) if family in SIZED_AT_CONSTRUCTION else {}
    model = timm.create_model(f"{name}_dog", num_classes=8, dog_seed=0, **kwargs)
    assert model.dog_init_report.kernels_set > 0
    out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 8) and torch.isfinite(out).all()
    out.square().mean().backward()
    layer = model.get_submodule(model.dog_init_report.layers[0].name)
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()


def test_meta_report_counts_what_a_real_init_sets():
    with torch.device("meta"):
        meta = timm.create_model("mobilenetv3_small_050_dog", dog_share=0.5, dog_seed=0).dog_init_report
    real = timm.create_model("mobilenetv3_small_050_dog", dog_share=0.5, dog_seed=0).dog_init_report
    assert meta.layers == real.layers and meta.skipped == real.skipped


def test_a_listed_name_missing_from_timm_is_skipped(tmp_path):
    path = tmp_path / data_name("1.0.31")
    path.write_text(json.dumps({"models": {"convnext_atto": {}, "convnext_from_the_future": {}}}))
    assert twins.base_models(path) == ["convnext_atto"]


def test_a_base_without_a_registered_cfg_gets_timms_default_one():
    cfg = twins._twin_cfg("plugin_model_registered_without_cfgs")
    assert cfg.input_size == (3, 224, 224) and not cfg.has_weights


def test_data_file_prefers_the_users_scan_then_the_nearest_committed_version(tmp_path, monkeypatch):
    committed, user = tmp_path / "committed", tmp_path / "cache"
    committed.mkdir()
    (user / "timm-dog").mkdir(parents=True)
    for version in ("1.0.9", "1.0.20", "1.0.31"):
        (committed / data_name(version)).write_text("{}")
    (user / "timm-dog" / data_name("1.0.20")).write_text('{"models": {}}')
    monkeypatch.setattr(twins, "PACKAGE_DIR", committed)
    monkeypatch.setenv("XDG_CACHE_HOME", str(user))
    assert twins.data_file("1.0.20") == user / "timm-dog" / data_name("1.0.20")
    assert twins.data_file("1.0.31") == committed / data_name("1.0.31")
    assert twins.data_file("1.0.25") == committed / data_name("1.0.20")
    assert twins.data_file("1.0.19") == committed / data_name("1.0.9")  # versions, not strings, are compared
    assert twins.data_file("1.1.0.dev0") == committed / data_name("1.0.31")
    assert twins.data_file("0.9.16") == committed / data_name("1.0.9")  # older than all: the oldest


def test_a_users_scan_decides_the_twins_of_a_new_process(tmp_path):
    folder = tmp_path / "timm-dog"
    folder.mkdir()
    (folder / data_name(timm.__version__)).write_text(
        json.dumps({"timm": timm.__version__, "models": {"convnext_atto": {}, "resnet18": {}, "no_such_model": {}}})
    )
    code = "import json, timm; print(json.dumps(timm.list_models('*_dog')))"
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path), TIMM_DOG_AUTOLOAD="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == ["convnext_atto_dog", "resnet18_dog"]


@pytest.mark.parametrize("content", [b'{"models": {"convnext_at', b"[1, 2]", b'{"models": ["a"]}', b"\xff\xfe"])
def test_an_unreadable_users_scan_is_skipped_with_a_warning_never_an_error(content, tmp_path):
    """import timm, --help and scan all work; the warning names the file and `timm-dog scan`; the committed
    scan gives the twins; and `timm-dog scan` replaces the broken file."""
    path = tmp_path / "cache" / "timm-dog" / data_name(timm.__version__)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    env = dict(os.environ, HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"), TIMM_DOG_AUTOLOAD="1")

    def run(code, *args):
        out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)
        assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
        return out

    out = run("import timm; print(len(timm.list_models('*_dog')))")
    assert int(out.stdout) == len([n for n in json.loads(COMMITTED.read_text())["models"] if timm.is_model(n)])
    assert f"skipping the unreadable scan {path}" in out.stderr and "`timm-dog scan`" in out.stderr
    if content != b'{"models": {"convnext_at':
        return  # the commands once, for the truncated file
    cli = "from timm_dog.cli import main; main()"
    assert "Usage:" in run(cli, "--help").stdout
    out = run("import timm; timm.list_models = lambda *a, **k: ['convnext_atto']; " + cli, "scan")
    assert f"wrote {path}" in out.stdout and json.loads(path.read_text())["scanned"] == 1
    out = run("import timm; print(timm.list_models('*_dog'))")
    assert out.stdout.strip() == "['convnext_atto_dog']" and "skipping" not in out.stderr


def test_scan_command_writes_the_users_file(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(timm, "list_models", lambda *a, **k: ["convnext_atto", "resnet18", "convnext_atto_dog"])
    result = CliRunner().invoke(main, ["scan"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "timm-dog" / data_name(timm.__version__)
    data = json.loads(path.read_text())
    assert data["scanned"] == 2 and list(data["models"]) == ["convnext_atto"]
    assert data["models"]["convnext_atto"] == DATA["models"]["convnext_atto"]
    assert f"wrote {path}: the next process that imports timm registers its 1 twins" in result.output
    # tqdm's progress, readable in a log (not a terminal here): whole lines, no carriage returns
    assert f"scanning timm {timm.__version__} on the meta device: 100%" in result.stderr and "2/2" in result.stderr
    assert "\r" not in result.stderr
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no partial file left

    other = tmp_path / "new" / "twins.json"
    result = CliRunner().invoke(main, ["scan", "--out", str(other)])
    assert result.exit_code == 0 and other.is_file() and "copy it there" in result.output


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["--out", "twins.txt"], 2, "twins.txt must end in .json"),
        (["--out", "/proc/twins/x.json"], 2, "cannot write /proc/twins/x.json"),
    ],
)
def test_scan_command_refuses_a_bad_output_before_scanning(args, code, message, monkeypatch):
    monkeypatch.setattr(timm, "list_models", lambda *a, **k: pytest.fail("scanned"))
    result = CliRunner().invoke(main, ["scan", *args])
    assert result.exit_code == code and message in result.output and "Traceback" not in result.output


def test_list_table_counts_per_family():
    result = CliRunner().invoke(main, ["list", "--table", "convnext_[ap]*_dog"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "| family | models | names |",
        "|---|---|---|",
        "| convnext | 5 | `convnext_atto_dog`, `convnext_atto_ols_dog`, `convnext_atto_rms_dog`, `convnext_pico_dog`, "
        "`convnext_pico_ols_dog` |",
        "| **total** | **5** | 1 family |",
    ]


@committed_data
def test_models_page_table_is_the_commands_output():
    """docs/models.md (linked from the README's "Supported models") holds the output of `timm-dog list --table`."""
    page = open(os.path.join(os.path.dirname(__file__), "..", "docs", "models.md")).read()
    assert family_table(timm.list_models("*_dog")) in page
