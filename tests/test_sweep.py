import csv
import itertools
import statistics
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from timm_dog.cli import main
from timm_dog.recipes import RecipeError, check_recipe
from timm_dog.sweep import DEFAULT_GRID, collect, parse_grid, write_results, write_sweep

ROOT = Path(__file__).parents[1]
CIFAR = ROOT / "recipes" / "cifar10" / "mobilenetv2_100_dog.yaml"
# Real outputs of timm's train.py (args.yaml + summary.csv), recorded from a 2x2 sweep of CIFAR
# recipe points trained 3 epochs on the demo's digits ImageFolder on the CPU.
RECORDED = Path(__file__).parent / "data" / "sweep_runs"


def test_default_grid_is_the_cifar_study(tmp_path):
    paths = write_sweep(CIFAR, DEFAULT_GRID, tmp_path)
    assert len(paths) == 7 * 5 + 1
    point = yaml.safe_load((tmp_path / "mobilenetv2_100_dog-gamma0.3-share0.45.yaml").read_text())
    assert point["model_kwargs"] == {"dog_gamma": 0.3, "dog_share": 0.45}
    assert point["experiment"] == "mobilenetv2_100_dog-gamma0.3-share0.45"
    baseline = yaml.safe_load((tmp_path / "mobilenetv2_100_dog-baseline.yaml").read_text())
    assert baseline["model"] == "mobilenetv2_100" and "model_kwargs" not in baseline
    base = yaml.safe_load(CIFAR.read_text())
    assert {k: v for k, v in point.items() if k not in ("model_kwargs", "experiment")} == {
        k: v for k, v in base.items() if k != "model_kwargs"
    }


def test_a_generated_point_passes_recipe_check(tmp_path):
    paths = write_sweep(CIFAR, parse_grid(["dog_gamma=0.7", "dog_on_ratio=1.0"]), tmp_path)
    summary = check_recipe(paths[0], steps=1, aug_samples=8)
    assert summary["model_kwargs"] == {"dog_gamma": 0.7, "dog_share": 0.7, "dog_on_ratio": 1.0}


@pytest.mark.parametrize(
    "spec,match",
    [
        ("gamma=0.1", "KEY=V1"),
        ("dog_gamma", "KEY=V1"),
        ("dog_share=[", "values"),
        ("dog_gamma=abc", r"grid value dog_gamma='abc': gamma .* must be a number with 0 <= gamma < 1"),
        ("dog_gamma=0.1,1.0", r"grid value dog_gamma=1.0: gamma"),
        ("dog_share=1.5", r"grid value dog_share=1.5: share must be a number in \[0, 1\]"),
        ("dog_share=true", "share must be a number"),
        ("dog_on_ratio=-0.1", "on_ratio must be a number"),
        ("dog_scale=big", "scale must be 'paper', 'match' or a positive number"),
        ("dog_scale=0", "positive finite"),
        ("dog_seed=2.5", "seed must be None or an int"),
        ("dog_seed=18446744073709551616", "seed must be None or an int in"),
        ("dog_share=", "empty value"),
        ("dog_share=0.3,,0.5", "empty value"),
        ("dog_seed=1, ", "empty value"),
        ("dog_share=0.3,0.5,0.3", "the value 0.3 is given twice"),
        ("dog_share=0.3,0.30", "the value 0.3 is given twice"),
    ],
)
def test_bad_grid(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_grid([spec])


def test_grid_key_twice_and_exponent_values():
    with pytest.raises(ValueError, match="dog_share is given twice"):
        parse_grid(["dog_share=0.3", "dog_share=0.5"])
    assert parse_grid(["dog_share=1e-1,0.5", "dog_scale=paper,2"]) == {
        "dog_share": [0.1, 0.5],
        "dog_scale": ["paper", 2],
    }


def test_write_sweep_checks_the_grid_and_the_base_before_writing(tmp_path):
    with pytest.raises(ValueError, match="grid value dog_share=2"):
        write_sweep(CIFAR, {"dog_share": [0.5, 2]}, tmp_path / "a")
    with pytest.raises(ValueError, match="the value 0.5 is given twice"):
        write_sweep(CIFAR, {"dog_share": [0.5, 0.5]}, tmp_path / "a")
    base = yaml.safe_load(CIFAR.read_text())
    bad = tmp_path / "bad_dog.yaml"
    bad.write_text(yaml.safe_dump({**base, "model_kwargs": {"dog_scale": "huge"}}))
    with pytest.raises(RecipeError, match="bad_dog.yaml: model_kwargs: scale must be"):
        write_sweep(bad, {"dog_share": [0.5]}, tmp_path / "a")
    bad.write_text(yaml.safe_dump({**base, "lr": "fast"}))  # the base's own values, as recipe check sees them
    with pytest.raises(RecipeError, match="bad_dog.yaml:\n  lr: 'fast' is not a number > 0"):
        write_sweep(bad, {"dog_share": [0.5]}, tmp_path / "a")
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("grid", [["dog_gamma=abc"], ["dog_share=0.3,0.3"], ["dog_share=0.3", "dog_gamma=0.1,"]])
def test_cli_sweep_bad_grid_writes_nothing(tmp_path, grid):
    args = ["sweep", str(CIFAR), "--out", str(tmp_path / "out")]
    for spec in grid:
        args += ["--grid", spec]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "grid" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_base_must_be_a_dog_recipe(tmp_path):
    result = CliRunner().invoke(
        main, ["sweep", str(ROOT / "recipes" / "cifar10" / "mobilenetv2_100.yaml"), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2 and "must train a *_dog model" in result.output


def test_cli_sweep_prints_commands(tmp_path):
    result = CliRunner().invoke(
        main,
        ["sweep", str(CIFAR), "--grid", "dog_share=0.3,0.9", "--out", str(tmp_path), "--print-commands", "--gpus", "8"],
    )
    assert result.exit_code == 0, result.output
    assert "wrote 3 recipes" in result.output
    assert f"./distributed_train.sh 8 --config {tmp_path}/mobilenetv2_100_dog-share0.3.yaml" in result.output


def test_collect_recorded_train_py_runs(tmp_path):
    results = collect([RECORDED])
    runs = results.runs
    assert len(runs) == 5 and runs[-1].baseline and runs[-1].model == "mobilenetv2_100"
    assert len(results.recipes) == 1 and len(results.cells) == 5
    cell = next(r for r in runs if r.dog.get("dog_gamma") == 0.5 and r.dog.get("dog_share") == 0.9)
    assert cell.epochs == 3 and cell.best == (1, pytest.approx(21.39, abs=0.005))
    assert cell.final == (2, pytest.approx(21.11, abs=0.005)) and not cell.ema and cell.image_size == "32"
    paths = write_results(results, tmp_path)
    table = paths["markdown"].read_text()
    assert (
        "| mobilenetv2_100_dog-gamma0.5-share0.9 | R1 | mobilenetv2_100_dog | 0.5 | 0.9 | 42 | 32 | model | 3 | 3 | "
        "21.39 | 1 | 21.11 | 2 | False |" in table
    )
    assert paths["figures"] == [tmp_path / "heatmap.png"] and Image.open(paths["figures"][0]).size[0] > 300
    assert paths["csv"].read_text().count("\n") == 6 and paths["cells"].read_text().count("\n") == 6


def test_cli_collect(tmp_path):
    result = CliRunner().invoke(main, ["sweep", "collect", str(RECORDED), "--out", str(tmp_path)])
    assert result.exit_code == 0 and "heatmap.png" in result.output
    result = CliRunner().invoke(main, ["sweep", "collect", str(tmp_path)])
    assert result.exit_code == 1 and "no summary.csv" in result.output


def _copy_run(tmp_path, summary: bytes) -> Path:
    run = tmp_path / "runs" / "one"
    run.mkdir(parents=True)
    source = next(RECORDED.glob("*/args.yaml"))
    (run / "args.yaml").write_text(source.read_text())
    (run / "summary.csv").write_bytes(summary)
    return run / "summary.csv"


@pytest.mark.parametrize(
    "summary,match",
    [
        (b"epoch,eval_top1\n0,12.5\n1,twelve\n", r"summary.csv, line 3: epoch must be an int and every other value a"),
        (b"epoch,eval_top1\n0,nan\n", r"summary.csv: eval_top1 is nan at epoch 0 \(a diverged run\?\)"),
        (b"epoch,eval_top1\nfirst,12.5\n", r"summary.csv, line 2: epoch must be an int"),
        (b"eval_top1\n12.5\n", r"summary.csv, line 1: a row before the header"),
        (b"epoch,train_loss\n0,1.5\n", r"summary.csv: no eval_top1 at epoch 0"),
        (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", r"summary.csv: not a UTF-8 CSV file"),
    ],
)
def test_collect_names_the_file_and_line(tmp_path, summary, match):
    path = _copy_run(tmp_path, summary)
    with pytest.raises(ValueError, match=match) as error:
        collect([tmp_path / "runs"])
    assert str(path) in str(error.value)
    result = CliRunner().invoke(main, ["sweep", "collect", str(tmp_path / "runs"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and str(path) in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def _train_py_run(folder: Path, args: dict, top1: dict, resumed: dict = None) -> Path:
    """A run folder as train.py writes it: args.yaml (train.py's defaults overlaid with ``args``) and summary.csv
    (timm's update_summary, a header per start); ``resumed`` {epoch: top-1} is a second part after --resume."""
    from timm.utils import update_summary

    from timm_dog.recipes import train_py_args

    folder.mkdir(parents=True)
    (folder / "args.yaml").write_text(
        yaml.safe_dump({**train_py_args()[0], "experiment": folder.name, "output": str(folder.parent), **args})
    )
    for part in (top1, resumed or {}):
        for index, (epoch, value) in enumerate(part.items()):
            update_summary(
                epoch,
                {"loss": 2.0},
                {"loss": 1.0, "top1": value, "top5": 90.0},
                str(folder / "summary.csv"),
                lr=0.01,
                write_header=index == 0,
            )
    return folder


SMALL = {"model": "convnext_atto_dog", "num_classes": 10, "epochs": 3, "img_size": 32}


@pytest.fixture
def two_recipes(tmp_path):
    """Hand-written runs for CI: recipe A (32 px, EMA) with γ 0.1 and the range 0–0.5 (a list in args.yaml) at share
    0.5, two seeds per cell, and its baseline (two seeds); recipe B (48 px, no EMA, lr 0.01), one seed. Top-1 per
    cell: {seed: final}, best at epoch 1 = final + 5."""
    root = tmp_path / "runs"
    a = {**SMALL, "model_ema": True, "model_ema_decay": 0.9}
    b = {**SMALL, "img_size": 48, "lr": 0.01}
    plan = [
        ("a-g0.1", a, {"dog_gamma": 0.1, "dog_share": 0.5}, {0: 40.0, 1: 44.0}),
        ("a-grange", a, {"dog_gamma": [0.0, 0.5], "dog_share": 0.5}, {0: 50.0, 1: 51.0}),
        ("a-native", {**a, "model": "convnext_atto"}, {}, {0: 30.0, 1: 34.0}),
        ("b-g0.1", b, {"dog_gamma": 0.1, "dog_share": 0.5}, {0: 20.0}),
        ("b-native", {**b, "model": "convnext_atto"}, {}, {0: 25.0}),
    ]
    for name, args, kwargs, finals in plan:
        for seed, final in finals.items():
            kwargs = {**kwargs, "dog_seed": seed} if args["model"].endswith("_dog") else kwargs
            _train_py_run(
                root / f"{name}-s{seed}",
                {**args, "seed": seed, "model_kwargs": kwargs},
                {0: final - 10, 1: final + 5, 2: final},
            )
    return root


def test_cells_are_keyed_by_recipe_kwargs_and_seed(two_recipes, tmp_path):
    """Issue 15, point 6: two recipes are two figures, two seeds of a cell are mean ± std (n 2), not the last
    run."""
    results = collect([two_recipes])
    assert [r.label for r in results.recipes] == [
        "convnext_atto, input_size [3, 32, 32], lr None, model_ema True",
        "convnext_atto, input_size [3, 48, 48], lr 0.01, model_ema False",
    ]
    # without EMA model_ema_decay has no effect (issue 23, point 9): no difference, not in the label
    cells = {(c.recipe.tag, c.model, c.dog.get("dog_gamma")): c for c in results.cells}
    assert len(cells) == 5
    assert cells["R1", "convnext_atto_dog", 0.1].stats("final") == (42.0, pytest.approx(2**0.5 * 2))
    assert cells["R1", "convnext_atto_dog", 0.1].stats("best") == (47.0, pytest.approx(2**0.5 * 2))
    assert cells["R1", "convnext_atto_dog", (0.0, 0.5)].stats("final") == (50.5, pytest.approx(0.5**0.5))
    assert cells["R2", "convnext_atto_dog", 0.1].stats("final") == (20.0, None)
    paths = write_results(results, tmp_path / "out")
    assert paths["figures"] == [tmp_path / "out" / "bars-1.png", tmp_path / "out" / "bars-2.png"]  # γ only
    table = paths["markdown"].read_text()
    assert "| R1 | convnext_atto_dog | 0.1 | 0.5 | EMA | 32 | 2 | 0 1 | 2 | 42.0 | 2.83 | 47.0 | 2.83 |" in table
    assert "| R1 | convnext_atto_dog | 0–0.5 | 0.5 | EMA | 32 | 2 | 0 1 | 2 | 50.5 | 0.71 | 55.5 | 0.71 |" in table
    assert "| R2 | convnext_atto_dog | 0.1 | 0.5 | model | 48 | 1 | 0 | 2 | 20.0 |  | 25.0 |  |" in table
    assert "| R1 | convnext_atto |  |  | EMA | 32 | 2 | 0 1 | 2 | 32.0 | 2.83 | 37.0 | 2.83 |" in table
    assert (
        "| a-g0.1-s1 | R1 | convnext_atto_dog | 0.1 | 0.5 | 1 | 1 | 32 | EMA | 3 | 3 | 49.0 | 1 | 44.0 | 2 | "
        "False |" in table
    )
    assert "EMA weights" in table and "`final` at the last validated epoch" in table
    rows = list(csv.DictReader(paths["cells"].open()))
    assert {(r["recipe"], r["dog_gamma"], r["n"], r["final_top1_mean"], r["final_top1_std"]) for r in rows} == {
        ("R1", "0.1", "2", "42.0", "2.83"),
        ("R1", "0–0.5", "2", "50.5", "0.71"),
        ("R1", "", "2", "32.0", "2.83"),
        ("R2", "0.1", "1", "20.0", ""),
        ("R2", "", "1", "25.0", ""),
    }
    for path in paths["figures"]:
        assert Image.open(path).size[0] > 300


def test_heatmap_titles_name_recipe_weights_epoch_and_baseline(two_recipes):
    from timm_dog.sweep import figures

    (_, first, _), (_, second, _) = figures(collect([two_recipes]))
    assert (
        first.startswith("R1: convnext_atto, input_size [3, 32, 32]")
        and "final (epoch 2) top-1 % of the EMA weights" in first
    )
    assert "baseline convnext_atto: 32.00 ± 2.83 (n 2)" in first
    assert "model weights (no EMA)" in second and "baseline convnext_atto: 25.00" in second


def test_a_grid_without_two_axes_gets_one_bar_chart_not_heatmaps(tmp_path, monkeypatch):
    """Issue 23, point 12: a pattern-only grid (was: four 1×1 heatmaps) and a one-axis grid get one bar chart per
    recipe, a bar per cell and the baseline's; γ × share keeps its heatmap."""
    from timm_dog import plots
    from timm_dog.sweep import figures

    root = tmp_path / "runs"
    patterns = {"dog": 50.0, "gaussian": 44.0, "impulse": 41.0, "box": 38.0}
    for pattern, final in patterns.items():
        for seed in (0, 1):
            _train_py_run(
                root / f"p-{pattern}-s{seed}",
                {**SMALL, "seed": seed, "model_kwargs": {"dog_pattern": pattern, "dog_seed": seed}},
                {0: final - 5, 1: final + seed},
            )
    _train_py_run(root / "p-native", {**SMALL, "model": "convnext_atto"}, {0: 30.0, 1: 35.0})
    for share in (0.3, 0.9):  # a one-axis grid (share) in a recipe of its own (48 px)
        _train_py_run(
            root / f"s-{share}", {**SMALL, "img_size": 48, "model_kwargs": {"dog_share": share}}, {0: 20.0 + 10 * share}
        )
    for gamma, share in itertools.product((0.1, 0.3), (0.5, 0.9)):  # γ × share (64 px)
        _train_py_run(
            root / f"g-{gamma}-{share}",
            {**SMALL, "img_size": 64, "model_kwargs": {"dog_gamma": gamma, "dog_share": share}},
            {0: 10.0 + gamma + share},
        )
    drawn = []
    monkeypatch.setattr(plots, "bars_png", lambda *args: drawn.append(args) or b"png")
    monkeypatch.setattr(plots, "heatmap_png", lambda *args: b"png")
    results = collect([root])
    sizes = {recipe.tag: recipe.runs[0].image_size for recipe in results.recipes}
    assert [(sizes[title.split(":")[0]], kind) for kind, title, _ in figures(results)] == [
        ("64", "heatmap"),
        ("32", "bars"),
        ("48", "bars"),
    ]
    values, errors, texts, labels, baseline, _, title = drawn[0]
    assert labels == [
        "dog_pattern box",
        "dog_pattern dog",
        "dog_pattern gaussian",
        "dog_pattern impulse",
        "convnext_atto (baseline)",
    ] and baseline == [False] * 4 + [True]
    assert values == [38.5, 50.5, 44.5, 41.5, 35.0] and errors[:4] == [pytest.approx(0.5**0.5)] * 4
    assert errors[4] is None and texts[1] == "50.5 ± 0.7, n 2, best 50.5" and "baseline convnext_atto: 35.00" in title
    assert drawn[1][3] == ["dog_share 0.3", "dog_share 0.9"]  # no baseline in that recipe
    monkeypatch.undo()
    paths = write_results(collect([root]), tmp_path / "out")
    assert [p.name for p in paths["figures"]] == ["heatmap.png", "bars-1.png", "bars-2.png"]
    assert Image.open(paths["figures"][1]).size[0] > 600
    assert "- bars-1.png: R2: convnext_atto, input_size [3, 32, 32]" in paths["markdown"].read_text()


def test_a_gamma_range_is_collected_and_nothing_is_written_when_a_part_fails(two_recipes, tmp_path, monkeypatch):
    """Issue 15, point 11: dog_gamma as a list in args.yaml (was: unhashable type 'list', after results.csv/md were
    written); a failure in any part leaves no output at all."""
    result = CliRunner().invoke(main, ["sweep", "collect", str(two_recipes), "--out", str(tmp_path / "ok")])
    assert result.exit_code == 0, result.output
    assert "| a-grange-s0 | R1 | convnext_atto_dog | 0–0.5 | 0.5 | 0 | 0 |" in result.output

    def broken(*args, **kwargs):
        raise ValueError("the bar chart broke")

    monkeypatch.setattr("timm_dog.plots.bars_png", broken)
    result = CliRunner().invoke(main, ["sweep", "collect", str(two_recipes), "--out", str(tmp_path / "out")])
    assert isinstance(result.exception, ValueError) and "the bar chart broke" in str(result.exception)  # a bug
    assert not (tmp_path / "out").exists()


def test_resumed_run_and_val_interval_are_read_by_the_epoch_column(tmp_path):
    """Issue 15, points 13 and 9: a resumed run's second header is read (the last row of a repeated epoch counts),
    and epochs are counted by the epoch column (--val-interval 2 leaves epochs out)."""
    root = tmp_path / "runs"
    _train_py_run(
        root / "resumed",
        {**SMALL, "epochs": 4, "val_interval": 2, "model_kwargs": {"dog_gamma": 0.2}},
        {1: 30.0, 3: 20.0},
        resumed={3: 35.0},
    )
    _train_py_run(root / "unfinished", {**SMALL, "epochs": 5, "model_kwargs": {"dog_gamma": 0.3}}, {0: 10.0, 1: 12.0})
    results = collect([root])
    resumed, unfinished = results.runs
    assert resumed.top1 == {1: 30.0, 3: 35.0} and resumed.epochs == 4 and resumed.final == (3, 35.0)
    assert resumed.best == (3, 35.0)
    assert (root / "resumed" / "summary.csv").read_text().count("epoch,") == 2
    paths = write_results(results, tmp_path / "out")
    table = paths["markdown"].read_text()
    assert "| resumed | R1 | convnext_atto_dog | 0.2 | 42 | 32 | model | 4 | 4 | 35.0 | 3 | 35.0 | 3 | False |" in table
    assert "unfinished: validated up to epoch 1 but args.yaml plans 5 epochs" in table


def test_collect_refuses_bad_dog_kwargs_in_args_yaml(tmp_path):
    _train_py_run(tmp_path / "runs" / "bad", {**SMALL, "model_kwargs": {"dog_share": 2.0}}, {0: 10.0})
    with pytest.raises(ValueError, match=r"bad/args.yaml: model_kwargs: share must be a number in \[0, 1\]"):
        collect([tmp_path / "runs"])


def test_collect_real_train_py_runs(real_runs, tmp_path):
    """Real train.py runs: EMA at 32 px (seeds 0-2 of DoG and native), 48 px without EMA, a run resumed with
    --val-interval 2: three recipes, each number the last eval_top1 of the run's own summary.csv."""
    names = ["dog-s0", "dog-s1", "native-s0", "native-s2", "dog-s0-48px", "native-s0-48px", "dog-s3-resumed"]
    results = collect([real_runs[name] for name in names])

    def last_top1(name):  # read here without timm-dog: the last data row of summary.csv
        rows = [line.split(",") for line in (real_runs[name] / "summary.csv").read_text().splitlines()]
        header = rows[0]
        return int(rows[-1][0]), float(rows[-1][header.index("eval_top1")])

    runs = {run.name: run for run in results.runs}
    for name in names:
        assert runs[name].final == last_top1(name)
    recipes = {run.name: next(r.tag for r in results.recipes if run in r.runs) for run in results.runs}
    assert recipes["dog-s0"] == recipes["dog-s1"] == recipes["native-s0"] == recipes["native-s2"]
    assert len({recipes["dog-s0"], recipes["dog-s0-48px"], recipes["dog-s3-resumed"]}) == 3
    assert recipes["dog-s0-48px"] == recipes["native-s0-48px"]
    assert runs["dog-s0"].ema and runs["dog-s0"].image_size == "32"
    assert not runs["dog-s0-48px"].ema and runs["dog-s0-48px"].image_size == "48"
    resumed = runs["dog-s3-resumed"]
    assert list(resumed.top1) == [1, 2] and resumed.epochs == 3
    dog = next(c for c in results.cells if c.model.endswith("_dog") and c.recipe.tag == recipes["dog-s0"])
    finals = [runs["dog-s0"].final[1], runs["dog-s1"].final[1]]
    assert dog.n == 2 and dog.stats("final") == (
        pytest.approx(statistics.mean(finals)),
        pytest.approx(statistics.stdev(finals)),
    )
    paths = write_results(results, tmp_path)
    assert len(paths["figures"]) == 3
    table = paths["markdown"].read_text()
    assert f"| dog-s3-resumed | R3 | {resumed.model} | 3 | 3 | 32 | model | 3 | 3 |" in table


def test_img_size_and_the_same_input_size_are_one_recipe(two_recipes):
    """--img-size 32 and --input-size 3 32 32 are one data config for train.py (timm's resolve_data_config), so one
    recipe and cell: the baseline's third seed joins its two others."""
    a = {**SMALL, "img_size": None, "input_size": [3, 32, 32], "model_ema": True, "model_ema_decay": 0.9}
    _train_py_run(
        two_recipes / "a-native-s2",
        {**a, "model": "convnext_atto", "seed": 2, "model_kwargs": {}},
        {0: 20.0, 1: 30.0, 2: 35.0},
    )
    results = collect([two_recipes])
    assert len(results.recipes) == 2
    native = next(c for c in results.cells if c.recipe.tag == "R1" and c.model == "convnext_atto")
    assert native.n == 3 and native.stats("final")[0] == pytest.approx(33.0)


def test_settings_without_effect_do_not_split_recipes(tmp_path):
    """Issue 23, point 9: without EMA, model_ema_decay has no effect; without mixup or cutmix, mixup_prob none: runs
    that differ only in those are one recipe, one cell. With EMA on, the decay splits them."""
    root = tmp_path / "runs"
    for name, extra in (
        ("a", {}),
        ("b", {"model_ema_decay": 0.5, "mixup_prob": 0.2}),
        ("c", {"model_ema": True, "model_ema_decay": 0.5}),
        ("d", {"model_ema": True, "model_ema_decay": 0.9}),
    ):
        _train_py_run(
            root / name,
            {**SMALL, "seed": 0 if name != "b" else 1, "model_kwargs": {"dog_gamma": 0.1}, **extra},
            {0: 40.0},
        )
    results = collect([root])
    assert [(r.label, [run.folder.name for run in r.runs]) for r in results.recipes] == [
        ("convnext_atto, model_ema False", ["a", "b"]),
        ("convnext_atto, model_ema True, model_ema_decay 0.5", ["c"]),
        ("convnext_atto, model_ema True, model_ema_decay 0.9", ["d"]),
    ]


def test_cells_against_their_baseline_are_run_level(two_recipes, tmp_path):
    """A *_dog cell against its recipe's native cell: compare_runs on the runs' final top-1, paired by seed when both
    cells have the same seeds; a cell with one run gets no p-value."""
    from scipy import stats

    rows = {
        (r["recipe"], r["dog_gamma"]): r
        for r in csv.DictReader(write_results(collect([two_recipes]), tmp_path / "out")["cells"].open())
    }
    grange = rows["R1", "0–0.5"]  # finals 50, 51 against native 30, 34 (seeds 0, 1)
    assert float(grange["delta_vs_baseline"]) == 18.5
    assert float(grange["p_vs_baseline"]) == pytest.approx(stats.ttest_rel([50, 51], [30, 34]).pvalue, rel=1e-2)
    assert grange["test_vs_baseline"] == "paired t-test on the 2 per-seed differences"
    assert float(grange["p_improve_vs_baseline"]) == 1.0
    single = rows["R2", "0.1"]  # 20 against 25, one seed each
    assert (float(single["delta_vs_baseline"]), single["p_vs_baseline"], single["ci95_vs_baseline"]) == (-5.0, "", "")
    assert single["test_vs_baseline"] == "none: a cell has 1 run"
    assert rows["R1", ""]["delta_vs_baseline"] == ""  # the baseline itself
    assert "whether an init helps takes several runs per arm" in (tmp_path / "out" / "results.md").read_text()


def test_a_cell_refuses_two_runs_of_one_seed(tmp_path):
    """dog_trainable=false and =no are one arm (the twins' rule): two such runs of seed 0 are one run given twice
    for a cell, not n = 2 with a std of 0 (report refuses the same pair)."""
    root = tmp_path / "runs"
    for name, value in (("a", "false"), ("b", "no")):
        _train_py_run(root / name, {**SMALL, "seed": 0, "model_kwargs": {"dog_trainable": value}}, {0: 40.0})
    with pytest.raises(
        ValueError,
        match=r"runs/a and .*runs/b are both convnext_atto_dog .*dog_trainable=False with "
        r"seed 0 in one recipe",
    ):
        collect([root])
    _train_py_run(root / "c", {**SMALL, "seed": 1, "model_kwargs": {"dog_trainable": False}}, {0: 41.0})
    (root / "b" / "summary.csv").unlink()
    (cell,) = collect([root]).cells
    assert cell.n == 2
