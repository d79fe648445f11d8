"""``make demo ARGS=--json``: zero configuration, one JSON object on stdout, progress on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.models import ProductionResult


@pytest.mark.slow
def test_demo_json_prints_one_production_result() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CLIPFLOW_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # make finds uv/.venv as a user's would
    result = subprocess.run(
        ["make", "--no-print-directory", "demo", "ARGS=--json"], cwd=Path(__file__).resolve().parents[3],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    production = ProductionResult.model_validate(json.loads(result.stdout))  # stdout is exactly one object
    assert production.status == "succeeded"
    assert {lang.language for lang in production.languages} == {"en", "ja"}
    assert "clipflow-demo-secret-key" not in result.stdout + result.stderr
    # progress (plain lines: stderr is not a terminal here) names every stage and what was paid
    for line in ("stage generate: started", "stage edit: finished", "stage transcode: finished",
                 "stage translate: finished", "paid: jimeng CVSync2AsyncSubmitTask -> job "):
        assert line in result.stderr, (line, result.stderr[-3000:])
