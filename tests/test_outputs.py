"""One error path for every command; outputs checked before the work; partial files never left behind."""

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from timm_dog.cli import main
from timm_dog.errors import TimmDogError
from timm_dog.hub import PushError
from timm_dog.onnx import ExportError
from timm_dog.outputs import OutputError, check_output, writing
from timm_dog.recipes import RecipeError

CIFAR = Path(__file__).parents[1] / "recipes" / "cifar10" / "mobilenetv2_100_dog.yaml"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize(
    "error,line",
    [
        (RecipeError("r.yaml: epochs must be > 0"), "r.yaml: epochs must be > 0"),
        (PushError("--repo 'x' is not ORG/NAME"), "--repo 'x' is not ORG/NAME"),
        (ExportError("fp32 export diverges from PyTorch"), "fp32 export diverges from PyTorch"),
        (OutputError("x.txt must end in .json"), "x.txt must end in .json"),
        (TimmDogError("cannot read image a.png"), "cannot read image a.png"),
        (PermissionError(13, "Permission denied", "/data/out.json"), "/data/out.json: Permission denied"),
    ],
)
@pytest.mark.parametrize("group", [(), ("recipe",)])
def test_a_refusal_of_any_command_is_one_line(error, line, group, monkeypatch):
    @click.command()
    def new():
        raise error

    commands = main.commands[group[0]].commands if group else main.commands
    monkeypatch.setitem(commands, "new", new)
    result = invoke(*group, "new")
    assert result.exit_code == 1 and result.output == f"Error: {line}\n"


def test_a_bug_still_shows_its_traceback(monkeypatch):
    @click.command()
    def new():
        raise TypeError("a bug")

    monkeypatch.setitem(main.commands, "new", new)
    result = invoke("new")
    assert isinstance(result.exception, TypeError) and result.exit_code == 1


def test_a_plain_value_error_is_a_bug_too(monkeypatch):
    """Issue 24: only TimmDogError (and OSError) is a refusal; a ValueError from numpy or torch is the package's bug."""

    @click.command()
    def new():
        raise ValueError("cannot read image a.png")

    monkeypatch.setitem(main.commands, "new", new)
    result = invoke("new")
    assert isinstance(result.exception, ValueError) and result.exit_code == 1 and "Error:" not in result.output


def test_a_closed_pipe_exits_quietly_as_click_does(monkeypatch):  # `timm-dog list | head`
    @click.command()
    def new():
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setitem(main.commands, "new", new)
    result = invoke("new")
    assert result.exit_code == 1 and "Error" not in result.output


OUT = object()
# every output a command writes: its command line (OUT where the path goes) and an extension it takes (None: a folder)
OUTPUTS = {
    "show -o": (["show", "-o", OUT], ".png"),
    "analyze --json": (["analyze", "--json", OUT, "convnext_atto_dog"], ".json"),
    "analyze -o": (["analyze", "-o", OUT, "convnext_atto_dog"], ".svg"),
    "eval --json": (["eval", "--json", OUT, "convnext_atto_dog", "--data-dir", "."], ".json"),
    "export --out": (["export", "--out", OUT, "convnext_atto_dog"], ".onnx"),
    "export --json": (["export", "--json", OUT, "--out", "m.onnx", "convnext_atto_dog"], ".json"),
    "sweep -o": (["sweep", "-o", OUT, CIFAR], None),
    "sweep collect -o": (["sweep", "collect", "-o", OUT, "."], None),
    "push --stage-dir": (["push", "--stage-dir", OUT, CIFAR, "--model", "convnext_atto_dog", "--repo", "a/b"], None),
    "demo --out": (["demo", "--out", OUT], None),
}


@pytest.mark.parametrize(
    "output,problem",
    [
        (o, p)
        for o in OUTPUTS
        for p in ("extension", "parent is a file", "read-only folder")
        if OUTPUTS[o][1] or p != "extension"
    ],
)
def test_bad_outputs_are_refused_before_the_work(output, problem, read_only, tmp_path, monkeypatch):
    args, suffix = OUTPUTS[output]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("")
    name = "out" + (suffix or "")
    if problem == "extension":
        out, message = (
            tmp_path / "out.txt",
            "out.txt must end in " + ("one of" if suffix in (".png", ".svg") else suffix),
        )
    elif problem == "parent is a file":
        out, message = tmp_path / "file" / "new" / name, "file is a file, not a folder"
    else:
        out, message = read_only / "new" / name, f"cannot create files in {read_only} ("
    before = sorted(tmp_path.rglob("*"))
    result = invoke(*[out if a is OUT else a for a in args])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert message in result.output.splitlines()[-1] and result.output.splitlines()[-1].startswith("Error: ")
    assert sorted(tmp_path.rglob("*")) == before and not (read_only / "new").exists()


def test_missing_folders_are_created(tmp_path):
    result = invoke("show", "-k", 3, "--gammas", 0.3, "-o", tmp_path / "a" / "b" / "k.pdf")
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "a" / "b").iterdir()] == ["k.pdf"]
    assert (tmp_path / "a" / "b" / "k.pdf").read_bytes().startswith(b"%PDF")
    result = invoke("sweep", CIFAR, "--grid", "dog_gamma=0.1", "-o", tmp_path / "c" / "d")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "c" / "d").iterdir()) == [
        "mobilenetv2_100_dog-baseline.yaml",
        "mobilenetv2_100_dog-gamma0.1.yaml",
    ]


def test_check_output_creates_nothing(tmp_path):
    assert check_output(tmp_path / "a" / "b" / "r.json", (".json",)) == tmp_path / "a" / "b" / "r.json"
    assert check_output(tmp_path / "new", folder=True) == tmp_path / "new"
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "d.json").mkdir()
    with pytest.raises(OutputError, match="d.json is a folder; give a file"):
        check_output(tmp_path / "d.json", (".json",))
    (tmp_path / "r.json").write_text("")
    with pytest.raises(OutputError, match="r.json is a file; give a folder"):
        check_output(tmp_path / "r.json", folder=True)


def test_writing_moves_all_into_place_or_leaves_nothing(tmp_path):
    old = tmp_path / "old.json"
    old.write_text("old")
    (tmp_path / ".a.json.partial").write_text("stale")  # left by a killed run
    (tmp_path / ".a.json.partial.pre").write_text("stale")
    (tmp_path / ".other.json.partial").write_text("another output's")
    with pytest.raises(RuntimeError):
        with writing(tmp_path / "a.json", tmp_path / "new" / "deep" / "b.json") as (a, b):
            assert not (tmp_path / ".a.json.partial.pre").exists()  # stale partials of these names are gone
            a.write_text("a")
            b.write_text("b")
            raise RuntimeError("the work failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.json.partial", "old.json"]  # "new/" removed too

    with pytest.raises(FileNotFoundError):
        with writing(tmp_path / "a.json", tmp_path / "b.json") as (a, b):
            a.write_text("a")  # b never written: its move fails after a's
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.json.partial", "old.json"]

    with writing(tmp_path / "a.json", old) as (a, b):
        a.write_text("a")
        b.write_text("new")
    assert old.read_text() == "new" and (tmp_path / "a.json").read_text() == "a"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.json.partial", "a.json", "old.json"]
