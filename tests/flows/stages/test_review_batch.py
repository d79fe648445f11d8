"""Review in a batch (items waiting for a person do not hold the others) and revise-translation (re-export of a
finished project), under a real Prefect API, against the emulator and moto S3."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from emulator.config import DEMO_VID
from flows.models import BlockRefs, ProductionRequest, TranslateSpec, UtteranceEdit
from flows.runtime import resources
from flows.stages.batch_rows import ItemStatus
from flows.stages.batch import produce_batch
from providers.states import JobState
from tests.flows.stages.test_review import WAIT_SECONDS, _runs_of_this_test, paused_run, project, resume  # noqa: F401 - autouse fixture
from tests.harness import Pipeline

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def billed(pipeline: Pipeline) -> Counter[str]:
    return Counter(entry["action"] for entry in pipeline.emulator.ledger())


async def review_deployment() -> str:
    """The review-translation deployment as `prefect deploy` registers it (no worker: its runs stay scheduled)."""
    async with get_client() as client:
        flow_id = await client.create_flow_from_name("review-translation")
        deployment_id = await client.create_deployment(
            flow_id=flow_id, name="review-translation", entrypoint="flows.stages.review:review_translation",
        )
    return str(deployment_id)


async def test_an_item_waiting_for_review_does_not_block_the_batch(pipeline: Pipeline) -> None:
    from flows.stages.review import review_translation

    deployment_id = await review_deployment()
    t = uuid.uuid4().hex[:8]
    defaults = ProductionRequest(title=f"rbatch-{t}", translate=TranslateSpec(target_languages=["en"]))
    items = [{"clip": {"prompt": f"A lighthouse at dawn, take {t}-{n}"}} for n in range(3)]
    items[1]["translate"] = {"review": "after_translation"}

    result = await asyncio.wait_for(produce_batch(items=items, defaults=defaults), WAIT_SECONDS * 2)

    assert (result.total, result.succeeded, result.awaiting_review, result.failed) == (3, 2, 1, 0)
    waiting = result.items[1]
    assert waiting.status is ItemStatus.AWAITING_REVIEW and waiting.error is None
    [line] = waiting.translations
    assert line.status == "paused" and line.project_id and line.review_run_id and "resume" in line.resume.lower()
    async with get_client() as client:
        run = await client.read_flow_run(uuid.UUID(line.review_run_id))
    assert str(run.deployment_id) == deployment_id
    assert run.parameters["project_id"] == line.project_id and run.parameters["language"] == "en"
    assert billed(pipeline)["ContinueAITranslationWorkflow"] == 0  # nothing continued without a person

    # What the worker runs for that review: it pauses (in process), a person approves, it finishes.
    params: dict[str, Any] = dict(run.parameters)
    reviewing = asyncio.ensure_future(review_translation(**params))
    paused = await paused_run()
    await resume(paused.id, {"action": "approve"})
    done = await asyncio.wait_for(reviewing, WAIT_SECONDS)
    assert done is not None and done.status is JobState.SUCCEEDED and done.review.decision == "approved"
    assert done.srt_key and done.output_vid
    assert billed(pipeline)["ContinueAITranslationWorkflow"] == 1


async def test_revise_translation_reexports_a_finished_project(pipeline: Pipeline) -> None:
    from flows.stages.revise import revise_translation
    from flows.stages.translate import ai_translate

    spec = TranslateSpec(target_languages=["en"], termbase_ids=[f"v-{uuid.uuid4().hex[:10]}"])
    [first] = (await ai_translate(DEMO_VID, "demo", spec, BlockRefs())).languages
    assert first.status is JobState.SUCCEEDED
    # An unreviewed translation publishes its lines by id (result and a table artifact): revise by that id.
    drafted = await project(pipeline, first.project_id)
    assert [(x.id, x.text) for x in first.lines] == [(u.id, u.text) for u in drafted.target_utterances]
    line = first.lines[1]
    async with get_client() as client:
        [table] = await client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[f"lines-{first.project_id.lower()}"])))
    assert line.id in str(table.data)
    speakers = await speaker_ids(first.project_id)
    other = next(s for s in speakers if s != line.speaker_id)
    text = "<a UseOriginal>Today we revise one sentence."
    start = line.start_ms + 50
    edit = UtteranceEdit(id=line.id, text=text, speaker_id=other, start_ms=start, end_ms=line.end_ms, volume=30)

    revised = await revise_translation(first.project_id, "en", "demo", edits=[edit])

    assert revised.status is JobState.SUCCEEDED
    final = await project(pipeline, first.project_id)
    assert final.status == "ExportSucceed"
    u = next(u for u in final.target_utterances if u.id == line.id)
    clip = next(c for c in final.target_clips if c.id == u.clip_id)
    assert (u.text, u.speaker_id, clip.trim.start, clip.trim.end, clip.volume) == (
        text, other, start, line.end_ms, 30)  # what the UpdateAITranslationUtterances request carried
    assert next(x for x in revised.lines if x.id == line.id) == edit  # and the result records it
    assert revised.srt_key != first.srt_key and "/revision-" in revised.srt_key
    srt = pipeline.s3_client.get_object(Bucket=pipeline.bucket, Key=revised.srt_key)["Body"].read().decode()
    assert text in srt
    assert revised.output_vid and {o.kind for o in revised.outputs} >= {"output_video"}
    assert billed(pipeline)["RefreshAITranslationProject"] == 1

    # The same revision again reuses the export it bought (journal), a new take pays for another.
    again = await revise_translation(first.project_id, "en", "demo", edits=[UtteranceEdit(id=line.id, text=text + "!")])
    assert again.status is JobState.SUCCEEDED
    assert billed(pipeline)["RefreshAITranslationProject"] == 2
    await revise_translation(first.project_id, "en", "demo", edits=[UtteranceEdit(id=line.id, text=text + "!")])
    assert billed(pipeline)["RefreshAITranslationProject"] == 2


async def speaker_ids(project_id: str) -> list[str]:
    async with await resources.client("vod", BlockRefs()) as vod:
        info = await vod.get_ai_translation_project("demo", project_id, additions=["Speakers"])
    return [s.id for s in info.speakers]


async def test_revise_refuses_bad_input_before_paying(pipeline: Pipeline) -> None:
    from flows.stages.review import ReviewInputError
    from flows.stages.revise import revise_translation
    from flows.stages.translate import ai_translate

    spec = TranslateSpec(target_languages=["ja"], termbase_ids=[f"b-{uuid.uuid4().hex[:10]}"])
    [first] = (await ai_translate(DEMO_VID, "demo", spec, BlockRefs())).languages
    with pytest.raises(ReviewInputError, match=r"edits\[0\]\.id: 'nope' is not an utterance"):
        await revise_translation(first.project_id, "ja", "demo", edits=[UtteranceEdit(id="nope", text="x")])
    first_line, second = first.lines[:2]
    with pytest.raises(ReviewInputError, match=rf"target line 2 \(id {second.id}\)\.start_ms: .* before line 1 ends"):
        await revise_translation(first.project_id, "ja", "demo",
                                 edits=[UtteranceEdit(id=second.id, start_ms=first_line.end_ms - 1)])
    with pytest.raises(ReviewInputError, match=rf"target line 1 \(id {first_line.id}\)\.speaker_id: 'nobody'"):
        await revise_translation(first.project_id, "ja", "demo", edits=[UtteranceEdit(id=first_line.id, speaker_id="nobody")])
    with pytest.raises(ReviewInputError, match="subtitle_key: cannot read"):
        await revise_translation(first.project_id, "ja", "demo", subtitle_key=f"subtitles/{first.project_id}/missing.srt")
    assert "RefreshAITranslationProject" not in billed(pipeline)
