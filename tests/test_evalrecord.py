"""timm_dog.evalrecord: eval --compare's rules (its sides' precision and names, the settings and seeds of two runs),
the guard against training images, and the eval JSON (writer and reader)."""

import json
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from timm_dog.cli import main
from timm_dog.errors import TimmDogError
from timm_dog.evalrecord import compare_precision, read, record, settings_differences, side_names


def test_compare_precision_is_amps_unless_compare_amp_says_otherwise():
    assert compare_precision("bf16", None) == "bf16" and compare_precision(None, None) is None
    assert compare_precision("bf16", "fp32") is None and compare_precision(None, "fp16") == "fp16"


def test_side_names_say_what_sets_equal_sources_apart():
    assert side_names([("a", None, False, None), ("b", None, False, None)]) == ["a", "b"]
    assert side_names([("m", "c.pth", False, None), ("m", "c.pth", True, None)]) == [
        "m (model weights)",
        "m (EMA weights)",
    ]
    assert side_names([("m", "x", False, "bf16"), ("m", "y", False, None)]) == ["m (x, bf16)", "m (y, fp32)"]
    assert side_names([("m", None, False, None)] * 2) == ["m", "m"]


def _result(correct, top1):
    fields = {"source": "s", "top1": top1, "top5": 100.0, "loss": 0.5, "num_images": len(correct), "dataset": {}}
    return SimpleNamespace(correct=np.array(correct), top1=top1, to_dict=lambda: dict(fields))


def test_the_eval_json_written_is_the_one_read(tmp_path):
    one = record([_result([1, 1, 0, 1], 75.0)])
    path = tmp_path / "e.json"
    path.write_text(json.dumps(one))
    assert read(path) == one
    both = record([_result([1, 1, 0, 1], 75.0), _result([0, 1, 0, 0], 25.0)], ([], [0, 1]))
    assert both["top1_difference"] == 50.0 and both["seeds"] == [0, 1] and both["settings_differences"] == []
    assert (both["mcnemar"]["only_a_correct"], both["mcnemar"]["only_b_correct"]) == (2, 0)
    path.write_text(json.dumps(both))
    assert read(path) == both["a"]  # --compare: its first source
    for bad, message in (
        ({**one, "top1": 101.0, "top5": 101.0}, "impossible numbers"),
        ({k: v for k, v in one.items() if k != "loss"}, "lacks loss"),
        ([one], "is not a report"),
    ):
        path.write_text(json.dumps(bad))
        with pytest.raises(TimmDogError, match=message):
            read(path)


def test_eval_compare_names_its_sides_and_says_when_seeds_differ(train_runs, digits, tmp_path, capsys):
    """Issue 23, point 8: one checkpoint's model and EMA weights are two distinctly named sides (in McNemar's
    sentence and the progress bars, which name the twin, not its base architecture); runs of other seeds get a
    note saying so, and the JSON lists the seeds."""
    dog = train_runs["convnext_atto_dog", 0]
    checkpoint = tmp_path / "ema.pth.tar"
    saved = torch.load(dog / "last.pth.tar", weights_only=False)
    saved["state_dict_ema"] = {k: v * 0.5 if v.is_floating_point() else v for k, v in saved["state_dict"].items()}
    torch.save(saved, checkpoint)
    result = CliRunner().invoke(
        main,
        [
            "eval",
            "convnext_atto_dog",
            "--checkpoint",
            str(checkpoint),
            "--compare",
            "convnext_atto_dog",
            "--compare-checkpoint",
            str(checkpoint),
            "--compare-ema",
            "--data-dir",
            str(digits / "val"),
            "--workers",
            "0",
            "--json",
            str(tmp_path / "ema.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "images right only for convnext_atto_dog (model weights), " in result.output
    assert " only for convnext_atto_dog (EMA weights))" in result.output
    assert "eval convnext_atto_dog (EMA weights):" in result.output and "eval convnext_atto:" not in result.output
    assert "different seeds" not in result.output and json.loads((tmp_path / "ema.json").read_text())["seeds"] == [0, 0]
    other = train_runs["convnext_atto", 1] / "last.pth.tar"
    to_stderr = lambda line: print(line, file=sys.stderr)  # noqa: E731  (as the command prints its notes)
    assert settings_differences(dog / "last.pth.tar", other, log=to_stderr) == ([], [0, 1])
    assert (
        f"note: {dog / 'last.pth.tar'} and {other} were trained with different seeds (0 vs 1): other data "
        "order, augmentation and drop-path"
    ) in capsys.readouterr().err
