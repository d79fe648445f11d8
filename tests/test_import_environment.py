"""Configuration is read at run time only: importing any module of clipflow reads no environment variable, no
settings and no block, so a worker's job variables, a deployment's environment or a test's monkeypatch always
apply, and a bad value fails the run that uses it with the variable's name, not an import.

Every module is imported in a fresh interpreter whose environment is hostile: each ``CLIPFLOW_*`` variable holds
garbage, ``PREFECT_API_URL`` points at a socket that records whether anything connected, and ``os.environ`` and
``ClipflowSettings`` report who reads them."""

from __future__ import annotations

import ast
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from flows.app.block_setup import ENV_VARS
from flows.runtime.settings import ClipflowSettings

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ["flows", "providers", "blocks", "emulator", "deployments", "bench"]

# Imports every module of PACKAGES (no ``__main__``: running those is the CLI, not an import) with os.environ
# and ClipflowSettings instrumented; prints what was read from clipflow code and which imports failed.
PROBE = r"""
import importlib, json, os, pkgutil, sys, traceback

repo, packages = sys.argv[1], sys.argv[2:]
ours = tuple(os.path.join(repo, p) + os.sep for p in packages)
skip = (os.path.dirname(os.__file__), "<frozen ")  # os itself is frozen in 3.11+
reads, failures = [], {}


def caller():
    frame = sys._getframe(3)  # above caller(), record() and the spy
    while frame is not None and frame.f_code.co_filename.startswith(skip):
        frame = frame.f_back  # os.getenv, Mapping.get … : the frame that asked
    return frame.f_code.co_filename if frame is not None else ""


def record(what):
    where = caller()
    if where.startswith(ours):
        reads.append(f"{what} from {os.path.relpath(where, repo)}")


environ = type(os.environ)
for name in ("__getitem__", "__contains__", "__iter__", "get", "copy", "items", "keys", "values"):
    original = getattr(environ, name)

    def spy(self, *args, _name=name, _original=original):
        record(f"os.environ.{_name}{tuple(args)!r}")
        return _original(self, *args)

    setattr(environ, name, spy)

from flows.runtime import settings as settings_module

built = settings_module.ClipflowSettings.__init__


def settings_spy(self, *args, **kwargs):
    reads.append("ClipflowSettings() during import:\n" + "".join(traceback.format_stack(limit=8)))
    return built(self, *args, **kwargs)


settings_module.ClipflowSettings.__init__ = settings_spy

names = []
for package in packages:
    names.append(package)
    module = importlib.import_module(package)
    names += [m.name for m in pkgutil.walk_packages(module.__path__, package + ".")]
for name in names:
    if name.rsplit(".", 1)[-1] == "__main__":
        continue
    try:
        importlib.import_module(name)
    except BaseException:  # noqa: BLE001 - a SystemExit at import is a failure too
        failures[name] = traceback.format_exc(limit=-3)[-1500:]
print("PROBE" + json.dumps({"imported": names, "reads": reads, "failures": failures}))
"""


def hostile_environment(api_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLIPFLOW_", "PREFECT_"))}
    garbage = {name: "garbage \x7f not-a-value" for name in [*ClipflowSettings.variables(), *ENV_VARS]}
    garbage.update({"CLIPFLOW_HOME": "/nonexistent/clipflow", "CLIPFLOW_BENCH_PROFILE": "/nonexistent/profile"})
    return {
        **env, **garbage,
        "PREFECT_HOME": os.environ.get("PREFECT_HOME", str(REPO / ".prefect-import-test")),
        "PREFECT_API_URL": api_url,  # a listener that never answers: a call at import times out, and is seen
        "PREFECT_API_REQUEST_TIMEOUT": "2",
        "PREFECT_CLIENT_MAX_RETRIES": "0",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PYTHONPATH": str(REPO),
    }


@pytest.mark.timeout(300)
def test_importing_every_module_reads_no_configuration() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        api_url = f"http://127.0.0.1:{listener.getsockname()[1]}/api"
        done = subprocess.run([sys.executable, "-c", PROBE, str(REPO), *PACKAGES], cwd=REPO, text=True,
                              capture_output=True, timeout=240, env=hostile_environment(api_url))
        listener.setblocking(False)
        try:
            listener.accept()[0].close()
            connected = True
        except BlockingIOError:
            connected = False
    lines = [line for line in done.stdout.splitlines() if line.startswith("PROBE")]
    assert lines, f"the probe did not finish (exit {done.returncode}): {done.stderr[-3000:]}"
    report = json.loads(lines[-1][len("PROBE"):])
    walked = set(report["imported"])
    assert {"flows.stages.generate", "flows.engine.caching", "flows.app.block_setup", "emulator.app", "bench.vs_plain",
            "deployments.steps", "providers.errors"} <= walked, sorted(walked)
    assert not report["failures"], "imports that fail in a hostile environment:\n" + "\n".join(
        f"{name}: {error}" for name, error in report["failures"].items())
    assert not report["reads"], "configuration read at import:\n" + "\n".join(report["reads"])
    assert not connected, "an import talked to the Prefect API (a block or a setting read at import)"


# Modules still spelling variables out (child environments of the local stack and the demo, the callback
# receiver's messages); every other module takes a name from flows.runtime.settings.
SPELLED_OUT = {"flows/app/cli.py", "flows/app/demo.py", "flows/app/stack.py", "flows/app/stack_settings.py",
               "flows/app/callbacks_server.py",
               "bench/callbacks.py"}


def spelled_names(path: Path) -> list[str]:
    """``CLIPFLOW_*`` names in the module's string literals, docstrings aside (prose may name a variable)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body
        and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        f"{path.relative_to(REPO)}:{node.lineno} {name}" for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
        for name in re.findall(r"CLIPFLOW_[A-Z0-9_]*", node.value)
    ]


def test_each_variable_name_is_spelled_only_in_the_settings() -> None:
    settings_file = REPO / "flows" / "runtime" / "settings.py"
    found = [
        hit for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))
        if path != settings_file and str(path.relative_to(REPO)) not in SPELLED_OUT
        for hit in spelled_names(path)
    ]
    assert not found, "take the name from flows.runtime.settings (variable, setup_variable …):\n" + "\n".join(found)
    assert spelled_names(settings_file), "the scan finds nothing: it cannot fail"
