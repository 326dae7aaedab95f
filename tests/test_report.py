"""`timm-dog report` on train.py-format runs (digits, 2 epochs, DoG and native, two seeds) and its refusals."""
import csv
import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from timm_dog.cli import main
from timm_dog.report import paired_bootstrap


def _report(*args):
    return CliRunner().invoke(main, ["report", *map(str, args)])


@pytest.fixture(scope="module")
def report_dir(train_runs, digits, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    result = _report(*train_runs.values(), "--data-dir", digits / "val", "--out", out)
    assert result.exit_code == 0, result.output
    return out


def test_report_numbers_are_the_runs_own(report_dir, train_runs):
    report = json.loads((report_dir / "report.json").read_text())
    (pair,) = report["pairs"]
    assert (pair["dog_model"], pair["model"], pair["epochs"]) == ("convnext_atto_dog", "convnext_atto", [2])
    assert (report["data"]["images"], report["data"]["classes"], report["weights"]) == (360, 10, "state_dict")
    for arm, model in (("dog", "convnext_atto_dog"), ("native", "convnext_atto")):
        runs = pair[arm]["runs"]
        assert [r["seed"] for r in runs] == [0, 1]
        for run in runs:  # the checkpoint evaluated here = the in-memory model validated after its last epoch
            with open(train_runs[model, run["seed"]] / "summary.csv") as f:
                last = list(csv.DictReader(f))[-1]
            assert run["top1"] == pytest.approx(float(last["eval_top1"]), abs=1e-9)
            assert run["top5"] == pytest.approx(float(last["eval_top5"]), abs=1e-9)
        top1 = [r["top1"] for r in runs]
        assert pair[arm]["top1"] == {"mean": pytest.approx(np.mean(top1)), "std": pytest.approx(np.std(top1, ddof=1)),
                                     "n": 2}
    delta = pair["dog"]["top1"]["mean"] - pair["native"]["top1"]["mean"]
    assert pair["delta_top1"] == pytest.approx(delta)
    test = pair["mcnemar"]
    assert test["pairs"] == 720  # 360 images x 2 seed pairs
    assert 100 * (test["only_a_correct"] - test["only_b_correct"]) / 720 == pytest.approx(delta)
    low, high = pair["ci95"]
    assert low <= delta <= high and high - low < 20
    kernels = pair["kernels"]
    assert all(k["init"]["centre_surround_fraction"] > 0.9 for k in kernels["dog_init"])  # re-created from dog_seed
    assert all(k["centre_surround_fraction"] < 0.5 for k in kernels["native"])
    md = (report_dir / "report.md").read_text()
    assert "| model | native top-1 | DoG top-1 | Δ | 95 % CI | p | epochs |" in md
    row = next(line for line in md.splitlines() if line.startswith("| convnext_atto |"))
    assert f"{delta:+.2f}" in row and f"{test['p_value']:.3g}" in row and "±" in row
    assert "10,000 resamples, seed 0" in md
    assert pair["recipe_differences"] == [] and "(besides model, DoG kwargs, seed, output): none." in md
    assert (report_dir / "curves_convnext_atto.png").stat().st_size > 1000
    assert sorted(p.name for p in report_dir.iterdir()) == ["curves_convnext_atto.png", "report.json", "report.md"]


def test_paired_bootstrap_equals_resampling_images():
    rng = np.random.default_rng(1)
    dog = rng.random((2, 400)) < 0.7
    native = rng.random((2, 400)) < 0.6
    low, high = paired_bootstrap(dog, native)
    per_image = (dog.astype(float) - native).mean(0)
    naive = [100 * per_image[rng.integers(0, 400, 400)].mean() for _ in range(4000)]
    assert (low, high) == pytest.approx(tuple(np.percentile(naive, [2.5, 97.5])), abs=0.6)
    assert paired_bootstrap(dog, native) == [low, high]  # fixed seed
    same = paired_bootstrap(dog[:1], dog[:1])
    assert same == [0.0, 0.0]


def _copy_run(source, target, **args):
    shutil.copytree(source, target)
    record = yaml.safe_load((target / "args.yaml").read_text())
    (target / "args.yaml").write_text(yaml.safe_dump({**record, **args}))
    return target


def _five_class_run(source, target):
    """A copy of a run whose classifier keeps classes 0-4 only (trained on another class set)."""
    _copy_run(source, target, num_classes=5)
    for name in ("last.pth.tar", "model_best.pth.tar"):
        checkpoint = torch.load(target / name, weights_only=False)
        state = checkpoint["state_dict"]
        state["head.fc.weight"], state["head.fc.bias"] = state["head.fc.weight"][:5], state["head.fc.bias"][:5]
        checkpoint["args"].num_classes = 5
        torch.save(checkpoint, target / name)
    return target


def test_report_refuses_bad_input(train_runs, digits, tmp_path):
    dog, native = train_runs["convnext_atto_dog", 0], train_runs["convnext_atto", 0]
    out = tmp_path / "out"
    cases = {
        "empty": ([tmp_path / "empty"], "empty is not a train.py output folder: no args.yaml, summary.csv, "
                                        "model_best.pth.tar or last.pth.tar"),
        "dog only": ([dog], "missing pair: convnext_atto_dog"),
        "native only": ([native], "missing pair: convnext_atto"),
        "seeds": ([dog, train_runs["convnext_atto_dog", 1], native],
                  "convnext_atto_dog has 2 runs and convnext_atto has 1"),
        "architectures": (["--pair", f"{dog}:{_copy_run(native, tmp_path / 'femto', model='convnext_femto')}"],
                          "architectures differ"),
        "class sets": (["--pair", f"{dog}:{_five_class_run(native, tmp_path / 'five')}"],
                       "different class sets"),
        "twice": (["--pair", f"{dog}:{native}", "--pair", f"{dog}:{train_runs['convnext_atto', 1]}"],
                  "convnext_atto_dog-s0 is given twice"),
        "in a pair and a RUN_DIR": ([dog, "--pair", f"{dog}:{native}", native, train_runs["convnext_atto", 1]], None),
        "pair syntax": (["--pair", str(dog)], "is not DOG_DIR:BASE_DIR"),
    }
    (tmp_path / "empty").mkdir()
    for name, (args, message) in cases.items():
        result = _report(*args, "--data-dir", digits / "val", "--out", out)
        if message is None:  # dog is in --pair and also given as RUN_DIR: used once, so native s1 is unpaired
            assert result.exit_code == 1 and "missing pair: convnext_atto (" in result.output, result.output
            continue
        assert result.exit_code in (1, 2), (name, result.output)
        assert message in result.output, (name, result.output)
        assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())  # nothing written


def test_report_refuses_data_with_another_class_set(train_runs, digits, tmp_path):
    val = tmp_path / "val"
    for digit in "01":
        shutil.copytree(digits / "val" / digit, val / digit)
    result = _report(train_runs["convnext_atto_dog", 0], train_runs["convnext_atto", 0], "--data-dir", val,
                     "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert "has 10 classes but --data-dir" in result.output and "has 2 class folders" in result.output


def test_report_ema_needs_ema_weights(train_runs, digits, tmp_path):
    result = _report(train_runs["convnext_atto_dog", 0], train_runs["convnext_atto", 0], "--ema",
                     "--data-dir", digits / "val", "--out", tmp_path / "out")
    assert result.exit_code == 1 and "has no EMA weights (state_dict_ema)" in result.output


def test_push_report_adds_the_comparison_to_the_card(report_dir, train_runs, digits, tmp_path):
    from timm_dog.hub import PushError, stage
    from timm_dog.report import ReportError, card_section

    checkpoint = train_runs["convnext_atto_dog", 1] / "model_best.pth.tar"
    eval_path = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["eval", "convnext_atto_dog", "--checkpoint", str(checkpoint),
                                       "--data-dir", str(digits / "val"), "--json", str(eval_path)])
    assert result.exit_code == 0, result.output
    kwargs = dict(repo_id="someone/convnext-atto-dog-digits", eval_json=eval_path, verify_images=digits / "val" / "3",
                  datasets=("digits",), log=lambda line: None, report=report_dir / "report.json")
    repo = stage(checkpoint, "convnext_atto_dog", tmp_path / "repo", **kwargs)
    card = (repo.folder / "README.md").read_text()
    pair = json.loads((report_dir / "report.json").read_text())["pairs"][0]
    assert "## DoG vs native init" in card and "besides model and seed: none)" in card
    assert f"{pair['delta_top1']:+.2f}" in card and f"{pair['mcnemar']['p_value']:.3g}" in card
    assert "![Training curves of the DoG and native-init runs](dog_vs_native_curves.png)" in card
    assert "dog_vs_native_curves.png" in repo.files
    other = train_runs["convnext_atto", 0] / "model_best.pth.tar"  # a checkpoint the report has no DoG run for
    with pytest.raises(PushError, match="has no convnext_atto_dog run with this checkpoint"):
        stage(other, "convnext_atto_dog", tmp_path / "repo2", **{**kwargs, "eval_json": None}, force=True)
    with pytest.raises(ReportError, match="evaluated the state_dict weights but EMA"):
        card_section(report_dir / "report.json", "0" * 64, checkpoint, "convnext_atto_dog", use_ema=True)
