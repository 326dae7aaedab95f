"""Stage a trained ``*_dog`` checkpoint as a Hugging Face Hub repository and upload it in one commit.

The staged folder is what plain timm expects (``config.json`` naming the base architecture +
``model.safetensors``), plus ``onnx/model.onnx`` (verified), the eval JSON and a model card.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from huggingface_hub import CommitOperationAdd, EvalResult, HfApi, ModelCard, ModelCardData, get_session, get_token
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError
from timm.data import resolve_data_config
from timm.models import get_arch_name, model_entrypoint, save_for_hf
from torch.utils.flop_counter import FlopCounterMode

from . import evalrecord
from .errors import TimmDogError
from .init import check_dog_args
from .models import DOG_KWARGS
from .outputs import writing
from .report import ReportError, card_section
from .trainpy.args import is_train_py_args
from .trainpy.checkpoints import load_checkpoint
from .trainpy.data import check_not_training_images
from .trainpy.runs import epochs_trained, read_summary

TAGS = ["image-classification", "timm", "transformers", "onnx", "dog-init"]  # first three: as timm's push tags
PAPER = "https://arxiv.org/abs/2401.10178"
CURVES = "dog_vs_native_curves.png"  # the report's training-curve figure, staged beside the card
NO_TOKEN = "no Hugging Face token: set HF_TOKEN or run `hf auth login`"
TRAIN_PY = "timm's train.py"
# train.py arguments worth publishing (paths, logging and cluster details stay private)
RECIPE_KEYS = (
    "model",
    "model_kwargs",
    "dataset",
    "num_classes",
    "img_size",
    "input_size",
    "epochs",
    "batch_size",
    "mean",
    "std",
    "interpolation",
    "crop_pct",
    "grad_accum_steps",
    "opt",
    "lr",
    "lr_base",
    "weight_decay",
    "sched",
    "warmup_epochs",
    "warmup_lr",
    "min_lr",
    "aa",
    "reprob",
    "mixup",
    "cutmix",
    "smoothing",
    "gp",
    "drop_path",
    "model_ema",
    "model_ema_decay",
    "amp",
    "amp_dtype",
    "seed",
    "world_size",
)


class PushError(TimmDogError):
    """A refusal to stage or publish, saying what was wrong."""


def plugin_only(architecture: str) -> bool:
    """True for architectures that only timm-dog registers (plain timm cannot build them)."""
    return timm.is_model(architecture) and model_entrypoint(get_arch_name(architecture)).__module__.startswith(
        "timm_dog"
    )


def load_trained(
    model_name: str, checkpoint, use_ema: bool = False, recipe: dict | None = None, trained_with: str | None = None
):
    """The published-architecture model with the checkpoint's weights, the DoG/recipe record, and the weights'
    :class:`checkpoints.Weights` (their tensor fingerprint, EMA or not, epoch, model args). ``trained_with``: how the
    weights were trained, when not by timm's train.py (e.g. the demo's own loop)."""
    if not model_name.endswith("_dog") or not timm.is_model(model_name):
        raise PushError(f"--model {model_name!r} is not a *_dog model (see `timm-dog list`)")
    try:
        model, args, weights = load_checkpoint(model_name, checkpoint, use_ema, recipe)
        record = _recipe_record(args, model_name, trained_with)
        if record["trained_with"] == TRAIN_PY:
            record["epochs_run"] = _epochs_run(Path(checkpoint).parent / "summary.csv")
    except ValueError as error:
        raise PushError(str(error)) from None
    return model, record, weights


def _recipe_record(recipe: dict | None, model_name: str, trained_with: str | None = None) -> dict:
    """DoG hyperparameters (from the recipe's dog_* model kwargs), the public part of the recipe, and how the
    weights were trained: ``trained_with`` if given, timm's train.py when the args are train.py's, else None."""
    recipe = dict(recipe or {})
    kwargs = dict(recipe.get("model_kwargs") or {})
    dog = check_dog_args(**{DOG_KWARGS[k]: v for k, v in kwargs.items() if k in DOG_KWARGS})
    dog["gamma"] = list(dog["gamma"]) if isinstance(dog["gamma"], tuple) else dog["gamma"]
    public = {k: recipe[k] for k in RECIPE_KEYS if k in recipe and _is_json(recipe[k])}
    return {
        "dog_model": model_name,
        "dog_init": dog,
        "recipe": public,
        "trained_with": trained_with or (TRAIN_PY if is_train_py_args(recipe) else None),
    }


def _epochs_run(summary) -> int | None:
    """Epochs train.py ran by the summary.csv beside the checkpoint, None without one."""
    return epochs_trained(read_summary(summary)) if summary.is_file() else None


def _is_json(value) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def read_eval(path, weights=None, input_size=None) -> dict:
    """An eval JSON written by ``timm-dog eval --json`` (for --compare, its first source), measured on ``weights``
    (a :class:`checkpoints.Weights`: the same tensors, EMA or not) at ``input_size`` when they are given."""
    try:
        report = evalrecord.read(path)
    except TimmDogError as error:
        raise PushError(str(error)) from None
    if weights is not None:
        _check_measured_on(path, report, weights)
    _check_not_training_images(path, report.get("dataset", {}), weights)
    measured = report.get("input_size")
    if input_size is not None and list(measured or []) != list(input_size):
        raise PushError(
            f"eval JSON {path} was measured at {_size(measured)} but the published data config says "
            f"{_size(input_size)}: evaluate at the size the weights are published with (the run's args)"
        )
    rebuilt_with = (report["weights"] if isinstance(report.get("weights"), dict) else {}).get("model_args")
    if weights is not None and rebuilt_with is not None and _json(rebuilt_with) != _json(weights.model_args):
        differ = sorted(
            k
            for k in {**rebuilt_with, **weights.model_args}
            if _json(rebuilt_with.get(k)) != _json(weights.model_args.get(k))
        )
        raise PushError(
            f"eval JSON {path} was measured with the model args {rebuilt_with} but the weights are "
            f"published with {weights.model_args} ({', '.join(differ)} differ): evaluate the checkpoint "
            f"with the run's args (its own, or its args.yaml beside it)"
        )
    return report


def _check_not_training_images(path, dataset: dict, weights) -> None:
    """Refuse an eval JSON measured on training images (eval --split train, or the run's training folder:
    :func:`trainpy.data.check_not_training_images`)."""
    if dataset.get("training_images_of"):
        raise PushError(
            f"eval JSON {path} was measured on training images ({dataset.get('folder')}, the training "
            f"split of {', '.join(dataset['training_images_of'])}): the card publishes validation accuracy; "
            f"evaluate on the validation folder"
        )
    folder = dataset.get("folder")  # absolute since eval writes it so; a relative one is not checked against here
    if weights is not None and folder and Path(folder).is_absolute():
        try:
            check_not_training_images(folder, weights.trained_on, weights.source)
        except TimmDogError as error:
            raise PushError(f"eval JSON {path}: {error}") from None


def _json(value):
    return json.loads(json.dumps(value, default=str))


def _size(size) -> str:
    return "x".join(map(str, size)) if size else "an unrecorded size"


def _weights_name(ema: bool) -> str:
    return "EMA weights (state_dict_ema)" if ema else "model's own weights (state_dict, not the EMA)"


def _check_measured_on(path, report: dict, weights) -> None:
    """Refuse an eval JSON of other tensors than ``weights``, saying which weights each is and the command to run."""
    measured = report.get("weights") if isinstance(report.get("weights"), dict) else {}
    command = f"`timm-dog eval MODEL --checkpoint {weights.source}{' --ema' if weights.ema else ''} --json …`"
    if report.get("weights_sha256") == weights.sha256:
        return
    if "ema" in measured and bool(measured["ema"]) != weights.ema:
        flag = "drop --ema" if weights.ema else "add --ema"
        raise PushError(
            f"eval JSON {path} measured the {_weights_name(bool(measured['ema']))} but the "
            f"{_weights_name(weights.ema)} would be published: {flag} to publish the weights it measured, "
            f"or measure these with {command}"
        )
    raise PushError(
        f"eval JSON {path} was not measured on this checkpoint's {_weights_name(weights.ema)} (its "
        f"weights_sha256 differs; it measured {measured.get('source', 'other weights')}): run {command}"
    )


@dataclass
class StagedRepo:
    folder: Path
    architecture: str
    files: list  # paths relative to folder

    def listing(self) -> str:
        return "\n".join(f"{(self.folder / f).stat().st_size:>12,}  {f}" for f in self.files)


@contextlib.contextmanager
def staging(stage_dir=None, upload: bool = True) -> Iterator[Path]:
    """The folder to :func:`stage` in: ``stage_dir`` (kept), or a temporary one that is removed afterwards, on
    success, failure or interruption alike. With ``upload``, a missing token is refused first, before the minutes of
    staging."""
    from huggingface_hub import get_token  # as push() does: huggingface_hub is imported when a push needs it

    if upload and not get_token():
        raise PushError(NO_TOKEN)
    if stage_dir is not None:
        yield Path(stage_dir)
        return
    parent = Path(tempfile.mkdtemp(prefix="timm-dog-push-"))
    try:
        yield parent / "repo"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def stage(
    checkpoint,
    model_name: str,
    folder,
    *,
    repo_id: str,
    eval_json=None,
    recipe: dict | None = None,
    use_ema: bool = False,
    fp16: bool = False,
    int8_calibration: str | None = None,
    verify_images: str | None = None,
    license: str = "apache-2.0",
    datasets: tuple = (),
    force: bool = False,
    report=None,
    trained_with: str | None = None,
    log=print,
) -> StagedRepo:
    """Write the repository folder; refuse (PushError) on a missing/failing eval or ONNX check unless ``force``.
    ``report``: a ``timm-dog report`` report.json covering this checkpoint, for the card's "DoG vs native init".
    ``trained_with``: how the weights were trained when not by timm's train.py, for the card (e.g. the demo's loop)."""
    from .onnx import ExportError, export_onnx  # onnx and onnxscript: imported when a repo is staged only

    check_repo_id(repo_id)
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise PushError(f"stage folder {folder} is not empty")
    model, record, weights = load_trained(model_name, checkpoint, use_ema, recipe, trained_with)
    architecture = model.pretrained_cfg["architecture"]
    weights_sha = weights.sha256
    evaluation = None
    if eval_json:
        evaluation = read_eval(eval_json, weights, model.pretrained_cfg["input_size"])
        measured_on = evaluation.get("dataset", {}).get("name", "imagefolder")
        if measured_on == "imagefolder" and not datasets:
            raise PushError(
                f"eval JSON {eval_json} was measured on an ImageFolder "
                f"({evaluation.get('dataset', {}).get('data_dir', '?')}): name its Hub dataset id with "
                f"--dataset (e.g. imagenet-1k), so the card does not label the numbers with a guess"
            )
        names = evaluation.get("dataset", {}).get("class_names")
        if names and len(names) == model.num_classes and not model.pretrained_cfg.get("label_names"):
            model.pretrained_cfg = {**model.pretrained_cfg, "label_names": names}
    elif not force:
        raise PushError(
            "refusing to publish: no eval JSON (give --eval-json from `timm-dog eval … --json`; "
            "--force publishes anyway)"
        )
    comparison = None
    if report:
        try:
            comparison = card_section(report, weights_sha, checkpoint, model_name, use_ema)
        except ReportError as error:
            raise PushError(str(error)) from None

    with writing(folder) as (work,):  # a hidden .partial folder, moved into place (onto an empty folder) when complete
        work.mkdir()
        # the label names go to the config's root, as timm's push_to_hf_hub writes them: transformers reads them there
        names = model.pretrained_cfg.get("label_names")
        save_for_hf(
            model,
            work,
            safe_serialization=True,
            data_config=resolve_data_config({}, model=model),
            model_config={
                **({"label_names": names} if names else {}),
                "timm_dog": {**record, "weights_sha256": weights_sha, "ema": use_ema, "epoch": weights.epoch},
            },
        )
        config = json.loads((work / "config.json").read_text())
        config["model_args"] = published_model_args(config.get("model_args", {}), weights.model_args)
        config["pretrained_cfg"].pop("tag", None)  # the base's pretrained tag: not these weights
        config["pretrained_cfg"].pop("label_names", None)  # a copy of the root's (timm reads the root's into it)
        config["pretrained_cfg"]["license"] = license
        (work / "config.json").write_text(json.dumps(config, indent=2))
        onnx_files = []
        (work / "onnx").mkdir()
        try:
            result = export_onnx(
                model,
                work / "onnx" / "model.onnx",
                fp16=fp16,
                int8_calibration=int8_calibration,
                verify_images=verify_images,
                architecture=architecture,
                log=log,
            )
            onnx_files = [p.relative_to(work).as_posix() for p in result.files.values()]
            (work / "onnx" / "verification.json").write_text(json.dumps(result.to_dict()["verification"], indent=2))
        except ExportError as error:
            if not force:
                raise PushError(
                    f"refusing to publish: ONNX verification failed: {error} (--force publishes anyway)"
                ) from None
        if evaluation:
            (work / "eval_results.json").write_text(json.dumps(published_evaluation(evaluation), indent=2))
        if comparison and comparison["figure"]:
            shutil.copyfile(comparison["figure"], work / CURVES)
            comparison["figure"] = CURVES
        (work / "README.md").write_text(
            render_card(model, repo_id, record, evaluation, onnx_files, license, list(datasets), comparison, weights)
        )
        if not onnx_files:
            shutil.rmtree(work / "onnx")
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return StagedRepo(folder, architecture, files)


def published_evaluation(evaluation: dict) -> dict:
    """The eval JSON as published: the folder it measured (``dataset.folder``, absolute on the machine that
    evaluated) and every path under the same place are cut to what lies below its grandparent (e.g. ``digits/val``),
    so no path of that machine goes to the Hub."""
    folder = (evaluation.get("dataset") or {}).get("folder") if isinstance(evaluation.get("dataset"), dict) else None
    if not folder or len(Path(folder).parts) < 3:
        return evaluation
    local = json.dumps(str(Path(folder).parents[1]) + "/")[1:-1]  # as the path appears inside a JSON string
    return json.loads(json.dumps(evaluation).replace(local, ""))


def published_model_args(recorded: dict, rebuilt_with: dict) -> dict:
    """config.json's ``model_args`` (what plain timm's create_model is called with): those timm's save_for_hf
    recorded, plus the model args the weights were rebuilt with that it leaves out (an older timm records none);
    without a twin's ``dog_*`` kwargs, the drop rates (training only; timm's own rule), the build switches and
    ``num_classes``: the root ``num_classes`` carries it for timm, and transformers' TimmWrapper passes its own
    (a second one in ``model_args`` makes it fail with "got multiple values for keyword argument 'num_classes'")."""
    left_out = ("drop_rate", "drop_path_rate", "drop_block_rate", "scriptable", "exportable", "no_jit", "num_classes")
    args = {**{k: v for k, v in rebuilt_with.items() if _is_json(v)}, **recorded}
    return {k: v for k, v in args.items() if k not in left_out and k not in DOG_KWARGS and not k.startswith("dog_")}


def weights_facts(weights, recipe: dict) -> dict:
    """What the card says about the published tensors: EMA or not (with the decay), epoch, and the file."""
    ema_decay = recipe.get("model_ema_decay") if weights.ema else None
    return {
        "ema": weights.ema,
        "ema_decay": ema_decay,
        "epoch": weights.epoch,
        "file": Path(weights.source).name,
        "run_kept_ema": bool(recipe.get("model_ema")) and not weights.ema,
    }


def model_facts(model) -> dict:
    """Parameters (M), GMACs at the model's input size, input size."""
    size = model.pretrained_cfg["input_size"]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *size))
    return {
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "gmacs": counter.get_total_flops() / 2e9,
        "input_size": list(size),
    }


def card_template() -> Path:
    """hub_cards/model_card.md: inside the installed package, or at the repository root in a checkout."""
    for folder in (Path(__file__).parent / "hub_cards", Path(__file__).parent.parent / "hub_cards"):
        if (folder / "model_card.md").is_file():
            return folder / "model_card.md"
    raise FileNotFoundError("hub_cards/model_card.md is missing from this installation")


def render_card(
    model, repo_id, record, evaluation, onnx_files, license, datasets, comparison=None, weights=None
) -> str:
    """README.md: front matter (library_name timm, tags, model-index) + the hub_cards template."""
    from .onnx import label_names  # onnx and onnxscript: imported when a card is written only

    architecture = model.pretrained_cfg["architecture"]
    results, dataset_id = [], None
    if evaluation:
        name = evaluation.get("dataset", {}).get("name", "imagefolder")
        dataset_id = datasets[0] if datasets and name == "imagefolder" else name
        results = [
            EvalResult(
                task_type="image-classification",
                dataset_type=dataset_id,
                dataset_name=dataset_id,
                dataset_split=evaluation.get("dataset", {}).get("split"),
                metric_type="accuracy",
                metric_name=f"top-{k} accuracy",
                metric_value=round(evaluation[f"top{k}"], 3),
            )
            for k in (1, 5)
        ]
    data = ModelCardData(
        library_name="timm",
        pipeline_tag="image-classification",
        tags=TAGS,
        license=license,
        datasets=datasets,
        model_name=repo_id.split("/")[-1],
        eval_results=results or None,
    )
    return str(
        ModelCard.from_template(
            data,
            template_path=str(card_template()),
            repo_id=repo_id,
            architecture=architecture,
            plugin_only=plugin_only(architecture),
            facts=model_facts(model),
            num_classes=model.num_classes,
            labels=label_names(model)[:5],
            dog=record["dog_init"],
            dog_model=record["dog_model"],
            recipe=record["recipe"],
            evaluation=evaluation,
            dataset_id=dataset_id,
            onnx_files=onnx_files,
            paper=PAPER,
            comparison=comparison,
            trained_with=record.get("trained_with"),
            train_py=record.get("trained_with") == TRAIN_PY,
            epochs_run=record.get("epochs_run"),
            weights=weights_facts(weights, record["recipe"]) if weights else None,
        )
    )


def check_repo_id(repo_id: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}", repo_id or "") or ".." in repo_id:
        raise PushError(f"--repo {repo_id!r} is not ORG/NAME (letters, digits, '-', '_', '.')")


def push(
    staged: StagedRepo,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    message: str | None = None,
) -> str:
    """Upload every staged file in one ``create_commit``; return the commit (or PR) URL."""
    check_repo_id(repo_id)
    token = token or get_token()
    if not token:
        raise PushError(NO_TOKEN)
    api = HfApi(token=token)
    try:
        info = None
        try:
            info = api.model_info(repo_id, revision=revision)
        except RepositoryNotFoundError:
            api.create_repo(repo_id, private=private or None, repo_type="model")  # None: the org's default
            if revision:
                api.create_branch(repo_id, branch=revision)
        except RevisionNotFoundError:
            api.create_branch(repo_id, branch=revision)
        if info and "config.json" in {s.rfilename for s in info.siblings or []}:
            with tempfile.TemporaryDirectory() as tmp:
                remote = json.loads(
                    Path(api.hf_hub_download(repo_id, "config.json", revision=info.sha, local_dir=tmp)).read_text()
                )
            if remote.get("architecture") != staged.architecture:
                raise PushError(
                    f"{repo_id} already holds a {remote.get('architecture')!r} model, not "
                    f"{staged.architecture!r}: choose another --repo"
                )
        operations = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(staged.folder / f)) for f in staged.files]
        commit = api.create_commit(
            repo_id,
            operations,
            commit_message=message or f"Upload {staged.architecture} (DoG init) with timm-dog",
            revision=revision,
            create_pr=create_pr,
        )
    except HfHubHTTPError as error:
        reason = _refused(error, repo_id, api.endpoint)
        raise PushError(f"upload to {repo_id} failed, nothing was committed: {reason}".replace(token, "***")) from None
    except _http().TransportError as error:  # no answer at all: refused, unresolvable, timed out
        raise PushError(
            f"cannot reach the Hub at {api.endpoint}: {_unreachable(error)}; nothing was committed"
        ) from None
    return commit.pr_url or commit.commit_url


def _http():
    """The HTTP library under huggingface_hub's client (httpx, or httpx2 since huggingface_hub 2)."""
    return importlib.import_module(type(get_session()).__module__.split(".")[0])


def _refused(error, repo_id: str, endpoint: str) -> str:
    """Why the Hub answered with an error status, in one line."""
    status = getattr(error.response, "status_code", None)
    if status == 401:
        return f"{endpoint} rejected the token (401 Unauthorized): set HF_TOKEN or run `hf auth login`"
    if status == 403:
        return f"the token may not write to {repo_id} (403 Forbidden): use a token with write access to it"
    if status and status >= 500:
        return f"{endpoint} answered {status} {error.response.reason_phrase} (a server error): try again later"
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _unreachable(error) -> str:
    """'timed out', or the operating system's reason ('connection refused', …) behind a transport error."""
    if isinstance(error, _http().TimeoutException):
        return "timed out"
    cause = error
    while cause is not None and not (isinstance(cause, OSError) and cause.strerror):
        cause = cause.__cause__ or cause.__context__
    return cause.strerror.lower() if cause is not None else (str(error) or type(error).__name__)
