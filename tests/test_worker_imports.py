"""A worker installs the package without the ``local`` extra: no worker-path module may need the emulator or moto
when it is imported, nor load uvicorn (a runtime dependency, started only by ``clipflow callbacks serve``)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCKED = ("emulator", "moto", "uvicorn")
WORKER_PACKAGES = ("providers", "blocks", "deployments", "flows")  # every module in them, but:
LOCAL_ONLY = ("flows.app.demo", "flows.app.stack", "flows.app.stack_settings")  # `clipflow demo` and `clipflow up`: need the local extra

# Runs in a fresh interpreter: the blocked packages behave as if they were not installed.
SCRIPT = textwrap.dedent("""
    import importlib, importlib.abc, json, pkgutil, sys, traceback

    blocked, packages, modules, skip = json.loads(sys.argv[1])
    attempts = []

    class Absent(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in blocked:
                attempts.append(name)
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, Absent())
    names = list(modules)
    for package in packages:
        names.append(package)
        found = pkgutil.walk_packages(importlib.import_module(package).__path__, package + ".")
        names += [m.name for m in found if m.name not in skip]
    failed = {}
    for name in names:
        try:
            importlib.import_module(name)
        except BaseException:
            failed[name] = traceback.format_exc(limit=-3)
    print(json.dumps({"imported": names, "failed": failed, "attempts": sorted(set(attempts)),
                      "loaded": sorted(m for m in sys.modules if m.split(".")[0] in blocked)}))
""")


def _import_blocked(packages: tuple[str, ...], modules: tuple[str, ...] = ()) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps([BLOCKED, packages, modules, LOCAL_ONLY])],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_worker_modules_import_without_the_local_extra() -> None:
    found = _import_blocked(WORKER_PACKAGES)
    assert found["failed"] == {}, "\n".join(found["failed"].values())  # type: ignore[union-attr]
    assert found["loaded"] == [] and found["attempts"] == []
    imported = found["imported"]
    for name in ("flows.stages.pipeline", "flows.engine.buy", "flows.app.cli", "flows.app.cost_cli"):
        assert name in imported  # type: ignore[operator]
    assert not set(LOCAL_ONLY) & set(imported)  # type: ignore[arg-type]


def test_the_blocker_catches_a_module_that_needs_the_emulator() -> None:
    found = _import_blocked((), ("flows.app.stack",))  # the local stack: imports the emulator's demo keys
    assert "flows.app.stack" in found["failed"]  # type: ignore[operator]
    assert "emulator" in found["attempts"]  # type: ignore[operator]
