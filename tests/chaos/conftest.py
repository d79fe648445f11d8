"""One stack per test module (see stack.py): the emulator and moto S3, each in its own process, on the package's
PostgreSQL-backed Prefect server (``postgres_prefect``); what is started here is stopped at the end of the module."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.stack import ChaosStack, chaos_stack
from tests.harness import production_server


@pytest.fixture(scope="package")
def postgres_prefect() -> Iterator[Any]:
    """This package's PostgreSQL-backed Prefect server (tests.harness ``production_server``), stopped when the
    package is done."""
    with production_server() as server:
        yield server


@pytest.fixture(scope="module")
def stack(postgres_prefect: Any) -> Iterator[ChaosStack]:
    root = Path(tempfile.mkdtemp(prefix="clipflow-chaos-"))
    try:
        with chaos_stack(root, postgres_prefect) as built:
            yield built
    finally:
        if os.environ.get("CLIPFLOW_CHAOS_KEEP"):  # keep the logs, results, journal and locks to look at
            print(f"chaos: kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
