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
SERVER_FIXTURES = frozenset({"prefect_api", "postgres_prefect", "repossessing_api", "stack"})
# `make test` runs the suite on pytest-xdist workers (`--dist loadgroup`). The tests of the production-like server
# (tests/e2e's package-scoped stack, the chaos stacks, everything on ``postgres_prefect``) form one group: one worker
# runs them in order, so the session starts one PostgreSQL server and one e2e stack, not one per worker.
PRODUCTION_SERVER_GROUP = "production-server"
_last_postgres_user: list[pytest.Item] = []


def _uses_production_server(item: pytest.Item) -> bool:
    parts = item.nodeid.split("/")
    return (parts[:2] in (["tests", "e2e"], ["tests", "chaos"])
            or "postgres_prefect" in getattr(item, "fixturenames", ()))


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker, and before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())) and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow)
        if _uses_production_server(item):
            item.add_marker(pytest.mark.xdist_group(PRODUCTION_SERVER_GROUP))


@pytest.hookimpl(trylast=True)  # after `-m`/`-k` deselection: the items that will run
def pytest_collection_finish(session: pytest.Session) -> None:
    users = [item for item in session.items if "postgres_prefect" in getattr(item, "fixturenames", ())]
    _last_postgres_user[:] = users[-1:]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):  # noqa: ANN201 - a hook wrapper
    yield  # the item's fixtures (a stack's workers) are torn down first
    if _last_postgres_user and item is _last_postgres_user[0]:
        from tests.harness import stop_shared_servers

        stop_shared_servers()  # its last user is done: no idling through the rest of the suite
