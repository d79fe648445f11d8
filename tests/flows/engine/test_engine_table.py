"""The engine's decision table, fast: every journal state a paid request can be found in x every class of answer
the provider can give, through ``buy()`` against the emulator over HTTP (no Prefect server: quotas off, run
logger disabled). The billing is read from the emulator's ledger, the outcome from the journal.

The expected column is the rule, not a recording: a request is paid at most once; a definite refusal leaves
``refused`` and bills nothing; a lost answer is found through the provider (CreateProject: the project name
carries the fingerprint) or, where the provider offers no way back (Jimeng), stops for an operator.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from prefect.filesystems import LocalFileSystem
from prefect.logging.loggers import disable_run_logger

from emulator.config import DEMO_SPACE, DEMO_VID, FaultRule
from emulator.testing import EmulatorHandle
from flows.models import BlockRefs, EditSpec, ImportedClip
from flows.engine.journal import DuplicateSubmitRiskError, Journal, JournalRecord, fingerprint, now
from flows.engine import incidents
from flows.engine.buy import buy
from flows.runtime.processes import this_process
from flows.stages.edit import CREATE_PROJECT, build_project_request, tagged_project
from flows.stages.generate import JIMENG_SUBMIT
from providers.errors import InvalidRequestError, ProviderError
from providers.jimeng.client import JimengClient
from providers.jimeng.models import JimengVideoRequest
from providers.vod.client import VodClient

CLIP = ImportedClip(vid=DEMO_VID, space_name=DEMO_SPACE, duration_seconds=5.0)

# Journal states a request can be found in before buy() runs.
ABSENT, REFUSED, RELEASED, LOST, DEAD_OWNER, TORN, BOUGHT, LOST_BUT_CREATED = (
    "absent", "refused", "released", "sent, answer lost", "sent by a dead process", "torn record", "bought",
    "sent, answer lost, job exists",
)
# Answers the provider gives to the next submit.
OK = "ok"
THROTTLED = "429 once, then ok"
INVALID = "400 invalid"
LOST_ANSWER = "created, answer lost (504)"
DROPPED = "created, connection dropped"
PROXY_5XX = "5xx without the vendor's body, not created"


@dataclass(frozen=True)
class Outcome:
    billed: int  # CreateProject entries in the ledger at the end
    state: str  # the journal record's state at the end
    error: type[Exception] | None = None  # what the last attempt raised
    retried: bool = False  # the first attempt raised a retryable error and the task's retry finished the job
    events: tuple[str, ...] = ()  # incident events emitted (clipflow.paid-request.<name>)


def _fault(answer: str, action: str) -> list[FaultRule]:
    one = {"action": action, "count": 1, "error_rate": 1.0}
    if answer == THROTTLED:
        return [FaultRule.model_validate({**one, "error": {"status": 429, "code": "Throttling"}})]
    if answer == INVALID:
        return [FaultRule.model_validate({**one, "error": {"status": 400, "code": "InvalidParameter"}})]
    if answer == LOST_ANSWER:
        return [FaultRule.model_validate({**one, "error_after_accept": True})]
    if answer == DROPPED:
        return [FaultRule.model_validate({"action": action, "count": 1, "drop_after_accept": True})]
    if answer == PROXY_5XX:
        return [FaultRule.model_validate({**one, "error": {"status": 502, "body": "proxy", "message": "Bad Gateway"}})]
    return []


def expected(state: str, answer: str) -> Outcome:
    """The rule for CreateProject (reconcilable by name)."""
    if state == BOUGHT:
        return Outcome(0, "submitted")  # reused: nothing is sent, whatever the provider would answer
    if state == LOST_BUT_CREATED:
        return Outcome(1, "submitted", events=("reconciled",))  # found by its name: nothing sent
    if answer == INVALID:
        return Outcome(0, "refused", InvalidRequestError)
    if answer in (LOST_ANSWER, DROPPED):  # created: the listing right after the lost answer finds it
        return Outcome(1, "submitted", events=("outcome-unknown", "reconciled"))
    if answer == PROXY_5XX:  # not created, but not listed is no proof yet: the task's retry lists again, then sends
        return Outcome(1, "submitted", retried=True, events=("outcome-unknown",))
    return Outcome(1, "submitted")  # ok, or throttled and retried in place


@pytest.fixture
def quota_off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CLIPFLOW_QUOTA_LIMITS", "off")
    monkeypatch.setenv("CLIPFLOW_SEND_DEADLINE_SECONDS", "20")
    with disable_run_logger():
        yield


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[str]]:
    """The incident events the engine emitted (clipflow.paid-request.<name>), taken where they leave for Prefect's
    ``emit_event`` (sending them would need a Prefect server to resolve related resources)."""
    names: list[str] = []

    def record(*, event: str, **_kwargs: Any) -> None:
        names.append(event.removeprefix("clipflow.paid-request."))

    monkeypatch.setattr(incidents, "emit_event", record)
    return lambda: list(names)


def _dead_owner() -> dict[str, Any]:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    me = this_process().to_json()
    return {**me, "pid": int(child.stdout), "pid_start": "1"}


async def _prepare(state: str, journal: Journal, fp: str, request: Any, vod: VodClient) -> None:
    base = dict(provider="vod", action="CreateProject", fingerprint=fp, at=now())
    if state in (REFUSED, RELEASED):
        await journal.write(JournalRecord(state=state, **base))
    elif state in (LOST, LOST_BUT_CREATED):
        await journal.write(JournalRecord(state="sent", sent_at=now(), answer_by=None, **base))
        if state == LOST_BUT_CREATED:
            await vod.create_project(request)  # what the lost request did at the provider
    elif state == DEAD_OWNER:
        await journal.write(JournalRecord(
            state="sent", sent_at=now(), owner=_dead_owner(), answer_by=now() + dt.timedelta(hours=1), **base))
    elif state == TORN:
        path = os.path.join(journal.storage.basepath, Journal.path(fp))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write('{"state": "sent", "provider": "vod", "act')
    elif state == BOUGHT:
        await journal.write(JournalRecord(state="submitted", job_id="earlier-project", **base))


STATES = (ABSENT, REFUSED, RELEASED, LOST, DEAD_OWNER, TORN, BOUGHT, LOST_BUT_CREATED)
ANSWERS = (OK, THROTTLED, INVALID, LOST_ANSWER, DROPPED, PROXY_5XX)


@pytest.mark.parametrize("answer", ANSWERS)
@pytest.mark.parametrize("state", STATES)
def test_create_project(
    state: str, answer: str, emu: EmulatorHandle, tmp_path: Any, quota_off: None, events: Callable[[], list[str]]
) -> None:
    journal = Journal(LocalFileSystem(basepath=str(tmp_path)))
    request = build_project_request(f"table-{STATES.index(state)}-{ANSWERS.index(answer)}", CLIP, EditSpec())
    fp = fingerprint("vod", "CreateProject", request.model_dump(mode="json"))
    request = tagged_project(request, fp)
    want = expected(state, answer)

    async def run() -> tuple[Any, Exception | None, bool]:
        async with VodClient(emu.access_key, emu.secret_key, endpoint=emu.vod_endpoint) as vod:
            await _prepare(state, journal, fp, request, vod)
            emu.set_faults(_fault(answer, "CreateProject"))
            retried = False
            while True:
                try:
                    return await buy(CREATE_PROJECT, request, fp=fp, refs=BlockRefs(), client=vod, journal=journal), None, retried
                except ProviderError as exc:  # compared with the table below
                    if not exc.retryable or retried:
                        return None, exc, retried
                    retried = True  # what the task's retry does: buy again

    job, error, retried = asyncio.run(asyncio.wait_for(run(), 60))
    billed = [e for e in emu.ledger() if e["action"] == "CreateProject"]
    record = asyncio.run(journal.read(fp))
    assert len(billed) == want.billed, (state, answer, billed, error)
    assert record is not None and record.state == want.state, (state, answer, record, error)
    if want.error is None:
        assert error is None, (state, answer, error)
        assert job.job_id == record.job_id
        if billed:
            assert job.job_id == billed[0]["job_id"]  # the job paid for, whichever way it was found
    else:
        assert isinstance(error, want.error), (state, answer, error)
    assert retried == want.retried, (state, answer, error)
    emitted = events()
    assert sorted(set(emitted) & {"outcome-unknown", "reconciled"}) == sorted(want.events), (state, answer, emitted)


@pytest.mark.parametrize("answer", (LOST_ANSWER, DROPPED))
def test_a_lost_jimeng_answer_stops_for_an_operator_and_a_rerun_does_not_pay(
    answer: str, emu: EmulatorHandle, tmp_path: Any, quota_off: None, events: Callable[[], list[str]]
) -> None:
    """Jimeng offers no listing and no token: a lost answer is paid once and then handed to a person."""
    journal = Journal(LocalFileSystem(basepath=str(tmp_path)))
    request = JimengVideoRequest(prompt=f"table {answer}", frames=121, aspect_ratio="16:9")
    fp = fingerprint("jimeng", "CVSync2AsyncSubmitTask", request.model_dump(mode="json"))

    async def attempt() -> Exception | None:
        async with JimengClient(emu.access_key, emu.secret_key, endpoint=emu.visual_endpoint) as api:
            try:
                await buy(JIMENG_SUBMIT, request, fp=fp, refs=BlockRefs(), client=api, journal=journal)
            except Exception as exc:  # noqa: BLE001
                return exc
        return None

    emu.set_faults(_fault(answer, "CVSync2AsyncSubmitTask"))
    first = asyncio.run(asyncio.wait_for(attempt(), 60))
    second = asyncio.run(asyncio.wait_for(attempt(), 60))
    assert isinstance(first, DuplicateSubmitRiskError) and isinstance(second, DuplicateSubmitRiskError)
    assert len([e for e in emu.ledger() if e["action"] == "CVSync2AsyncSubmitTask"]) == 1
    record = asyncio.run(journal.read(fp))
    assert record is not None and record.unresolved
    emitted = events()
    assert {"outcome-unknown", "lost-answer", "duplicate-refused"} <= set(emitted), emitted
