"""A translation review on the production-like stack: a deployment run suspends while it waits for a person (its
worker is free meanwhile) and is resumed through REST with the review form's input, as the UI's Resume does.

Runs on PostgreSQL with two process workers (`--limit 1` each, tests/e2e/conftest.py).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections import Counter
from typing import Any

import pytest

from providers.vod.client import VodClient
from tests.e2e.api import read_result
from tests.e2e.conftest import Stack
from tests.e2e.test_deployments import DEMO_VID
from tests.e2e.test_workers import worker_of

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


def translate_parameters(**spec: Any) -> dict[str, Any]:
    """translate-video parameters no earlier run paid for (a unique glossary id is part of what is bought)."""
    return {"vid": DEMO_VID, "space_name": "demo", "spec": {
        "target_languages": ["en"], "termbase_ids": [f"e2e-{uuid.uuid4().hex[:10]}"], **spec,
    }}


def wait_suspended(stack: Stack, flow_run_id: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = stack.api.flow_run(flow_run_id)
        if run["state"]["type"] == "PAUSED":
            return run
        assert run["state"]["type"] not in ("COMPLETED", "FAILED", "CRASHED"), stack.api.describe(run)
        time.sleep(1)
    raise AssertionError(f"run {flow_run_id} never suspended:\n" + stack.api.describe(stack.api.flow_run(flow_run_id)))


def wait_process_gone(stack: Stack, run: dict[str, Any], timeout: float = 60) -> None:
    """Until the suspended run's process has exited. A process worker with ``--limit`` crashes when it is handed
    a resumed run while the run's previous process is still exiting (it holds the run's slot until then:
    PrefectHQ/prefect#16806, docs/operations.md); a person resumes minutes later, a test at once."""
    pid = int(str(run.get("infrastructure_pid") or "0").rsplit(":", 1)[-1] or 0)
    deadline = time.monotonic() + timeout
    while pid and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    assert not pid, f"the process {pid} of suspended run {run['name']} did not exit:\n{stack.worker_logs()}"


def target_utterances(stack: Stack, project_id: str) -> list[Any]:
    async def read() -> list[Any]:
        emulator = stack.emulator
        async with VodClient(emulator.access_key, emulator.secret_key, endpoint=emulator.vod_endpoint) as vod:
            project = await vod.get_ai_translation_project("demo", project_id, additions=["TargetUtterances"])
        return list(project.target_utterances)

    return asyncio.run(read())


def test_a_suspended_review_frees_its_worker_and_resumes_through_rest(stack: Stack) -> None:
    deployment = stack.api.deployment("ai-translate", "translate-video")
    created = stack.api.create_flow_run(deployment["id"], translate_parameters(review="after_translation"))

    run = wait_suspended(stack, created["id"])

    # Suspended, not blocking: the process exited and the run waits in the server for its review input.
    assert run["state"]["name"] == "Suspended", run["state"]
    details = run["state"]["state_details"]
    assert details["pause_reschedule"] is True and details["run_input_keyset"]
    project_id = details["pause_key"].removeprefix("review-")
    drafts = stack.s3.list_objects_v2(Bucket=stack.bucket, Prefix=f"subtitles/{project_id}/draft/")["Contents"]
    assert {o["Key"].rsplit("/", 1)[1] for o in drafts} == {"en.srt", "en.vtt", "zh.source.srt", "zh.source.vtt"}
    assert any(a["key"] == f"review-{project_id}" for a in stack.api.artifacts(created["id"]))

    # Both workers (one run at a time each) are free: two more runs finish on both while the review waits.
    others = [stack.api.create_flow_run(deployment["id"], translate_parameters()) for _ in range(2)]
    finished = [stack.api.wait_final(o["id"], timeout=300) for o in others]
    assert all(r["state"]["type"] == "COMPLETED" for r in finished), [stack.api.describe(r) for r in finished]
    assert {worker_of(stack, r) for r in finished} == {"e2e-worker-1", "e2e-worker-2"}
    assert stack.api.flow_run(created["id"])["state"]["type"] == "PAUSED"

    # The answer, as the UI's Resume form posts it.
    wait_process_gone(stack, run)
    line = target_utterances(stack, project_id)[0]
    edited = f"<v Host>Reviewed on the stack {uuid.uuid4().hex[:6]}."
    response = stack.api.http.post(f"/flow_runs/{created['id']}/resume", json={
        "run_input": {"action": "edit", "edits": [{"id": line.id, "text": edited}], "reason": "e2e"},
    })
    assert response.status_code in (200, 201) and response.json()["status"] == "ACCEPT", response.text

    done = stack.api.wait_final(created["id"], timeout=300)
    assert done["state"]["type"] == "COMPLETED", stack.api.describe(done) + "\n" + stack.worker_logs()
    [result] = read_result(done).languages
    assert result.status.value == "succeeded" and result.review.decision == "edited" and result.review.edits == 1
    assert next(u.text for u in target_utterances(stack, project_id) if u.id == line.id) == edited
    # Run twice (suspended, resumed) yet every paid action for this project was bought once.
    mine = Counter(e["action"] for e in stack.emulator.ledger() if e["job_id"] == project_id)
    assert mine == Counter({"SubmitAITranslationWorkflow": 1, "ContinueAITranslationWorkflow": 1}), mine


async def assert_chosen(field: Any, value: str) -> None:
    from playwright.async_api import expect

    await expect(field.locator(".p-select-button__value")).to_have_text(value)


async def test_resume_a_review_from_the_ui_form(stack: Stack, tmp_path: Any) -> None:
    """A person answers from the run page: Resume → the review form, which opens with the draft lines in it →
    action reject with a reason → Submit (the lines go back unchanged, which the form's rules accept). The run
    ends with that language rejected and nothing more paid."""
    from tests.e2e.browser import chromium_page, form_field

    deployment = stack.api.deployment("ai-translate", "translate-video")
    created = stack.api.create_flow_run(deployment["id"], translate_parameters(review="after_translation"))
    run = await asyncio.to_thread(wait_suspended, stack, created["id"])
    project_id = run["state"]["state_details"]["pause_key"].removeprefix("review-")
    await asyncio.to_thread(wait_process_gone, stack, run)

    async with chromium_page(tmp_path, "resume") as page:
        await page.goto(f"{stack.server.url}/runs/flow-run/{created['id']}")
        await page.get_by_role("button", name="Resume", exact=True).first.click()
        dialog = page.get_by_role("dialog")
        drafts = await asyncio.to_thread(target_utterances, stack, project_id)
        await dialog.locator("textarea, input").first.wait_for()
        values = await dialog.locator("textarea, input").evaluate_all("fields => fields.map(f => f.value)")
        assert {u.text for u in drafts} <= set(values), values  # every draft line, ready to correct in place
        action = form_field(page, "Action (Optional)")
        await action.locator(".p-select-button__icon").click()  # the enum's list opens from its chevron
        await page.locator(".p-pop-over-content [role=listbox]").get_by_role("option", name="reject", exact=True).click()
        await assert_chosen(action, "reject")
        await form_field(page, "Reason (Optional)").locator("textarea, input").first.fill("ui says no")
        await dialog.get_by_role("button", name=re.compile(r"^(Submit|Resume)$")).last.click()
        await dialog.wait_for(state="hidden", timeout=30_000)

    done = await asyncio.to_thread(stack.api.wait_final, created["id"], 300)
    assert done["state"]["type"] == "COMPLETED", stack.api.describe(done)
    [result] = read_result(done).languages
    assert result.status.value == "failed" and result.review.decision == "rejected"
    assert result.error == "rejected in review: ui says no"
    mine = Counter(e["action"] for e in stack.emulator.ledger() if e["job_id"] == project_id)
    assert mine == Counter({"SubmitAITranslationWorkflow": 1})


def test_an_unanswered_suspended_review_follows_its_timeout_policy(stack: Stack) -> None:
    """Nobody answers: at the deadline a scheduled review-translation run (no process waits for it) resumes the
    suspended run with a timed-out answer, and ``on_review_timeout: approve`` continues the draft as it is."""
    deployment = stack.api.deployment("ai-translate", "translate-video")
    created = stack.api.create_flow_run(deployment["id"], translate_parameters(
        review="after_translation", review_timeout_hours=15 / 3600, on_review_timeout="approve",
    ))
    run = wait_suspended(stack, created["id"])
    project_id = run["state"]["state_details"]["pause_key"].removeprefix("review-")

    done = stack.api.wait_final(created["id"], timeout=300)

    assert done["state"]["type"] == "COMPLETED", stack.api.describe(done) + "\n" + stack.worker_logs()
    [result] = read_result(done).languages
    assert result.status.value == "succeeded" and result.review.decision == "timed_out"
    mine = Counter(e["action"] for e in stack.emulator.ledger() if e["job_id"] == project_id)
    assert mine == Counter({"SubmitAITranslationWorkflow": 1, "ContinueAITranslationWorkflow": 1}), mine


def test_a_suspended_production_reruns_without_paying_twice(stack: Stack) -> None:
    """produce-video with review: the production's own run suspends (its translate stage runs inline), and the
    re-run after the resume finds the clip, edit project, transcode and translation already bought."""
    deployment = stack.api.deployment("produce-video", "produce-video")
    tag = uuid.uuid4().hex[:8]
    request = {
        "title": f"e2e-review-{tag}", "clip": {"provider": "jimeng", "prompt": f"A ferry in fog, take {tag}"},
        "translate": {"target_languages": ["en"], "review": "after_translation"},
    }
    mark = len(stack.emulator.ledger())
    created = stack.api.create_flow_run(deployment["id"], {"request": request})
    run = wait_suspended(stack, created["id"], timeout=300)
    assert run["state"]["name"] == "Suspended"
    paid_before_review = Counter(e["action"] for e in stack.ledger_since(mark))
    wait_process_gone(stack, run)

    response = stack.api.http.post(f"/flow_runs/{created['id']}/resume", json={"run_input": {"action": "approve"}})
    assert response.json()["status"] == "ACCEPT", response.text
    done = stack.api.wait_final(created["id"], timeout=300)

    assert done["state"]["type"] == "COMPLETED", stack.api.describe(done) + "\n" + stack.worker_logs()
    result = read_result(done)
    assert result.status.value == "succeeded" and result.languages[0].review.decision == "approved"
    billed = Counter(e["action"] for e in stack.ledger_since(mark))
    assert billed == paid_before_review + Counter({"ContinueAITranslationWorkflow": 1}), billed
    assert billed == Counter({"CVSync2AsyncSubmitTask": 1, "UploadMediaByUrl": 1, "CreateProject": 1,
                              "StartWorkflow": 1, "SubmitAITranslationWorkflow": 1,
                              "ContinueAITranslationWorkflow": 1})
