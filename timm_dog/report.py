"""`timm-dog report`: DoG runs against their native-init baselines from train.py output folders (the paper's Table 1).

Each pair's checkpoints are evaluated on the same validation images; the report gives top-1, top-5, Δ top-1, a
paired bootstrap 95 % interval of Δ, McNemar's exact p, training curves and kernel survival (centre-surround
fraction and DoG fit of the trained depthwise kernels, and of the DoG run's kernels at initialization).
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .models import base_of

RUN_FILES = "args.yaml, summary.csv and model_best.pth.tar or last.pth.tar"
CURVE_COLUMNS = ("epoch", "train_loss", "eval_top1")
BOOTSTRAP = {"resamples": 10_000, "seed": 0, "level": 0.95}
PER_RUN_ARGS = ("model", "model_kwargs", "seed", "output", "experiment")  # expected to differ within a pair


class ReportError(ValueError):
    """Input that cannot give a fair comparison; the message says what is wrong."""


@dataclass(eq=False)
class Run:
    """One train.py output folder (hashed by identity)."""

    folder: Path
    args: dict
    curves: dict  # summary.csv: CURVE_COLUMNS -> one float per epoch
    checkpoint: Path

    @property
    def model(self) -> str:
        return self.args["model"]

    @property
    def epochs(self) -> int:
        return len(self.curves["epoch"])

    @property
    def label(self) -> str:
        return f"{self.model} seed {self.args.get('seed')} ({self.folder.name})"


@dataclass
class Group:
    """A *_dog model and its base, with their runs paired one to one (seed with seed)."""

    dog_model: str
    native_model: str
    pairs: list = field(default_factory=list)  # [(dog Run, native Run)]


def read_run(folder) -> Run:
    """A train.py output folder: args.yaml, summary.csv (per-epoch train_loss, eval_top1) and its best checkpoint."""
    from .sources import read_train_args

    folder = Path(folder)
    missing = [name for name in ("args.yaml", "summary.csv") if not (folder / name).is_file()]
    checkpoint = next((folder / n for n in ("model_best.pth.tar", "last.pth.tar") if (folder / n).is_file()), None)
    if checkpoint is None:
        missing.append("model_best.pth.tar or last.pth.tar")
    if missing:
        raise ReportError(f"{folder} is not a train.py output folder: no {', '.join(missing)} "
                          f"(train.py writes {RUN_FILES})")
    try:
        args = read_train_args(folder / "args.yaml")
    except ValueError as error:
        raise ReportError(str(error)) from None
    with open(folder / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or any(column not in rows[0] for column in CURVE_COLUMNS):
        raise ReportError(f"{folder / 'summary.csv'} lacks per-epoch {', '.join(CURVE_COLUMNS)} columns "
                          "(train.py writes them when it validates each epoch)")
    try:  # a resumed run appends epochs again: the last row of each epoch counts
        by_epoch = {int(float(row["epoch"])): {c: float(row[c]) for c in CURVE_COLUMNS} for row in rows}
    except (TypeError, ValueError):
        raise ReportError(f"{folder / 'summary.csv'} has a non-numeric {'/'.join(CURVE_COLUMNS)} value") from None
    curves = {c: [by_epoch[e][c] for e in sorted(by_epoch)] for c in CURVE_COLUMNS}
    return Run(folder, args, curves, checkpoint)


def group_runs(runs: list, explicit: list) -> list:
    """Pair each ``*_dog`` run with a run of its base model; ``explicit`` [(dog Run, native Run)] are kept as given.

    The automatic pairs sort both arms by (seed, folder) and need the same number of runs per arm.
    """
    groups = {}

    def group(dog: Run, native: Run) -> Group:
        if not dog.model.endswith("_dog"):
            raise ReportError(f"{dog.folder} trains {dog.model}, not a *_dog model: give DOG_DIR:BASE_DIR")
        if native.model != base_of(dog.model):
            raise ReportError(f"architectures differ: {dog.folder} trains {dog.model} (architecture "
                              f"{base_of(dog.model)}) but {native.folder} trains {native.model}")
        return groups.setdefault(dog.model, Group(dog.model, native.model))

    for dog, native in explicit:
        group(dog, native).pairs.append((dog, native))
    arms = {}
    for run in runs:
        arms.setdefault(run.model, []).append(run)
    for model in sorted(arms):
        if model.endswith("_dog"):
            continue
        if model + "_dog" not in arms:
            raise ReportError(f"missing pair: {model} ({', '.join(str(r.folder) for r in arms[model])}) has no "
                              f"{model}_dog run to compare with")
    for model in sorted(m for m in arms if m.endswith("_dog")):
        dogs, natives = (sorted(arms.get(m, []), key=lambda r: (str(r.args.get("seed")), str(r.folder)))
                         for m in (model, base_of(model)))
        if not natives:
            raise ReportError(f"missing pair: {model} ({', '.join(str(r.folder) for r in dogs)}) has no "
                              f"{base_of(model)} run to compare with")
        if len(dogs) != len(natives):
            raise ReportError(f"{model} has {len(dogs)} runs and {base_of(model)} has {len(natives)}: give the same "
                              "number of seeds per arm, or pair runs with --pair DOG_DIR:BASE_DIR")
        for dog, native in zip(dogs, natives):
            group(dog, native).pairs.append((dog, native))
    if not groups:
        raise ReportError("no runs to compare: give train.py output folders or --pair DOG_DIR:BASE_DIR")
    return list(groups.values())


def check_unique(runs: list) -> None:
    seen = set()
    for run in runs:
        key = run.folder.resolve()
        if key in seen:
            raise ReportError(f"{run.folder} is given twice: each run may be in one pair only")
        seen.add(key)


def paired_bootstrap(dog: np.ndarray, native: np.ndarray, resamples: int = BOOTSTRAP["resamples"],
                     seed: int = BOOTSTRAP["seed"], level: float = BOOTSTRAP["level"]) -> list:
    """Percentile interval (points) of Δ top-1 = dog − native when the validation images are resampled with
    replacement; ``dog`` and ``native`` are right/wrong [pairs, images], every image keeping all its pairs.

    The per-image Δ takes few distinct values, so each resample draws how many images of each value it gets
    (a multinomial): the same distribution as drawing image indices, without an [resamples, images] array.
    """
    per_image = (np.asarray(dog, dtype=float) - np.asarray(native, dtype=float)).reshape(-1, dog.shape[-1]).mean(0)
    values, counts = np.unique(per_image, return_counts=True)
    draws = np.random.default_rng(seed).multinomial(len(per_image), counts / len(per_image), size=resamples)
    deltas = 100.0 * (draws @ values) / len(per_image)
    tail = 50.0 * (1.0 - level)
    return [float(v) for v in np.percentile(deltas, [tail, 100.0 - tail])]


def recipe_differences(pairs: list) -> list:
    """train.py arguments that differ between paired runs, besides model, DoG kwargs, seed and output folder."""
    return sorted({key for dog, native in pairs for key in set(dog.args) | set(native.args)
                   if key not in PER_RUN_ARGS and dog.args.get(key) != native.args.get(key)})


def _mean_std(values: list) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
            "n": len(values)}


def _kernels(model) -> dict:
    from .analysis import analyze_model

    result = analyze_model(model)
    return {k: result[k] for k in ("kernels", "centre_surround_fraction", "dog_fit_above", "fit_threshold")}


def init_kernels(run: Run, num_classes: int):
    """Kernel statistics of the DoG run at initialization, re-created from its model_kwargs; a string saying why
    not when they do not fix ``dog_seed``. Kernels outside ``dog_share`` are redrawn under train.py's seed."""
    import timm
    import torch

    kwargs = dict(run.args.get("model_kwargs") or {})
    if "dog_seed" not in kwargs:
        return "init not reproducible: no dog_seed"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(run.args.get("seed") or 0))
        return _kernels(timm.create_model(run.model, num_classes=num_classes, **kwargs))


def _load(run: Run, use_ema: bool):
    """(model, sources.Weights) of a run's checkpoint."""
    from .sources import load_checkpoint

    try:
        model, _, weights = load_checkpoint(run.model, run.checkpoint, use_ema, args=run.args,
                                            args_name=str(run.folder / "args.yaml"))
        return model, weights
    except ValueError as error:
        raise ReportError(f"{run.folder}: {error}") from None


def build_report(groups: list, data_dir, use_ema: bool = False, batch_size: int = 64, workers: int = 0,
                 progress: bool = True, device="cpu", amp=None) -> dict:
    """Evaluate every pair on ``data_dir`` (an ImageFolder) and compute the numbers of report.json."""
    from .evaluate import evaluate, mcnemar, open_dataset
    from .runtime import model_classifier

    dataset, info = open_dataset(str(data_dir))
    classes = sorted(dataset.reader.class_to_idx, key=dataset.reader.class_to_idx.get)
    models = {}
    for g in groups:  # every check before the evaluations
        for dog, native in g.pairs:
            pair = {run: _load(run, use_ema) for run in (dog, native)}
            if pair[dog][0].num_classes != pair[native][0].num_classes:
                raise ReportError(f"different class sets: {dog.folder} has {pair[dog][0].num_classes} classes and "
                                  f"{native.folder} {pair[native][0].num_classes}; a paired comparison needs the same")
            models.update(pair)
    for run, (model, _) in models.items():
        if model.num_classes != len(classes):
            raise ReportError(f"{run.folder} has {model.num_classes} classes but --data-dir {data_dir} has "
                              f"{len(classes)} class folders: evaluate on the validation set of its class set")
    report = {"data": {"data_dir": str(data_dir), "images": len(dataset), "classes": len(classes)},
              "weights": "EMA (state_dict_ema)" if use_ema else "state_dict", "bootstrap": BOOTSTRAP, "pairs": []}
    for g in groups:
        arms = {"dog": [], "native": []}
        correct = {"dog": [], "native": []}
        kernels = {"dog": [], "native": [], "dog_init": []}
        for pair in g.pairs:
            for arm, run in zip(("dog", "native"), pair):
                model, weights = models[run]
                classifier = model_classifier(model, run.model, weights, device, amp)
                result = evaluate(classifier, dataset, batch_size, workers, progress=progress, dataset_info=info)
                correct[arm].append(result.correct)
                arms[arm].append({"folder": str(run.folder), "checkpoint": str(run.checkpoint),
                                  "weights_sha256": result.weights_sha256, "seed": run.args.get("seed"),
                                  "model_kwargs": run.args.get("model_kwargs") or {}, "epochs": run.epochs,
                                  "top1": result.top1, "top5": result.top5, "loss": result.loss,
                                  "curves": run.curves})
                kernels[arm].append({"folder": str(run.folder), **_kernels(model)})
            dog_run = pair[0]
            kernels["dog_init"].append({"folder": str(dog_run.folder),
                                        "init": init_kernels(dog_run, models[dog_run][0].num_classes)})
        dog, native = np.stack(correct["dog"]), np.stack(correct["native"])
        summary = {arm: {"runs": runs, **{k: _mean_std([r[k] for r in runs]) for k in ("top1", "top5")}}
                   for arm, runs in arms.items()}
        report["pairs"].append({
            "model": g.native_model, "dog_model": g.dog_model,
            "epochs": sorted({r["epochs"] for runs in arms.values() for r in runs}),
            **summary,
            "recipe_differences": recipe_differences(g.pairs),
            "delta_top1": summary["dog"]["top1"]["mean"] - summary["native"]["top1"]["mean"],
            "ci95": paired_bootstrap(dog, native),
            "mcnemar": {**mcnemar(dog.ravel(), native.ravel()), "pairs": int(dog.size)},
            "kernels": kernels,
            "curves": f"curves_{g.native_model}.png",
        })
    return report


def _top1(stats: dict) -> str:
    return f"{stats['mean']:.2f}" if stats["std"] is None else f"{stats['mean']:.2f} ± {stats['std']:.2f}"


def _kernel_row(label: str, k) -> str:
    if isinstance(k, str):
        return f"| {label} | {k} | | |"
    return f"| {label} | {k['kernels']:,} | {k['centre_surround_fraction']:.3f} | {k['dog_fit_above']:.3f} |"


TABLE_HEADER = "| model | native top-1 | DoG top-1 | Δ | 95 % CI | p | epochs |\n|---|---|---|---|---|---|---|"


def table_row(pair: dict) -> str:
    """One row of Table 1's shape (report.md and the model card)."""
    lo, hi = pair["ci95"]
    return (f"| {pair['model']} | {_top1(pair['native']['top1'])} | {_top1(pair['dog']['top1'])} | "
            f"{pair['delta_top1']:+.2f} | [{lo:+.2f}, {hi:+.2f}] | {pair['mcnemar']['p_value']:.3g} | "
            f"{'/'.join(map(str, pair['epochs']))} |")


def legend(bootstrap: dict) -> str:
    return ("Top-1 in %, mean ± std over seeds when an arm has several runs. Δ: DoG minus native top-1 (points). "
            f"95 % CI: paired bootstrap over the validation images ({bootstrap['resamples']:,} resamples, seed "
            f"{bootstrap['seed']}, percentile). p: McNemar's exact test on the pooled paired predictions "
            "(images × seed pairs).")


def markdown(report: dict) -> str:
    """report.md: Table 1's shape, then per pair its runs, the test, the curves and kernel survival."""
    lines = [
        "# DoG vs native init", "",
        f"Validation: `{report['data']['data_dir']}` ({report['data']['images']:,} images, "
        f"{report['data']['classes']} classes); weights: {report['weights']} of each run's best checkpoint.", "",
        TABLE_HEADER,
    ]
    lines += [table_row(p) for p in report["pairs"]] + ["", legend(report["bootstrap"])]
    for p in report["pairs"]:
        m = p["mcnemar"]
        lines += ["", f"## {p['dog_model']} vs {p['model']}", "",
                  "| arm | run | seed | epochs | top-1 | top-5 | loss |", "|---|---|---|---|---|---|---|"]
        for arm, name in (("dog", "DoG"), ("native", "native")):
            lines += [f"| {name} | `{r['folder']}` | {r['seed']} | {r['epochs']} | {r['top1']:.2f} | {r['top5']:.2f} | "
                      f"{r['loss']:.4f} |" for r in p[arm]["runs"]]
        lines += ["", f"McNemar on {m['pairs']:,} paired predictions: {m['only_a_correct']} right only with DoG init, "
                  f"{m['only_b_correct']} only with native init; p = {m['p_value']:.3g}.", "",
                  "train.py settings that differ between paired runs (besides model, DoG kwargs, seed, output): "
                  f"{', '.join(p['recipe_differences']) or 'none'}.", "",
                  f"![training curves]({p['curves']})", "", "### Kernel survival", "",
                  "| depthwise kernels of | kernels | centre-surround fraction | DoG fit > "
                  f"{p['kernels']['dog'][0]['fit_threshold']:g} |", "|---|---|---|---|"]
        for init, trained in zip(p["kernels"]["dog_init"], p["kernels"]["dog"]):
            lines.append(_kernel_row(f"DoG `{init['folder']}` at init", init["init"]))
            lines.append(_kernel_row(f"DoG `{trained['folder']}` trained", trained))
        lines += [_kernel_row(f"native `{k['folder']}` trained", k) for k in p["kernels"]["native"]]
    return "\n".join(lines) + "\n"


def write_report(report: dict, groups: list, out: Path) -> list:
    """One curve figure per pair, then report.json and report.md, in ``out``; each written through a partial file."""
    from .outputs import writing
    from .plots import plot_curves

    out = Path(out)
    figures = []
    for g, p in zip(groups, report["pairs"]):
        runs = [(run.label, run.curves, arm == 0) for pair in g.pairs for arm, run in enumerate(pair)]
        figures.append(plot_curves(runs, out / p["curves"], title=f"{g.dog_model} vs {g.native_model}"))
    with writing(out / "report.json", out / "report.md") as (json_file, markdown_file):
        json_file.write_text(json.dumps(report, indent=2))
        markdown_file.write_text(markdown(report))
    return figures + [out / "report.json", out / "report.md"]


def card_section(report_json, weights_sha256: str, checkpoint, model_name: str, use_ema: bool = False) -> dict:
    """The pair of a report.json whose DoG runs evaluated the tensors with ``weights_sha256`` (those published,
    from ``checkpoint``), for the model card; the report must have evaluated the same weights (EMA or not)."""
    try:
        report = json.loads(Path(report_json).read_text())
        pairs = report["pairs"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ReportError(f"cannot read report {report_json}: {error} (write it with `timm-dog report`)") from None
    weights = "EMA (state_dict_ema)" if use_ema else "state_dict"
    if report.get("weights") != weights:
        flag, remake = ("drop --ema", "remake the report with --ema") if use_ema else \
            ("add --ema", "remake the report without --ema")
        raise ReportError(f"report {report_json} evaluated the {report.get('weights')} weights but {weights} would be "
                          f"published: {flag} to publish the weights it evaluated, or {remake}")
    sha = weights_sha256
    for pair in pairs:
        if pair.get("dog_model") == model_name and any(r.get("weights_sha256") == sha for r in pair["dog"]["runs"]):
            figure = Path(report_json).parent / pair["curves"]
            return {"table": f"{TABLE_HEADER}\n{table_row(pair)}", "legend": legend(report["bootstrap"]),
                    "pair": pair, "data": report["data"], "figure": figure if figure.is_file() else None}
    raise ReportError(f"report {report_json} has no {model_name} run with this checkpoint ({checkpoint}): "
                      "make the report from the run folder that holds it")
