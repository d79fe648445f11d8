"""clipflow's module loggers reach the run's logs in the Prefect API (what the UI's run page shows)."""

from __future__ import annotations

import asyncio
import logging
import threading
from uuid import UUID

import pytest
from prefect import flow, get_client, task
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler

import flows.runtime  # noqa: F401 - attaches the handler, as importing any stage does
from flows.runtime.run_logs import LIBRARY_LOGGERS, RunLogHandler


@task
def _status_retry() -> None:
    logging.getLogger("flows.engine.waiting").warning("status call failed; retrying (task line)")


@flow
def _stage() -> UUID:
    from prefect.runtime import flow_run

    logging.getLogger("providers.vod.client").info("provider line from the flow")
    logging.getLogger("flows.runtime.debugonly").debug("debug stays out")
    # a heartbeat thread has no run context: dropped quietly, not a warning
    outside = threading.Thread(target=logging.getLogger("flows.coordination.leases").warning, args=("heartbeat",))
    outside.start()
    outside.join()
    _status_retry()
    return UUID(flow_run.id)


async def _messages(run_id: UUID) -> list[tuple[str, str]]:
    await APILogHandler.aflush()
    async with get_client() as client:
        logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
    return [(log.name, log.message) for log in logs]


def test_library_lines_reach_the_run_logs(prefect_api: str, recwarn: pytest.WarningsRecorder) -> None:
    run_id = _stage()
    messages = asyncio.run(_messages(run_id))
    assert ("providers.vod.client", "provider line from the flow") in messages
    assert ("flows.engine.waiting", "status call failed; retrying (task line)") in messages
    assert not any("debug stays out" in m or m == "heartbeat" for _, m in messages), messages
    assert not [w for w in recwarn if "without a flow run id" in str(w.message)]


def test_one_handler_per_logger_however_often_imported() -> None:
    from flows.runtime.run_logs import send_library_logs_to_runs

    send_library_logs_to_runs()
    send_library_logs_to_runs()
    for name in LIBRARY_LOGGERS:
        assert sum(isinstance(h, RunLogHandler) for h in logging.getLogger(name).handlers) == 1
