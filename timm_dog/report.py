"""`timm-dog report`: DoG runs against their native-init baselines from train.py output folders (the paper's Table 1),
with every arm that shares a base model (DoG, DoG frozen, control patterns …).

Rules (docs/report.md): runs are read with train.py's defaults filled in; runs of one base model whose train.py
settings differ in anything but the seed, the output folder and the bookkeeping keys of :data:`BOOKKEEPING` (and the
model name and ``dog_*`` kwargs, which make the arms) form separate rows. Inside a row the runs are paired by seed
when every arm has the same seeds, else compared unpaired; no run of a row is left out. Each row evaluates the runs'
checkpoints (model_best, else last) on the same images and gives per arm against native top-1, top-5, Δ top-1 and
its run-level interval, p-value and P(improve) (:mod:`timm_dog.stats`), McNemar per seed pair as a detail about
those two networks; with more than one DoG arm, a pairwise table between all arms with Holm's correction; with two
or more base models, a summary over them. Kernel survival: centre-surround fraction and DoG fit of the trained
depthwise kernels (fused, as they run, for re-parameterizable models) and of each DoG run's kernels at init.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import timm
import torch

from .analysis import analyze_model
from .errors import TimmDogError
from .evaluate import evaluate, mcnemar, open_dataset
from .models import base_of
from .outputs import writing
from .plots import plot_curves
from .runtime import model_classifier
from .stats import combine, compare_runs, runs_needed
from .trainpy import runs as trainpy_runs
from .trainpy.args import train_model_args
from .trainpy.checkpoints import load_checkpoint
from .trainpy.data import check_not_training_images, train_py_folder, training_data
from .trainpy.runs import (
    BOOKKEEPING,
    CURVE_COLUMNS,
    NATIVE,
    Run,
    differences,
    settings,
    settings_differences,
    text,
    varying,
)

BOOTSTRAP = {"resamples": 10_000, "seed": 0, "level": 0.95}
RUN_STD = 1.0  # points: the run std runs_needed assumes without --run-std (a conservative guess)


class ReportError(TimmDogError):
    """Input that cannot give a fair comparison; the message says what is wrong."""


def read_run(folder) -> Run:
    """A train.py output folder (:func:`trainpy.runs.read_run`) whose summary.csv has the report's curves."""
    try:
        run = trainpy_runs.read_run(folder)
    except TimmDogError as error:
        raise ReportError(str(error)) from None
    lacking = [f"{c} (epoch {e})" for e, row in run.summary.items() for c in CURVE_COLUMNS if c not in row]
    if lacking:
        raise ReportError(
            f"{run.folder / 'summary.csv'} lacks {lacking[0]}: the report's curves need "
            f"{', '.join(CURVE_COLUMNS)} per validated epoch (train.py writes them when it validates)"
        )
    return run


@dataclass
class Row:
    """Runs of one base model with the same settings: arms {name: [Run] by seed}; paired by seed when every arm has
    the same seeds."""

    model: str  # the base (native) model
    dog_model: str
    label: str  # what sets this row apart from the other rows of the model ("" when it is the only one)
    seeds: list  # every seed of the row
    arms: dict = field(default_factory=dict)
    paired: bool = True
    pairing: str = ""  # which comparison, and why

    @property
    def runs(self) -> list:
        return [run for runs in self.arms.values() for run in runs]


def check_unique(runs: list) -> None:
    seen = set()
    for run in runs:
        key = run.folder.resolve()
        if key in seen:
            raise ReportError(f"{run.folder} is given twice: each run may be in the report once")
        seen.add(key)


def group_runs(runs: list) -> tuple:
    """(rows, unpaired): runs split by base model and settings into rows of arms.

    A row needs the native arm and at least one DoG arm, and keeps every run; its runs are paired by seed when every
    arm has the same seeds. Each run left out (a row without a partner arm) is in ``unpaired`` as {"folder", "model",
    "arm", "seed", "why"}. Two runs of one arm, row and seed are refused."""
    check_unique(runs)
    rows, unpaired = [], []
    by_model = {}
    for run in runs:
        by_model.setdefault(base_of(run.model), []).append(run)
    for model in sorted(by_model):
        groups = []  # [(settings, [Run])]
        for run in by_model[model]:
            s = settings(run)
            group = next((g for g in groups if g[0] == s), None)
            if group is None:
                groups.append((s, [run]))
            else:
                group[1].append(run)
        differ = varying([g[0] for g in groups])
        for s, members in groups:
            # a setting that only some groups have has no effect in the others: the setting that turns it on differs
            label = ", ".join(f"{k} {text(s[k])}" for k in differ if k in s)
            row, left = _row(model, label, members, [g for g in groups if g[0] is not s], s)
            unpaired += left
            if row is not None:
                rows.append(row)
    if not rows:
        listing = "; ".join(f"{u['folder']}: {u['why']}" for u in unpaired)
        raise ReportError(
            f"no runs to compare: no *_dog run has a native run with the same settings ({listing or 'no runs given'})"
        )
    return rows, unpaired


def _row(model: str, label: str, members: list, others: list, own: dict) -> tuple:
    arms = {}
    for run in sorted(members, key=lambda r: (r.arm != NATIVE, r.arm, str(r.seed), str(r.folder))):
        arm = arms.setdefault(run.arm, {})
        if run.seed in arm:
            raise ReportError(
                f"{arm[run.seed].folder} and {run.folder} are both arm {run.arm!r} of {model} with seed "
                f"{run.seed} and the same settings: give one of them"
            )
        arm[run.seed] = run

    def leave(run, why):
        return {"folder": str(run.folder), "model": run.model, "arm": run.arm, "seed": run.seed, "why": why}

    if NATIVE not in arms or len(arms) < 2:
        missing = f"no {model} (native) run" if NATIVE not in arms else f"no {model}_dog run"
        why = f"{missing} with the same settings{f' ({label})' if label else ''}"

        def partner(run) -> bool:  # a run of the arm this group lacks
            return (run.arm == NATIVE) == (NATIVE not in arms)

        candidates = [g for g in others if any(map(partner, g[1]))] or others
        if candidates:
            nearest = min(candidates, key=lambda g: len(differences(own, g[0])))
            named = next(filter(partner, nearest[1]), nearest[1][0])
            why += f"; the nearest other runs of {model} ({named.folder}) differ in " + ", ".join(
                f"{k} ({text(own.get(k))} vs {text(nearest[0].get(k))})" for k in differences(own, nearest[0])
            )
        return None, [leave(run, why) for run in members]
    seeds = sorted(set().union(*arms.values()), key=str)
    same = all(set(arm) == set(arms[NATIVE]) for arm in arms.values())
    if same:
        pairing = f"paired by seed: every arm has seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
    else:
        pairing = (
            "unpaired: the arms' seeds differ ("
            + "; ".join(f"{a} {', '.join(map(str, sorted(arm, key=str)))}" for a, arm in arms.items())
            + "), so every run of an arm is compared with every run of the other"
        )
    by_seed = {a: [arm[s] for s in sorted(arm, key=str)] for a, arm in arms.items()}
    row = Row(model, model + "_dog", label, seeds, by_seed, same, pairing)
    return row, []


def paired_bootstrap(
    dog: np.ndarray,
    native: np.ndarray,
    resamples: int = BOOTSTRAP["resamples"],
    seed: int = BOOTSTRAP["seed"],
    level: float = BOOTSTRAP["level"],
) -> list:
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


def holm(p_values: list) -> list:
    """Holm's step-down adjusted p-values, in the order given: the i-th smallest p times (m − i + 1), made
    monotone, capped at 1."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _mean_std(values: list) -> dict:
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
        "n": len(values),
    }


def _kernels(model, fused: bool) -> dict:
    result = analyze_model(model, fused=fused)
    return {
        k: result[k]
        for k in (
            "kernels",
            "centre_surround_fraction",
            "dog_fit_above",
            "surround_antagonism",
            "fit_threshold",
            "fused",
        )
    }


# train.py arguments under which a run's first weights are not what create_model draws after train.py's seed
NOT_DRAWN_INIT = {
    "pretrained": "it started from pretrained weights (--pretrained)",
    "initial_checkpoint": "it started from --initial-checkpoint {}",
    "resume": "it resumed from {}: its init is that of the run that wrote that checkpoint",
}


def init_model(run: Run, num_classes: int):
    """A run's model at initialization, re-created as train.py (its rank 0, whose weights DDP gives every rank)
    created it: ``torch.manual_seed(seed)``, then ``create_model`` with the run's arguments (a twin without
    ``dog_seed`` derives its kernels' seed from that state). A string saying why not where the run's first weights
    were not drawn that way (``NOT_DRAWN_INIT``) or the model cannot be created."""
    for key, why in NOT_DRAWN_INIT.items():
        if run.args.get(key):
            return "init not re-created: " + why.format(run.args[key])
    if not isinstance(run.seed, int):
        return f"init not re-created: the run's args hold no integer seed ({run.seed!r})"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(run.seed)  # train.py: utils.random_seed(args.seed, args.rank) just before create_model
        try:
            return timm.create_model(run.model, **{"num_classes": num_classes, **train_model_args(run.args)})
        except (TypeError, ValueError) as error:
            return f"init not re-created: {error}"


def init_kernels(run: Run, num_classes: int, fused: bool):
    """Kernel statistics of a run's model at init (:func:`init_model`), with "re_created" saying from which seeds;
    the string of :func:`init_model` where it cannot be re-created."""
    model = init_model(run, num_classes)
    if isinstance(model, str):
        return model
    kwargs = run.args.get("model_kwargs") or {}
    how = f"train.py's seed {run.seed}" + (f" and dog_seed {kwargs['dog_seed']}" if "dog_seed" in kwargs else "")
    return {**_kernels(model, fused), "re_created": f"from {how}"}


def _load(run: Run, use_ema: bool):
    """(model, trainpy.checkpoints.Weights) of a run's checkpoint."""
    try:
        model, _, weights = load_checkpoint(
            run.model, run.checkpoint, use_ema, args=run.args, args_name=str(run.folder / "args.yaml")
        )
        return model, weights
    except ValueError as error:
        raise ReportError(f"{run.folder}: {error}") from None


def run_notes(run: Run, use_ema: bool) -> list:
    """What a reader of a run's row and curves must know about its weights (EMA or not)."""
    notes = []
    if run.summary_ema and not use_ema:
        notes.append(
            f"{run.folder} trained with EMA (model_ema_decay {run.args.get('model_ema_decay')}): train.py "
            "validated its EMA weights (its summary.csv and curves) and picked model_best by them, while this "
            "report evaluates its state_dict; --ema evaluates the EMA weights"
        )
    if use_ema and run.args.get("model_ema") and not run.summary_ema:  # the EMA kept on the CPU
        notes.append(
            f"{run.folder} kept its EMA on the CPU (model_ema_force_cpu): train.py validated the model's own "
            "weights (its summary.csv and curves), while this report evaluates the EMA weights"
        )
    return notes


def data_notes(run: Run, folder, top1: float, train_py_top1) -> list:
    """What a reader must know when the report's images or numbers are not train.py's own validation: another folder
    than the one train.py validated the run on, or (same folder, same weights) a top-1 more than 0.1 points off."""
    trained_on = training_data(run.args)
    val = train_py_folder(trained_on, trained_on["val_split"]) if trained_on else None
    if val is not None and val.resolve() != Path(folder).resolve():
        return [
            f"train.py validated {run.folder} on {val}, this report on {folder}: its train.py eval_top1 and "
            "curves are of other images than its top-1 here"
        ]
    if train_py_top1 is not None and abs(top1 - train_py_top1) > 0.1:
        return [
            f"{run.folder}: top-1 {top1:.2f} here but {train_py_top1:.2f} in train.py's own eval of the same "
            "weights: the preprocessing or precision differed (train.py's --amp, a distributed eval's padding, "
            "or a --data-dir that is not the folder train.py validated on)"
        ]
    return []


def _curve_file(row: Row, rows: list) -> str:
    same = [r for r in rows if r.model == row.model]
    return f"curves_{row.model}.png" if len(same) == 1 else f"curves_{row.model}_{same.index(row) + 1}.png"


def build_report(
    rows: list,
    unpaired: list,
    data_dir,
    use_ema: bool = False,
    batch_size: int = 64,
    workers: int = 0,
    progress: bool = True,
    device="cpu",
    amp=None,
    fused: bool = True,
    run_std: float | None = None,
) -> dict:
    """Evaluate every run of ``rows`` on ``data_dir`` (an ImageFolder) and compute the numbers of report.json.
    ``run_std`` (points): the spread of one run's top-1 that the runs needed are planned with where an arm has one
    run (default :data:`RUN_STD`)."""
    dataset, info = open_dataset(str(data_dir))
    for run in (run for row in rows for run in row.runs):
        try:
            check_not_training_images(info.get("folder"), training_data(run.args), run.folder)
        except TimmDogError as error:
            raise ReportError(str(error)) from None
    classes = sorted(dataset.reader.class_to_idx, key=dataset.reader.class_to_idx.get)
    models = {run: _load(run, use_ema) for row in rows for run in row.runs}  # every check before the evaluations
    for row in rows:  # a copied run folder is not another seed of its arm
        for runs in row.arms.values():
            seen = {}
            for run in runs:
                sha = models[run][1].sha256
                if sha in seen:
                    raise ReportError(
                        f"{run.folder} and {seen[sha].folder} hold the same weights (tensors "
                        f"{sha[:12]}…): a copy of a run is not another seed; give each run once"
                    )
                seen[sha] = run
    for row in rows:
        first, *others = row.runs
        for run in others:
            if models[run][0].num_classes != models[first][0].num_classes:
                raise ReportError(
                    f"different class sets: {first.folder} has {models[first][0].num_classes} classes "
                    f"and {run.folder} {models[run][0].num_classes}; a paired comparison needs the same"
                )
    for run, (model, _) in models.items():
        if model.num_classes != len(classes):
            raise ReportError(
                f"{run.folder} has {model.num_classes} classes but --data-dir {data_dir} has "
                f"{len(classes)} class folders: evaluate on the validation set of its class set"
            )
    records, correct, kernels = {}, {}, {}
    for run, (model, weights) in models.items():
        classifier = model_classifier(model, run.model, weights, device, amp)
        result = evaluate(classifier, dataset, batch_size, workers, progress=progress, dataset_info=info)
        correct[run] = result.correct
        same_weights = run.summary_ema == use_ema and weights.epoch in run.summary
        train_py_top1 = run.summary[weights.epoch]["eval_top1"] if same_weights else None
        records[run] = {
            "folder": str(run.folder),
            "checkpoint": str(run.checkpoint),
            "weights_sha256": result.weights_sha256,
            "ema": use_ema,
            "checkpoint_epoch": weights.epoch,
            "seed": run.seed,
            "arm": run.arm,
            "model_kwargs": run.args.get("model_kwargs") or {},
            "epochs": run.epochs,
            "top1": result.top1,
            "top5": result.top5,
            "loss": result.loss,
            "train_py_top1": train_py_top1,
            "curves_weights": "EMA" if run.summary_ema else "model",
            "curves": run.curves,
            "notes": run_notes(run, use_ema) + data_notes(run, info["folder"], result.top1, train_py_top1),
        }
        kernels[run] = {"folder": str(run.folder), **_kernels(model, fused)}
    weights_name = "EMA (state_dict_ema)" if use_ema else "state_dict"
    report = {
        "data": {"data_dir": str(data_dir), "images": len(dataset), "classes": len(classes)},
        "weights": weights_name,
        "ema": use_ema,
        "kernels_fused": fused,
        "bootstrap": BOOTSTRAP,
        "bookkeeping_keys": BOOKKEEPING,
        "unpaired": unpaired,
        "rows": [],
        "pairs": [],
    }
    plan_std = (
        (run_std, "--run-std")
        if run_std is not None
        else (RUN_STD, "the default: a conservative guess; --run-std gives your recipe's")
    )
    report["run_std_for_planning"] = {"points": plan_std[0], "from": plan_std[1]}
    for row in rows:
        curves = _curve_file(row, rows)
        arms = {
            name: {
                "runs": [records[r] for r in runs],
                **{k: _mean_std([records[r][k] for r in runs]) for k in ("top1", "top5")},
            }
            for name, runs in row.arms.items()
        }
        hits = {name: np.stack([correct[r] for r in runs]) for name, runs in row.arms.items()}
        for name, runs in row.arms.items():
            if name == NATIVE:
                continue
            both = runs + row.arms[NATIVE]
            comparison = compare_runs(hits[name], hits[NATIVE], paired=row.paired)
            report["pairs"].append(
                {
                    "model": row.model,
                    "dog_model": row.dog_model,
                    "arm": name,
                    "arm_kwargs": runs[0].arm_kwargs,
                    "settings": row.label,
                    "seeds": row.seeds,
                    "paired": row.paired,
                    "pairing": row.pairing,
                    "weights": weights_name,
                    "epochs": sorted({r.epochs for r in both}),
                    "checkpoint_epochs": sorted({records[r]["checkpoint_epoch"] for r in both}, key=str),
                    "dog": arms[name],
                    "native": arms[NATIVE],
                    "recipe_differences": settings_differences(both),
                    "delta_top1": comparison.delta,
                    "comparison": _record(comparison),
                    "runs_needed": _plan(comparison, *plan_std) if min(comparison.runs) < 2 else None,
                    "seed_pairs": _seed_pairs(row, hits[name], hits[NATIVE]) if row.paired else [],
                    "kernels": {
                        "dog": [kernels[r] for r in runs],
                        "native": [kernels[r] for r in row.arms[NATIVE]],
                        "dog_init": [
                            {"folder": str(r.folder), "init": init_kernels(r, models[r][0].num_classes, fused)}
                            for r in runs
                        ],
                    },
                    "notes": [n for r in both for n in records[r]["notes"]],
                    "curves": curves,
                }
            )
        pairwise = []
        for a, b in itertools.combinations(row.arms, 2):
            comparison = compare_runs(hits[a], hits[b], paired=row.paired)
            pairwise.append(
                {"a": a, "b": b, "delta_top1": comparison.delta, "comparison": _record(comparison), "p_holm": None}
            )
        tested = [e for e in pairwise if e["comparison"]["p_value"] is not None]
        for entry, adjusted in zip(tested, holm([e["comparison"]["p_value"] for e in tested])):
            entry["p_holm"] = adjusted
        report["rows"].append(
            {
                "model": row.model,
                "dog_model": row.dog_model,
                "settings": row.label,
                "seeds": row.seeds,
                "paired": row.paired,
                "pairing": row.pairing,
                "arms": list(row.arms),
                "curves": curves,
                "pairwise": pairwise if len(row.arms) > 2 else [],
            }
        )
    report["summary"] = model_summary(report["pairs"])
    return report


def _record(comparison) -> dict:
    """A RunComparison as report.json keeps it (its field names; tuples as lists)."""
    return json.loads(json.dumps(asdict(comparison)))


def run_std_of(report_json) -> tuple:
    """(std, how): the spread of one run's top-1 in an earlier report.json, pooled (root mean square) over its arms
    with two or more runs; a ReportError when it has none."""
    try:
        pairs = json.loads(Path(report_json).read_text())["pairs"]
        stds = {
            (p["model"], p["settings"], arm): std
            for p in pairs
            for arm, std in zip((p["arm"], NATIVE), p["comparison"]["run_std"])
            if std is not None
        }
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ReportError(
            f"cannot read the run std from {report_json}: {error} (a report.json of this version of `timm-dog report`)"
        ) from None
    if not stds:
        raise ReportError(f"{report_json} has no arm with 2 or more runs, so no run std: give --run-std in points")
    std = float(np.sqrt(np.mean(np.square(list(stds.values())))))
    return std, f"pooled over the {len(stds)} arm{'s' if len(stds) > 1 else ''} with 2+ runs in {report_json}"


def _seed_pairs(row: Row, dog: np.ndarray, native: np.ndarray) -> list:
    """Per seed pair, what these two networks do on these images (not a statement about the init): Δ, a bootstrap
    interval over the images and McNemar's exact test."""
    return [
        {
            "seed": seed,
            "delta_top1": 100.0 * float(dog[i].mean() - native[i].mean()),
            "ci95_images": paired_bootstrap(dog[i : i + 1], native[i : i + 1]),
            "mcnemar": mcnemar(dog[i], native[i]),
        }
        for i, seed in enumerate(row.seeds)
    ]


def _plan(comparison, run_std: float, source: str) -> dict:
    """Runs per arm that would detect the observed Δ (80 % power, α 0.05) with a run std of ``run_std`` points."""
    try:  # Δ is a difference of means: float noise of a true 0 is about 1e-14 points
        runs = runs_needed(comparison.delta, run_std) if abs(comparison.delta) > 1e-9 else None
    except ValueError:  # more runs than stats.MAX_RUNS
        runs = None
    return {"delta": comparison.delta, "run_std": run_std, "run_std_from": source, "runs_per_arm": runs}


def model_summary(pairs: list) -> dict | None:
    """With "dog" rows for two or more base models (the paper's Table 1 as a whole): in how many rows the init helped
    or hurt (run-level p after Holm over the rows), and the mean Δ over the rows with its interval
    (:func:`timm_dog.stats.combine`: each row a stratum). None with fewer models."""
    dog = [p for p in pairs if p["arm"] == "dog"]
    if len({p["model"] for p in dog}) < 2:
        return None
    labels = [p["model"] + (f" ({p['settings']})" if p["settings"] else "") for p in dog]
    comparisons = [p["comparison"] for p in dog]
    tested = [i for i, c in enumerate(comparisons) if c["p_value"] is not None]
    adjusted = dict(zip(tested, holm([comparisons[i]["p_value"] for i in tested])))
    verdicts = [
        None
        if i not in adjusted
        else "helped"
        if adjusted[i] < 0.05 and c["delta"] > 0
        else "hurt"
        if adjusted[i] < 0.05
        else "no difference shown"
        for i, c in enumerate(comparisons)
    ]
    combined = (
        combine([c["delta"] for c in comparisons], [c["se"] for c in comparisons], [c["df"] for c in comparisons])
        if len(tested) == len(dog)
        else None
    )
    return {
        "arm": "dog",
        "rows": labels,
        "deltas": [c["delta"] for c in comparisons],
        "p_holm": [adjusted.get(i) for i in range(len(dog))],
        "verdicts": verdicts,
        "helped": verdicts.count("helped"),
        "hurt": verdicts.count("hurt"),
        "tested": len(tested),
        "mean_delta": float(np.mean([c["delta"] for c in comparisons])),
        "ci95": None if combined is None else [combined["low"], combined["high"]],
        "df": None if combined is None else combined["df"],
        "method": "mean of the rows' Δ; its interval a t interval with the rows as strata: standard error "
        "sqrt(Σ se²) / rows from each row's run-level standard error, Welch-Satterthwaite degrees of "
        "freedom"
        if combined is not None
        else "no interval: a row with one run in an arm has no run-level standard error",
    }


def _top1(stats: dict) -> str:
    return f"{stats['mean']:.2f}" if stats["std"] is None else f"{stats['mean']:.2f} ± {stats['std']:.2f}"


def _kernel_row(label: str, k) -> str:
    if isinstance(k, str):
        return f"| {label} | {k} | | | |"
    antagonism = format(k["surround_antagonism"], ".3f") if "surround_antagonism" in k else "—"  # older reports
    return (
        f"| {label}{' (fused)' if k['fused'] else ''} | {k['kernels']:,} | {k['centre_surround_fraction']:.3f} | "
        f"{k['dog_fit_above']:.3f} | {antagonism} |"
    )


def kernel_table(pairs: list, folders: bool = True) -> list:
    """Kernel survival of the pairs of one row (report.md) or of one pair (the model card, ``folders=False``: runs
    named by their seeds, not by local paths): markdown lines."""

    def run(pair, side: str, i: int) -> str:
        return f"`{pair['kernels'][side][i]['folder']}`" if folders else f"seed {pair[side]['runs'][i]['seed']}"

    lines = [
        "| depthwise kernels of | kernels | centre-surround fraction | DoG fit > "
        f"{pairs[0]['kernels']['native'][0]['fit_threshold']:g} | surround antagonism |",
        "|---|---|---|---|---|",
    ]
    for p in pairs:
        for i, (init, trained) in enumerate(zip(p["kernels"]["dog_init"], p["kernels"]["dog"])):
            how = init["init"].get("re_created") if isinstance(init["init"], dict) else None
            lines.append(
                _kernel_row(
                    f"{p['arm']} {run(p, 'dog', i)} at init" + (f" (re-created {how})" if how else ""), init["init"]
                )
            )
            lines.append(_kernel_row(f"{p['arm']} {run(p, 'dog', i)} trained", trained))
    return lines + [
        _kernel_row(f"native {run(pairs[0], 'native', i)} trained", k)
        for i, k in enumerate(pairs[0]["kernels"]["native"])
    ]


KERNEL_LEGEND = (
    "Centre-surround fraction: kernels in k-means clusters whose mean kernel has a centre-surround "
    "contrast; DoG fit: kernels whose best |correlation| with a DoG exceeds the threshold. Both count a "
    "centred blob without a surround (the gaussian, impulse and box controls) as DoG-like. Surround "
    "antagonism: each kernel's opposite-sign surround mass relative to its centre-sign mass (capped at "
    "1), averaged: a DoG scores 1, the controls 0, and unstructured (random) kernels score high too, so "
    "it tells an antagonistic surround apart only beside the other two."
)


TABLE_HEADER = (
    "| model | arm | settings | runs (arm / native) | native top-1 | arm top-1 | Δ | 95 % CI | "
    "p (run-level) | P(improve) | weights | epochs (checkpoint epoch) |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def _p(comparison: dict) -> str:
    """A run-level p with its test, or why there is none."""
    if comparison["p_value"] is None:
        if min(comparison["runs"]) > 1:
            return "— (the runs do not vary)"
        return "— (1 run per arm)" if comparison["runs"] == [1, 1] else "— (an arm has 1 run)"
    return f"{comparison['p_value']:.3g} ({'paired t' if comparison['test'].startswith('paired') else 'Welch'})"


def _probability(value) -> str:
    """P(improve), or — where an arm has one run (one pair's 0 or 1 is no probability)."""
    return "—" if value is None else f"{value:.2f}"


def _interval(ci) -> str:
    return "—" if ci[0] is None else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


def table_row(pair: dict) -> str:
    """One row of Table 1's shape (report.md and the model card)."""
    c = pair["comparison"]
    weights = "EMA" if pair["weights"].startswith("EMA") else "state_dict"
    return (
        f"| {pair['model']} | {pair['arm']} | {pair['settings'] or 'as run'} | {c['runs'][0]} / {c['runs'][1]}"
        f"{', by seed' if pair['paired'] else ', unpaired'} | {_top1(pair['native']['top1'])} | "
        f"{_top1(pair['dog']['top1'])} | {pair['delta_top1']:+.2f} | {_interval(c['ci'])} | {_p(c)} | "
        f"{_probability(c['prob_improvement'])} | {weights} | {'/'.join(map(str, pair['epochs']))} "
        f"({'/'.join(map(str, pair['checkpoint_epochs']))}) |"
    )


def legend(bootstrap: dict) -> str:
    return (
        "The question: does the arm's init train better models than the native init, with this recipe? Its unit "
        "is the training run. Top-1 in %: mean ± std over the arm's runs (every run's top-1 is in its row's "
        "run table). Δ: the arm's mean top-1 minus native's (points). 95 % CI and p (run-level): they cover the "
        "variation between training runs (the spread of the runs' top-1) and over the validation images: a "
        "paired t-test on the per-seed differences when every arm of the row has the same seeds (by seed), else "
        "Welch's t-test on the runs' top-1 (unpaired), its t interval widened by the images' sampling variance "
        "(timm_dog.stats.compare_runs); p is not corrected for several arms (the pairwise table is, with Holm). "
        "With one run in an arm there is no p-value: the spread between runs is unknown, and the interval "
        "covers the validation images only. P(improve): the share of run pairs (seed pairs when by seed) in "
        "which the arm's run has the higher top-1, ties half: about these runs. Weights: the checkpoints' "
        "state_dict or EMA weights (state_dict_ema). Epochs: epochs trained (summary.csv's epoch column), and "
        "in brackets the epoch of the evaluated checkpoint (0-based, as train.py counts). Per seed pair, "
        "McNemar's exact test and a bootstrap interval over the images "
        f"({bootstrap['resamples']:,} resamples, seed {bootstrap['seed']}) are about those two networks on "
        "these images only."
    )


def markdown(report: dict) -> str:
    """report.md: Table 1's shape, unpaired runs, then per row its runs, notes, pairwise table, curves, kernels."""
    fused = (
        "fused as they run (timm's reparameterize_model on a copy; `--unfused` for the training branches)"
        if report["kernels_fused"]
        else "unfused (the training branches, `--unfused`)"
    )
    lines = [
        "# DoG vs native init",
        "",
        f"Validation: `{report['data']['data_dir']}` ({report['data']['images']:,} images, "
        f"{report['data']['classes']} classes); weights: {report['weights']} of each run's best checkpoint "
        "(model_best.pth.tar, else last.pth.tar).",
        "",
        TABLE_HEADER,
    ]
    lines += [table_row(p) for p in report["pairs"]] + [
        "",
        legend(report["bootstrap"]),
        "",
        "Rows: runs of a base model with the same train.py settings (train.py's defaults filled in), apart from "
        "the seed, the arm (model name, dog_* kwargs) and bookkeeping keys ("
        f"{', '.join(report['bookkeeping_keys'])}); runs paired by seed when every arm of the row has the same "
        "seeds, else compared unpaired. Rules: docs/report.md.",
    ]
    lines += [
        f"\n{p['arm']} vs native ({p['model']}{', ' + p['settings'] if p['settings'] else ''}): {_no_p(p)}"
        for p in report["pairs"]
        if p["runs_needed"]
    ]
    if report["summary"]:
        lines += ["", "## Across base models", "", summary_text(report["summary"])]
    if report["unpaired"]:
        lines += [
            "",
            "## Runs left out (no partner arm)",
            "",
            "| run | model | arm | seed | why |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| `{u['folder']}` | {u['model']} | {u['arm']} | {u['seed']} | {u['why']} |" for u in report["unpaired"]
        ]
    for row in report["rows"]:
        pairs = [p for p in report["pairs"] if p["model"] == row["model"] and p["settings"] == row["settings"]]
        title = f"{row['model']}: {', '.join(row['arms'])}" + (f" ({row['settings']})" if row["settings"] else "")
        lines += [
            "",
            f"## {title}",
            "",
            f"Seeds: {', '.join(map(str, row['seeds']))}; {row['pairing']}.",
            "",
            "| arm | run | seed | weights | checkpoint epoch | epochs | top-1 | train.py eval_top1, same weights | "
            "top-5 | loss | curves: train.py's eval of |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        runs = pairs[0]["native"]["runs"] + [r for p in pairs for r in p["dog"]["runs"]]
        lines += [
            f"| {r['arm']} | `{r['folder']}` | {r['seed']} | {'EMA' if r['ema'] else 'state_dict'} | "
            f"{r['checkpoint_epoch']} | {r['epochs']} | {r['top1']:.2f} | "
            f"{'—' if r['train_py_top1'] is None else format(r['train_py_top1'], '.2f')} | {r['top5']:.2f} | "
            f"{r['loss']:.4f} | {r['curves_weights']} weights |"
            for r in runs
        ]
        notes = list(dict.fromkeys(n for r in runs for n in r["notes"]))
        if notes:
            lines += ["", "Notes:", ""] + [f"- {n}." for n in notes]
        for p in pairs:
            c = p["comparison"]
            lines += [
                "",
                f"{p['arm']} vs native: {c['note']}."
                + (
                    f" With this spread, {c['runs'][0]} and {c['runs'][1]} runs detect |Δ| ≥ "
                    f"{c['min_detectable_delta']:.2f} points at 80 % power."
                    if c["min_detectable_delta"] is not None
                    else ""
                )
                + " train.py settings that differ between its runs (besides the seed, arm and bookkeeping): "
                f"{', '.join(p['recipe_differences']) or 'none'}.",
            ]
            if p["seed_pairs"]:
                lines += [
                    "",
                    f"{p['arm']} vs native, these two networks on these images (per seed pair; not about "
                    "the init): "
                    + "; ".join(
                        f"seed {s['seed']}: Δ {s['delta_top1']:+.2f} {_interval(s['ci95_images'])}, "
                        f"{s['mcnemar']['only_a_correct']} right only with {p['arm']}, "
                        f"{s['mcnemar']['only_b_correct']} only with native, McNemar p = "
                        f"{s['mcnemar']['p_value']:.3g}"
                        for s in p["seed_pairs"]
                    )
                    + ".",
                ]
        if row["pairwise"]:
            lines += [
                "",
                "Pairwise between arms (Δ = a − b; p: run-level as above, and Holm-adjusted over the "
                f"{sum(e['p_holm'] is not None for e in row['pairwise'])} tests of this table):",
                "",
                "| a | b | Δ | 95 % CI | p | p (Holm) | P(a beats b) |",
                "|---|---|---|---|---|---|---|",
            ]
            lines += [
                f"| {e['a']} | {e['b']} | {e['delta_top1']:+.2f} | {_interval(e['comparison']['ci'])} | "
                f"{_p(e['comparison'])} | {'—' if e['p_holm'] is None else format(e['p_holm'], '.3g')} | "
                f"{_probability(e['comparison']['prob_improvement'])} |"
                for e in row["pairwise"]
            ]
        lines += [
            "",
            f"![training curves]({row['curves']})",
            "",
            "Curves: train.py's summary.csv per validated epoch (its eval of the EMA weights for runs trained "
            "with EMA on the training device, else of the model's weights).",
            "",
            "### Kernel survival",
            "",
            f"Depthwise kernels of re-parameterizable models: {fused}.",
            "",
        ]
        lines += kernel_table(pairs) + ["", KERNEL_LEGEND]
    return "\n".join(lines) + "\n"


def _no_p(pair: dict) -> str:
    """Why an arm has no p-value, and the runs per arm that would give one a fair chance."""
    plan, c = pair["runs_needed"], pair["comparison"]
    why = (
        ("one run per arm" if c["runs"] == [1, 1] else "one run in an arm")
        + " gives no p-value: the spread of top-1 between training runs of a recipe is unknown from one run, and "
        "it is often as large as the effect; the interval covers the validation images only."
    )
    if plan["runs_per_arm"] is None:
        return why + " Δ is 0 here, or so small that no number of runs can be planned from it."
    return why + (
        f" Detecting Δ = {plan['delta']:+.2f} points at 80 % power (α 0.05, two-sided) with a run std of "
        f"{plan['run_std']:g} point{'' if plan['run_std'] == 1 else 's'} ({plan['run_std_from']}) takes "
        f"{plan['runs_per_arm']} runs per arm."
    )


def summary_text(summary: dict) -> str:
    """The summary over base models in words."""
    verdicts = "; ".join(
        f"{row} {delta:+.2f}" + (f" (p Holm {p:.3g}: {v})" if p is not None else " (no p)")
        for row, delta, p, v in zip(summary["rows"], summary["deltas"], summary["p_holm"], summary["verdicts"])
    )
    interval = (
        "with no interval: "
        if summary["ci95"] is None
        else f"95 % CI [{summary['ci95'][0]:+.2f}, {summary['ci95'][1]:+.2f}]: "
    ) + summary["method"]
    return (
        f"The dog init helped in {summary['helped']} and hurt in {summary['hurt']} of {len(summary['rows'])} "
        f"base models (run-level p, Holm over the {summary['tested']} tested): {verdicts}. Mean Δ over the "
        f"models {summary['mean_delta']:+.2f} points, {interval}."
    )


def write_report(report: dict, rows: list, out: Path) -> list:
    """One curve figure per row, then report.json and report.md, in ``out``; each written through a partial file."""
    out = Path(out)
    figures = []
    records = {r["folder"]: r for p in report["pairs"] for arm in ("dog", "native") for r in p[arm]["runs"]}
    for row, entry in zip(rows, report["rows"]):
        curves = []
        for run in row.runs:
            record = records[str(run.folder)]
            curves.append(
                (
                    f"{run.label}: eval of {record['curves_weights']} weights; evaluated checkpoint epoch "
                    f"{record['checkpoint_epoch']}",
                    run.curves,
                    run.arm != NATIVE,
                )
            )
        title = f"{row.model}: {' vs '.join(row.arms)}" + (f" ({row.label})" if row.label else "")
        figures.append(plot_curves(curves, out / entry["curves"], title=title))
    with writing(out / "report.json", out / "report.md") as (json_file, markdown_file):
        json_file.write_text(json.dumps(report, indent=2))
        markdown_file.write_text(markdown(report))
    for stale in set(out.glob("curves_*.png")) - set(figures):  # an earlier report's rows: not this report's
        stale.unlink()
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
        flag, remake = (
            ("drop --ema", "remake the report with --ema")
            if use_ema
            else ("add --ema", "remake the report without --ema")
        )
        raise ReportError(
            f"report {report_json} evaluated the {report.get('weights')} weights but {weights} would be "
            f"published: {flag} to publish the weights it evaluated, or {remake}"
        )
    sha = weights_sha256
    for pair in pairs:
        if pair.get("dog_model") == model_name and any(r.get("weights_sha256") == sha for r in pair["dog"]["runs"]):
            figure = Path(report_json).parent / pair["curves"]
            return {
                "table": f"{TABLE_HEADER}\n{table_row(pair)}",
                "legend": legend(report["bootstrap"]),
                "kernels": "\n".join(kernel_table([pair], folders=False)),
                "kernels_legend": KERNEL_LEGEND,
                "pair": pair,
                "data": report["data"],
                "figure": figure if figure.is_file() else None,
            }
    raise ReportError(
        f"report {report_json} has no {model_name} run with this checkpoint ({checkpoint}): "
        "make the report from the run folder that holds it"
    )
