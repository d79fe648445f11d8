"""The journal decides who pays: racing buys of one request, sends in flight, torn records.

No cache lock is involved anywhere here: ``buy`` is called directly (what two workers whose locks are not shared,
lost or expired amount to), so whatever keeps the bill at one is the journal's conditional write."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from prefect import flow

from emulator.config import DEMO_SPACE, DEMO_VID
from flows.models import BlockRefs, EditSpec, ImportedClip, JimengClipSpec
from flows.engine import journal as journal_module
from flows.engine.buy import buy
from flows.engine.journal import DuplicateSubmitRiskError, Journal, JournalRecord, SubmittedJob, fingerprint, now
from flows.stages.edit import CREATE_PROJECT, _project_wire, build_project_request, tagged_project
from flows.stages.generate import JIMENG_SUBMIT, build_clip_request
from tests.harness import Pipeline

pytestmark = pytest.mark.slow

CLIP = ImportedClip(vid=DEMO_VID, space_name=DEMO_SPACE, duration_seconds=5.0)


def billed(pipeline: Pipeline) -> Counter[str]:
    return Counter(entry["action"] for entry in pipeline.emulator.ledger())


async def project_purchase() -> tuple[Any, str]:
    """A CreateProject request no other test buys, and its fingerprint (as the edit stage computes it)."""
    from flows.runtime import resources

    request = build_project_request(f"race-{uuid.uuid4().hex[:8]}", CLIP, EditSpec())
    account = resources.account_id(await resources.volcengine(BlockRefs()))
    fp = fingerprint("vod", "CreateProject", _project_wire(request), account)
    return tagged_project(request, fp), fp


@flow
async def buy_many(request: Any, fp: str, n: int) -> list[SubmittedJob]:
    return list(await asyncio.gather(*(buy(CREATE_PROJECT, request, fp=fp, refs=BlockRefs()) for _ in range(n))))


@flow
async def buy_once(action_name: str, request: Any, fp: str) -> SubmittedJob:
    action = {"CreateProject": CREATE_PROJECT, "CVSync2AsyncSubmitTask": JIMENG_SUBMIT}[action_name]
    return await buy(action, request, fp=fp, refs=BlockRefs())


async def test_concurrent_buys_of_one_request_pay_once(pipeline: Pipeline) -> None:
    # A slow answer keeps the first send in flight while the others arrive.
    pipeline.emulator.set_faults([{"action": "CreateProject", "latency": 1.0, "count": 1}])
    request, fp = await project_purchase()

    jobs = await buy_many(request, fp, 4)

    assert billed(pipeline)["CreateProject"] == 1
    assert len({job.job_id for job in jobs}) == 1
    assert sorted(job.reused for job in jobs) == [False, True, True, True]


CHILD = textwrap.dedent(
    """
    import asyncio, json, os, sys, time
    from prefect import flow
    from flows.models import BlockRefs
    from flows.engine.buy import buy
    from flows.stages.edit import CREATE_PROJECT
    from providers.vod.models import CreateProjectRequest

    request = CreateProjectRequest.model_validate_json(sys.argv[1])
    fp, start_at = sys.argv[2], float(sys.argv[3])

    @flow
    async def child() -> str:
        await asyncio.sleep(max(0.0, start_at - time.time()))  # every child sends at the same moment
        job = await buy(CREATE_PROJECT, request, fp=fp, refs=BlockRefs())
        return job.job_id

    print("JOB", asyncio.run(child()), flush=True)
    """
)


@pytest.mark.timeout(300)
async def test_racing_processes_pay_once(pipeline: Pipeline, prefect_api: str) -> None:
    """Three OS processes (workers whose locks are not shared) buy one request at the same moment."""
    pipeline.emulator.set_faults([{"action": "CreateProject", "latency": 1.0, "count": 1}])
    request, fp = await project_purchase()
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "PREFECT_API_URL": prefect_api}
    start_at = time.time() + 25  # past every child's start-up, even on a busy machine
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, request.model_dump_json(by_alias=False), fp, str(start_at)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    outputs = [(await asyncio.to_thread(child.communicate, timeout=240))[0].decode() for child in children]

    job_ids = [line.split()[1] for out in outputs for line in out.splitlines() if line.startswith("JOB ")]
    assert len(job_ids) == 3, "\n---\n".join(o[-2000:] for o in outputs)
    assert billed(pipeline)["CreateProject"] == 1
    assert len(set(job_ids)) == 1


async def test_a_send_in_flight_elsewhere_is_waited_for_not_sent_again(pipeline: Pipeline, monkeypatch: Any) -> None:
    """A `sent` record of a process on another machine whose answer may still come: wait until its answer_by
    (plus the clock margin) has passed, then reconcile (here: the provider lists nothing, so it is sent)."""
    monkeypatch.setattr(journal_module, "SKEW_MARGIN_SECONDS", 0.5)
    request, fp = await project_purchase()
    journal = await Journal.default()
    sent = now()
    answer_by = sent + dt.timedelta(seconds=3)
    await journal.write(JournalRecord(
        state="sent", provider="vod", action="CreateProject", fingerprint=fp, at=sent, sent_at=sent,
        owner={"host": "another-machine", "pid": 1}, answer_by=answer_by,
    ))

    job = await buy_once("CreateProject", request, fp)

    ledger = [e for e in pipeline.emulator.ledger() if e["action"] == "CreateProject"]
    assert len(ledger) == 1 and ledger[0]["job_id"] == job.job_id
    assert ledger[0]["time"] >= answer_by.timestamp(), "sent while the other send was in flight"


async def test_a_dead_owners_send_is_taken_over_at_once(pipeline: Pipeline) -> None:
    """Same host, owner process gone: nothing to wait for (its answer_by is an hour away)."""
    from flows.runtime.processes import this_process

    request, fp = await project_purchase()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    journal = await Journal.default()
    sent = now()
    owner = {**this_process().to_json(), "pid": dead.pid, "pid_start": "0"}
    await journal.write(JournalRecord(
        state="sent", provider="vod", action="CreateProject", fingerprint=fp, at=sent, sent_at=sent,
        owner=owner, answer_by=sent + dt.timedelta(hours=1),
    ))

    job = await asyncio.wait_for(buy_once("CreateProject", request, fp), timeout=120)

    assert [e["job_id"] for e in pipeline.emulator.ledger() if e["action"] == "CreateProject"] == [job.job_id]


@pytest.mark.parametrize("torn", [b"", b'{"state": "submitted", "provider": "vod", "act'], ids=["empty", "cut-mid-json"])
async def test_a_torn_record_is_reconciled_where_the_provider_can_list(pipeline: Pipeline, torn: bytes) -> None:
    request, fp = await project_purchase()
    journal = await Journal.default()
    path = os.path.join(journal.storage.basepath, journal.path(fp))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(torn)

    job = await buy_once("CreateProject", request, fp)

    assert billed(pipeline)["CreateProject"] == 1  # the listing proved nothing was created: paid once
    record = await journal.read(fp)
    assert record.bought and record.job_id == job.job_id


async def test_a_torn_record_of_an_unlistable_provider_stops_for_an_operator(pipeline: Pipeline) -> None:
    from flows.runtime import resources

    spec = JimengClipSpec(prompt=f"torn record {uuid.uuid4().hex[:6]}")
    request = build_clip_request(spec)
    fp = fingerprint("jimeng", "submit", {"torn": spec.prompt}, resources.account_id(await resources.volcengine(BlockRefs())))
    journal = await Journal.default()
    path = os.path.join(journal.storage.basepath, journal.path(fp))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(b"")

    with pytest.raises(DuplicateSubmitRiskError) as stopped:
        await buy_once("CVSync2AsyncSubmitTask", request, fp)

    message = str(stopped.value)
    assert "unreadable record" in message and f"clipflow journal release {fp}" in message
    assert "JSONDecodeError" not in message
    assert billed(pipeline)["CVSync2AsyncSubmitTask"] == 0


async def test_a_torn_cache_record_costs_nothing(pipeline: Pipeline) -> None:
    """Prefect's own result record of a paid task cut to nothing (a disk fault, a kill mid-write on a storage
    without atomic writes): Prefect reads it as no record and runs the task again; the journal answers with the
    job already bought."""
    from flows.engine.caching import storage_key
    from flows.stages.edit import create_edit_project

    title = f"torn-cache-{uuid.uuid4().hex[:6]}"
    first = await create_edit_project(title, CLIP, EditSpec())
    request, fp = build_project_request(title, CLIP, EditSpec()), None
    from flows.runtime import resources

    fp = fingerprint("vod", "CreateProject", _project_wire(request), resources.account_id(await resources.volcengine(BlockRefs())))
    journal = await Journal.default()
    record_path = os.path.join(journal.storage.basepath, storage_key(f"clipflow-project-{fp}"))
    assert os.path.exists(record_path), "the cache record is not where the test expects it"
    with open(record_path, "wb"):
        pass

    again = await create_edit_project(title, CLIP, EditSpec())

    assert again.project_id == first.project_id
    assert billed(pipeline)["CreateProject"] == 1
