"""Transcode waits end on VOD's callback (emulator -> receiver -> Prefect event), and poll when it is missing."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from prefect import flow

from emulator.config import DEMO_TEMPLATE, DEMO_VID
from flows.app.callbacks_server import create_app, serving
from flows.models import BlockRefs
from flows.engine.callback_events import CallbackEvent
from flows.engine.buy import watch
from flows.engine.waiting import wait_for
from flows.stages.transcode import WORKFLOW_RUN
from providers.vod.models_workflow import StartWorkflowRequest
from tests.harness import Pipeline

KEY = "Wait-Test-Key-1"
RUNNING = 40_000.0  # nominal seconds of transcoding (200 s here): the job ends when a test moves the clock


@flow
async def wait_transcode(run_id: str) -> Any:
    """A stage's wait as flows run it (the engine logs to the run)."""
    return await watch(WORKFLOW_RUN, run_id, refs=BlockRefs(), describe=f"transcode {run_id}")


async def _start_transcode(pipeline: Pipeline) -> str:
    from providers.vod.client import VodClient

    emu = pipeline.emulator
    async with VodClient(emu.access_key, emu.secret_key, endpoint=emu.vod_endpoint) as vod:
        return await vod.start_workflow(StartWorkflowRequest(vid=DEMO_VID, template_id=DEMO_TEMPLATE))


async def _first_poll(emu: Any) -> None:
    async with asyncio.timeout(120):
        while not emu.calls().get("GetWorkflowExecution"):
            await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_a_transcode_wait_ends_within_a_second_of_its_callback(pipeline: Pipeline, monkeypatch: Any) -> None:
    monkeypatch.setenv("CLIPFLOW_CALLBACKS", "true")
    monkeypatch.setenv("CLIPFLOW_CALLBACK_POLL_SECONDS", "100000")  # 500 s here: only the event can end the wait
    emu = pipeline.emulator
    emu.configure(durations={"workflow_pending": 0.0, "workflow_running": RUNNING}, callback_key=KEY)
    with serving(create_app(KEY)) as receiver:
        emu.configure(callback_url=f"{receiver}/vod/callbacks")
        run_id = await _start_transcode(pipeline)
        waiting = asyncio.create_task(wait_transcode(run_id))
        await _first_poll(emu)  # subscribed and saw the job running, however slowly this machine started the flow
        emu.advance(RUNNING)  # the job ends: the emulator's ticker sends the callback
        await asyncio.wait_for(waiting, 60)  # without the event: 500 s
        ended = time.time()
    delivered = [c for c in emu.callbacks() if c["job_id"] == run_id]
    assert [(c["event"], c["status"]) for c in delivered] == [("WorkflowComplete", 200)]
    event = await _event(f"vod.workflow.{run_id}")
    assert ended - event.received.timestamp() < 1.0, (event.occurred, event.received, ended)
    assert emu.calls().get("GetWorkflowExecution") == 2  # once subscribed, then the read after the callback


@pytest.mark.slow
async def test_a_transcode_wait_still_polls_to_the_end_when_the_receiver_is_down(
    pipeline: Pipeline, monkeypatch: Any
) -> None:
    monkeypatch.setenv("CLIPFLOW_CALLBACKS", "true")
    monkeypatch.setenv("CLIPFLOW_CALLBACK_POLL_SECONDS", "60")  # 0.3 s here
    emu = pipeline.emulator
    emu.configure(durations={"workflow_pending": 0.0, "workflow_running": RUNNING}, callback_key=KEY,
                  callback_url="http://127.0.0.1:9/vod/callbacks")  # nothing listens there
    run_id = await _start_transcode(pipeline)
    waiting = asyncio.create_task(wait_transcode(run_id))
    await _first_poll(emu)  # the wait saw the job running, however slowly this machine started the flow
    emu.advance(RUNNING)
    result = await asyncio.wait_for(waiting, 120)
    assert result.state.is_terminal
    assert [c["ok"] for c in emu.callbacks() if c["job_id"] == run_id] == [False]
    assert emu.calls()["GetWorkflowExecution"] >= 2  # polling, not a callback, ended it


async def test_a_wait_whose_subscription_fails_polls_on_the_normal_schedule() -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    polls = 0

    async def poll() -> int:
        nonlocal polls
        polls += 1
        return polls

    started = time.monotonic()
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):  # no Prefect there: subscribing fails
        await wait_for(
            poll, lambda n: n >= 3, delays=[600.0], fallback_delays=[0.05], deadline_seconds=60.0,
            describe="job",
            callback=CallbackEvent("clipflow.callback.WorkflowComplete", f"vod.workflow.{uuid.uuid4().hex}"),
        )
    assert polls == 3 and time.monotonic() - started < 10


async def _event(resource_id: str) -> Any:
    """The one event about ``resource_id`` (the API writes events a moment after the stream delivers them)."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventResourceFilter

    wanted = EventFilter(resource=EventResourceFilter(id=[resource_id]))
    deadline = time.monotonic() + 15
    async with get_client() as client:
        while not (events := (await client.read_events(filter=wanted, limit=5)).events):
            assert time.monotonic() < deadline, f"no event about {resource_id}"
            await asyncio.sleep(0.5)
    assert len(events) == 1, events
    return events[0]
