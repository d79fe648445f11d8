"""Shared fixtures come from plugins so each area owns its own file.

The environment is set here, before anything imports Prefect (it reads its settings once): a private
PREFECT_HOME so results, cache records and the submission journal never leak between sessions or into the
user's own Prefect, and the emulator's time scale so the flows' waits shrink with the emulated jobs.
"""

import os
import tempfile

import pytest

from emulator.testing import TEST_TIME_SCALE

_home = tempfile.mkdtemp(prefix="clipflow-tests-")
os.environ["PREFECT_HOME"] = _home
os.environ["PREFECT_LOCAL_STORAGE_PATH"] = os.path.join(_home, "storage")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["CLIPFLOW_TIME_SCALE"] = str(TEST_TIME_SCALE)
os.environ["CLIPFLOW_LOCK_DIR"] = os.path.join(_home, "locks")

pytest_plugins = ["emulator.pytest_plugin", "tests.harness"]

# Fixtures that start a server process (a Prefect API, PostgreSQL, a whole stack): a test using one, directly or
# through another fixture, is ``slow`` whether or not its module says so, so ``make test-fast`` starts no server.
SERVER_FIXTURES = frozenset({"prefect_api", "postgres_prefect", "stack"})
# `make test` runs the suite on pytest-xdist workers (`--dist loadgroup`). The tests of one production-like stack
# (tests/e2e's package-scoped stack, the chaos stacks: each package starts its own PostgreSQL-backed server) form one
# group per package: one worker runs them in order, so a stack and its server start once, not once per worker.
STACK_FIXTURES = frozenset({"postgres_prefect", "stack"})


def pytest_itemcollected(item: pytest.Item) -> None:
    """Marks as each item is collected: before `-m` deselects by marker and before xdist's worker reads the groups
    (tests/test_parallel_groups.py checks that a group still lands on one worker)."""
    fixtures = set(getattr(item, "fixturenames", ()))
    if SERVER_FIXTURES & fixtures and item.get_closest_marker("slow") is None:
        item.add_marker(pytest.mark.slow)
    if STACK_FIXTURES & fixtures:
        package = item.nodeid.split("/")[1]  # tests/<package>/...
        item.add_marker(pytest.mark.xdist_group(f"stack-{package}"))


@pytest.hookimpl(trylast=True)  # after the `slow` marks and `-m` deselection: orders what will run
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest first: the stacks' groups, then the other tests that start servers, then the rest (a stable sort,
    so each file keeps its order and a package's tests stay together). xdist hands work out in this order, so the
    long waits overlap from the start and the suite does not end on one worker still waiting out a slow test."""
    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("xdist_group") is not None:
            return 0
        return 1 if item.get_closest_marker("slow") is not None else 2

    items.sort(key=rank)
