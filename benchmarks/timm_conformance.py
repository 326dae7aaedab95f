"""Run timm's own tests/test_models.py, unchanged, on ``*_dog`` twins, and on their bases where a twin fails.

    python benchmarks/timm_conformance.py                 # one twin per family + the plugin's own models
    python benchmarks/timm_conformance.py --all           # every twin
    python benchmarks/timm_conformance.py --models convnext_atto_dog,hornet_tiny_gf_dog

The test file comes from timm's source distribution for the installed version
(``pip download --no-deps --no-binary :all: timm==VERSION``, into a temporary folder), or from
``--tests-from PATH`` (a test_models.py of a timm checkout). The default set is, per family of the
committed scan (timm_dog/data), the twin of the smallest base by parameter count, plus the twins of
every model timm-dog defines itself (HorNet, convmixer_512).

pytest runs the file with this script as a plugin (``-p timm_conformance``), which only chooses
models; it changes no test: it deselects the tests of other models, and, because timm picks the
models of its forward_intermediates tests by module name (its FEAT_INTER_FILTERS list), it adds
each chosen twin to its base's module in timm's registry of that pytest process, and timm-dog's
own models (which have forward_intermediates) to the module ``convnext``, the family HorNet's
layout follows. Twins run first; every test a twin fails is then run on its base. A failure the
base has too is timm's, listed as such, unless the base is one of timm-dog's own architectures:
then it is ours. Exit status: 0 when no failure is ours, 1 otherwise, 3 when the test file cannot
be had.
"""

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# env: JSON {"models": [...], "tests": [...] | null, "pairs": [[test, model], ...] | null}
SELECTION = "TIMM_CONFORMANCE_SELECTION"
RESULTS = "TIMM_CONFORMANCE_RESULTS"  # env: where the plugin appends the outcomes (a JSON line per test)
OWN_MODULE = "convnext"  # the module timm-dog's own models join for timm's module-filtered tests
NO_TESTS = 3


# ---- pytest plugin (loaded in the pytest process with -p timm_conformance) ----


def _arch(model_name: str) -> str:
    return model_name.split(".")[0]  # timm's default-cfg tests list tagged names: convnext_atto.d2_in1k


def is_own(base: str) -> bool:
    """Whether timm-dog, not timm, defines the architecture ``base``."""
    from timm.models import model_entrypoint

    return not model_entrypoint(base).__module__.startswith("timm.")


def pytest_configure(config):
    if SELECTION not in os.environ:
        return
    import timm  # noqa: F401  (the autoload registers the twins)
    from timm.models._registry import _model_to_module, _module_to_models

    from timm_dog.models import base_of

    for name in json.loads(os.environ[SELECTION])["models"]:
        base = base_of(name)
        _module_to_models[OWN_MODULE if is_own(base) else _model_to_module[base]].add(name)


def pytest_collection_modifyitems(config, items):
    if SELECTION not in os.environ:
        return
    selection = json.loads(os.environ[SELECTION])
    models, tests, pairs = set(selection["models"]), selection.get("tests"), selection["pairs"]
    pairs = None if pairs is None else {tuple(p) for p in pairs}

    def wanted(item):
        name = getattr(item, "callspec", None) and item.callspec.params.get("model_name")
        if not isinstance(name, str) or _arch(name) not in models or (tests and item.originalname not in tests):
            return False
        return pairs is None or (item.originalname, _arch(name)) in pairs

    keep = [item for item in items if wanted(item)]
    _MODEL_OF.update((item.nodeid, _arch(item.callspec.params["model_name"])) for item in keep)
    config.hook.pytest_deselected(items=[item for item in items if item not in set(keep)])
    items[:] = keep


def pytest_runtest_logreport(report):
    if SELECTION not in os.environ or not (report.when == "call" or report.outcome != "passed"):
        return
    test = report.nodeid.split("::")[-1].partition("[")[0]
    message = str(report.longrepr).strip().splitlines()[-1][:200] if report.longrepr else ""
    record = dict(
        test=test,
        model=_MODEL_OF[report.nodeid],
        outcome=report.outcome,
        message=message,
        seconds=round(report.duration, 2),
    )
    with open(os.environ[RESULTS], "a") as out:  # line by line: an interrupted run keeps what it ran
        out.write(json.dumps(record) + "\n")


_MODEL_OF = {}


# ---- the script ----


def default_models() -> list:
    """Per family of the committed scan the twin of the smallest base, plus the twins of timm-dog's own models."""
    import timm

    from timm_dog.models import DATA_FILE

    scanned = json.loads(DATA_FILE.read_text())["models"]
    smallest = {}
    for name, info in scanned.items():
        current = scanned.get(smallest.get(info["family"]), {"params": float("inf")})
        if timm.is_model(name) and info["params"] < current["params"]:
            smallest[info["family"]] = name
    own = [n for n in scanned if timm.is_model(n) and is_own(n)]
    return sorted({f"{n}_dog" for n in [*smallest.values(), *own]})


def fetch_tests(version: str, folder: Path) -> Path:
    """timm's tests/test_models.py from the sdist of ``version`` (downloaded with pip into ``folder``)."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-q",
            f"timm=={version}",
            "-d",
            str(folder),
        ],
        capture_output=True,
        text=True,
    )
    archives = list(folder.glob(f"timm-{version}.tar.gz"))
    if run.returncode or not archives:
        last = (run.stderr.strip().splitlines() or ["no archive"])[-1]
        raise FileNotFoundError(f"cannot download timm {version}'s source distribution with pip: {last}")
    with tarfile.open(archives[0]) as archive:
        archive.extractall(folder, filter="data")
    path = folder / f"timm-{version}" / "tests" / "test_models.py"
    if not path.is_file():
        raise FileNotFoundError(f"timm {version}'s source distribution has no tests/test_models.py")
    return path


def run_pytest(test_file: Path, models, tests, pairs, results: Path) -> list:
    selection = dict(models=sorted(models), tests=tests, pairs=pairs)
    env = dict(os.environ, **{SELECTION: json.dumps(selection), RESULTS: str(results)})
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "benchmarks"), env.get("PYTHONPATH", "")])
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(test_file),
            "-p",
            "timm_conformance",
            "-p",
            "no:cacheprovider",
            "-q",
            "--tb=no",
            "--no-header",
            "-W",
            "ignore",
            f"--rootdir={test_file.parents[1]}",
        ],
        env=env,
        cwd=test_file.parents[1],
        stdout=sys.stderr,
    )
    return [json.loads(line) for line in results.read_text().splitlines()] if results.is_file() else []


def table(twin_records, base_records, own=frozenset()) -> tuple:
    """Rows: test, twins passed, failed, ours, skipped; plus the failure lines. A failure is ours where the
    base passes, or where the base is one of timm-dog's own architectures (``own``)."""
    from timm_dog.models import base_of

    base_seen = {(r["test"], r["model"]) for r in base_records}
    # (test, base) with any failing item: a base may have several (tagged) items
    base_failed = {(r["test"], r["model"]) for r in base_records if r["outcome"] == "failed"}
    rows, failures = defaultdict(lambda: [0, 0, 0, 0]), []
    for r in twin_records:
        row = rows[r["test"]]
        if r["outcome"] == "passed":
            row[0] += 1
        elif r["outcome"] == "skipped":
            row[3] += 1
        else:
            row[1] += 1
            key = (r["test"], base_of(r["model"]))
            if key[1] in own:
                whose = "ours: timm-dog's own architecture" + (" (fails too)" if key in base_failed else "")
            elif key in base_seen:
                whose = "ours: the base passes" if key not in base_failed else "timm's: the base fails too"
            else:
                whose = "base not run"
            row[2] += whose.startswith("ours")
            failures.append(f"{r['model']} {r['test']}: {whose}: {r['message']}")
    return rows, failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--all", action="store_true", help="every twin")
    group.add_argument("--models", help="comma-separated twins (names ending in _dog)")
    parser.add_argument("--tests", help="comma-separated test functions of test_models.py (default: all)")
    parser.add_argument("--tests-from", type=Path, help="a local test_models.py instead of the sdist's")
    parser.add_argument("--json", type=Path, help="also write the outcomes of every test here")
    args = parser.parse_args(argv)

    import timm

    from timm_dog.models import BASES, base_of

    twins = [f"{b}_dog" for b in BASES] if args.all else args.models.split(",") if args.models else default_models()
    unknown = [n for n in twins if n.removesuffix("_dog") not in BASES or not n.endswith("_dog")]
    if unknown:
        parser.error(f"not a twin: {unknown[0]} (twins are the names of timm.list_models('*_dog'))")
    with tempfile.TemporaryDirectory(prefix="timm-conformance-") as tmp:
        tmp = Path(tmp)
        try:
            test_file = args.tests_from or fetch_tests(timm.__version__, tmp)
        except FileNotFoundError as e:
            print(f"error: {e} (pass --tests-from PATH/test_models.py)", file=sys.stderr)
            return NO_TESTS
        if not test_file.is_file():
            print(f"error: {test_file} does not exist", file=sys.stderr)
            return NO_TESTS
        print(f"timm {timm.__version__}, {test_file}: {len(twins)} twins", file=sys.stderr)
        tests = args.tests.split(",") if args.tests else None
        twin_records = run_pytest(test_file, twins, tests, None, tmp / "twins.jsonl")
        if not twin_records:
            print(f"error: pytest ran no test of the chosen twins from {test_file}", file=sys.stderr)
            return 1
        failed = sorted({(r["test"], base_of(r["model"])) for r in twin_records if r["outcome"] == "failed"})
        bases = {b for _, b in failed}
        base_records = run_pytest(test_file, bases, None, failed, tmp / "bases.jsonl") if failed else []
    if args.json:
        args.json.write_text(json.dumps(dict(twins=twin_records, bases=base_records), indent=1))
    rows, failures = table(twin_records, base_records, {b for b in BASES if is_own(b)})
    print(
        f"| test (timm {timm.__version__} tests/test_models.py) | passed | failed | ours: failed where the base "
        f"passes, or on timm-dog's own models | skipped |\n|---|---|---|---|---|"
    )
    for test, (passed, fail, ours, skipped) in sorted(rows.items()):
        print(f"| {test} | {passed} | {fail} | {ours} | {skipped} |")
    total = [sum(r[i] for r in rows.values()) for i in range(4)]
    print(f"| **all {sum(total)} tests of {len(twins)} twins** | {total[0]} | {total[1]} | {total[2]} | {total[3]} |")
    for line in failures:
        print(f"- {line}")
    return 1 if total[2] or any("base not run" in f for f in failures) else 0


if __name__ == "__main__":
    sys.exit(main())
