"""Shared fixtures for the export / predict / eval / push tests: real digits, a trained checkpoint, a staged repo."""
import argparse
import json

import pytest
import torch

DIGITS_ARGS = dict(
    model="convnext_atto_dog", model_kwargs={"dog_seed": 0, "dog_share": 0.7}, num_classes=10, img_size=32,
    mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5], interpolation="bilinear", crop_pct=1.0, epochs=2, lr=4e-3,
    data_dir="/private/data/digits", output="/private/runs",
)


@pytest.fixture(scope="session")
def digits(tmp_path_factory):
    """scikit-learn's digits as an ImageFolder: train/ and val/ (360 images) with class folders 0-9."""
    from timm_dog.demo import write_digits_imagefolder

    return write_digits_imagefolder(tmp_path_factory.mktemp("digits"))


@pytest.fixture(scope="session")
def checkpoint(digits, tmp_path_factory):
    """A train.py-style checkpoint (state_dict + argparse args) of convnext_atto_dog after 2 epochs on digits."""
    from timm_dog.demo import train_and_evaluate

    model, _, _ = train_and_evaluate("convnext_atto_dog", digits, epochs=2, dog_seed=0, dog_share=0.7)
    path = tmp_path_factory.mktemp("run") / "model_best.pth.tar"
    torch.save({"epoch": 0, "arch": "convnext_atto_dog", "state_dict": model.state_dict(),
                "args": argparse.Namespace(**DIGITS_ARGS), "version": 2}, path)
    return path


@pytest.fixture(scope="session")
def eval_json(checkpoint, digits, tmp_path_factory):
    from click.testing import CliRunner

    from timm_dog.cli import main

    path = tmp_path_factory.mktemp("eval") / "eval.json"
    result = CliRunner().invoke(main, ["eval", "convnext_atto_dog", "--checkpoint", str(checkpoint),
                                       "--data-dir", str(digits), "--json", str(path)])
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(scope="session")
def staged(checkpoint, eval_json, digits, tmp_path_factory):
    from timm_dog.hub import stage

    folder = tmp_path_factory.mktemp("stage") / "repo"
    repo = stage(checkpoint, "convnext_atto_dog", folder, repo_id="someone/convnext-atto-dog-digits",
                 eval_json=eval_json, verify_images=digits / "val" / "3", datasets=("digits",), fp16=True,
                 log=lambda line: None)
    assert json.loads((folder / "config.json").read_text())["architecture"] == "convnext_atto"
    return repo



@pytest.fixture
def read_only(tmp_path):
    """A folder in which this user cannot create files: chmod 555 for a normal user; root ignores permissions,
    so for root sysfs, where nobody can create a file."""
    import tempfile
    from pathlib import Path

    def refuses(folder):
        try:
            tempfile.NamedTemporaryFile(dir=folder).close()
        except OSError:
            return True
        return False

    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    chosen = next((f for f in (folder, Path("/sys/fs")) if f.is_dir() and refuses(f)), None)
    if chosen is None:
        folder.chmod(0o755)
        pytest.skip("no folder here refuses new files to this user")
    yield chosen
    folder.chmod(0o755)
