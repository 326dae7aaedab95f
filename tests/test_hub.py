"""push: the staged repository loads with plain timm (local-dir:, hf-hub: from a real cache layout) and with
onnxruntime alone; the upload is one commit, tested against huggingface_hub's HTTP client with a transport double."""

import ast
import base64
import gzip
import hashlib
import importlib
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from click.testing import CliRunner
from huggingface_hub import ModelCard, get_session, set_client_factory
from safetensors.torch import load_file

from timm_dog import hub
from timm_dog.cli import main
from timm_dog.preprocess import Preprocess, open_image
from timm_dog.trainpy.checkpoints import load_checkpoint

REPO = "someone/convnext-atto-dog-digits"
TOKEN = "hf_TESTtokenNeverPrinted0123456789"


def test_staged_files_and_config(staged, checkpoint):
    assert staged.files == [
        "README.md",
        "config.json",
        "eval_results.json",
        "model.safetensors",
        "onnx/model.onnx",
        "onnx/model_fp16.onnx",
        "onnx/verification.json",
    ]
    config = json.loads((staged.folder / "config.json").read_text())
    assert config["architecture"] == "convnext_atto" and config["num_classes"] == 10
    assert not any(k.startswith("dog_") for k in config.get("model_args", {}))
    cfg = config["pretrained_cfg"]
    assert cfg["input_size"] == [3, 32, 32] and cfg["mean"] == [0.5] * 3 and cfg["interpolation"] == "bilinear"
    assert config["label_names"] == [str(i) for i in range(10)] and "label_names" not in cfg  # timm's place: the root
    assert "tag" not in cfg and "test_input_size" not in cfg and "num_classes" not in config["model_args"]
    record = config["timm_dog"]
    assert record["dog_model"] == "convnext_atto_dog"
    assert record["dog_init"] == {
        "gamma": [0.0, 0.5],
        "on_ratio": 0.5,
        "share": 0.7,
        "scale": "paper",
        "seed": 0,
        "pattern": "dog",
        "trainable": True,
    }
    assert record["recipe"]["epochs"] == 2 and "data_dir" not in record["recipe"] and "output" not in record["recipe"]
    assert not any(f.endswith((".bin", ".pth", ".pt", ".pkl")) for f in staged.files)  # no pickles
    model, _, _ = load_checkpoint("convnext_atto_dog", checkpoint)
    weights = load_file(str(staged.folder / "model.safetensors"))
    assert weights.keys() == model.state_dict().keys()
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert all(v["passed"] for v in json.loads((staged.folder / "onnx" / "verification.json").read_text()))


def test_card_front_matter_and_sections(staged, eval_json):
    card = ModelCard.load(staged.folder / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "timm" and data["license"] == "apache-2.0" and data["datasets"] == ["digits"]
    assert data["tags"] == ["image-classification", "timm", "transformers", "onnx", "dog-init"]
    assert data["pipeline_tag"] == "image-classification"  # with library_name timm: what the Hub and optimum read
    top1 = json.loads(eval_json.read_text())["top1"]
    (result,) = data["model-index"][0]["results"]
    assert result["metrics"][0]["value"] == pytest.approx(top1, abs=1e-3) and result["dataset"]["type"] == "digits"
    for heading in (
        "## Model details",
        "### With timm",
        "### With transformers",
        "### With onnxruntime alone",
        "### With timm-dog",
        "## DoG initialization",
        "## Training",
        "## Evaluation",
        "## Citation",
    ):
        assert heading in card.text
    assert "**Parameters (M):** 3.38" in card.text and "GMACs:** " in card.text and "32×32" in card.text
    assert "2401.10178" in card.text and "| share of kernels with DoG | 0.7 |" in card.text
    assert "defined by the timm-dog plugin" not in card.text  # convnext_atto is plain timm
    assert "| digits | validation | 360 |" in card.text


def test_card_of_a_plugin_only_architecture_says_so():
    assert hub.plugin_only("convmixer_512") and hub.plugin_only("hornet_tiny_7x7")
    assert not hub.plugin_only("convnext_atto") and not hub.plugin_only("convmixer_768_32")
    model = timm.create_model("convmixer_512").eval()
    record = {
        "dog_model": "convmixer_512_dog",
        "dog_init": {"gamma": [0.0, 0.5], "on_ratio": 0.5, "share": 1.0, "scale": "paper", "seed": None},
        "recipe": {},
    }
    text = hub.render_card(model, "someone/convmixer-512-dog", record, None, [], "apache-2.0", ["imagenet-1k"])
    assert "defined by the timm-dog plugin, not by timm itself" in text and "pip install timm-dog" in text
    assert "**Parameters (M):** 4.27" in text and "No evaluation was published" in text


def test_timm_dog_reads_the_staged_weights_with_their_label_names(staged):
    """model.safetensors with the config.json beside it: the root's label names (timm's place) reach the model."""
    model, _, _ = load_checkpoint("convnext_atto_dog", staged.folder / "model.safetensors")
    assert model.pretrained_cfg["label_names"] == [str(i) for i in range(10)] and model.num_classes == 10
    assert model.pretrained_cfg["input_size"] == (3, 32, 32) and model.pretrained_cfg["mean"] == (0.5,) * 3


def _expected_logits(checkpoint, images):
    model, _, _ = load_checkpoint("convnext_atto_dog", checkpoint)
    with torch.inference_mode():
        return model(torch.from_numpy(images)).numpy()


def _plain_timm(code, env_extra, tmp_path):
    """Run ``code`` in a fresh interpreter where timm-dog is off (as if not installed)."""
    env = {**os.environ, "TIMM_DOG_AUTOLOAD": "0", **env_extra}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


LOAD_AND_RUN = """
    import sys
    import numpy as np
    import timm
    import torch
    model = timm.create_model({source!r}, pretrained=True).eval()
    assert "timm_dog" not in sys.modules, "plain timm must not need the plugin"
    with torch.inference_mode():
        np.save("logits.npy", model(torch.from_numpy(np.load({images!r}))).numpy())
    print(model.pretrained_cfg["architecture"], model.pretrained_cfg["input_size"])
"""


def _digit_images(digits, tmp_path):
    images = np.stack(
        [
            Preprocess(input_size=(3, 32, 32), interpolation="bilinear", mean=(0.5,) * 3, std=(0.5,) * 3, crop_pct=1.0)(
                open_image(p)
            )
            for p in sorted((digits / "val" / "4").iterdir())[:6]
        ]
    )
    np.save(tmp_path / "images.npy", images)
    return images


def test_plain_timm_loads_the_staged_folder_via_local_dir(staged, checkpoint, digits, tmp_path):
    images = _digit_images(digits, tmp_path)
    out = _plain_timm(
        LOAD_AND_RUN.format(source=f"local-dir:{staged.folder}", images=str(tmp_path / "images.npy")), {}, tmp_path
    )
    assert out.split()[0] == "convnext_atto"
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), _expected_logits(checkpoint, images), atol=1e-5)


STAGE_TWIN = """
    import argparse
    import timm
    import torch
    from timm_dog import hub
    model = timm.create_model({twin!r}, dog_seed=0)
    torch.save({{"epoch": 0, "arch": {twin!r}, "state_dict": model.state_dict(), "version": 2,
                "args": argparse.Namespace(model={twin!r})}}, "checkpoint.pth.tar")
    hub.stage("checkpoint.pth.tar", {twin!r}, "repo", repo_id="someone/{base}-dog", force=True, log=print)
"""


@pytest.mark.slow
def test_plain_timm_loads_a_staged_new_family_twin(tmp_path):
    """convformer_s18_dog (a MetaFormer: not one of the first twin families), DoG-initialized, staged: its ONNX
    passes verification and plain timm loads the folder as convformer_s18 with the checkpoint's logits."""
    from timm_dog.preprocess import sample_photos

    base = "convformer_s18"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(STAGE_TWIN.format(twin=base + "_dog", base=base))],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = tmp_path / "repo"
    assert json.loads((folder / "config.json").read_text())["architecture"] == base
    assert all(v["passed"] for v in json.loads((folder / "onnx" / "verification.json").read_text()))
    state = torch.load(tmp_path / "checkpoint.pth.tar", weights_only=False)["state_dict"]
    dw = state["stages.0.blocks.0.token_mixer.dwconv.weight"][:, 0].double()  # DoG kernels: sum 0, positive part 0.5
    assert torch.allclose(dw.sum((1, 2)), torch.zeros(len(dw), dtype=torch.float64), atol=1e-6)
    assert torch.allclose(dw.clamp(min=0).sum((1, 2)), torch.full((len(dw),), 0.5, dtype=torch.float64), atol=1e-6)
    model = timm.create_model(base).eval()
    model.load_state_dict(state)
    preprocess = Preprocess.from_model(model)
    images = np.stack([preprocess(open_image(p)) for p in sample_photos()])
    np.save(tmp_path / "images.npy", images)
    out = _plain_timm(
        LOAD_AND_RUN.format(source=f"local-dir:{folder}", images=str(tmp_path / "images.npy")), {}, tmp_path
    )
    assert out.split()[0] == base
    with torch.inference_mode():
        want = model(torch.from_numpy(images)).numpy()
    assert np.abs(want).max() > 0.1  # logits that can tell a wrong load from a right one
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), want, atol=1e-5 * np.abs(want).max(), rtol=0)


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def build_hf_cache(folder, repo_id, cache):
    """The cache layout hf_hub_download writes: blobs/ named by etag, snapshots/<commit>/ symlinks, refs/main."""
    root = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        lfs = path.suffix in (".safetensors", ".onnx")
        blob = root / "blobs" / (hashlib.sha256(data).hexdigest() if lfs else _git_blob_sha1(data))
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = root / "snapshots" / commit / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    return root


@pytest.fixture(scope="module")
def hf_cache(staged, tmp_path_factory):
    cache = tmp_path_factory.mktemp("hf") / "hub"
    build_hf_cache(staged.folder, REPO, cache)
    return {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}


def test_plain_timm_loads_from_the_hub_cache_offline(hf_cache, checkpoint, digits, tmp_path):
    images = _digit_images(digits, tmp_path)
    out = _plain_timm(
        LOAD_AND_RUN.format(source=f"hf-hub:{REPO}", images=str(tmp_path / "images.npy")), hf_cache, tmp_path
    )
    assert out.split()[0] == "convnext_atto"
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), _expected_logits(checkpoint, images), atol=1e-5)


def test_onnx_from_the_cache_runs_in_onnxruntime_with_the_cards_code(hf_cache, staged, checkpoint, digits, tmp_path):
    card = (staged.folder / "README.md").read_text()
    snippet = re.search(r"### With onnxruntime alone.*?```python\n(.*?)```", card, re.S).group(1)
    image = sorted((digits / "val" / "4").iterdir())[0]
    code = (
        "import sys\n"
        + snippet.replace('"image.jpg"', repr(str(image)))
        + "\nassert not {'torch', 'timm'} & set(sys.modules), 'the card promises no torch or timm'\n"
        "np.save('onnx_logits.npy', logits)\n"
    )
    out = _plain_timm(code, hf_cache, tmp_path)
    images = _digit_images(digits, tmp_path)[:1]
    expected = _expected_logits(checkpoint, images)[0]
    np.testing.assert_allclose(np.load(tmp_path / "onnx_logits.npy"), expected, atol=1e-4)
    assert out.splitlines()[0].split()[0] == str(int(expected.argmax()))  # label names from the metadata


NO_PLUGIN = "assert 'timm_dog' not in __import__('sys').modules, 'plain timm must not need the plugin'\n"


def _card_code(card: str, heading: str, image) -> str:
    """The card's Python block under ``heading``, as written, with its image.jpg replaced by ``image``."""
    return (
        re.search(rf"### {heading}.*?```python\n(.*?)```", card, re.S).group(1).replace('"image.jpg"', repr(str(image)))
    )


def test_the_cards_timm_code_runs_from_the_cache_in_plain_timm(hf_cache, staged, checkpoint, digits, tmp_path):
    image = sorted((digits / "val" / "4").iterdir())[0]
    code = _card_code((staged.folder / "README.md").read_text(), "With timm", image)
    _plain_timm(
        code + NO_PLUGIN + "__import__('numpy').save('probabilities.npy', probabilities.numpy())\n", hf_cache, tmp_path
    )
    expected = torch.from_numpy(_expected_logits(checkpoint, _digit_images(digits, tmp_path)[:1])).softmax(-1)
    np.testing.assert_allclose(np.load(tmp_path / "probabilities.npy"), expected.numpy(), atol=1e-5)


def test_the_cards_transformers_code_runs_from_the_cache(hf_cache, staged, checkpoint, digits, tmp_path):
    """The card's transformers block, offline from the Hub cache: pipeline and Auto classes load the repo (no
    timm-dog: convnext_atto is plain timm), the logits are the checkpoint's, the labels are its class names."""
    image = sorted((digits / "val" / "4").iterdir())[0]
    code = _card_code((staged.folder / "README.md").read_text(), "With transformers", image)
    out = _plain_timm(code + NO_PLUGIN + "__import__('numpy').save('logits.npy', logits.numpy())\n", hf_cache, tmp_path)
    expected = _expected_logits(checkpoint, _digit_images(digits, tmp_path)[:1])
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), expected, atol=1e-4)
    top = [str(i) for i in np.argsort(-expected[0])[:5]]  # digits' class names are its folder names "0".."9"
    ranked, label = out.strip().splitlines()[-2:]
    assert [entry["label"] for entry in ast.literal_eval(ranked)] == top and label == top[0]


TRANSFORMERS_AND_TIMM = """
    import json, sys
    import numpy as np
    import timm
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, AutoModelForImageClassification, pipeline
    folder, paths = {folder!r}, {paths!r}
    images = [Image.open(p).convert("RGB") for p in paths]
    model = AutoModelForImageClassification.from_pretrained(folder).eval()
    processor = AutoImageProcessor.from_pretrained(folder)
    classifier = pipeline("image-classification", model=folder)
    reference = timm.create_model("local-dir:" + folder, pretrained=True).eval()
    transform = timm.data.create_transform(**timm.data.resolve_data_config({{}}, model=reference))
    pixels = torch.stack([transform(image) for image in images])
    with torch.inference_mode():
        logits = model(**processor(images, return_tensors="pt")).logits
        timm_logits = reference(pixels)
    assert "timm_dog" not in sys.modules, "a plain timm architecture must not need the plugin"
    np.save("pixels.npy", processor(images, return_tensors="pt")["pixel_values"].numpy())
    np.save("timm_pixels.npy", pixels.numpy())
    np.save("logits.npy", logits.numpy())
    np.save("timm_logits.npy", timm_logits.numpy())
    print(json.dumps({{"model": type(model).__name__, "id2label": model.config.id2label,
                      "pipeline": [classifier(image, top_k=1)[0]["label"] for image in images]}}))
"""


def test_transformers_loads_the_staged_folder_like_timm(staged, checkpoint, digits, tmp_path):
    """AutoModelForImageClassification, AutoImageProcessor and pipeline("image-classification") on the staged
    folder: timm's preprocessing and logits, the class names as labels, and timm's top-1 on real images (a digit of
    each class, and scikit-learn's two photos)."""
    from timm_dog.preprocess import sample_photos

    paths = [str(sorted((digits / "val" / str(k)).iterdir())[0]) for k in range(10)] + [str(p) for p in sample_photos()]
    out = _plain_timm(TRANSFORMERS_AND_TIMM.format(folder=str(staged.folder), paths=paths), {}, tmp_path)
    result = json.loads(out.splitlines()[-1])
    names = json.loads((staged.folder / "config.json").read_text())["label_names"]
    assert result["model"] == "TimmWrapperForImageClassification"
    assert result["id2label"] == {str(i): name for i, name in enumerate(names)}
    np.testing.assert_array_equal(np.load(tmp_path / "pixels.npy"), np.load(tmp_path / "timm_pixels.npy"))
    model, _, _ = load_checkpoint("convnext_atto_dog", checkpoint)
    with torch.inference_mode():
        expected = model.eval()(torch.from_numpy(np.load(tmp_path / "timm_pixels.npy"))).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "timm_logits.npy"), expected, atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), expected, atol=1e-5)
    assert result["pipeline"] == [names[i] for i in expected.argmax(1)]
    assert sum(label == str(k) for k, label in enumerate(result["pipeline"][:10])) >= 5  # a model that reads digits


@pytest.mark.parametrize(
    "problem",
    ["no eval", "eval of other weights", "wrong model", "not a dog model", "bad repo id", "stage dir not empty"],
)
def test_refusals_write_nothing(problem, checkpoint, eval_json, tmp_path):
    args = dict(
        checkpoint=checkpoint,
        model_name="convnext_atto_dog",
        folder=tmp_path / "repo",
        repo_id=REPO,
        eval_json=eval_json,
        log=lambda line: None,
    )
    if problem == "no eval":
        args["eval_json"], message = None, "refusing to publish: no eval JSON"
    elif problem == "eval of other weights":
        other = tmp_path / "other.json"
        other.write_text(json.dumps({**json.loads(eval_json.read_text()), "weights_sha256": "0" * 64}))
        args["eval_json"], message = other, "was not measured on this checkpoint"
    elif problem == "wrong model":
        args["model_name"], message = "convnext_femto_dog", "was trained as 'convnext_atto_dog'"
    elif problem == "not a dog model":
        args["model_name"], message = "convnext_atto", "is not a \\*_dog model"
    elif problem == "bad repo id":
        args["repo_id"], message = "no-slash", "is not ORG/NAME"
    else:
        (tmp_path / "repo").mkdir()
        (tmp_path / "repo" / "x").write_text("x")
        message = "is not empty"
    with pytest.raises(hub.PushError, match=message):
        hub.stage(**args)
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["other.json"], ["repo"])
    assert not (tmp_path / "repo" / "config.json").exists()


def test_mismatched_weights_are_named(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file(timm.create_model("convnext_femto", num_classes=10).state_dict(), str(path))
    with pytest.raises(hub.PushError, match=r"does not match convnext_atto_dog: .*shape mismatches \(e.g. stem.0"):
        hub.stage(path, "convnext_atto_dog", tmp_path / "repo", repo_id=REPO, force=True, log=lambda line: None)
    assert not (tmp_path / "repo").exists()


def test_force_publishes_without_eval(checkpoint, tmp_path):
    repo = hub.stage(
        checkpoint, "convnext_atto_dog", tmp_path / "repo", repo_id=REPO, force=True, log=lambda line: None
    )
    assert "eval_results.json" not in repo.files and "onnx/model.onnx" in repo.files
    assert "No evaluation was published" in (repo.folder / "README.md").read_text()


class FakeHub:
    """The Hub's HTTP API as far as create_repo / model_info / hf_hub_download / create_commit use it."""

    def __init__(self, httpx, existing_architecture=None, fail_commit=False):
        self.httpx, self.existing, self.fail_commit = httpx, existing_architecture, fail_commit
        self.requests, self.commits, self.uploads, self.created, self.branches = [], [], {}, [], []
        self.commit_urls = []

    def __call__(self, request):
        self.requests.append(f"{request.method} {request.url}")
        assert TOKEN in request.headers.get("authorization", "") or request.url.host == "lfs.test"
        path, r = request.url.path, self.httpx.Response
        config = json.dumps({"architecture": self.existing}).encode()
        if request.method == "GET" and path.startswith(f"/api/models/{REPO}"):  # model_info
            if self.existing is None:
                return r(404, headers={"X-Error-Code": "RepoNotFound"}, json={"error": "Repository not found"})
            return r(200, json={"id": REPO, "sha": "b" * 40, "siblings": [{"rfilename": "config.json"}]})
        if "/resolve/" in path:
            headers = {
                "x-repo-commit": "b" * 40,
                "etag": f'"{_git_blob_sha1(config)}"',
                "content-length": str(len(config)),
            }
            return r(200, headers=headers, content=b"" if request.method == "HEAD" else config)
        if path == "/api/repos/create":
            self.created.append(json.loads(request.content))
            return r(200, json={"url": f"https://huggingface.co/{REPO}", "name": REPO})
        if path.startswith(f"/api/models/{REPO}/branch/"):
            self.branches.append(path.rsplit("/", 1)[1])
            return r(200, json={})
        if path == "/api/validate-yaml":
            return r(200, json={})
        if "/preupload/" in path:
            files = json.loads(request.content)["files"]
            return r(
                200,
                json={
                    "files": [
                        {
                            "path": f["path"],
                            "shouldIgnore": False,
                            "uploadMode": "lfs" if f["path"].endswith((".safetensors", ".onnx")) else "regular",
                        }
                        for f in files
                    ]
                },
            )
        if path.endswith(".git/info/lfs/objects/batch"):
            objects = json.loads(request.content)["objects"]
            return r(
                200,
                json={
                    "transfer": "basic",
                    "objects": [
                        {
                            "oid": o["oid"],
                            "size": o["size"],
                            "actions": {"upload": {"href": f"https://lfs.test/{o['oid']}"}},
                        }
                        for o in objects
                    ],
                },
            )
        if request.url.host == "lfs.test":
            self.uploads[path.strip("/")] = request.read()
            return r(200)
        if "/commit/" in path:
            if self.fail_commit:
                return r(500, json={"error": "Internal Error"})
            body = request.read()
            if request.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            self.commits.append([json.loads(line) for line in body.decode().splitlines() if line.strip()])
            self.commit_urls.append(str(request.url))
            pr = f"https://huggingface.co/{REPO}/discussions/1" if request.url.params.get("create_pr") else None
            return r(
                200,
                json={
                    "commitUrl": f"https://huggingface.co/{REPO}/commit/{'c' * 40}",
                    "commitOid": "c" * 40,
                    "pullRequestUrl": pr,
                },
            )
        return r(404, json={"error": f"not served by the test double: {request.method} {path}"})


@pytest.fixture
def fake_hub(monkeypatch):
    """Install a FakeHub behind huggingface_hub's own HTTP client (its client factory + a mock transport)."""
    httpx = importlib.import_module(type(get_session()).__module__.split(".")[0])
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_DISABLE_XET", True)  # Xet bypasses the HTTP client
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    hubs = []

    def install(**kwargs):
        fake = FakeHub(httpx, **kwargs)
        set_client_factory(lambda: httpx.Client(transport=httpx.MockTransport(fake)))
        hubs.append(fake)
        return fake

    yield install
    set_client_factory(lambda: httpx.Client())


def test_push_is_one_commit_with_every_staged_file(staged, fake_hub):
    fake = fake_hub()
    url = hub.push(staged, REPO)
    assert url.endswith("/commit/" + "c" * 40)
    assert len(fake.commits) == 1 and sum("/commit/" in r for r in fake.requests) == 1
    (lines,) = fake.commits
    assert lines[0]["key"] == "header"
    committed = {line["value"]["path"]: line for line in lines[1:]}
    assert sorted(committed) == staged.files
    for name, line in committed.items():
        data = (staged.folder / name).read_bytes()
        if line["key"] == "lfsFile":
            assert (
                line["value"]["oid"] == hashlib.sha256(data).hexdigest() and fake.uploads[line["value"]["oid"]] == data
            )
        else:
            assert base64.b64decode(line["value"]["content"]) == data
    assert any(r.startswith("POST https://huggingface.co/api/repos/create") for r in fake.requests)
    assert fake.created[0].get("visibility") != "private" and not fake.created[0].get("private")


def test_push_private_to_a_new_branch_as_a_pull_request(staged, fake_hub):
    fake = fake_hub()
    url = hub.push(staged, REPO, private=True, revision="dog-v1", create_pr=True)
    assert url == f"https://huggingface.co/{REPO}/discussions/1"
    assert "private" in (fake.created[0].get("visibility"), fake.created[0].get("private") and "private")
    assert fake.branches == ["dog-v1"]
    (commit_url,) = fake.commit_urls
    assert f"/api/models/{REPO}/commit/dog-v1" in commit_url and "create_pr=1" in commit_url


def test_cli_push_prints_no_token(checkpoint, eval_json, fake_hub, tmp_path):
    fake = fake_hub()
    result = CliRunner().invoke(
        main,
        [
            "push",
            str(checkpoint),
            "--model",
            "convnext_atto_dog",
            "--repo",
            REPO,
            "--eval-json",
            str(eval_json),
            "--stage-dir",
            str(tmp_path / "s"),
            "--dataset",
            "digits",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "pushed 6 files in one commit: https://huggingface.co/" in result.output and len(fake.commits) == 1
    assert TOKEN not in result.output and not any(
        TOKEN in p.read_text(errors="ignore") for p in (tmp_path / "s").rglob("*") if p.is_file()
    )


def test_dry_run_and_refusals_push_nothing(checkpoint, eval_json, staged, fake_hub, monkeypatch, tmp_path):
    fake = fake_hub()
    result = CliRunner().invoke(
        main,
        [
            "push",
            str(checkpoint),
            "--model",
            "convnext_atto_dog",
            "--repo",
            REPO,
            "--eval-json",
            str(eval_json),
            "--dry-run",
        ],
    )
    assert result.exit_code == 1 and "was measured on an ImageFolder" in result.output and "--dataset" in result.output
    result = CliRunner().invoke(
        main,
        [
            "push",
            str(checkpoint),
            "--model",
            "convnext_atto_dog",
            "--repo",
            REPO,
            "--eval-json",
            str(eval_json),
            "--dry-run",
            "--dataset",
            "digits",
        ],
    )
    assert (
        result.exit_code == 0 and "dry run: nothing uploaded" in result.output and "model.safetensors" in result.output
    )
    result = CliRunner().invoke(main, ["push", str(checkpoint), "--model", "convnext_atto_dog", "--repo", REPO])
    assert result.exit_code == 1 and "refusing to publish: no eval JSON" in result.output
    assert fake.requests == []

    other = fake_hub(existing_architecture="resnet50")
    with pytest.raises(hub.PushError, match="already holds a 'resnet50' model, not 'convnext_atto'"):
        hub.push(staged, REPO)
    assert other.commits == [] and not any("/preupload/" in r or "/commit/" in r for r in other.requests)

    failing = fake_hub(fail_commit=True)
    with pytest.raises(hub.PushError, match="failed, nothing was committed") as error:
        hub.push(staged, REPO)
    assert TOKEN not in str(error.value) and failing.commits == []

    silent = fake_hub()
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.delenv("HF_OIDC_RESOURCE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "no-login" / "token"))
    with pytest.raises(hub.PushError, match="no Hugging Face token: set HF_TOKEN"):
        hub.push(staged, REPO)
    result = CliRunner().invoke(
        main,
        [
            "push",
            str(checkpoint),
            "--model",
            "convnext_atto_dog",
            "--repo",
            REPO,
            "--eval-json",
            str(eval_json),
            "--stage-dir",
            str(tmp_path / "never"),
            "--dataset",
            "digits",
        ],
    )
    assert result.exit_code == 1 and "no Hugging Face token" in result.output and not (tmp_path / "never").exists()
    assert silent.requests == []


def test_failing_onnx_check_refuses_to_stage(checkpoint, eval_json, digits, tmp_path, monkeypatch):
    from PIL import Image

    from timm_dog.onnx import GATES, Gate

    (tmp_path / "calib").mkdir()
    Image.new("RGB", (32, 32)).save(tmp_path / "calib" / "black.png")  # calibrating on one black image
    # with stem and head in fp32 the int8 file can pass the usual gate even then: ask for bit-exactness
    monkeypatch.setitem(GATES, "int8", Gate(rel_max_abs=1e-9, min_cosine=1.0, min_top1_agreement=1.0))
    with pytest.raises(hub.PushError, match="refusing to publish: ONNX verification failed: int8 export diverges"):
        hub.stage(
            checkpoint,
            "convnext_atto_dog",
            tmp_path / "repo",
            repo_id=REPO,
            eval_json=eval_json,
            int8_calibration=tmp_path / "calib",
            verify_images=digits / "val" / "2",
            datasets=("digits",),
            log=lambda line: None,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calib"]


def test_an_eval_json_with_impossible_numbers_is_refused(eval_json, tmp_path):
    report = json.loads(eval_json.read_text())
    for bad in (
        {"top1": 150.0, "top5": 150.0},
        {"top1": 60.0, "top5": 50.0},
        {"top1": -1.0},
        {"loss": -0.5},
        {"num_images": 0},
        {"num_images": 2.5},
    ):
        (tmp_path / "e.json").write_text(json.dumps({**report, **bad}))
        with pytest.raises(hub.PushError, match="holds impossible numbers"):
            hub.read_eval(tmp_path / "e.json", None)


def test_an_eval_json_that_is_not_a_report_is_refused(checkpoint, tmp_path):
    for content in ("[]", '{"a": 3}', '{"top1": 1, "top5": 1, "loss": 1, "num_images": 1, "dataset": "digits"}'):
        (tmp_path / "e.json").write_text(content)
        with pytest.raises(hub.PushError, match=r"e.json is not a report of `timm-dog eval … --json`"):
            hub.read_eval(tmp_path / "e.json", None)
    result = CliRunner().invoke(
        main,
        [
            "push",
            str(checkpoint),
            "--model",
            "convnext_atto_dog",
            "--repo",
            REPO,
            "--eval-json",
            str(tmp_path / "e.json"),
            "--dry-run",
        ],
    )
    assert result.exit_code == 1 and result.output.startswith("Error: eval JSON ") and result.output.count("\n") == 1


def _closed_port() -> int:
    import socket

    with socket.socket() as s:  # bound, never listening, then closed: nothing answers there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "answer,message",
    [
        ("closed port", "cannot reach the Hub at http://127.0.0.1:{port}: connection refused; nothing was committed"),
        ("timeout", "cannot reach the Hub at https://huggingface.co: timed out; nothing was committed"),
        (
            401,
            "failed, nothing was committed: https://huggingface.co rejected the token (401 Unauthorized): set HF_TOKEN",
        ),
        (403, f"failed, nothing was committed: the token may not write to {REPO} (403 Forbidden)"),
        (
            503,
            "failed, nothing was committed: https://huggingface.co answered 503 Service Unavailable (a server error)",
        ),
    ],
)
def test_an_unreachable_or_refusing_hub_is_one_line(answer, message, staged, fake_hub, monkeypatch):
    fake_hub()  # the token, the HTTP library, and the client factory reset afterwards
    httpx = importlib.import_module(type(get_session()).__module__.split(".")[0])
    port = _closed_port()
    if answer == "closed port":
        monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", f"http://127.0.0.1:{port}")
        set_client_factory(lambda: httpx.Client())
    else:

        def handler(request):
            if answer == "timeout":
                raise httpx.ReadTimeout("timed out", request=request)
            return httpx.Response(answer, json={"error": "no"})

        set_client_factory(lambda: httpx.Client(transport=httpx.MockTransport(handler)))
    with pytest.raises(hub.PushError) as error:
        hub.push(staged, REPO)
    assert message.format(port=port) in str(error.value) and "\n" not in str(error.value)
    assert TOKEN not in str(error.value)


# --- issue 15: what is published is what was measured (hand-written train.py-style runs for CI, real runs too) ---

HANDWRITTEN = "mobilenetv3_small_050_dog"
PLAIN_TIMM_EVAL = """
    import json, sys
    import numpy as np
    import timm
    import torch
    model = timm.create_model({source!r}, pretrained=True).eval()
    assert "timm_dog" not in sys.modules, "plain timm must not need the plugin"
    config = timm.data.resolve_data_config({{}}, model=model)
    data = timm.data.create_dataset("", root={val!r}, transform=timm.data.create_transform(**config))
    images = torch.stack([image for image, _ in data])
    targets = torch.tensor([target for _, target in data])
    with torch.inference_mode():
        logits = model(images)
    np.save("images.npy", images.numpy())
    np.save("logits.npy", logits.numpy())
    print(json.dumps({{"top1": 100 * (logits.argmax(1) == targets).float().mean().item(),
                      "input_size": list(config["input_size"])}}))
"""


def _eval_json(tmp_path, model, checkpoint, data, *extra):
    path = tmp_path / f"eval{'-'.join(extra)}.json"
    result = CliRunner().invoke(
        main,
        [
            "eval",
            model,
            "--checkpoint",
            str(checkpoint),
            "--data-dir",
            str(data),
            "--json",
            str(path),
            "--workers",
            "0",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    return path


def _plain_timm_rebuilds(run, model, tmp_path, val, ema):
    """Stage ``run``'s last.pth.tar; plain timm (no plugin) loads the folder: same logits as timm-dog's load of the
    checkpoint, and its top-1 on ``val``; returns (config.json, plain timm's top-1, the eval JSON's top-1)."""
    eval_path = _eval_json(tmp_path, model, run / "last.pth.tar", val, *(["--ema"] if ema else []))
    staged = hub.stage(
        run / "last.pth.tar",
        model,
        tmp_path / "repo",
        repo_id=REPO,
        eval_json=eval_path,
        use_ema=ema,
        datasets=("digits",),
        log=lambda line: None,
    )
    config = json.loads((staged.folder / "config.json").read_text())
    assert config["model_args"]["global_pool"] == "max" and not any(k.startswith("dog_") for k in config["model_args"])
    out = _plain_timm(PLAIN_TIMM_EVAL.format(source=f"local-dir:{staged.folder}", val=str(val)), {}, tmp_path)
    measured = json.loads(out.splitlines()[-1])
    expected, _, _ = load_checkpoint(model, run / "last.pth.tar", use_ema=ema)
    with torch.inference_mode():
        ours = expected(torch.from_numpy(np.load(tmp_path / "images.npy"))).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), ours, atol=1e-5)
    assert measured["input_size"] == config["pretrained_cfg"]["input_size"]
    return config, measured["top1"], json.loads(eval_path.read_text())["top1"]


def test_plain_timm_rebuilds_a_handwritten_run_with_its_model_args(handwritten_runs, digits_300, tmp_path):
    """--gp max reaches config.json's model_args: plain timm rebuilds max pooling, same logits and top-1."""
    config, top1, evaluated = _plain_timm_rebuilds(
        handwritten_runs["ema"], HANDWRITTEN, tmp_path, digits_300 / "val", ema=True
    )
    assert config["pretrained_cfg"]["input_size"] == [3, 32, 32] and top1 == pytest.approx(evaluated, abs=1e-6)
    assert config["timm_dog"]["ema"] is True and config["timm_dog"]["epoch"] == 2


def test_plain_timm_rebuilds_a_real_train_py_run(real_runs, tmp_path):
    """A real train.py run with --gp max and EMA: plain timm's top-1 of the staged folder is train.py's own last
    eval_top1 (of the EMA weights), to 0.01 points."""
    import yaml

    run = real_runs["dog-s0"]
    args = yaml.safe_load((run / "args.yaml").read_text())
    config, top1, evaluated = _plain_timm_rebuilds(run, args["model"], tmp_path, args["data_dir"] + "/val", ema=True)
    summary_top1 = float((run / "summary.csv").read_text().splitlines()[-1].split(",")[3])
    assert top1 == pytest.approx(summary_top1, abs=0.01) and evaluated == pytest.approx(summary_top1, abs=0.01)


def test_export_and_onnx_metadata_use_the_runs_image_size(handwritten_runs, tmp_path):
    import onnx

    checkpoint = handwritten_runs["48px"] / "last.pth.tar"
    staged = hub.stage(checkpoint, HANDWRITTEN, tmp_path / "repo", repo_id=REPO, force=True, log=lambda line: None)
    assert json.loads((staged.folder / "config.json").read_text())["pretrained_cfg"]["input_size"] == [3, 48, 48]
    result = CliRunner().invoke(
        main, ["export", HANDWRITTEN, "--checkpoint", str(checkpoint), "--out", str(tmp_path / "m.onnx")]
    )
    assert result.exit_code == 0, result.output
    for path in (staged.folder / "onnx" / "model.onnx", tmp_path / "m.onnx"):
        meta = {p.key: json.loads(p.value) for p in onnx.load(str(path), load_external_data=False).metadata_props}
        assert meta["input_size"] == [3, 48, 48]


@pytest.mark.parametrize("published_ema", [True, False])
def test_an_eval_of_the_other_weights_is_refused_naming_both(published_ema, handwritten_runs, digits_300, tmp_path):
    """push --ema with an eval of state_dict (and the reverse): refused, naming which weights each is, no stage."""
    run = handwritten_runs["ema"]
    eval_path = _eval_json(
        tmp_path, HANDWRITTEN, run / "last.pth.tar", digits_300, *([] if published_ema else ["--ema"])
    )
    flag = "drop --ema" if published_ema else "add --ema"
    measured, published = ("model's own weights (state_dict, not the EMA)", "EMA weights (state_dict_ema)")[
        :: 1 if published_ema else -1
    ]
    with pytest.raises(
        hub.PushError,
        match=re.escape(
            f"measured the {measured} but the {published} would be published: {flag} to publish the weights it measured"
        ),
    ):
        hub.stage(
            run / "last.pth.tar",
            HANDWRITTEN,
            tmp_path / "repo",
            repo_id=REPO,
            eval_json=eval_path,
            use_ema=published_ema,
            datasets=("digits",),
            log=lambda line: None,
        )
    assert not (tmp_path / "repo").exists()


def test_the_card_says_which_weights_and_epoch_are_published(handwritten_runs, digits_300, tmp_path):
    run = handwritten_runs["ema"]
    eval_path = _eval_json(tmp_path, HANDWRITTEN, run / "model_best.pth.tar", digits_300, "--ema")
    epoch = torch.load(run / "model_best.pth.tar", weights_only=False)["epoch"]
    staged = hub.stage(
        run / "model_best.pth.tar",
        HANDWRITTEN,
        tmp_path / "repo",
        repo_id=REPO,
        eval_json=eval_path,
        use_ema=True,
        datasets=("digits",),
        log=lambda line: None,
    )
    card = (staged.folder / "README.md").read_text()
    assert (
        "**Weights:** the EMA of the training weights (`state_dict_ema`, decay 0.9) of `model_best.pth.tar`,\n"
        f"  saved after epoch {epoch + 1} (epoch index {epoch}, counted from 0)"
    ) in card
    assert "Trained with timm's `train.py` for 3 epochs (by the `summary.csv` beside the checkpoint)" in card
    assert "| `gp` | `max` |" in card and "| `model_ema_decay` | `0.9` |" in card
    assert json.loads((staged.folder / "eval_results.json").read_text())["weights"]["ema"] is True
    plain = hub.stage(
        run / "last.pth.tar", HANDWRITTEN, tmp_path / "plain", repo_id=REPO, force=True, log=lambda line: None
    )
    card = (plain.folder / "README.md").read_text()
    assert "the model's own weights (`state_dict`) of `last.pth.tar`,\n  saved after epoch 3 (epoch index 2" in card
    assert "the run also kept EMA weights, which these are not" in card


def test_push_recipe_of_another_size_is_refused_naming_the_key(handwritten_runs, tmp_path):
    """push --recipe with the args.yaml of a 32 px run for a checkpoint trained at 48 px: exit 1, one line naming
    img_size, nothing staged."""
    result = CliRunner().invoke(
        main,
        [
            "push",
            str(handwritten_runs["48px"] / "last.pth.tar"),
            "--model",
            HANDWRITTEN,
            "--repo",
            REPO,
            "--recipe",
            str(handwritten_runs["ema"] / "args.yaml"),
            "--force",
            "--dry-run",
            "--stage-dir",
            str(tmp_path / "s"),
        ],
    )
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert "--recipe says img_size: 32 but" in result.output and "trained with img_size: 48" in result.output
    assert result.output.count("\n") == 1 and not (tmp_path / "s").exists()


def test_push_recipe_of_another_size_is_refused_on_real_runs(real_runs, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "push",
            str(real_runs["dog-s0-48px"] / "last.pth.tar"),
            "--model",
            _run_model(real_runs["dog-s0-48px"]),
            "--repo",
            REPO,
            "--recipe",
            str(real_runs["dog-s0"] / "args.yaml"),
            "--force",
            "--dry-run",
            "--stage-dir",
            str(tmp_path / "s"),
        ],
    )
    assert result.exit_code == 1 and "--recipe says img_size: 32 but" in result.output
    assert not (tmp_path / "s").exists()


def test_an_eval_at_another_size_or_with_other_model_args_is_refused(handwritten_runs, digits_300, tmp_path):
    """The tensors alone (a safetensors file with nothing beside it) evaluate at timm's default size and pooling;
    published with --recipe (48 px, --gp max), that eval JSON is refused: its input size is not the published one."""
    from safetensors.torch import save_file

    run = handwritten_runs["48px"]
    model, _, _ = load_checkpoint(HANDWRITTEN, run / "last.pth.tar")
    (tmp_path / "w").mkdir()
    save_file(model.state_dict(), str(tmp_path / "w" / "model.safetensors"))
    eval_path = _eval_json(tmp_path, HANDWRITTEN, tmp_path / "w" / "model.safetensors", digits_300)
    kwargs = dict(repo_id=REPO, datasets=("digits",), log=lambda line: None, recipe=yaml_args(run / "args.yaml"))
    with pytest.raises(hub.PushError, match=r"measured at 3x224x224 but the published data config says 3x48x48"):
        hub.stage(tmp_path / "w" / "model.safetensors", HANDWRITTEN, tmp_path / "repo", eval_json=eval_path, **kwargs)
    report = json.loads(eval_path.read_text())
    (tmp_path / "e.json").write_text(json.dumps({**report, "input_size": [3, 48, 48]}))
    with pytest.raises(
        hub.PushError,
        match=r"measured with the model args \{\} but the weights are published with "
        r"\{.*'global_pool': 'max'.*\} \(.*global_pool.* differ\)",
    ):
        hub.stage(
            tmp_path / "w" / "model.safetensors",
            HANDWRITTEN,
            tmp_path / "repo",
            eval_json=tmp_path / "e.json",
            **kwargs,
        )
    assert not (tmp_path / "repo").exists()


def _run_model(run) -> str:
    return yaml_args(run / "args.yaml")["model"]


def yaml_args(path):
    from timm_dog.trainpy.args import read_train_args

    return read_train_args(path)


@pytest.mark.parametrize(
    "content",
    ["- model: mobilenetv3_small_050_dog\n- epochs: 2\n", "epoch,train_loss,eval_top1\n0,2.3,10.0\n", "\x00\x01binary"],
)
def test_push_recipe_that_is_not_an_args_yaml_is_one_line(content, handwritten_runs, tmp_path):
    (tmp_path / "recipe.yaml").write_text(content)
    result = CliRunner().invoke(
        main,
        [
            "push",
            str(handwritten_runs["48px"] / "last.pth.tar"),
            "--model",
            HANDWRITTEN,
            "--repo",
            REPO,
            "--recipe",
            str(tmp_path / "recipe.yaml"),
            "--force",
            "--dry-run",
        ],
    )
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert result.output.startswith(f"Error: {tmp_path / 'recipe.yaml'}: not ") and result.output.count("\n") == 1


@pytest.mark.parametrize("published_ema", [True, False])
def test_the_report_hint_says_the_right_flag(published_ema, tmp_path):
    from timm_dog.report import ReportError, card_section

    evaluated = "state_dict" if published_ema else "EMA (state_dict_ema)"
    (tmp_path / "report.json").write_text(json.dumps({"weights": evaluated, "pairs": []}))
    hint = (
        "drop --ema to publish the weights it evaluated, or remake the report with --ema"
        if published_ema
        else "add --ema to publish the weights it evaluated, or remake the report without --ema"
    )
    with pytest.raises(ReportError, match=re.escape(hint)):
        card_section(tmp_path / "report.json", "0" * 64, "c.pth.tar", "convnext_atto_dog", use_ema=published_ema)


def test_a_card_claims_train_py_only_with_train_py_args(handwritten_runs, tmp_path):
    """A checkpoint saved as the demo saves it (its own loop; args = a record of a few settings) never says
    train.py; the demo's staging says how it trained; a train.py-style run says train.py, with its epochs."""
    import argparse

    from timm_dog.demo import TRAINED_WITH

    run = handwritten_runs["48px"] / "last.pth.tar"
    record = argparse.Namespace(
        model=HANDWRITTEN,
        model_kwargs={"dog_seed": 0},
        num_classes=10,
        img_size=48,
        mean=[0.5] * 3,
        std=[0.5] * 3,
        interpolation="bilinear",
        crop_pct=1.0,
        epochs=2,
        lr=4e-3,
        opt="adamw",
        seed=0,
    )  # what demo.ship saves
    demo_style = tmp_path / "checkpoint" / "model_best.pth.tar"
    demo_style.parent.mkdir()
    torch.save(
        {
            "epoch": 1,
            "arch": HANDWRITTEN,
            "state_dict": torch.load(run, weights_only=False)["state_dict"],
            "args": record,
        },
        demo_style,
    )
    cards = {}
    for name, source, kwargs in (
        ("record", demo_style, {}),
        ("demo", demo_style, {"trained_with": TRAINED_WITH}),
        ("train.py", run, {}),
    ):
        staged = hub.stage(
            source, HANDWRITTEN, tmp_path / name, repo_id=REPO, force=True, log=lambda line: None, **kwargs
        )
        cards[name] = (staged.folder / "README.md").read_text()
    for name in ("record", "demo"):
        assert "Trained with timm's `train.py`" not in cards[name] and "timm's train.py" not in cards[name]
        assert "train.py argument" not in cards[name] and "| `epochs` | `2` |" in cards[name]
    assert "not those of timm's `train.py`" in cards["record"]
    assert "Trained with the timm-dog demo's own training loop (`timm_dog/demo.py`" in cards["demo"]
    assert "Trained with timm's `train.py` for 2 epochs" in cards["train.py"]
    assert "the model's own weights (`state_dict`) of `last.pth.tar`,\n  saved after epoch 2" in cards["train.py"]


def test_a_real_resumed_run_card_counts_epochs_by_the_epoch_column(real_runs, tmp_path):
    """dog-s3-resumed (--val-interval 2, then --resume to 3 epochs): summary.csv has 2 rows, the card says 3 epochs."""
    run = real_runs["dog-s3-resumed"]
    staged = hub.stage(
        run / "last.pth.tar", _run_model(run), tmp_path / "r", repo_id=REPO, force=True, log=lambda line: None
    )
    card = (staged.folder / "README.md").read_text()
    assert "Trained with timm's `train.py` for 3 epochs" in card and "saved after epoch 3 (epoch index 2" in card


def test_staging_refuses_a_missing_token_first_and_removes_its_temporary_folder(monkeypatch, tmp_path):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(hub.PushError, match="no Hugging Face token"):
        with hub.staging():
            raise AssertionError("staged without a token")
    with pytest.raises(KeyboardInterrupt):
        with hub.staging(upload=False) as folder:
            folder.mkdir()
            (folder / "model.safetensors").write_bytes(b"half")
            raise KeyboardInterrupt
    assert not folder.parent.exists()
    with hub.staging(tmp_path / "keep", upload=False) as kept:
        kept.mkdir()
    assert kept == tmp_path / "keep" and kept.is_dir()


def test_stage_refuses_an_eval_json_of_training_images_for_a_python_caller(tmp_path):
    """The library path holds the guard as the CLI does: an eval JSON measured on the run's training folder (written
    by a Python caller, without eval's training_images_of record) is refused by stage, before anything is written."""
    import argparse

    for split in ("train", "val"):
        (tmp_path / "data" / split / "a").mkdir(parents=True)
    model = timm.create_model("convnext_atto_dog", num_classes=2)
    args = argparse.Namespace(
        model="convnext_atto_dog",
        num_classes=2,
        img_size=32,
        data_dir=str(tmp_path / "data"),
        train_split="train",
        val_split="val",
    )
    checkpoint = tmp_path / "run" / "last.pth.tar"
    checkpoint.parent.mkdir()
    torch.save({"epoch": 0, "arch": "convnext_atto_dog", "state_dict": model.state_dict(), "args": args}, checkpoint)
    weights = load_checkpoint("convnext_atto_dog", checkpoint)[2]
    eval_json = tmp_path / "eval.json"
    eval_json.write_text(
        json.dumps(
            {
                "top1": 50.0,
                "top5": 100.0,
                "loss": 0.5,
                "num_images": 2,
                "input_size": [3, 32, 32],
                "weights_sha256": weights.sha256,
                "dataset": {"name": "imagefolder", "folder": str(tmp_path / "data" / "train")},
            }
        )
    )
    with pytest.raises(hub.PushError, match=f"holds the training images of {checkpoint}"):
        hub.stage(
            checkpoint,
            "convnext_atto_dog",
            tmp_path / "repo",
            repo_id="someone/x",
            eval_json=eval_json,
            datasets=("digits",),
            log=lambda line: None,
        )
    assert not (tmp_path / "repo").exists()


def test_the_published_eval_json_holds_no_local_path(staged, eval_json):
    """eval writes the folder it measured absolute (for the training-images guard); the staged eval_results.json
    keeps what lies below its grandparent (the folder, data_dir, the split rule), so no path of this machine is
    published."""
    local = json.loads(Path(eval_json).read_text())["dataset"]["folder"]
    assert Path(local).is_absolute()
    published = json.loads((staged.folder / "eval_results.json").read_text())
    assert published["dataset"]["folder"] == "/".join(Path(local).parts[-2:])
    assert str(Path(local).parent) not in (staged.folder / "eval_results.json").read_text()
    assert hub.published_evaluation({"top1": 1.0}) == {"top1": 1.0}
