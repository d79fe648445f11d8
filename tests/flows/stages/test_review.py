"""The translation review gate under a real Prefect API, against the emulator and moto S3.

A run with ``review`` set pauses (in-process runs block in ``pause_flow_run``); the test answers it the way the
UI's Resume form does: ``resume_flow_run(run_id, run_input=...)`` through the API. What was edited is read back
from the emulator's own project (GetAITranslationProject), what was paid from its ledger.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import pytest

from emulator.config import DEMO_VID
from flows.models import BlockRefs, TranslateSpec
from providers.states import JobState
from tests.harness import Pipeline

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

WAIT_SECONDS = 120.0


def billed(pipeline: Pipeline) -> Counter[str]:
    return Counter(entry["action"] for entry in pipeline.emulator.ledger())


def review_spec(**overrides: Any) -> TranslateSpec:
    """A request no earlier test paid for (the submit is cached by what it buys): a unique glossary id."""
    values: dict[str, Any] = {
        "target_languages": ["en"], "translation_types": ["SubtitleTranslation", "VoiceTranslation"],
        "review": "after_translation", "termbase_ids": [f"r-{uuid.uuid4().hex[:10]}"],
    }
    return TranslateSpec(**{**values, **overrides})


_TEST_STARTED: list[Any] = []  # when the running test began: older paused runs belong to other tests


@pytest.fixture(autouse=True)
def _runs_of_this_test() -> Any:
    import datetime as dt

    _TEST_STARTED[:] = [dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)]
    yield


async def paused_run(seen: set[uuid.UUID] | None = None, timeout: float = WAIT_SECONDS, not_key: str = "") -> Any:
    """The next flow run of this test waiting at a review (Paused, pause key ``review-…``, other than
    ``not_key``). Runs created before the test began are left alone: the session's server keeps every earlier
    test's runs, and a run left paused there is not this test's."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    seen = seen if seen is not None else set()
    deadline = asyncio.get_running_loop().time() + timeout
    async with get_client() as client:
        while asyncio.get_running_loop().time() < deadline:
            runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
            ))
            for run in runs:
                key = run.state.state_details.pause_key if run.state else None
                mine = not _TEST_STARTED or run.created is None or run.created >= _TEST_STARTED[0]
                if mine and run.id not in seen and key and key.startswith("review-") and key != not_key:
                    seen.add(run.id)
                    return run
            await asyncio.sleep(0.5)
    raise AssertionError("no run paused for review")


async def resume(run_id: uuid.UUID, run_input: dict[str, Any]) -> None:
    from prefect.flow_runs import aresume_flow_run

    await aresume_flow_run(run_id, run_input=run_input)


async def send(api: Any, run: Any, answer: dict[str, Any]) -> dict[str, Any]:
    """POST the answer. A 503 (the test server's SQLite was locked by a concurrent write; the transaction rolled
    back) is sent again, as Prefect's own client does."""
    for _ in range(5):
        sent = await api.post(f"/flow_runs/{run.id}/resume", json={"run_input": answer})
        if sent.status_code != 503:
            break
        await asyncio.sleep(1)
    assert sent.status_code in (200, 201), sent.text  # 200 REJECT, 201 ACCEPT
    return sent.json()


async def project(pipeline: Pipeline, project_id: str) -> Any:
    from flows.runtime import resources

    async with await resources.client("vod", BlockRefs()) as vod:
        return await vod.get_ai_translation_project(
            "demo", project_id, additions=["SourceUtterances", "TargetUtterances", "TargetClips", "SourceClips"]
        )


async def start(spec: TranslateSpec) -> asyncio.Task[Any]:
    from flows.stages.translate import ai_translate

    return asyncio.ensure_future(ai_translate(DEMO_VID, "demo", spec, BlockRefs()))


async def test_review_after_translation_pauses_stores_drafts_and_applies_one_edit(pipeline: Pipeline) -> None:
    from prefect.client.orchestration import get_client

    running = await start(review_spec())
    run = await paused_run()
    project_id = run.state.state_details.pause_key.removeprefix("review-")

    # Paused at the vendor's stage: drafts (source and target, SRT + WebVTT) are in the bucket, nothing paid
    # but the submit, and the review table lists the utterances with their ids.
    draft = await project(pipeline, project_id)
    assert draft.status == "ProcessSuspended" and draft.target_utterances
    keys = {o["Key"] for o in pipeline.s3_client.list_objects_v2(
        Bucket=pipeline.bucket, Prefix=f"subtitles/{draft.project_id}/draft/")["Contents"]}
    assert keys == {f"subtitles/{draft.project_id}/draft/{name}" for name in
                    ("en.srt", "en.vtt", "zh.source.srt", "zh.source.vtt")}
    async with get_client() as client:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        # by key: the session's server holds more artifacts than one unfiltered page
        [table] = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"review-{project_id}"]))
        )
    line = draft.target_utterances[0]
    assert line.id in str(table.data) and "Resume" in (table.description or "")
    assert billed(pipeline) == Counter({"SubmitAITranslationWorkflow": 1})

    edited = "<v Host>Welcome, everyone, corrected by a person."
    await resume(run.id, {"action": "edit", "edits": [{"id": line.id, "text": edited}], "reason": "typo"})
    [result] = (await asyncio.wait_for(running, WAIT_SECONDS)).languages

    assert result.status is JobState.SUCCEEDED
    assert result.review is not None and result.review.decision == "edited" and result.review.edits == 1
    final = await project(pipeline, project_id)
    assert next(u.text for u in final.target_utterances if u.id == line.id) == edited
    srt = pipeline.s3_client.get_object(Bucket=pipeline.bucket, Key=result.srt_key)["Body"].read().decode()
    vtt = pipeline.s3_client.get_object(Bucket=pipeline.bucket, Key=result.vtt_key)["Body"].read().decode()
    assert edited in srt and edited in vtt  # the speaker mark passes through both formats
    assert billed(pipeline) == Counter({"SubmitAITranslationWorkflow": 1, "ContinueAITranslationWorkflow": 1})


async def test_approve_as_is_continues_unchanged_and_a_rerun_pays_nothing(pipeline: Pipeline) -> None:
    from flows.stages.translate import ai_translate

    spec = review_spec()
    running = await start(spec)
    run = await paused_run()
    project_id = run.state.state_details.pause_key.removeprefix("review-")
    before = [u.text for u in (await project(pipeline, project_id)).target_utterances]

    await resume(run.id, {"action": "approve"})
    [result] = (await asyncio.wait_for(running, WAIT_SECONDS)).languages

    assert result.status is JobState.SUCCEEDED and result.review.decision == "approved"
    assert [u.text for u in (await project(pipeline, project_id)).target_utterances] == before
    assert billed(pipeline)["ContinueAITranslationWorkflow"] == 1

    # A re-run of the same request finds the project finished: no new pause, nothing paid again.
    ledger = pipeline.emulator.ledger()
    [again] = (await asyncio.wait_for(ai_translate(DEMO_VID, "demo", spec, BlockRefs()), WAIT_SECONDS)).languages
    assert again.project_id == project_id and again.status is JobState.SUCCEEDED
    assert again.review is not None and again.review.decision == "approved"
    assert pipeline.emulator.ledger() == ledger


async def test_reject_fails_the_language_and_pays_nothing_more(pipeline: Pipeline) -> None:
    running = await start(review_spec())
    run = await paused_run()

    await resume(run.id, {"action": "reject", "reason": "wrong speaker names"})
    [result] = (await asyncio.wait_for(running, WAIT_SECONDS)).languages

    assert result.status is JobState.FAILED and result.review.decision == "rejected"
    assert result.error == "rejected in review: wrong speaker names"
    assert billed(pipeline) == Counter({"SubmitAITranslationWorkflow": 1})


@pytest.mark.parametrize(("policy", "status", "paid"), [("fail", JobState.FAILED, 0), ("approve", JobState.SUCCEEDED, 1)])
async def test_a_review_nobody_answers_follows_the_declared_policy(
    pipeline: Pipeline, policy: str, status: JobState, paid: int
) -> None:
    from flows.stages.translate import ai_translate

    spec = review_spec(review_timeout_hours=2 / 3600, on_review_timeout=policy)  # 2 s
    [result] = (await asyncio.wait_for(ai_translate(DEMO_VID, "demo", spec, BlockRefs()), WAIT_SECONDS)).languages

    assert result.status is status and result.review.decision == "timed_out"
    if policy == "fail":
        assert "review timed out" in (result.error or "") and "on_review_timeout: fail" in result.error
    assert billed(pipeline)["ContinueAITranslationWorkflow"] == paid


async def test_a_corrected_subtitle_file_in_the_bucket_is_applied_by_order(pipeline: Pipeline) -> None:
    from flows.outputs.subtitles import parse_subtitles, to_srt

    running = await start(review_spec())
    run = await paused_run()
    project_id = run.state.state_details.pause_key.removeprefix("review-")
    draft_key = f"subtitles/{project_id}/draft/en.srt"
    cues = parse_subtitles(pipeline.s3_client.get_object(Bucket=pipeline.bucket, Key=draft_key)["Body"].read().decode())
    fixed = [cues[0].__class__(cues[0].start_ms, cues[0].end_ms, "<a MuteSpeech>Hush, fixed from a file."), *cues[1:]]
    pipeline.s3_client.put_object(Bucket=pipeline.bucket, Key=f"subtitles/{project_id}/fixed.srt", Body=to_srt(fixed).encode())

    await resume(run.id, {"action": "edit", "subtitle_key": f"subtitles/{project_id}/fixed.srt"})
    [result] = (await asyncio.wait_for(running, WAIT_SECONDS)).languages

    assert result.status is JobState.SUCCEEDED and result.review.edits == 1
    texts = [u.text for u in (await project(pipeline, project_id)).target_utterances]
    assert "<a MuteSpeech>Hush, fixed from a file." in texts


async def test_a_production_pauses_its_own_run_for_review(pipeline: Pipeline) -> None:
    """produce-video runs the translate stage inline when reviewing: the production's own run pauses (with a
    deployment it would suspend: Prefect cannot suspend a subflow), the transcode finishes meanwhile."""
    from flows.models import JimengClipSpec, ProductionRequest
    from flows.stages.pipeline import produce_video

    tag = uuid.uuid4().hex[:8]
    request = ProductionRequest(
        title=f"review-{tag}", clip=JimengClipSpec(prompt=f"A tram in the snow, take {tag}"),
        translate=TranslateSpec(target_languages=["en", "ja"], review="after_translation"),
    )
    running = asyncio.ensure_future(produce_video(request))
    seen: set[uuid.UUID] = set()
    first = await paused_run(seen)
    assert first.flow_id and first.parent_task_run_id is None  # the production's run itself, not a subflow
    await resume(first.id, {"action": "approve"})
    # The next language: the same run, asked again.
    second = await paused_run(not_key=first.state.state_details.pause_key)
    assert second.id == first.id
    await resume(second.id, {"action": "reject", "reason": "not for this market"})
    result = await asyncio.wait_for(running, WAIT_SECONDS)

    assert result.transcode.status is JobState.SUCCEEDED
    assert sorted(lang.review.decision for lang in result.languages) == ["approved", "rejected"]
    assert result.status is JobState.FAILED  # one language was rejected
    assert billed(pipeline) == Counter({
        "CVSync2AsyncSubmitTask": 1, "UploadMediaByUrl": 1, "CreateProject": 1, "StartWorkflow": 1,
        "SubmitAITranslationWorkflow": 2, "ContinueAITranslationWorkflow": 1,
    })


async def test_an_answer_naming_an_unknown_line_is_refused_before_anything_is_paid(pipeline: Pipeline) -> None:
    running = await start(review_spec())
    run = await paused_run()

    await resume(run.id, {"action": "edit", "edits": [{"id": "no-such-line", "text": "x"}]})
    [result] = (await asyncio.wait_for(running, WAIT_SECONDS)).languages

    assert result.status is JobState.FAILED
    assert "edits[0].id: 'no-such-line' is not an utterance" in (result.error or "")
    assert result.review.decision == "awaiting_review" and "review-translation" in result.review.resume
    assert billed(pipeline) == Counter({"SubmitAITranslationWorkflow": 1})


# Contradictory answers, each with the field Prefect's refusal names. The run's stored input schema carries these
# rules, so the server refuses the resume itself: nothing reaches the flow, the run stays paused.
CONTRADICTORY = [
    ({"action": "approve", "edits": [{"id": "u1", "text": "x"}]}, "edits"),
    ({"edits": [{"id": "u1", "text": "x"}]}, "edits"),  # action left out: approve
    ({"action": "approve", "subtitle_key": "subtitles/p/fixed.srt"}, "subtitle_key"),
    ({"action": "reject", "reason": "no", "edits": [{"id": "u1", "text": "x"}]}, "edits"),
    ({"action": "edit"}, "edits"),
    ({"action": "edit", "edits": []}, "edits"),
    ({"action": "edit", "subtitle_key": "subtitles/../other/fixed.srt"}, "subtitle_key"),
    ({"action": "reject"}, "reason"),
    ({"action": "reject", "reason": "   "}, "reason"),
]


async def test_contradictory_answers_are_refused_and_the_run_stays_paused(pipeline: Pipeline) -> None:
    import httpx
    from prefect.settings import PREFECT_API_URL

    running = await start(review_spec())
    run = await paused_run()
    key = run.state.state_details.pause_key
    async with httpx.AsyncClient(base_url=str(PREFECT_API_URL.value()), timeout=30) as api:
        for answer, field in CONTRADICTORY:
            sent = await api.post(f"/flow_runs/{run.id}/resume", json={"run_input": answer})
            # HTTP 200 either way: a REST caller must read the answer's status (`curl -f` alone passes this)
            assert sent.status_code == 200, sent.text
            body = sent.json()
            assert body["status"] == "REJECT", (answer, body)
            assert f"'{field}'" in body["details"]["reason"], (answer, body["details"]["reason"])
            state = (await api.get(f"/flow_runs/{run.id}")).json()["state"]
            assert state["type"] == "PAUSED" and state["state_details"]["pause_key"] == key, (answer, state)
        assert not running.done()

        # A consistent answer is still taken, and the run goes on.
        accepted = await send(api, run, {"action": "approve"})
        assert accepted["status"] == "ACCEPT", accepted
    [result] = (await asyncio.wait_for(running, WAIT_SECONDS)).languages
    assert result.status is JobState.SUCCEEDED and result.review.decision == "approved"
    assert billed(pipeline) == Counter({"SubmitAITranslationWorkflow": 1, "ContinueAITranslationWorkflow": 1})


@pytest.mark.parametrize(("answer", "field"), CONTRADICTORY)
def test_the_decision_model_refuses_the_same_answers(answer: dict[str, Any], field: str) -> None:
    """The flow's own check (for answers that do not pass through Prefect's resume) agrees with the schema's."""
    from pydantic import ValidationError

    from flows.models.translate import ReviewDecision

    with pytest.raises(ValidationError, match=field):
        ReviewDecision.model_validate(answer)


async def run_logs(flow_run_id: uuid.UUID, needle: str, timeout: float = 20.0) -> list[str]:
    """The run's log lines (as the UI shows them) containing ``needle``; logs reach the API in batches."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    deadline = asyncio.get_running_loop().time() + timeout
    async with get_client() as client:
        while True:
            logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            found = [log.message for log in logs if needle in log.message]
            if found or asyncio.get_running_loop().time() > deadline:
                return found
            await asyncio.sleep(0.5)


async def test_a_reused_review_says_so_and_review_again_buys_a_fresh_one(pipeline: Pipeline) -> None:
    from flows.stages.translate import ai_translate

    spec = review_spec()
    running = await start(spec)
    first_run = await paused_run()
    await resume(first_run.id, {"action": "edit", "edits": [{"id": (await project(
        pipeline, first_run.state.state_details.pause_key.removeprefix("review-"))).target_utterances[0].id,
        "text": "Reviewed once."}]})
    [first] = (await asyncio.wait_for(running, WAIT_SECONDS)).languages
    assert first.review.decision == "edited" and not first.review.reused

    # The same video and options again: the reviewed translation is reused, and the run and result say so.
    ledger = pipeline.emulator.ledger()
    state = await asyncio.wait_for(ai_translate(DEMO_VID, "demo", spec, BlockRefs(), return_state=True), WAIT_SECONDS)
    [again] = (await state.result()).languages
    assert again.project_id == first.project_id and again.status is JobState.SUCCEEDED
    assert again.review.reused.startswith("reused the translation reviewed on ")
    assert "(edit)" in again.review.reused and "review_again: true" in again.review.reused
    assert pipeline.emulator.ledger() == ledger  # nothing bought
    logged = await run_logs(state.state_details.flow_run_id, "reused the translation reviewed on")
    assert logged and first.project_id in logged[0]

    # review_again: a new translation project (paid), paused and reviewed afresh.
    fresh_spec = spec.model_copy(update={"review_again": True})
    running = await start(fresh_spec)
    fresh_run = await paused_run()
    fresh_project = fresh_run.state.state_details.pause_key.removeprefix("review-")
    assert fresh_project != first.project_id
    await resume(fresh_run.id, {"action": "approve"})
    [fresh] = (await asyncio.wait_for(running, WAIT_SECONDS)).languages
    assert fresh.project_id == fresh_project and fresh.review.decision == "approved" and not fresh.review.reused
    bought = [e for e in pipeline.emulator.ledger() if e["action"] == "SubmitAITranslationWorkflow"]
    assert [e["job_id"] for e in bought] == [first.project_id, fresh_project]

    # ... bought once: a re-run of the review_again request reuses it (and says which knob buys another).
    ledger = pipeline.emulator.ledger()
    [rerun] = (await asyncio.wait_for(ai_translate(DEMO_VID, "demo", fresh_spec, BlockRefs()), WAIT_SECONDS)).languages
    assert rerun.project_id == fresh_project and "review_again bought" in rerun.review.reused
    assert pipeline.emulator.ledger() == ledger


def test_review_again_needs_a_review() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="review_again: needs review"):
        TranslateSpec(review_again=True)


# --- the form opens with the draft lines; edits in place -------------------------------------------------------


async def form_of(api: Any, run: Any) -> tuple[dict[str, Any], str]:
    """The paused run's stored Resume form (JSON schema with the initial data) and description, over REST (the
    reads the UI makes; the run stores them just after it pauses)."""
    keyset = run.state.state_details.run_input_keyset
    for _ in range(100):
        schema = await api.get(f"/flow_runs/{run.id}/input/{keyset['schema']}")
        description = await api.get(f"/flow_runs/{run.id}/input/{keyset['description']}")
        if schema.status_code == description.status_code == 200:
            return schema.json(), description.json()
        await asyncio.sleep(0.2)
    raise AssertionError(f"no form stored for run {run.id}")


async def test_the_form_opens_with_the_draft_lines_and_an_edit_in_place_reaches_the_project(pipeline: Pipeline) -> None:
    import httpx
    from prefect.settings import PREFECT_API_URL

    running = await start(review_spec())
    run = await paused_run()
    project_id = run.state.state_details.pause_key.removeprefix("review-")
    draft = await project(pipeline, project_id)
    async with httpx.AsyncClient(base_url=str(PREFECT_API_URL.value()), timeout=30) as api:
        schema, description = await form_of(api, run)
        lines = schema["properties"]["lines"]["default"]
        # Every draft target line is in the form, with its id, text, speaker, timing and volume.
        assert [(x["id"], x["text"], x["speaker_id"]) for x in lines] == [
            (u.id, u.text, u.speaker_id) for u in draft.target_utterances]
        assert lines[0]["start_ms"] == draft.target_utterances[0].start and lines[0]["volume"] == 100
        assert "Correct a line in place" in description and "Speakers:" in description
        shape = next(r for r in schema["allOf"] if "prefixItems" in r.get("properties", {}).get("lines", {}))
        speakers = shape["properties"]["lines"]["prefixItems"][0]["properties"]["speaker_id"]["enum"]
        other = next(s for s in speakers if s and s != lines[1]["speaker_id"])

        # Refused by the server, the run stays paused: a change under approve, a speaker the project lacks.
        changed = [dict(x) for x in lines]
        changed[0]["text"] = "Changed, but approved."
        body = await send(api, run, {"action": "approve", "lines": changed})
        assert body["status"] == "REJECT" and "'lines[0].text'" in body["details"]["reason"]
        changed[0]["speaker_id"] = "nobody"
        body = await send(api, run, {"action": "edit", "lines": changed})
        assert body["status"] == "REJECT" and "'lines[0].speaker_id'" in body["details"]["reason"]

        # The whole form sent back as the UI does, two lines corrected in place.
        edited = [dict(x) for x in lines]
        edited[0]["text"] = "<v Host>Welcome, corrected in place."
        start_ms = lines[1]["start_ms"] + 40
        edited[1].update(speaker_id=other, start_ms=start_ms, volume=35)
        body = await send(api, run, {"action": "edit", "lines": edited, "reason": "in place"})
        assert body["status"] == "ACCEPT", body
    [result] = (await asyncio.wait_for(running, WAIT_SECONDS)).languages

    assert result.status is JobState.SUCCEEDED and result.review.decision == "edited" and result.review.edits == 2
    final = await project(pipeline, project_id)  # what UpdateAITranslationUtterances carried, as the vendor applied it
    first, second = (next(u for u in final.target_utterances if u.id == lines[i]["id"]) for i in (0, 1))
    clip = next(c for c in final.target_clips if c.id == second.clip_id)
    assert first.text == edited[0]["text"]
    assert (second.speaker_id, clip.trim.start, clip.trim.end, clip.volume) == (other, start_ms, lines[1]["end_ms"], 35)
    recorded = {x.id: x for x in result.lines}  # and the result records the lines as they now are
    assert recorded[lines[0]["id"]].text == edited[0]["text"]
    assert (recorded[lines[1]["id"]].speaker_id, recorded[lines[1]["id"]].start_ms) == (other, start_ms)
    assert billed(pipeline) == Counter({"SubmitAITranslationWorkflow": 1, "ContinueAITranslationWorkflow": 1})


async def test_an_overlapping_edit_is_refused_naming_line_and_field_before_anything_is_paid(pipeline: Pipeline) -> None:
    running = await start(review_spec())
    run = await paused_run()
    project_id = run.state.state_details.pause_key.removeprefix("review-")
    draft = await project(pipeline, project_id)
    first, second = draft.target_utterances[:2]

    # JSON schema cannot compare two lines: the server takes this, the flow refuses it before any call.
    await resume(run.id, {"action": "edit", "edits": [{"id": second.id, "start_ms": first.end - 1}]})
    [result] = (await asyncio.wait_for(running, WAIT_SECONDS)).languages

    assert result.status is JobState.FAILED
    named = f"target line 2 (id {second.id}).start_ms: line 2 starts at {first.end - 1} ms, before line 1 ends"
    assert named in (result.error or "")
    assert result.review.decision == "awaiting_review"
    after = await project(pipeline, project_id)
    assert after.status == "ProcessSuspended" and after.target_utterances[1].start == second.start  # nothing sent
    assert billed(pipeline) == Counter({"SubmitAITranslationWorkflow": 1})
