"""`clipflow setup`'s work pool step against the in-process Prefect API (no PostgreSQL needed)."""

from __future__ import annotations

import uuid

import pytest

from deployments.work_pool import WorkPoolTypeError, ensure_work_pool


async def test_work_pool_is_created_once_and_then_left_alone(prefect_api: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolUpdate

    name = f"pool-{uuid.uuid4().hex[:8]}"
    assert await ensure_work_pool(name) == f"work-pool/{name} (created)"
    async with get_client() as client:
        await client.update_work_pool(name, WorkPoolUpdate(concurrency_limit=3))  # an operator's change
        assert await ensure_work_pool(name, client) == f"work-pool/{name}"
        pool = await client.read_work_pool(name)
    assert pool.type == "process" and pool.concurrency_limit == 3
    assert "command" in pool.base_job_template["variables"]["properties"]


async def test_a_pool_of_another_type_is_refused(prefect_api: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    name = f"pool-{uuid.uuid4().hex[:8]}"
    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(name=name, type="kubernetes"))
    with pytest.raises(WorkPoolTypeError, match="kubernetes"):
        await ensure_work_pool(name)
