"""trainpy.runs: one model of a train.py run (summary.csv, epochs, arm, settings)."""

import pytest

from timm_dog.errors import TimmDogError
from timm_dog.trainpy.runs import Run, read_summary


def test_read_summary_keys_by_epoch_and_reads_resumed_runs(tmp_path):
    """--val-interval 2 leaves epochs out; --resume writes the header again and repeats the epoch it resumes at."""
    path = tmp_path / "summary.csv"
    path.write_text(
        "epoch,train_loss,eval_loss,eval_top1,eval_top5,lr\n"
        "1,2.0,1.9,20.0,60.0,0.01\n"
        "2,1.5,1.4,30.0,70.0,0.005\n"
        "epoch,train_loss,eval_loss,eval_top1,eval_top5,lr\n"
        "2,1.4,1.3,31.0,71.0,0.005\n"
        "3,nan,1.2,35.0,75.0,\n"
    )
    summary = read_summary(path)
    assert list(summary) == [1, 2, 3]
    assert summary[2]["eval_top1"] == 31.0 and "lr" not in summary[3] and summary[3]["train_loss"] != 0


@pytest.mark.parametrize(
    "text, message",
    [
        ("1,2.0\n", "line 1: a row before the header"),
        ("epoch,eval_top1\none,2\n", "line 2: epoch must be an int"),
        ("epoch,eval_top1\n1,2,3\n", "line 2: 3 values for 2 columns"),
        ("epoch,eval_top1\n", "has no epoch rows"),
    ],
)
def test_read_summary_names_file_and_line(tmp_path, text, message):
    path = tmp_path / "summary.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_summary(path)


def test_report_refuses_dog_kwargs_the_twin_refuses(tmp_path):
    run = Run(tmp_path, {"model": "convnext_atto_dog", "model_kwargs": {"dog_trainable": "maybe"}}, {}, tmp_path)
    with pytest.raises(TimmDogError, match="args.yaml: model_kwargs: trainable must be True or False"):
        _ = run.arm


def test_checkpoint_differences_are_settings_with_absent_ones_and_seeds(tmp_path):
    """eval --compare's rule, in the library: settings that differ (a setting without effect in one run is
    "(absent)" there), the seeds, and what each means for the comparison; nothing to compare without args."""
    import argparse

    import torch

    from timm_dog.trainpy.runs import checkpoint_differences

    def saved(name, **args):
        (tmp_path / name).mkdir()
        torch.save(
            {"state_dict": {}, "args": argparse.Namespace(model="convnext_atto", **args)},
            tmp_path / name / "last.pth.tar",
        )
        return tmp_path / name / "last.pth.tar"

    a = saved("a", seed=0, lr=0.004, model_ema=True, model_ema_decay=0.99)
    b = saved("b", seed=1, lr=0.001)
    differ, seeds, notes = checkpoint_differences(a, b)
    assert differ == ["lr", "model_ema", "model_ema_decay", "model_ema_force_cpu", "model_ema_warmup"]
    assert seeds == [0, 1]
    assert "different seeds (0 vs 1)" in notes[0]
    assert "lr (0.004 vs 0.001), model_ema (True vs False), model_ema_decay (0.99 vs (absent))" in notes[1]
    assert checkpoint_differences(a, saved("c", seed=0, lr=0.004, model_ema=True, model_ema_decay=0.99)) == (
        [],
        [0, 0],
        [],
    )
    (tmp_path / "bare").mkdir()
    torch.save({"w": torch.zeros(1)}, tmp_path / "bare" / "w.pth")
    differ, seeds, (note,) = checkpoint_differences(a, tmp_path / "bare" / "w.pth")
    assert (differ, seeds) == (None, None) and "cannot be compared" in note and "bare/w.pth carries no" in note
