"""`make test` relies on pytest-xdist's ``--dist loadgroup`` keeping a group on one worker (tests/conftest.py groups
each e2e/chaos stack). pytest-xdist 3.8 silently stopped grouping on pytest 9.2 (pytest-xdist#1386): this runs a
tiny suite the way the Makefile does and fails if the grouped tests land on two workers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SUITE = '''
import os, pytest

@pytest.mark.xdist_group("one-stack")
@pytest.mark.parametrize("i", range(6))
def test_grouped(i):
    with open(os.environ["WORKERS_FILE"], "a") as f:
        f.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")

@pytest.mark.parametrize("i", range(6))
def test_free(i):
    pass
'''


@pytest.mark.timeout(120)
def test_a_group_runs_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "test_groups.py").write_text(SUITE)
    workers = tmp_path / "workers.txt"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-q", "-p", "no:cacheprovider",
         str(tmp_path / "test_groups.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=110,
        env={"PATH": "/usr/bin:/bin", "WORKERS_FILE": str(workers)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    seen = workers.read_text().split()
    assert len(seen) == 6 and len(set(seen)) == 1, f"the group ran on {sorted(set(seen))}"
