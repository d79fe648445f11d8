"""``clipflow demo --json``: zero configuration, one JSON object on stdout."""

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
    result = subprocess.run(
        [str(Path(sys.executable).with_name("clipflow")), "demo", "--json"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    production = ProductionResult.model_validate(json.loads(result.stdout))  # stdout is exactly one object
    assert production.status == "succeeded"
    assert {lang.language for lang in production.languages} == {"en", "ja"}
    assert "clipflow-demo-secret-key" not in result.stdout + result.stderr
