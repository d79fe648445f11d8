"""The process work pool the deployments in prefect.yaml run on; created idempotently by ``clipflow setup``."""

from __future__ import annotations

from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

DEFAULT_POOL = "clipflow"
POOL_TYPE = "process"


class WorkPoolTypeError(ValueError):
    """A pool with the wanted name exists but is of another type: replacing it would strand its workers."""


async def ensure_work_pool(name: str = DEFAULT_POOL, client: PrefectClient | None = None) -> str:
    """Create the process work pool ``name`` unless it exists; returns a line saying which. Existing pools are left
    as they are (an operator may have paused it or set a concurrency limit in the UI)."""
    if client is None:
        async with get_client() as own:
            return await ensure_work_pool(name, own)
    try:
        pool = await client.read_work_pool(name)
    except ObjectNotFound:
        from prefect.workers.process import ProcessWorker

        template = ProcessWorker.get_default_base_job_template()
        try:
            await client.create_work_pool(
                WorkPoolCreate(
                    name=name, type=POOL_TYPE, base_job_template=template,
                    description=f"clipflow flow runs as local processes (prefect worker start --pool {name})",
                )
            )
            return f"work-pool/{name} (created)"
        except ObjectAlreadyExists:  # another setup won the race
            pool = await client.read_work_pool(name)
    if pool.type != POOL_TYPE:
        raise WorkPoolTypeError(f"work pool {name!r} exists with type {pool.type!r}, expected {POOL_TYPE!r}")
    return f"work-pool/{name}"
