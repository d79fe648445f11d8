"""The session's Prefect API (tests.harness ``prefect_api``) runs the repossessor like a production server, so a
concurrency slot nobody renews is revoked instead of blocking every later test that needs it: tests/flows/
coordination/test_leases.py (the lease period test) proves the revocation on that server; this file watches the
private Prefect method the harness copies to get it."""

from __future__ import annotations

import inspect


def test_prefects_test_server_is_still_started_the_way_the_harness_copies() -> None:
    """``server_with_repossessor`` re-implements Prefect's private ``_run_uvicorn_command`` minus the ephemeral
    flag: when Prefect changes how its test server starts, this fails and the copy must follow."""
    from prefect.server.api.server import SubprocessASGIServer

    source = inspect.getsource(SubprocessASGIServer._run_uvicorn_command)
    for part in ('"PREFECT__SERVER_EPHEMERAL": "1"', '"prefect.server.api.server:create_app"', "--lifespan",
                 "to_environment_variables(exclude_unset=True)"):
        assert part in source, f"Prefect's test server start changed ({part} missing): update tests/harness.py"
