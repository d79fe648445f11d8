"""The paid-job engine under a real Prefect API, against the emulator over HTTP (billing read from its ledger)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from typing import Any

import pytest

from emulator.config import DEMO_SPACE, DEMO_VID
from flows.models import BlockRefs, EditSpec, ImportedClip, TranslateSpec
from flows.engine.journal import Journal, JournalRecord, fingerprint, now
from flows.stages.edit import build_project_request, create_edit_project, tagged_project
from flows.stages.translate import ai_translate, build_translation_request
from tests.harness import Pipeline

pytestmark = pytest.mark.slow

CLIP = ImportedClip(vid=DEMO_VID, space_name=DEMO_SPACE, duration_seconds=5.0)


def billed(pipeline: Pipeline) -> Counter[str]:
    return Counter(entry["action"] for entry in pipeline.emulator.ledger())


def jobs(pipeline: Pipeline, action: str) -> list[str]:
    return [entry["job_id"] for entry in pipeline.emulator.ledger() if entry["action"] == action]


def vod_client(pipeline: Pipeline) -> Any:
    from providers.vod.client import VodClient

    emu = pipeline.emulator
    return VodClient(emu.access_key, emu.secret_key, endpoint=emu.vod_endpoint)


async def account() -> str:
    from flows.runtime import resources

    return resources.account_id(await resources.volcengine(BlockRefs()))


async def test_lost_create_project_answer_is_found_by_the_tagged_name(pipeline: Pipeline) -> None:
    pipeline.emulator.set_faults([{"action": "CreateProject", "drop_after_accept": True, "count": 1}])

    result = await create_edit_project(f"lost-{uuid.uuid4().hex[:6]}", CLIP, EditSpec())

    assert billed(pipeline)["CreateProject"] == 1
    assert [result.project_id] == jobs(pipeline, "CreateProject")  # the project the lost request created


async def test_a_crashed_create_project_is_reconciled_on_rerun_without_paying(pipeline: Pipeline) -> None:
    """The state a process killed right after sending leaves: the request left (journal `sent`), the provider
    created the project, nobody recorded its id."""
    title = f"crash-{uuid.uuid4().hex[:6]}"
    request = build_project_request(title, CLIP, EditSpec())
    from flows.stages.edit import _project_wire

    fp = fingerprint("vod", "CreateProject", _project_wire(request), await account())
    journal = await Journal.default()
    await journal.write(JournalRecord(state="sent", provider="vod", action="CreateProject", fingerprint=fp, at=now(), sent_at=now()))
    async with vod_client(pipeline) as vod:
        created = await vod.create_project(tagged_project(request, fp))

    result = await create_edit_project(title, CLIP, EditSpec())

    assert result.project_id == created.project_id
    assert billed(pipeline)["CreateProject"] == 1
    assert (await journal.read(fp)).job_id == created.project_id


async def test_a_crashed_translation_is_reconciled_on_rerun_without_paying(pipeline: Pipeline, monkeypatch: Any) -> None:
    monkeypatch.setattr("flows.stages.translate.LIST_PAGE", 1)  # every project on its own page
    pipeline.emulator.configure(qps={"SubmitAITranslationWorkflow": 100})  # our direct calls below
    spec = TranslateSpec(target_languages=["ko"])
    request = build_translation_request(DEMO_VID, DEMO_SPACE, "ko", spec)
    fp = fingerprint("vod", "SubmitAITranslationWorkflow", request.to_wire(), await account())
    journal = await Journal.default()
    sent = now()
    await journal.write(
        JournalRecord(state="sent", provider="vod", action="SubmitAITranslationWorkflow", fingerprint=fp, at=sent, sent_at=sent)
    )
    async with vod_client(pipeline) as vod:
        # Other projects of the same video first, so the match has to read more than one page and tell them apart.
        for language in ("en", "ja"):
            await vod.submit_ai_translation_workflow(build_translation_request(DEMO_VID, DEMO_SPACE, language, spec))
        created = await vod.submit_ai_translation_workflow(request)

    [result] = (await ai_translate(DEMO_VID, DEMO_SPACE, spec)).languages

    assert result.error is None and result.project_id == created.project_id
    assert billed(pipeline)["SubmitAITranslationWorkflow"] == 3


async def test_a_translation_whose_request_never_arrived_is_sent_after_the_listing_proves_it(pipeline: Pipeline) -> None:
    """A `sent` record with nothing behind it (the request died on the wire): the listing finds nothing, so the
    engine pays once, not never."""
    spec = TranslateSpec(target_languages=["de"])
    request = build_translation_request(DEMO_VID, DEMO_SPACE, "de", spec)
    fp = fingerprint("vod", "SubmitAITranslationWorkflow", request.to_wire(), await account())
    await (await Journal.default()).write(
        JournalRecord(state="sent", provider="vod", action="SubmitAITranslationWorkflow", fingerprint=fp, at=now(), sent_at=now())
    )

    [result] = (await ai_translate(DEMO_VID, DEMO_SPACE, spec)).languages

    assert result.error is None
    assert jobs(pipeline, "SubmitAITranslationWorkflow") == [result.project_id]


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from prefect import flow
    from emulator.config import DEMO_SPACE, DEMO_VID
    from flows.models import TranslateSpec
    from flows.stages.translate import ai_translate

    @flow
    async def child() -> None:
        print("queueing", flush=True)
        await ai_translate(DEMO_VID, DEMO_SPACE, TranslateSpec(target_languages=[sys.argv[1]]))

    asyncio.run(child())
    """
)


@pytest.mark.timeout(240)
async def test_a_process_killed_while_queued_for_its_quota_leaves_nothing_to_reconcile(
    pipeline: Pipeline, prefect_api: str
) -> None:
    """The journal's intent is written inside the quota slot, right before the request leaves: a process
    SIGKILLed while it waits for the slot has sent nothing and must leave nothing that blocks a re-run."""
    from prefect.concurrency.asyncio import concurrency

    from providers.quotas import Quota

    spec = TranslateSpec(target_languages=["fr"])
    fp = fingerprint(
        "vod", "SubmitAITranslationWorkflow", build_translation_request(DEMO_VID, DEMO_SPACE, "fr", spec).to_wire(),
        await account(),
    )
    turn = Quota("vod", "SubmitAITranslationWorkflow", qps=1).limit_name
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "PREFECT_API_URL": prefect_api}
    async with concurrency(turn, occupy=1, strict=True):  # every process now queues for the 1-QPS turn
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, "fr"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            line = b""
            while b"queueing" not in line:
                assert time.monotonic() < deadline, "child never reached its flow"
                line = await asyncio.to_thread(child.stdout.readline)  # type: ignore[union-attr]
                assert line or child.poll() is None, "child exited before queueing"
            await asyncio.sleep(5)  # well inside the wait for the turn
            assert child.poll() is None, f"the child did not wait for the quota: {child.stdout.read()!r}"  # type: ignore[union-attr]
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
    assert await (await Journal.default()).read(fp) is None
    assert billed(pipeline)["SubmitAITranslationWorkflow"] == 0

    [result] = (await ai_translate(DEMO_VID, DEMO_SPACE, spec)).languages  # the re-run pays once, at once

    assert result.error is None
    assert billed(pipeline)["SubmitAITranslationWorkflow"] == 1


async def test_outcome_unknown_and_reconciled_are_prefect_events(pipeline: Pipeline) -> None:
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter

    pipeline.emulator.set_faults([{"action": "CreateProject", "drop_after_accept": True, "count": 1}])
    started = now()

    await create_edit_project(f"events-{uuid.uuid4().hex[:6]}", CLIP, EditSpec())

    names: set[str] = set()
    resources: set[str] = set()
    deadline = time.monotonic() + 30
    wanted = EventFilter(
        occurred=EventOccurredFilter(since=started), event=EventNameFilter(prefix=["clipflow."])
    )
    async with get_client() as client:
        while {"clipflow.paid-request.outcome-unknown", "clipflow.paid-request.reconciled"} - names:
            assert time.monotonic() < deadline, f"events seen: {sorted(names)}"
            await asyncio.sleep(1)
            page = await client.read_events(filter=wanted, limit=50)
            names = {e.event for e in page.events}
            resources = {e.resource.id for e in page.events}
    assert all(r.startswith("clipflow.paid-request.") and len(r.rsplit(".", 1)[1]) == 64 for r in resources)


VOD_SUBMITS = ["UploadMediaByUrl", "CreateProject", "StartWorkflow", "SubmitAITranslationWorkflow"]


@pytest.mark.parametrize(
    "fault", ["drop_after_accept", "error_after_accept"], ids=["answer-dropped", "5xx-after-accept"]
)
async def test_every_lost_vod_answer_is_recovered_and_billed_once(pipeline: Pipeline, fault: str) -> None:
    """A whole production where every paid VOD submit is accepted and its answer lost (cut, or a 5xx such as
    InternalServiceTimeout): it completes, and nothing is bought twice."""
    from flows.models import JimengClipSpec, ProductionRequest
    from flows.stages.pipeline import produce_video
    from providers.states import JobState

    pipeline.emulator.set_faults([{"action": action, fault: True, "count": 1} for action in VOD_SUBMITS])
    tag = uuid.uuid4().hex[:8]
    request = ProductionRequest(
        title=f"lost-{tag}", clip=JimengClipSpec(prompt=f"A tram at night, {tag}"),
        translate=TranslateSpec(target_languages=["en"]),
    )

    result = await produce_video(request)

    assert result.status is JobState.SUCCEEDED, result
    assert all(lang.project_id for lang in result.languages)  # a lost translation answer: found in the same run
    counts = billed(pipeline)
    assert {action: counts[action] for action in VOD_SUBMITS} == dict.fromkeys(VOD_SUBMITS, 1), counts
    assert [rule["count"] for rule in pipeline.emulator.faults()] == [0] * len(VOD_SUBMITS)  # every answer was lost
    assert all(n == 1 for n in counts.values()), counts
