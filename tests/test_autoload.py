"""The autoload, tested in fresh interpreters of the installed package."""
import json
import os
import subprocess
import sys

import pytest


def run(code: str, **env) -> dict:
    environment = {k: v for k, v in os.environ.items() if k != "TIMM_DOG_AUTOLOAD"}
    environment.update(env)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                            cwd=os.path.dirname(sys.executable), timeout=300)
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
    out = run("import json, timm_dog, timm; print(json.dumps(len(timm.list_models('*_dog'))))",
              TIMM_DOG_AUTOLOAD="0")
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
