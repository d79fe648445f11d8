"""Operator commands cannot pay by mistake: `clipflow journal release` / `attach` through the real CLI, against the
emulator over HTTP, the result storage the flows write and a real Prefect server (audit trail and events)."""

from __future__ import annotations

import asyncio
import datetime as dt
import getpass
import json
import socket
import time
import uuid
from typing import Any

import pytest

from flows.app.journal_cli import RecordChangedError, in_flight, release
from flows.models import ClipSpec, GatewayClipSpec, JimengClipSpec
from flows.runtime import shared_files
from flows.engine.journal import DuplicateSubmitRiskError, Journal, JournalRecord, now
from flows.runtime.processes import this_process
from flows.stages.generate import generate_clip
from tests.flows.app.test_journal_cli import cli, submits
from tests.harness import Pipeline

pytestmark = pytest.mark.slow


async def lost(pipeline: Pipeline, spec: ClipSpec, submit_action: str, *, settle: bool = True) -> str:
    """A clip whose submit answer is dropped: the flow stops for an operator; returns the fingerprint.
    ``settle``: return only once the send is over by the engine's clock (see ``settled``)."""
    pipeline.emulator.set_faults([{"action": submit_action, "drop_after_accept": True, "count": 1}])
    with pytest.raises(DuplicateSubmitRiskError) as stopped:
        await generate_clip(spec)
    assert stopped.value.record is not None
    fp = stopped.value.record.fingerprint
    if settle:
        await settled(fp)
    return fp


async def settled(fp: str) -> None:
    """The engine counts a send as in flight while its sender may still record the answer: a release refuses
    until then (after a lost answer the sender gives up at once)."""
    deadline = time.monotonic() + 90
    while (record := await record_of(fp)) is not None and in_flight(record):
        assert time.monotonic() < deadline, record
        await asyncio.sleep(1)


def jimeng_spec() -> JimengClipSpec:
    return JimengClipSpec(prompt=f"A lighthouse in fog, operator test {uuid.uuid4().hex[:8]}")


async def record_of(fp: str) -> JournalRecord | None:
    return await (await Journal.default()).read(fp)


def audit_of(prefect_api: str, fp: str) -> list[dict[str, Any]]:
    listed = cli(prefect_api, "audit", fp, "--json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)  # type: ignore[no-any-return]


async def journal_events(since: Any, fp: str, wanted: set[str]) -> list[Any]:
    """The clipflow.journal.* events about ``fp`` since ``since``, once every name in ``wanted`` arrived."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter

    query = EventFilter(
        occurred=EventOccurredFilter(since=since), event=EventNameFilter(prefix=["clipflow.journal."]),
        resource=EventResourceFilter(id=[f"clipflow.paid-request.{fp}"]),
    )
    deadline = time.monotonic() + 30
    async with get_client() as client:
        while True:
            events = (await client.read_events(filter=query, limit=50)).events
            if wanted <= {e.event for e in events} or time.monotonic() > deadline:
                return events
            await asyncio.sleep(1)


@pytest.mark.timeout(300)
async def test_a_lost_answer_is_released_only_when_confirmed_and_the_release_is_audited(
    pipeline: Pipeline, prefect_api: str
) -> None:
    started = now()
    fp = await lost(pipeline, jimeng_spec(), "CVSync2AsyncSubmitTask", settle=False)
    before = await record_of(fp)
    assert not in_flight(before), "the sender gave up waiting: nobody need wait for its answer"
    # While a sender (here: this test process, alive) may still get its answer, a release is refused.
    journal = await Journal.default()
    await journal.write(before.model_copy(update={
        "answer_by": now() + dt.timedelta(seconds=60), "owner": this_process().to_json(),
    }))
    too_soon = cli(prefect_api, "release", fp, "--yes")
    assert too_soon.returncode == 2 and "may still come" in too_soon.stderr, too_soon.stderr
    await journal.write(before)

    unconfirmed = cli(prefect_api, "release", fp)  # no terminal, no --yes

    assert unconfirmed.returncode == 2
    assert "--yes" in unconfirmed.stderr and "nothing changed" in unconfirmed.stderr
    assert "lighthouse" in unconfirmed.stderr and "billed again" in unconfirmed.stderr  # the plan was shown
    assert await record_of(fp) == before
    assert audit_of(prefect_api, fp) == []

    confirmed = cli(prefect_api, "release", fp, "--yes", "--json")

    assert confirmed.returncode == 0, confirmed.stderr
    assert json.loads(confirmed.stdout)["state"] == "released"
    [entry] = audit_of(prefect_api, fp)
    assert entry["action"] == "release" and entry["fingerprint"] == fp
    assert (entry["previous_state"], entry["new_state"], entry["forced"]) == ("sent", "released", False)
    assert (entry["user"], entry["host"]) == (getpass.getuser(), socket.gethostname())
    assert (entry["provider"], entry["provider_action"]) == ("jimeng", "CVSync2AsyncSubmitTask")
    text = cli(prefect_api, "audit", fp[:12])
    assert fp in text.stdout and "sent -> released" in text.stdout and getpass.getuser() in text.stdout
    [event] = await journal_events(started, fp, {"clipflow.journal.release"})
    assert event.payload["previous_state"] == "sent" and event.payload["new_state"] == "released"
    assert event.payload["user"] == getpass.getuser()
    assert len(submits(pipeline)) == 1  # releasing pays nothing by itself


@pytest.mark.timeout(300)
async def test_a_paid_job_is_not_released_without_force_and_a_forced_release_is_audited(
    pipeline: Pipeline, prefect_api: str
) -> None:
    started = now()
    fp = await lost(pipeline, jimeng_spec(), "CVSync2AsyncSubmitTask")
    [paid] = submits(pipeline)
    attached = cli(prefect_api, "attach", fp, paid["job_id"])  # the job exists: recorded, submitted
    assert attached.returncode == 0, attached.stderr
    submitted = await record_of(fp)
    assert submitted is not None and submitted.state == "submitted" and submitted.job_id == paid["job_id"]

    for args in ((), ("--yes",)):  # confirming is not forcing
        refused = cli(prefect_api, "release", fp, *args)
        assert refused.returncode == 2, refused.stdout
        assert "submitted" in refused.stderr and paid["job_id"] in refused.stderr and "--force" in refused.stderr
        assert await record_of(fp) == submitted

    forced = cli(prefect_api, "release", fp, "--force", "--yes")

    assert forced.returncode == 0, forced.stderr
    assert f"the job {paid['job_id']} that was already paid for is given up" in forced.stderr
    after = await record_of(fp)
    assert after is not None and after.state == "released" and after.job_id is None
    attach_entry, release_entry = audit_of(prefect_api, fp)
    assert (attach_entry["action"], attach_entry["previous_state"], attach_entry["new_state"]) == (
        "attach", "sent", "submitted",
    )
    assert attach_entry["job_id"] == paid["job_id"] and attach_entry["detail"]["checked_with"] == "CVSync2AsyncGetResult"
    assert (release_entry["previous_state"], release_entry["new_state"]) == ("submitted", "released")
    assert release_entry["forced"] is True and release_entry["previous_job_id"] == paid["job_id"]
    events = await journal_events(started, fp, {"clipflow.journal.attach", "clipflow.journal.release"})
    assert {e.event for e in events} == {"clipflow.journal.attach", "clipflow.journal.release"}
    assert [e.payload["forced"] for e in events if e.event == "clipflow.journal.release"] == [True]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("spec", "submit_action", "status_action"),
    [
        (jimeng_spec, "CVSync2AsyncSubmitTask", "CVSync2AsyncGetResult"),
        (lambda: GatewayClipSpec(prompt=f"A lantern, operator test {uuid.uuid4().hex[:8]}"), "gateway.create", "query"),
    ],
    ids=["jimeng", "gateway"],
)
async def test_attach_refuses_a_job_the_provider_does_not_know(
    pipeline: Pipeline, prefect_api: str, spec: Any, submit_action: str, status_action: str
) -> None:
    fp = await lost(pipeline, spec(), submit_action)
    before = await record_of(fp)
    billed = pipeline.emulator.ledger()
    made_up = f"typo-{uuid.uuid4().hex[:10]}"

    attached = cli(prefect_api, "attach", fp, made_up)

    assert attached.returncode == 2, attached.stdout
    assert made_up in attached.stderr and "not attached" in attached.stderr and status_action in attached.stderr
    assert await record_of(fp) == before  # still an unresolved lost answer
    assert audit_of(prefect_api, fp) == []
    assert pipeline.emulator.ledger() == billed  # asking about a job costs nothing


async def test_a_record_changed_while_the_operator_decides_is_not_overwritten(
    pipeline: Pipeline, prefect_api: str
) -> None:
    """The operator reads a lost answer; before they confirm, a worker records a job for it. The release is a
    compare-and-swap on the version read: it reports the change and does not wipe that paid job out."""
    fp = await lost(pipeline, jimeng_spec(), "CVSync2AsyncSubmitTask")
    [paid] = submits(pipeline)
    journal = await Journal.default()
    lost_answer = await journal.read(fp)
    assert lost_answer is not None and lost_answer.unresolved
    answered = lost_answer.model_copy(update={"state": "submitted", "job_id": paid["job_id"], "at": now()})

    def a_worker_writes_while_the_operator_reads_the_plan(plan: str) -> bool:
        assert "buys a NEW jimeng" in plan
        # the worker's plain write, to the very file, while the command holds the version it read
        shared_files.write_bytes(journal.storage, Journal.path(fp), answered.model_dump_json().encode())
        return True

    with pytest.raises(RecordChangedError) as changed:
        await release(fp, confirm=a_worker_writes_while_the_operator_reads_the_plan)

    assert "changed meanwhile" in str(changed.value) and paid["job_id"] in str(changed.value)
    assert await journal.read(fp) == answered
    assert audit_of(prefect_api, fp) == []


@pytest.mark.parametrize(
    ("action", "status_action", "space"),
    [
        ("UploadMediaByUrl", "QueryUploadTaskInfo", ""),
        ("SubmitDirectEditTaskAsync", "GetDirectEditResult", ""),
        ("StartWorkflow", "GetWorkflowExecution", ""),
        ("SubmitAITranslationWorkflow", "GetAITranslationProject", "demo"),
        ("CreateProject", "SearchGlobalProject", "demo"),
    ],
)
async def test_every_vod_action_checks_its_job_with_its_own_status_call(
    pipeline: Pipeline, action: str, status_action: str, space: str
) -> None:
    from flows.app.journal_jobs import JobCheckError, UnknownJobError, check_job
    from flows.models import BlockRefs

    billed = pipeline.emulator.ledger()
    with pytest.raises(UnknownJobError, match=status_action) as unknown:
        await check_job("vod", action, "no-such-job-1", refs=BlockRefs(), space=space)
    assert "no-such-job-1" in str(unknown.value)
    if space:
        with pytest.raises(JobCheckError, match="--space"):
            await check_job("vod", action, "no-such-job-1", refs=BlockRefs())
    assert pipeline.emulator.ledger() == billed
