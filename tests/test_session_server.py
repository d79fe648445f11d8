"""The session's Prefect API (tests.harness ``prefect_api``) runs the repossessor like a production server, so a
concurrency slot nobody renews is revoked instead of blocking every later test that needs it."""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid

import pytest


def test_prefects_test_server_is_still_started_the_way_the_harness_copies() -> None:
    """``server_with_repossessor`` re-implements Prefect's private ``_run_uvicorn_command`` minus the ephemeral
    flag: when Prefect changes how its test server starts, this fails and the copy must follow."""
    from prefect.server.api.server import SubprocessASGIServer

    source = inspect.getsource(SubprocessASGIServer._run_uvicorn_command)
    for part in ('"PREFECT__SERVER_EPHEMERAL": "1"', '"prefect.server.api.server:create_app"', "--lifespan",
                 "to_environment_variables(exclude_unset=True)"):
        assert part in source, f"Prefect's test server start changed ({part} missing): update tests/harness.py"


@pytest.mark.timeout(240)
async def test_a_slot_whose_lease_nobody_renews_is_revoked(prefect_api: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    name = f"orphan-{uuid.uuid4().hex[:8]}"
    async with get_client() as client:
        await client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
        # an acquire whose answer never reached its caller: nobody knows the lease, nobody renews or releases it
        await client.increment_concurrency_slots_with_lease(names=[name], slots=1, mode="concurrency",
                                                            lease_duration=60)
        started = time.monotonic()
        while (await client.read_global_concurrency_limit_by_name(name)).active_slots:
            assert time.monotonic() - started < 180, "the orphaned slot was never revoked (no repossessor?)"
            await asyncio.sleep(2)
    assert time.monotonic() - started >= 50  # revoked by its expiry, not released by someone
