"""`timm-dog report` on train.py-format runs (digits, 2 epochs, DoG and native, two seeds) and its refusals."""

import csv
import json
import shutil
from pathlib import Path

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
    assert (pair["arm"], pair["settings"], pair["seeds"], pair["checkpoint_epochs"]) == ("dog", "", [0, 1], [1])
    assert (report["data"]["images"], report["data"]["classes"], report["weights"]) == (360, 10, "state_dict")
    assert report["unpaired"] == [] and report["rows"][0]["pairwise"] == []
    for arm, model in (("dog", "convnext_atto_dog"), ("native", "convnext_atto")):
        runs = pair[arm]["runs"]
        assert [r["seed"] for r in runs] == [0, 1]
        for run in runs:  # the checkpoint evaluated here = the in-memory model validated after its last epoch
            with open(train_runs[model, run["seed"]] / "summary.csv") as f:
                last = list(csv.DictReader(f))[-1]
            assert run["top1"] == pytest.approx(float(last["eval_top1"]), abs=1e-9)
            assert run["top5"] == pytest.approx(float(last["eval_top5"]), abs=1e-9)
            assert run["train_py_top1"] == pytest.approx(float(last["eval_top1"]), abs=1e-9)  # same weights and epoch
            assert (run["ema"], run["checkpoint_epoch"], run["epochs"], run["curves_weights"]) == (False, 1, 2, "model")
        top1 = [r["top1"] for r in runs]
        assert pair[arm]["top1"] == {
            "mean": pytest.approx(np.mean(top1)),
            "std": pytest.approx(np.std(top1, ddof=1)),
            "n": 2,
        }
    delta = pair["dog"]["top1"]["mean"] - pair["native"]["top1"]["mean"]
    assert pair["delta_top1"] == pytest.approx(delta)
    comparison = pair["comparison"]  # run-level: the two seeds paired
    assert (pair["paired"], pair["pairing"]) == (True, "paired by seed: every arm has seeds 0, 1")
    assert comparison["runs"] == [2, 2] and comparison["test"] == "paired t-test on the 2 per-seed differences"
    assert comparison["top1"] == [
        [pytest.approx(r["top1"], abs=1e-9) for r in pair[arm]["runs"]] for arm in ("dog", "native")
    ]
    assert comparison["delta"] == pytest.approx(delta) and comparison["p_value"] is not None
    low, high = comparison["ci"]
    assert low <= delta <= high and comparison["prob_improvement"] in (0, 0.25, 0.5, 0.75, 1)  # over 2 seed pairs
    details = pair["seed_pairs"]  # McNemar per seed pair: these two networks on these images
    assert [d["seed"] for d in details] == [0, 1]
    for d, dog_run, native_run in zip(details, pair["dog"]["runs"], pair["native"]["runs"]):
        test = d["mcnemar"]
        assert 100 * (test["only_a_correct"] - test["only_b_correct"]) / 360 == pytest.approx(
            dog_run["top1"] - native_run["top1"]
        )
        assert d["ci95_images"][0] <= d["delta_top1"] <= d["ci95_images"][1]
    kernels = pair["kernels"]
    assert all(k["init"]["centre_surround_fraction"] > 0.9 for k in kernels["dog_init"])  # re-created from dog_seed
    assert all(k["centre_surround_fraction"] < 0.5 for k in kernels["native"])
    assert all(k["init"]["surround_antagonism"] > 0.99 for k in kernels["dog_init"])  # DoG's antagonistic surround
    md = (report_dir / "report.md").read_text()
    assert "| depthwise kernels of | kernels | centre-surround fraction | DoG fit > 0.8 | surround antagonism |" in md
    init_row = next(
        line for line in md.splitlines() if " at init (re-created from train.py's seed 0 and dog_seed 0) |" in line
    )
    assert init_row.endswith(f"| {kernels['dog_init'][0]['init']['dog_fit_above']:.3f} | 1.000 |")
    assert (
        "| model | arm | settings | runs (arm / native) | native top-1 | arm top-1 | Δ | 95 % CI | p (run-level) | "
        "P(improve) | weights | epochs (checkpoint epoch) |" in md
    )
    row = next(line for line in md.splitlines() if line.startswith("| convnext_atto |"))
    assert f"{delta:+.2f}" in row and f"| {comparison['p_value']:.3g} (paired t) |" in row and "±" in row
    assert row.endswith("| state_dict | 2 (1) |") and "| dog | as run | 2 / 2, by seed |" in row
    assert "10,000 resamples, seed 0" in md and "these two networks on these images" in md
    assert "they cover the variation between training runs" in md  # the legend says what each number covers
    assert pair["recipe_differences"] == [] and "(besides the seed, arm and bookkeeping): none." in md
    assert "Runs left out" not in md and "Notes:" not in md and report["summary"] is None
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


def _variant(source, target, summary=None, **args):
    """A copy of a run with other train.py args, in args.yaml and in its checkpoints (as train.py writes both),
    and optionally another summary.csv text."""
    _copy_run(source, target, **args)
    for name in ("last.pth.tar", "model_best.pth.tar"):
        checkpoint = torch.load(target / name, weights_only=False)
        vars(checkpoint["args"]).update(args)
        checkpoint["arch"] = checkpoint["args"].model  # as train.py's saver writes it
        torch.save(checkpoint, target / name)
    if summary is not None:
        (target / "summary.csv").write_text(summary)
    return target


def _five_class_run(source, target, num_classes=5):
    """A copy of a run whose classifier keeps classes 0-4 only (trained on another class set); ``num_classes``: what
    its args say."""
    _copy_run(source, target, num_classes=num_classes)
    for name in ("last.pth.tar", "model_best.pth.tar"):
        checkpoint = torch.load(target / name, weights_only=False)
        state = checkpoint["state_dict"]
        state["head.fc.weight"], state["head.fc.bias"] = state["head.fc.weight"][:5], state["head.fc.bias"][:5]
        checkpoint["args"].num_classes = num_classes
        torch.save(checkpoint, target / name)
    return target


def test_report_refuses_bad_input(train_runs, digits, tmp_path):
    dog, native = train_runs["convnext_atto_dog", 0], train_runs["convnext_atto", 0]
    out = tmp_path / "out"
    cases = {
        "empty": (
            [tmp_path / "empty"],
            "empty is not a train.py output folder: no args.yaml, summary.csv, model_best.pth.tar or last.pth.tar",
        ),
        "dog only": ([dog], "no runs to compare: no *_dog run has a native run with the same settings ("),
        "native only": ([native], "no convnext_atto_dog run with the same settings"),
        "other architecture": (
            [dog, _variant(native, tmp_path / "femto", model="convnext_femto")],
            "no convnext_atto (native) run with the same settings",
        ),
        "class sets": (
            [
                _variant(dog, tmp_path / "ten", num_classes=None),  # the args leave it to the checkpoints
                _five_class_run(native, tmp_path / "five", num_classes=None),
            ],
            "different class sets",
        ),
        "class sets in the args": (
            [dog, _five_class_run(native, tmp_path / "five-args")],
            "differ in num_classes (5 vs 10)",
        ),
        "twice": ([dog, native, dog], "convnext_atto_dog-s0 is given twice"),
        "same seed twice": (
            [dog, native, _variant(dog, tmp_path / "again")],
            "are both arm 'dog' of convnext_atto with seed 0 and the same settings",
        ),
        "summary without eval": (
            [
                dog,
                _variant(native, tmp_path / "no-eval", summary="epoch,train_loss\n0,1.5\n"),
            ],
            "no-eval/summary.csv lacks eval_top1 (epoch 0)",
        ),
    }
    (tmp_path / "empty").mkdir()
    for name, (args, message) in cases.items():
        result = _report(*args, "--data-dir", digits / "val", "--out", out)
        assert result.exit_code in (1, 2), (name, result.output)
        assert message in result.output, (name, result.output)
        assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())  # nothing written


def test_report_refuses_data_with_another_class_set(train_runs, digits, tmp_path):
    val = tmp_path / "val"
    for digit in "01":
        shutil.copytree(digits / "val" / digit, val / digit)
    result = _report(
        train_runs["convnext_atto_dog", 0], train_runs["convnext_atto", 0], "--data-dir", val, "--out", tmp_path / "out"
    )
    assert result.exit_code == 1
    assert "has 10 classes but --data-dir" in result.output and "has 2 class folders" in result.output


def test_report_ema_needs_ema_weights(train_runs, digits, tmp_path):
    result = _report(
        train_runs["convnext_atto_dog", 0],
        train_runs["convnext_atto", 0],
        "--ema",
        "--data-dir",
        digits / "val",
        "--out",
        tmp_path / "out",
    )
    assert result.exit_code == 1 and "has no EMA weights (state_dict_ema)" in result.output


def test_push_report_adds_the_comparison_to_the_card(report_dir, train_runs, digits, tmp_path):
    from timm_dog.hub import PushError, stage
    from timm_dog.report import ReportError, card_section

    checkpoint = train_runs["convnext_atto_dog", 1] / "model_best.pth.tar"
    eval_path = tmp_path / "eval.json"
    result = CliRunner().invoke(
        main,
        [
            "eval",
            "convnext_atto_dog",
            "--checkpoint",
            str(checkpoint),
            "--data-dir",
            str(digits / "val"),
            "--json",
            str(eval_path),
        ],
    )
    assert result.exit_code == 0, result.output
    kwargs = dict(
        repo_id="someone/convnext-atto-dog-digits",
        eval_json=eval_path,
        verify_images=digits / "val" / "3",
        datasets=("digits",),
        log=lambda line: None,
        report=report_dir / "report.json",
    )
    repo = stage(checkpoint, "convnext_atto_dog", tmp_path / "repo", **kwargs)
    card = (repo.folder / "README.md").read_text()
    pair = json.loads((report_dir / "report.json").read_text())["pairs"][0]
    assert "## DoG vs native init" in card and "besides model and seed: none)" in card
    assert f"{pair['delta_top1']:+.2f}" in card and f"{pair['comparison']['p_value']:.3g} (paired t)" in card
    assert "they cover the variation between training runs" in card
    assert "![Training curves of the DoG and native-init runs](dog_vs_native_curves.png)" in card
    assert "dog_vs_native_curves.png" in repo.files
    assert "| surround antagonism |" in card  # no local folders on the card: seeds
    assert "| dog seed 1 at init (re-created from train.py's seed 1 and dog_seed 1) |" in card
    assert str(train_runs["convnext_atto_dog", 1]) not in card and "Surround antagonism: each kernel's" in card
    native = train_runs["convnext_atto", 0] / "model_best.pth.tar"  # a native run is not published as a twin
    with pytest.raises(PushError, match="was trained as 'convnext_atto', not 'convnext_atto_dog'"):
        stage(native, "convnext_atto_dog", tmp_path / "repo2", **{**kwargs, "eval_json": None}, force=True)
    other = tmp_path / "other.pth.tar"  # a DoG checkpoint whose tensors the report has not evaluated
    saved = torch.load(checkpoint, weights_only=False)
    saved["state_dict"]["head.fc.bias"] = saved["state_dict"]["head.fc.bias"] + 1e-3
    torch.save(saved, other)
    with pytest.raises(PushError, match="has no convnext_atto_dog run with this checkpoint"):
        stage(other, "convnext_atto_dog", tmp_path / "repo3", **{**kwargs, "eval_json": None}, force=True)
    with pytest.raises(ReportError, match="evaluated the state_dict weights but EMA"):
        card_section(report_dir / "report.json", "0" * 64, checkpoint, "convnext_atto_dog", use_ema=True)


def _resumed_summary(source) -> str:
    """summary.csv of a run resumed with --resume: a second header, and epoch 1 written again (the last counts)."""
    lines = (source / "summary.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    first = rows[1].split(",")
    first[1] = "9.5"  # train_loss of the interrupted epoch 1, replaced by the resumed run's row
    return "\n".join([header, rows[0], ",".join(first), header, rows[1]]) + "\n"


@pytest.fixture(scope="module")
def messy_runs(train_runs, tmp_path_factory):
    """The real-run names in train.py format (convnext_atto): seeds 0 paired, dog seed 1 and native seed 2 unpaired,
    a 48 px pair (one run given --img-size, the other --input-size), a resumed DoG run with no native run of its
    settings, a native run whose args.yaml lacks a key that is at train.py's default (so not a difference)."""
    root = tmp_path_factory.mktemp("messy")
    dog, native = train_runs["convnext_atto_dog", 0], train_runs["convnext_atto", 0]
    runs = {
        "dog-s0": dog,
        "native-s0": native,
        "dog-s1": train_runs["convnext_atto_dog", 1],
        "native-s2": _variant(train_runs["convnext_atto", 1], root / "native-s2", seed=2),
        "dog-s0-48px": _variant(dog, root / "dog-s0-48px", img_size=48),
        # --input-size 3 48 48 where the DoG run has --img-size 48: one data config, so one row
        "native-s0-48px": _variant(native, root / "native-s0-48px", img_size=None, input_size=[3, 48, 48]),
        "dog-s3-resumed": _variant(
            train_runs["convnext_atto_dog", 1],
            root / "dog-s3-resumed",
            seed=3,
            val_interval=2,
            resume="/runs/dog-s3-resumed/last.pth.tar",
            summary=_resumed_summary(train_runs["convnext_atto_dog", 1]),
        ),
    }
    record = yaml.safe_load((runs["native-s2"] / "args.yaml").read_text())
    assert record.pop("smoothing") == 0.1  # train.py's default: absent and default are the same setting
    (runs["native-s2"] / "args.yaml").write_text(yaml.safe_dump({**record, "workers": 7, "log_interval": 3}))
    return runs


def test_rows_split_by_settings_and_pair_by_equal_seed(messy_runs):
    from timm_dog.report import group_runs, read_run

    runs = {name: read_run(folder) for name, folder in messy_runs.items()}
    rows, unpaired = group_runs(list(runs.values()))
    assert [(r.label, r.seeds, {a: [x.folder.name for x in v] for a, v in r.arms.items()}) for r in rows] == [
        (
            "input_size 3/32/32, val_interval 1",
            [0, 1, 2],  # unequal seeds: every run kept, compared unpaired
            {"native": ["convnext_atto-s0", "native-s2"], "dog": ["convnext_atto_dog-s0", "convnext_atto_dog-s1"]},
        ),
        ("input_size 3/48/48, val_interval 1", [0], {"native": ["native-s0-48px"], "dog": ["dog-s0-48px"]}),
    ]
    assert [(r.paired, r.pairing) for r in rows] == [
        (
            False,
            "unpaired: the arms' seeds differ (native 0, 2; dog 0, 1), so every run of an arm is compared with "
            "every run of the other",
        ),
        (True, "paired by seed: every arm has seed 0"),
    ]
    why = {Path(u["folder"]).name: u["why"] for u in unpaired}
    assert list(why) == ["dog-s3-resumed"]  # only a run without a partner arm is left out
    assert why["dog-s3-resumed"].startswith(
        "no convnext_atto (native) run with the same settings (input_size 3/32/32, "
        "val_interval 2); the nearest other runs of convnext_atto"
    )
    assert why["dog-s3-resumed"].endswith("differ in val_interval (2 vs 1)")  # resume: bookkeeping, not a difference
    assert "/convnext_atto-s0) differ in" in why["dog-s3-resumed"]  # names a run of the arm it lacks (native)
    resumed = runs["dog-s3-resumed"]  # two headers, epoch 1 written twice: the resumed run's row counts
    assert resumed.epochs == 2 and resumed.curves["epoch"] == [0, 1] and resumed.curves["train_loss"][1] != 9.5


def test_report_lists_unpaired_runs_and_labels_rows(messy_runs, digits, tmp_path):
    out = tmp_path / "out"
    result = _report(*messy_runs.values(), "--data-dir", digits / "val", "--out", out)
    assert result.exit_code == 0, result.output
    assert "left out: " in result.output and "dog-s3-resumed: no convnext_atto (native) run" in result.output
    assert "native-s2" not in result.output.split("# DoG vs native init")[0]  # no run of a row is left out
    report = json.loads((out / "report.json").read_text())
    assert [(p["settings"], p["seeds"], p["paired"]) for p in report["pairs"]] == [
        ("input_size 3/32/32, val_interval 1", [0, 1, 2], False),
        ("input_size 3/48/48, val_interval 1", [0], True),
    ]
    unequal, single = report["pairs"]
    assert unequal["comparison"]["runs"] == [2, 2]
    assert unequal["comparison"]["test"] == "Welch's t-test on the runs' top-1"
    assert unequal["seed_pairs"] == [] and unequal["runs_needed"] is None
    assert single["comparison"]["p_value"] is None and single["runs_needed"]["run_std"] == 1.0
    assert [d["seed"] for d in single["seed_pairs"]] == [0]
    assert sorted(Path(u["folder"]).name for u in report["unpaired"]) == ["dog-s3-resumed"]
    assert report["bookkeeping_keys"]["workers"] and "seed" in report["bookkeeping_keys"]
    md = (out / "report.md").read_text()
    assert "## Runs left out (no partner arm)" in md and "| `" + str(messy_runs["dog-s3-resumed"]) + "` |" in md
    assert "| convnext_atto | dog | input_size 3/48/48, val_interval 1 | 1 / 1, by seed |" in md
    assert "| — (1 run per arm) |" in md and "one run per arm gives no p-value" in md
    plan = single["runs_needed"]["runs_per_arm"]  # None when Δ is 0: nothing to plan from
    assert (f"takes {plan} runs per arm" if plan else "Δ is 0 here, or so small that no number of runs") in md
    small = report["pairs"][0]["dog"]["runs"][0]
    with open(messy_runs["dog-s0"] / "summary.csv") as f:  # the 32 px row: train.py's own numbers
        assert small["top1"] == pytest.approx(float(list(csv.DictReader(f))[-1]["eval_top1"]), abs=0.01)
    assert sorted(p.name for p in out.iterdir()) == [
        "curves_convnext_atto_1.png",
        "curves_convnext_atto_2.png",
        "report.json",
        "report.md",
    ]
    again = _report(messy_runs["dog-s0"], messy_runs["native-s0"], "--data-dir", digits / "val", "--out", out)
    assert again.exit_code == 0, again.output  # the same folder again: the earlier rows' figures go
    assert sorted(p.name for p in out.iterdir()) == ["curves_convnext_atto.png", "report.json", "report.md"]


def test_ema_runs_say_which_weights(ema_train_runs, train_runs, digits, tmp_path):
    """EMA runs: their own row (model_ema differs), a note without --ema, train.py's EMA eval equal with --ema."""
    from timm_dog.trainpy.runs import read_summary

    runs = [
        ema_train_runs["convnext_atto_dog"],
        ema_train_runs["convnext_atto"],
        train_runs["convnext_atto_dog", 0],
        train_runs["convnext_atto", 0],
    ]
    result = _report(*runs, "--data-dir", digits / "val", "--out", tmp_path / "plain")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "plain" / "report.json").read_text())
    # in the order given; without EMA model_ema_decay has no effect: not in the labels (issue 23, point 9)
    assert [p["settings"] for p in report["pairs"]] == ["model_ema True", "model_ema False"]
    ema_pair = report["pairs"][0]
    for run in ema_pair["dog"]["runs"] + ema_pair["native"]["runs"]:
        folder = Path(run["folder"])
        own = read_summary(folder / "model-summary.csv")[1]["eval_top1"]  # the model's weights, not the EMA's
        assert (run["ema"], run["curves_weights"], run["train_py_top1"]) == (False, "EMA", None)
        assert run["top1"] == pytest.approx(own, abs=0.01)
        assert run["notes"] == [
            f"{folder} trained with EMA (model_ema_decay 0.5): train.py validated its EMA "
            "weights (its summary.csv and curves) and picked model_best by them, while this "
            "report evaluates its state_dict; --ema evaluates the EMA weights"
        ]
    assert "Notes:" in (tmp_path / "plain" / "report.md").read_text()
    result = _report(*runs[:2], "--ema", "--data-dir", digits / "val", "--out", tmp_path / "ema")
    assert result.exit_code == 0, result.output
    (pair,) = json.loads((tmp_path / "ema" / "report.json").read_text())["pairs"]
    assert pair["weights"] == "EMA (state_dict_ema)" and pair["notes"] == []
    for run in pair["dog"]["runs"] + pair["native"]["runs"]:
        last = read_summary(Path(run["folder"]) / "summary.csv")[1]["eval_top1"]
        assert run["top1"] == pytest.approx(last, abs=0.01) and run["train_py_top1"] == last
        assert run["top1"] != pytest.approx(read_summary(Path(run["folder"]) / "model-summary.csv")[1]["eval_top1"])
    assert "| EMA | 2 (1) |" in (tmp_path / "ema" / "report.md").read_text()


def test_holm():
    from timm_dog.report import holm

    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5]) == [0.5] and holm([0.6, 0.6]) == [1.0, 1.0]


def test_arms_from_args_yaml(train_runs, digits, tmp_path):
    """Every *_dog run of a base model is an arm named by its non-seed dog_* kwargs; one row per arm against native,
    a pairwise table with Holm. dog_share 1.0 is the default: the same arm as no dog_share."""
    from timm_dog.report import holm

    dog0, dog1 = train_runs["convnext_atto_dog", 0], train_runs["convnext_atto_dog", 1]
    native0, native1 = train_runs["convnext_atto", 0], train_runs["convnext_atto", 1]

    def arm(source, name, seed, **kwargs):
        return _variant(
            source, tmp_path / f"{name}-s{seed}", model="convnext_atto_dog", model_kwargs={"dog_seed": seed, **kwargs}
        )

    from timm_dog.report import ReportError, group_runs, read_run

    runs = [dog0, dog1, native0, native1, arm(dog0, "share1", 0, dog_share=1.0)]  # dog_share 1.0: arm "dog"
    with pytest.raises(ReportError, match="are both arm 'dog' of convnext_atto with seed 0"):
        group_runs([read_run(r) for r in runs])
    runs = [dog0, dog1, native0, native1]
    for seed, (dog, native) in enumerate(((dog0, native0), (dog1, native1))):
        runs += [
            arm(native, "gaussian", seed, dog_pattern="gaussian"),
            arm(dog, "frozen", seed, dog_trainable=False),
            arm(native, "share", seed, dog_share=0.5),
        ]
    out = tmp_path / "out"
    result = _report(*runs, "--data-dir", digits / "val", "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    (row,) = report["rows"]
    assert row["arms"] == ["native", "dog", "dog frozen", "dog share 0.5", "gaussian"]
    assert [p["arm"] for p in report["pairs"]] == row["arms"][1:]
    by_arm = {p["arm"]: p for p in report["pairs"]}
    assert by_arm["dog frozen"]["delta_top1"] == pytest.approx(by_arm["dog"]["delta_top1"])  # the same weights
    # the same weights as native, every seed: the runs' differences do not vary, so no p-value (the t is undefined)
    assert by_arm["gaussian"]["delta_top1"] == 0 and by_arm["gaussian"]["comparison"]["p_value"] is None
    assert by_arm["dog share 0.5"]["arm_kwargs"] == {"dog_share": 0.5}
    pairwise = row["pairwise"]
    assert len(pairwise) == 10 and (pairwise[0]["a"], pairwise[0]["b"]) == ("native", "dog")
    # arms holding the same weights (native, gaussian, share 0.5; dog, dog frozen) do not vary against each other
    tested = [e for e in pairwise if e["comparison"]["p_value"] is not None]
    assert [e["p_holm"] for e in tested] == holm([e["comparison"]["p_value"] for e in tested])
    assert len(tested) == 6 and all(e["p_holm"] is None for e in pairwise if e not in tested)
    assert all(e["comparison"]["test"] == "paired t-test on the 2 per-seed differences" for e in tested)
    assert pairwise[0]["delta_top1"] == pytest.approx(-by_arm["dog"]["delta_top1"])
    md = (out / "report.md").read_text()
    assert "Holm-adjusted over the 6 tests of this table" in md and "| dog frozen | gaussian |" in md


def test_report_on_real_train_py_runs(real_runs, tmp_path):
    """Real train.py runs ($TIMM_TRAIN_PY): 32 px + EMA (seeds 0-2 of each arm) and 48 px without are two rows, the
    resumed run (no native run with its settings) is listed and left out, every number is train.py's own for the
    same weights (to 0.01) and says its weights and checkpoint epoch."""
    from timm_dog.report import read_run
    from timm_dog.trainpy.checkpoints import read_checkpoint
    from timm_dog.trainpy.runs import read_summary

    data = Path(yaml.safe_load((real_runs["dog-s0"] / "args.yaml").read_text())["data_dir"]) / "val"
    out = tmp_path / "out"
    result = _report(*real_runs.values(), "--data-dir", data, "--out", out, "-j", "0")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert [Path(u["folder"]).name for u in report["unpaired"]] == ["dog-s3-resumed"]
    ema_pair, plain_pair = report["pairs"]
    assert "input_size 3/32/32" in ema_pair["settings"] and "model_ema True" in ema_pair["settings"]
    assert "input_size 3/48/48" in plain_pair["settings"] and "model_ema False" in plain_pair["settings"]
    for pair, summary_ema in ((ema_pair, True), (plain_pair, False)):
        for run in pair["dog"]["runs"] + pair["native"]["runs"]:
            folder = Path(run["folder"])
            epoch = read_checkpoint(folder / "model_best.pth.tar").epoch
            own = read_summary(folder / "summary.csv")
            assert (run["checkpoint_epoch"], run["epochs"], run["ema"]) == (epoch, max(own) + 1, False)
            assert run["curves_weights"] == ("EMA" if summary_ema else "model")
            assert bool(run["notes"]) is summary_ema and (run["train_py_top1"] is None) is summary_ema
            if not summary_ema:  # the same weights train.py validated: its number
                assert run["top1"] == pytest.approx(own[epoch]["eval_top1"], abs=0.01)
    result = _report(
        real_runs["dog-s0"], real_runs["native-s0"], "--ema", "--data-dir", data, "--out", tmp_path / "ema", "-j", "0"
    )
    assert result.exit_code == 0, result.output
    (pair,) = json.loads((tmp_path / "ema" / "report.json").read_text())["pairs"]
    for run in pair["dog"]["runs"] + pair["native"]["runs"]:
        own = read_summary(Path(run["folder"]) / "summary.csv")[run["checkpoint_epoch"]]["eval_top1"]
        assert run["ema"] and run["top1"] == pytest.approx(own, abs=0.01) and run["notes"] == []
    resumed = read_run(real_runs["dog-s3-resumed"])  # --val-interval 2, then --resume: two headers
    assert resumed.epochs == 3 and resumed.curves["epoch"] == [1, 2]


def test_copies_edits_and_interrupted_runs_are_never_counted_as_evidence(train_runs, digits, tmp_path):
    """From the new-user tryout: a copied run folder given a new seed is not a second seed (same tensors), an
    args.yaml edited against its checkpoint's own args is refused, an interrupted run is not paired with finished
    ones, and model_kwargs that is not a mapping is one line."""
    dog, native = train_runs["convnext_atto_dog", 0], train_runs["convnext_atto", 0]
    copy_dog = _variant(dog, tmp_path / "dog-copy", seed=5)
    copy_native = _variant(native, tmp_path / "native-copy", seed=5)
    result = _report(dog, native, copy_dog, copy_native, "--data-dir", digits / "val", "--out", tmp_path / "a")
    assert result.exit_code == 1 and "hold the same weights" in result.output, result.output
    edited = [_copy_run(run, tmp_path / f"{run.name}-edited", seed=7) for run in (dog, native)]  # args.yaml only
    result = _report(*edited, "--data-dir", digits / "val", "--out", tmp_path / "b")
    assert result.exit_code == 1 and "says seed: 7 but" in result.output, result.output
    interrupted = _variant(
        dog,
        tmp_path / "dog-interrupted",
        summary=(dog / "summary.csv").read_text().splitlines(keepends=True)[0]
        + (dog / "summary.csv").read_text().splitlines(keepends=True)[1],
    )
    result = _report(interrupted, native, "--data-dir", digits / "val", "--out", tmp_path / "c")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output  # no pair: both unpaired
    broken = _copy_run(dog, tmp_path / "dog-broken", model_kwargs="dog_seed=0")
    result = _report(broken, native, "--data-dir", digits / "val", "--out", tmp_path / "d")
    assert result.exit_code == 1 and "model_kwargs 'dog_seed=0' is not a mapping" in result.output, result.output
    assert "Traceback" not in result.output


def test_training_images_are_never_reported_as_validation(train_runs, digits_300, tmp_path):
    """A run's training split given as the validation images (its train/ folder, or a data_dir without split folders,
    where train.py validated on its training images too) is refused by report, eval and push; `eval --split train`
    measures training accuracy on purpose and says so, and push refuses that eval JSON."""
    from timm_dog.hub import PushError, stage

    dog, native = train_runs["convnext_atto_dog", 0], train_runs["convnext_atto", 0]
    result = _report(dog, native, "--data-dir", digits_300 / "train", "--out", tmp_path / "out")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{digits_300 / 'train'} holds the training images of {native}" in result.output  # the first run
    assert f"give its validation folder ({digits_300 / 'val'})" in result.output and not (tmp_path / "out").exists()
    checkpoint = str(dog / "model_best.pth.tar")
    refused = CliRunner().invoke(
        main,
        [
            "eval",
            "convnext_atto_dog",
            "--checkpoint",
            checkpoint,
            "--data-dir",
            str(digits_300 / "train"),
            "--workers",
            "0",
        ],
    )
    assert refused.exit_code == 1 and "holds the training images of" in refused.output
    assert "or --split train to measure training accuracy on purpose" in refused.output
    on_purpose = CliRunner().invoke(
        main,
        [
            "eval",
            "convnext_atto_dog",
            "--checkpoint",
            checkpoint,
            "--data-dir",
            str(digits_300),
            "--split",
            "train",
            "--workers",
            "0",
            "--json",
            str(tmp_path / "train.json"),
        ],
    )
    assert on_purpose.exit_code == 0, on_purpose.output
    assert "the numbers are training accuracy" in on_purpose.output
    assert "; its TRAINING images (--split train): training accuracy" in on_purpose.output  # on stdout, by the table
    dataset = json.loads((tmp_path / "train.json").read_text())["dataset"]
    assert dataset["training_images_of"] == [checkpoint]
    with pytest.raises(PushError, match="was measured on training images"):
        stage(
            checkpoint,
            "convnext_atto_dog",
            tmp_path / "repo",
            repo_id="someone/x",
            eval_json=tmp_path / "train.json",
            datasets=("digits",),
            log=lambda line: None,
        )
    flat = tmp_path / "flat"  # a data_dir of class folders only: train.py trained and validated on the same images
    shutil.copytree(digits_300 / "train", flat)
    flat_run = _variant(dog, tmp_path / "flat-run", data_dir=str(flat))
    refused = CliRunner().invoke(
        main,
        [
            "eval",
            "convnext_atto_dog",
            "--checkpoint",
            str(flat_run / "last.pth.tar"),
            "--data-dir",
            str(flat),
            "--workers",
            "0",
        ],
    )
    assert refused.exit_code == 1, refused.output
    assert "has no split folders, so train.py validated on its training images too" in refused.output
    fine = CliRunner().invoke(
        main, ["eval", "convnext_atto_dog", "--checkpoint", checkpoint, "--data-dir", str(digits_300), "--workers", "0"]
    )
    assert fine.exit_code == 0 and "training" not in fine.output


def test_report_says_when_its_numbers_are_not_train_py_validation(train_runs, digits, digits_300, tmp_path):
    """Other images than the folder train.py validated on, or (same images, same weights) a top-1 that train.py's own
    eval does not confirm: each run's row gets a note saying so."""
    dog, native = train_runs["convnext_atto_dog", 0], train_runs["convnext_atto", 0]
    held_out = tmp_path / "held-out"
    shutil.copytree(digits / "val", held_out)
    assert _report(dog, native, "--data-dir", held_out, "--out", tmp_path / "a").exit_code == 0
    runs = json.loads((tmp_path / "a" / "report.json").read_text())["pairs"][0]["native"]["runs"]
    assert runs[0]["notes"] == [
        f"train.py validated {native} on {digits_300 / 'val'}, this report on {held_out}: "
        "its train.py eval_top1 and curves are of other images than its top-1 here"
    ]
    off = _copy_run(native, tmp_path / "off")  # train.py's eval said 5 points more for the same weights
    lines = (off / "summary.csv").read_text().splitlines()
    header = lines[0].split(",")
    last = lines[-1].split(",")
    column = header.index("eval_top1")
    last[column] = str(float(last[column]) + 5)
    (off / "summary.csv").write_text("\n".join(lines[:-1] + [",".join(last)]) + "\n")
    result = _report(dog, off, "--data-dir", digits / "val", "--out", tmp_path / "b")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    native_run = report["pairs"][0]["native"]["runs"][0]
    assert native_run["train_py_top1"] == pytest.approx(native_run["top1"] + 5, abs=1e-6)
    assert (
        f"{off}: top-1 {native_run['top1']:.2f} here but {native_run['top1'] + 5:.2f} in train.py's own eval"
        in native_run["notes"][0]
    )
    assert report["pairs"][0]["dog"]["runs"][0]["notes"] == []
    assert "in train.py's own eval of the same weights" in (tmp_path / "b" / "report.md").read_text()


def test_eval_compare_names_the_settings_its_runs_differ_in(train_runs, digits, tmp_path):
    """eval --compare prints a difference and a p-value; runs trained with other settings (here lr) get a note naming
    them, and the JSON lists them; a DoG run against its paired native run has none."""
    dog, native = train_runs["convnext_atto_dog", 0], train_runs["convnext_atto", 0]
    other = _variant(native, tmp_path / "lr", lr=0.01)

    def compare(b):
        out = tmp_path / f"{b.name}.json"
        result = CliRunner().invoke(
            main,
            [
                "eval",
                "convnext_atto_dog",
                "--checkpoint",
                str(dog / "last.pth.tar"),
                "--compare",
                "convnext_atto",
                "--compare-checkpoint",
                str(b / "last.pth.tar"),
                "--data-dir",
                str(digits / "val"),
                "--workers",
                "0",
                "--json",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.output
        return result.output, json.loads(out.read_text())

    output, report = compare(other)
    assert (
        "were trained with different settings: lr (0.004 vs 0.01): the difference below is not the init's alone"
        in output
    )
    assert report["settings_differences"] == ["lr"]
    assert "whether an init trains better models takes several training runs per init" in output
    output, report = compare(native)
    assert "different settings" not in output and report["settings_differences"] == []
    bare = tmp_path / "bare"  # weights without train.py args: no args inside, args lacking a model, no args.yaml
    bare.mkdir()
    saved = torch.load(native / "last.pth.tar", weights_only=False)
    torch.save({"state_dict": saved["state_dict"], "args": {"img_size": 32}}, bare / "last.pth.tar")
    output, report = compare(bare)
    assert f"cannot be compared: {bare / 'last.pth.tar'} carries no train.py args" in output
    assert report["settings_differences"] is None


def test_every_setting_is_the_checkpoints_own(train_runs, digits, tmp_path):
    """Issue 23, point 3: a copy whose args.yaml was edited (lr 0.004 → 0.0004) against its checkpoint's own args is
    refused by report, sweep collect and eval, naming the key; what train.py sets after writing args.yaml (lr from
    lr_base, lr_base_scale, num_classes) is not a conflict, and the run's settings are then the checkpoint's."""
    from timm_dog.report import group_runs, read_run
    from timm_dog.trainpy.runs import settings

    dog, native = train_runs["convnext_atto_dog", 0], train_runs["convnext_atto", 0]
    edited = _copy_run(native, tmp_path / "native-edited", lr=0.0004)
    refusal = f"{edited / 'args.yaml'} says lr: 0.0004 but {edited / 'model_best.pth.tar'} was trained with lr: 0.004"
    result = _report(dog, edited, "--data-dir", digits / "val", "--out", tmp_path / "out")
    assert result.exit_code == 1 and refusal in result.output, result.output
    result = CliRunner().invoke(main, ["sweep", "collect", str(edited), "--out", str(tmp_path / "sweep")])
    assert result.exit_code == 1 and refusal in result.output, result.output
    result = CliRunner().invoke(
        main,
        [
            "eval",
            "convnext_atto",
            "--checkpoint",
            str(edited / "last.pth.tar"),
            "--data-dir",
            str(digits / "val"),
            "--workers",
            "0",
        ],
    )
    assert result.exit_code == 1 and "says lr: 0.0004 but" in result.output, result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "sweep").exists()
    unset = _copy_run(native, tmp_path / "native-unset", lr=None, lr_base_scale="", num_classes=None)
    run = read_run(unset)  # as train.py writes args.yaml before it computes lr and takes the model's classes
    assert (run.args["lr"], run.args["num_classes"]) == (0.004, 10)
    assert settings(run) == settings(read_run(native))
    (row,), _ = group_runs([read_run(dog), run])
    assert [r.folder for r in row.runs] == [unset, dog]


def test_settings_without_effect_are_not_differences(train_runs, tmp_path):
    """Issue 23, point 9: runs without EMA that differ in model_ema_decay (or without mixup in mixup_prob) are one
    row, with no difference; beside a row of EMA runs, the row without EMA is not labelled with a decay."""
    from timm_dog.report import group_runs, read_run
    from timm_dog.trainpy.runs import args_settings, settings_differences

    dog, native = train_runs["convnext_atto_dog", 0], train_runs["convnext_atto", 0]
    other = _variant(native, tmp_path / "native-decay", model_ema_decay=0.5, mixup_prob=0.3, clip_mode="value")
    runs = [read_run(dog), read_run(other)]
    (row,), _ = group_runs(runs)
    assert row.label == "" and settings_differences(runs) == []
    ema = [_variant(run, tmp_path / f"{run.name}-ema", model_ema=True, model_ema_decay=0.9) for run in (dog, native)]
    rows, _ = group_runs(runs + [read_run(r) for r in ema])
    assert [r.label for r in rows] == ["model_ema False", "model_ema True"]
    base = yaml.safe_load((dog / "args.yaml").read_text())
    for on, key, value in (
        ({"model_ema": True}, "model_ema_decay", 0.5),
        ({"mixup": 0.8}, "mixup_prob", 0.3),
        ({"clip_grad": 1.0}, "clip_mode", "value"),
        ({"lr": None}, "lr_base", 0.01),
    ):
        assert args_settings({**base, key: value}) == args_settings(base), key  # no effect: not a difference
        assert args_settings({**base, **on, key: value}) != args_settings({**base, **on}), key  # an effect


def test_report_is_run_level_on_real_train_py_runs(real_runs, tmp_path):
    """Real train.py runs ($TIMM_TRAIN_PY), 32 px: 3 seeds per arm give a run-level p, interval and P(improve) from
    the paired t-test on the seeds' differences; unequal seed sets (dog 0, 1; native 0, 2) are compared unpaired
    with every run kept; 1 seed per arm (48 px) gives no p, says why, and plans the runs needed."""
    from scipy import stats

    data = Path(yaml.safe_load((real_runs["dog-s0"] / "args.yaml").read_text())["data_dir"]) / "val"

    def report(*names, extra=()):
        out = tmp_path / "-".join(names)
        result = _report(*(real_runs[n] for n in names), "--data-dir", data, "--out", out, "-j", "0", *extra)
        assert result.exit_code == 0, result.output
        (pair,) = json.loads((out / "report.json").read_text())["pairs"]
        return pair, (out / "report.md").read_text()

    pair, md = report("dog-s0", "dog-s1", "dog-s2", "native-s0", "native-s1", "native-s2")
    c = pair["comparison"]
    dog, native = ([r["top1"] for r in pair[arm]["runs"]] for arm in ("dog", "native"))
    assert pair["paired"] and [r["seed"] for r in pair["dog"]["runs"]] == [0, 1, 2]
    assert c["top1"] == [pytest.approx(dog, abs=1e-9), pytest.approx(native, abs=1e-9)]
    assert c["test"] == "paired t-test on the 3 per-seed differences" and c["runs"] == [3, 3]
    assert c["p_value"] >= stats.ttest_rel(dog, native).pvalue - 1e-12  # the image term only widens
    assert c["ci"][0] <= c["delta"] <= c["ci"][1] and c["min_detectable_delta"] > 0
    assert c["prob_improvement"] == np.mean([(a > b) + 0.5 * (a == b) for a, b in zip(dog, native)])
    assert "| 3 / 3, by seed |" in md and f"| {c['p_value']:.3g} (paired t) | {c['prob_improvement']:.2f} |" in md
    pair, md = report("dog-s0", "dog-s1", "native-s0", "native-s2")
    c = pair["comparison"]
    assert not pair["paired"] and c["runs"] == [2, 2] and c["test"] == "Welch's t-test on the runs' top-1"
    assert [r["seed"] for r in pair["dog"]["runs"] + pair["native"]["runs"]] == [0, 1, 0, 2]  # none dropped
    assert "unpaired: the arms' seeds differ (native 0, 2; dog 0, 1)" in md and "Runs left out" not in md
    pair, md = report("dog-s0-48px", "native-s0-48px", extra=("--run-std", "0.5"))
    c = pair["comparison"]
    assert c["p_value"] is None and c["runs"] == [1, 1] and c["ci"][0] <= c["delta"] <= c["ci"][1]
    assert pair["runs_needed"]["run_std"] == 0.5 and pair["runs_needed"]["run_std_from"] == "--run-std"
    assert "| — (1 run per arm) |" in md and "one run per arm gives no p-value" in md
    if c["delta"] != 0:
        from timm_dog.stats import runs_needed

        assert pair["runs_needed"]["runs_per_arm"] == runs_needed(c["delta"], 0.5)
        assert f"with a run std of 0.5 points (--run-std) takes {runs_needed(c['delta'], 0.5)} runs per arm" in md


def test_summary_over_base_models():
    """Rows of two or more base models (the paper's Table 1 as a whole): helped/hurt by run-level p after Holm over
    the models, and the mean Δ with a t interval whose strata are the models; none for one model."""
    from timm_dog.report import _record, holm, model_summary, summary_text
    from timm_dog.stats import combine, compare_runs

    runs = {
        "convnext_tiny": ([77.0, 77.1, 76.9], [76.1, 76.2, 76.0]),
        "hornet_tiny_7x7": ([76.3, 76.5], [76.1, 76.4]),
        "convmixer_512": ([63.0, 64.0, 63.5], [66.0, 66.5, 66.2]),
    }
    pairs = [
        {"model": m, "settings": "", "arm": "dog", "comparison": _record(compare_runs(a, b))}
        for m, (a, b) in runs.items()
    ]
    pairs.append({"model": "convnext_tiny", "settings": "", "arm": "gaussian", "comparison": pairs[0]["comparison"]})
    summary = model_summary(pairs)
    p = [pair["comparison"]["p_value"] for pair in pairs[:3]]
    assert summary["p_holm"] == holm(p) and summary["rows"] == list(runs)
    assert summary["verdicts"] == ["helped", "no difference shown", "hurt"] and (
        summary["helped"],
        summary["hurt"],
    ) == (1, 1)
    expected = combine(*([pair["comparison"][k] for pair in pairs[:3]] for k in ("delta", "se", "df")))
    assert summary["ci95"] == [expected["low"], expected["high"]]
    assert summary["mean_delta"] == pytest.approx(np.mean([np.mean(a) - np.mean(b) for a, b in runs.values()]))
    assert summary_text(summary).startswith(
        "The dog init helped in 1 and hurt in 1 of 3 base models (run-level p, Holm over the 3 tested)"
    )
    assert model_summary(pairs[:1] + pairs[3:]) is None  # one base model
    single = [{**pairs[0], "comparison": _record(compare_runs([77.0], [76.0]))}, pairs[1]]
    summary = model_summary(single)
    assert summary["ci95"] is None and summary["p_holm"][0] is None and "no interval" in summary_text(summary)


def _train_py_run(folder, **args):
    """A report Run whose args are train.py's defaults overlaid with ``args`` (no checkpoint: init only)."""
    from timm_dog.recipes import train_py_args
    from timm_dog.report import Run

    return Run(Path(folder), {**train_py_args()[0], **args}, {}, None)


def test_init_without_dog_seed_is_re_created_as_train_py_creates_it(tmp_path):
    """Without dog_seed the twin's kernels follow torch's global seed: after torch.manual_seed(seed), train.py's
    create_model call (its model arguments, then model_kwargs) gives the model init_model re-creates, bit for bit;
    another seed another one; the global generator is left alone. Where the first weights were not drawn after
    train.py's seed (pretrained, --initial-checkpoint, --resume), it says why instead."""
    import timm

    from timm_dog.report import init_kernels, init_model

    run = _train_py_run(
        tmp_path,
        model="convnext_atto_dog",
        seed=5,
        num_classes=10,
        gp="max",
        drop_path=0.1,
        model_kwargs={"dog_share": 0.5},
    )
    torch.manual_seed(5)
    expected = timm.create_model(
        "convnext_atto_dog",
        pretrained=False,
        in_chans=3,
        num_classes=10,
        drop_rate=0.0,
        drop_path_rate=0.1,
        drop_block_rate=None,
        global_pool="max",
        bn_momentum=None,
        bn_eps=None,
        scriptable=False,
        checkpoint_path="",
        dog_share=0.5,
    ).state_dict()
    state = torch.random.get_rng_state()
    recreated = init_model(run, 10).state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert recreated.keys() == expected.keys() and all(torch.equal(recreated[k], expected[k]) for k in expected)
    other = init_model(_train_py_run(tmp_path, **{**run.args, "seed": 6}), 10).state_dict()
    kernel = "stages.0.blocks.0.conv_dw.weight"
    assert not torch.equal(other[kernel], recreated[kernel])
    init = init_kernels(run, 10, fused=True)
    assert init["re_created"] == "from train.py's seed 5" and 0.4 < init["centre_surround_fraction"] < 0.6
    with_dog_seed = _train_py_run(
        tmp_path, model="convnext_atto_dog", seed=5, num_classes=10, model_kwargs={"dog_seed": 2}
    )
    assert init_kernels(with_dog_seed, 10, fused=True)["re_created"] == "from train.py's seed 5 and dog_seed 2"
    for key, value, why in (
        ("resume", "/r/last.pth.tar", "it resumed from /r/last.pth.tar: its init is that of"),
        ("initial_checkpoint", "/r/x.pth", "it started from --initial-checkpoint /r/x.pth"),
        ("pretrained", True, "it started from pretrained weights (--pretrained)"),
    ):
        refused = init_kernels(_train_py_run(tmp_path, **{**run.args, key: value}), 10, fused=True)
        assert refused.startswith(f"init not re-created: {why}")


@pytest.mark.slow
@pytest.mark.parametrize(
    "model, extra",
    [
        ("convnext_atto_dog", ["--gp", "max", "--drop-path", "0.1"]),
        ("mobilenetv3_small_050_dog", ["--model-kwargs", "dog_share=0.5"]),
    ],
)
def test_init_is_re_created_from_a_real_train_py_runs_seed(digits_300, tmp_path, model, extra):
    """Real train.py ($TIMM_TRAIN_PY) without dog_seed: tests/init_weights.py saves the weights train.py initialized
    (at the model's first training forward) and stops it; init_model, from the args.yaml train.py wrote, re-creates
    them bit for bit (DoG kernels, the native kernels outside dog_share, and every other tensor)."""
    import os
    import subprocess
    import sys

    from conftest import REAL_RUN_RECIPE

    from timm_dog.report import Run, init_model
    from timm_dog.trainpy.args import read_train_args

    train_py = os.environ.get("TIMM_TRAIN_PY")
    if not train_py or not Path(train_py).is_file():
        pytest.skip("set TIMM_TRAIN_PY to timm's train.py (from a clone of timm's repository) for real train.py runs")
    tests = str(Path(__file__).parent)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "INIT_WEIGHTS": str(tmp_path / "init.pt"),
        "PYTHONPATH": os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH")) if p),
    }
    command = [
        sys.executable,
        train_py,
        "--data-dir",
        str(digits_300),
        "--model",
        model,
        "--seed",
        "7",
        "--output",
        str(tmp_path),
        "--experiment",
        "run",
        *REAL_RUN_RECIPE,
        "--img-size",
        "32",
        "--epochs",
        "1",
        "--device-modules",
        "init_weights",
        *extra,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    trained_from = torch.load(tmp_path / "init.pt")
    args = read_train_args(tmp_path / "run" / "args.yaml")
    assert args["seed"] == 7 and "dog_seed" not in args["model_kwargs"]
    recreated = init_model(Run(tmp_path / "run", args, {}, None), 10).state_dict()
    assert recreated.keys() == trained_from.keys()
    assert all(torch.equal(recreated[k], trained_from[k]) for k in trained_from)


def test_planning_from_a_zero_delta_in_float_noise_and_the_one_run_sentence():
    """Two runs of 300 and 306 of 360 right against one of 303: Δ is 0, as floats -1.4e-14: no plan, no crash."""
    from types import SimpleNamespace

    from timm_dog.report import _no_p, _plan

    delta = float(np.mean(100 * np.array([300, 306]) / 360) - 100 * 303 / 360)
    assert delta != 0
    plan = _plan(SimpleNamespace(delta=delta), 1.0, "the default")
    assert plan["runs_per_arm"] is None
    text = _no_p({"runs_needed": plan, "comparison": {"runs": [2, 1]}})
    assert text.startswith("one run in an arm gives no p-value") and "Δ is 0 here, or so small" in text


@pytest.mark.parametrize("value", ["nan", "inf", "1e9"])
def test_report_refuses_a_run_std_that_is_not_a_finite_number_of_points(tmp_path, value):
    """click's FloatRange lets nan and inf through: they would be planned from, after every run was evaluated."""
    result = CliRunner().invoke(main, ["report", str(tmp_path), "--data-dir", str(tmp_path), "--run-std", value])
    assert result.exit_code == 2 and "a run std is a finite number of points" in result.output, result.output
