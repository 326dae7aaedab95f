"""The autoload, tested in fresh interpreters of the installed package."""

import json
import os
import subprocess
import sys

import pytest


def run(code: str, **env) -> dict:
    environment = {k: v for k, v in os.environ.items() if k != "TIMM_DOG_AUTOLOAD"}
    environment.update(env)
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=environment,
        cwd=os.path.dirname(sys.executable),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


PROBE = """
import json, sys
import timm
print(json.dumps({
    "dog_models": len(timm.list_models("*_dog")),
    "plugin_imported": "timm_dog" in sys.modules,
    "is_model": timm.is_model("convnext_tiny_dog"),
}))
"""


def test_plain_timm_process_sees_the_models():
    out = run(PROBE)
    assert out["dog_models"] > 120 and out["is_model"] and out["plugin_imported"]


def test_create_model_works_without_importing_timm_dog():
    out = run(
        "import json, timm\n"
        "m = timm.create_model('convnext_atto_dog', num_classes=3)\n"
        "print(json.dumps({'set': m.dog_init_report.kernels_set, 'arch': m.pretrained_cfg['architecture']}))"
    )
    assert out["set"] > 0 and out["arch"] == "convnext_atto_dog"


@pytest.mark.parametrize("value", ["0", "false", "off"])
def test_env_var_turns_it_off(value):
    out = run(PROBE, TIMM_DOG_AUTOLOAD=value)
    assert out == {"dog_models": 0, "plugin_imported": False, "is_model": False}


def test_explicit_import_still_works_with_autoload_off():
    out = run("import json, timm_dog, timm; print(json.dumps(len(timm.list_models('*_dog'))))", TIMM_DOG_AUTOLOAD="0")
    assert out > 120


def test_importing_the_plugin_first_registers_once():
    code = (
        "import json, warnings\n"
        "warnings.simplefilter('error')\n"
        "import timm_dog, timm\n"
        "import timm.models._registry as r\n"
        "print(json.dumps(sum(1 for n in r._model_entrypoints if n.endswith('_dog'))))"
    )
    assert run(code) == len(__import__("timm").list_models("*_dog"))


def test_processes_without_timm_load_nothing():
    out = run(
        "import json, sys, importlib\n"
        "import email.mime.text\n"
        "print(json.dumps(sorted(m for m in ('torch', 'timm', 'timm_dog', 'numpy') if m in sys.modules)))"
    )
    assert out == []


def test_finder_is_installed_and_one_shot():
    out = run(
        "import json, sys, timm_dog_autoload as a\n"
        "before = a._FINDER in sys.meta_path\n"
        "import timm\n"
        "print(json.dumps([before, a._FINDER in sys.meta_path, timm.__loader__.__class__.__name__]))"
    )
    assert out[0] is True and out[1] is False and out[2] != "_RegisterAfterLoad"


def test_timm_submodule_import_first():
    out = run("import json, timm.models.convnext, timm; print(json.dumps(timm.is_model('efficientnet_b0_dog')))")
    assert out is True


# timm.layers without a name that a family's code imports: what an older timm release looks like to that family
WITHOUT_A_NAME = (
    "import json, sys, warnings\n"
    "import timm.layers\n"
    "del timm.layers.register_notrace_function\n"
    "warnings.simplefilter('always')\n"
)


def test_a_family_that_cannot_load_is_skipped_alone_with_one_warning():
    import timm

    out = run(
        WITHOUT_A_NAME + "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import timm_dog.models\n"
        "import timm\n"
        "m = timm.create_model('convmixer_512_dog', num_classes=3, dog_seed=0)\n"
        "print(json.dumps({'twins': timm.list_models('*_dog'), 'hornet': timm.list_models('hornet*'),\n"
        "                  'skipped': timm_dog.models.SKIPPED, 'set': m.dog_init_report.kernels_set,\n"
        "                  'warnings': [str(w.message) for w in caught if 'timm-dog' in str(w.message)]}))",
        TIMM_DOG_AUTOLOAD="0",
    )
    assert out["hornet"] == [] and list(out["skipped"]) == ["hornet"]
    assert out["twins"] == [n for n in timm.list_models("*_dog") if not n.startswith("hornet_")]
    assert len(out["twins"]) == len(timm.list_models("*_dog")) - 6 and out["set"] > 0
    assert len(out["warnings"]) == 1, out["warnings"]
    assert all(s in out["warnings"][0] for s in ("hornet", f"timm {timm.__version__}", "register_notrace_function"))


@pytest.mark.parametrize("args", [["--version"], ["list", "--table", "hornet*"]])
def test_the_cli_says_what_was_skipped(args):
    import timm

    code = WITHOUT_A_NAME + f"from timm_dog.cli import main\nmain({args!r}, prog_name='timm-dog')"
    environment = {**{k: v for k, v in os.environ.items() if k != "TIMM_DOG_AUTOLOAD"}, "TIMM_DOG_AUTOLOAD": "0"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=environment,
        cwd=os.path.dirname(sys.executable),
        timeout=300,
    )
    skipped = f"skipped on timm {timm.__version__}: the hornet models and their twins (ImportError: "
    if args == ["--version"]:
        assert result.returncode == 0, result.stderr
        first, second = result.stdout.splitlines()
        assert first.startswith(f"timm-dog {__import__('timm_dog').__version__} (timm {timm.__version__}, torch ")
        assert second.startswith(skipped)
    else:
        assert result.returncode == 1 and f"\n{skipped}" in result.stderr
        assert result.stderr.rstrip().endswith("Error: no model matches 'hornet*'")
