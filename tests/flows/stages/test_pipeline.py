"""The flows under a real Prefect API, against the emulator and a real S3 API (moto server)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from typing import Any

import pytest

from flows.models import BlockRefs, EditSpec, GatewayClipSpec, ImportedClip, JimengClipSpec, ProductionRequest, TranslateSpec
from flows.stages.pipeline import produce_video
from providers.errors import InvalidRequestError, RequestValidationError
from providers.states import JobState
from tests.harness import Pipeline

pytestmark = pytest.mark.slow


def unique_request(**clip: Any) -> ProductionRequest:
    """A request no earlier test has paid for: results are cached across the session on purpose."""
    tag = uuid.uuid4().hex[:8]
    return ProductionRequest(
        title=f"test-{tag}",
        clip=JimengClipSpec(prompt=f"A paper boat on a rainy street, take {tag}", **clip),
        translate=TranslateSpec(target_languages=["en", "ja"]),
    )


def billed(pipeline: Pipeline) -> Counter[str]:
    return Counter(entry["action"] for entry in pipeline.emulator.ledger())


async def test_whole_chain_produces_every_output(pipeline: Pipeline) -> None:
    result = await produce_video(unique_request())

    assert result.status is JobState.SUCCEEDED
    assert result.clip.imported.vid and result.edit.project_id and result.transcode.run_id
    assert len(result.transcode.outputs) >= 1
    assert [lang.language for lang in result.languages] == ["en", "ja"]
    stored = pipeline.s3_client.head_object(Bucket=pipeline.bucket, Key=result.clip.stored.key)
    assert stored["ContentLength"] == result.clip.stored.size
    assert stored["Metadata"]["sha256"] == result.clip.stored.sha256
    assert result.clip.stored.key == f"clips/{result.clip.stored.sha256}.mp4"
    for lang in result.languages:
        assert lang.status is JobState.SUCCEEDED and lang.output_vid
        srt = pipeline.s3_client.get_object(Bucket=pipeline.bucket, Key=lang.srt_key)["Body"].read().decode()
        vtt = pipeline.s3_client.get_object(Bucket=pipeline.bucket, Key=lang.vtt_key)["Body"].read().decode()
        assert srt.startswith("1\n") and " --> " in srt
        assert vtt.startswith("WEBVTT")
    assert billed(pipeline) == Counter(
        {
            "CVSync2AsyncSubmitTask": 1, "UploadMediaByUrl": 1, "CreateProject": 1,
            "StartWorkflow": 1, "SubmitAITranslationWorkflow": 2,
        }
    )


async def test_translations_do_not_wait_for_the_transcode(pipeline: Pipeline) -> None:
    """Renditions and translations both start from the source video: the translations are paid for while the
    transcode workflow still runs, not after it. Here the workflow ends only when the test moves the emulator's
    clock, once both translations are bought, so the order does not depend on this machine's speed: a chain that
    waited for the transcode first would never buy them, and the watchdog says so."""
    running = 100_000.0  # nominal seconds (500 s here): the workflow outlives the watchdog unless the test ends it
    pipeline.emulator.configure(durations={"workflow_running": running})
    production = asyncio.create_task(produce_video(unique_request()))
    deadline = time.monotonic() + 120
    while billed(pipeline)["SubmitAITranslationWorkflow"] < 2 or billed(pipeline)["StartWorkflow"] < 1:
        if production.done():
            pytest.fail(f"the production ended before buying both translations: {production.result()!r}")
        if time.monotonic() > deadline:
            production.cancel()
            pytest.fail(f"the translations were not bought while the transcode ran; billed {dict(billed(pipeline))}")
        await asyncio.sleep(0.2)
    assert not production.done()  # still waiting on the transcode, which runs until the clock moves
    pipeline.emulator.advance(running)  # now the workflow ends

    result = await asyncio.wait_for(production, 120)
    assert result.status is JobState.SUCCEEDED
    assert billed(pipeline)["SubmitAITranslationWorkflow"] == 2


async def test_rerun_in_a_new_flow_run_bills_nothing(pipeline: Pipeline) -> None:
    request = unique_request()
    first = await produce_video(request)
    ledger_after_first = pipeline.emulator.ledger()

    second = await produce_video(request)

    assert pipeline.emulator.ledger() == ledger_after_first
    assert second.model_dump(exclude={"cost"}) == first.model_dump(exclude={"cost"})
    assert second.cost is not None and second.cost.estimate == 0.0 and second.cost.spent == 0.0  # all reused


async def test_bad_input_fails_before_any_paid_call(pipeline: Pipeline) -> None:
    request = unique_request()
    request.clip.prompt = "x" * 801
    with pytest.raises(RequestValidationError, match="prompt"):
        await produce_video(request)

    bad_language = unique_request()
    bad_language.translate.target_languages = ["en", "xx"]
    with pytest.raises(RequestValidationError, match="TargetLanguage"):
        await produce_video(bad_language)
    assert pipeline.emulator.ledger() == []


async def test_generate_clip_alone_through_the_gateway(pipeline: Pipeline) -> None:
    from flows.stages.generate import generate_clip

    spec = GatewayClipSpec(model="grok-video-3", aspect_ratio="3:2", prompt=f"cat {uuid.uuid4().hex}")
    clip = await generate_clip(spec, "demo", BlockRefs())

    assert clip.provider == "gateway" and clip.imported.vid
    body = pipeline.s3_client.get_object(Bucket=pipeline.bucket, Key=clip.stored.key)["Body"].read()
    assert len(body) == clip.stored.size and body[4:8] == b"ftyp"  # a real MP4
    assert billed(pipeline) == Counter({"gateway.create": 1, "UploadMediaByUrl": 1}) or billed(pipeline) == Counter(
        {"create": 1, "UploadMediaByUrl": 1}
    )


async def test_edit_project_alone_with_render(pipeline: Pipeline) -> None:
    from emulator.config import DEMO_VID
    from flows.stages.edit import create_edit_project

    clip = ImportedClip(vid=DEMO_VID, space_name="demo", duration_seconds=3.0)
    result = await create_edit_project(f"edit-{uuid.uuid4().hex[:8]}", clip, EditSpec(render=True), BlockRefs())

    assert result.project_id and result.rendered_vid
    assert billed(pipeline) == Counter({"CreateProject": 1, "SubmitDirectEditTaskAsync": 1})


async def test_translate_alone_fans_out_per_language(pipeline: Pipeline) -> None:
    from emulator.config import DEMO_VID
    from flows.stages.translate import ai_translate

    # a glossary id of its own: other tests of the session translate the demo Vid too, and would be reused
    spec = TranslateSpec(target_languages=["en", "fr", "ko"], termbase_ids=[f"tb-{uuid.uuid4().hex[:8]}"])
    results = (await ai_translate(DEMO_VID, "demo", spec, BlockRefs())).languages

    assert {r.language for r in results} == {"en", "fr", "ko"}
    assert all(r.status is JobState.SUCCEEDED and r.srt_key and r.output_vid for r in results)
    assert len({r.project_id for r in results}) == 3
    assert billed(pipeline) == Counter({"SubmitAITranslationWorkflow": 3})


async def test_retryable_error_is_retried(pipeline: Pipeline) -> None:
    pipeline.emulator.set_faults([{"action": "StartWorkflow", "error": {"code": "InternalError", "status": 500}, "count": 2}])

    result = await produce_video(unique_request())

    assert result.status is JobState.SUCCEEDED
    assert pipeline.emulator.faults()[0]["count"] == 0  # both injected failures were met, then it went through
    assert billed(pipeline)["StartWorkflow"] == 1


async def test_non_retryable_error_fails_at_once_with_the_provider_message(pipeline: Pipeline) -> None:
    # One injected refusal: a retry would succeed, so success here would mean the error was retried.
    pipeline.emulator.set_faults(
        [{"action": "CreateProject", "error": {"code": "InvalidParameter", "status": 400, "message": "bad canvas"}, "count": 1}]
    )
    with pytest.raises(InvalidRequestError, match="bad canvas"):
        await produce_video(unique_request())
    assert "CreateProject" not in billed(pipeline)


async def test_lost_jimeng_answer_is_never_paid_twice(pipeline: Pipeline) -> None:
    from flows.engine.journal import DuplicateSubmitRiskError

    pipeline.emulator.set_faults([{"action": "CVSync2AsyncSubmitTask", "drop_after_accept": True, "count": 1}])
    request = unique_request()

    # Jimeng has no idempotency token and no task listing: the lost answer goes to an operator at once.
    with pytest.raises(DuplicateSubmitRiskError, match="clipflow journal attach") as first:
        await produce_video(request)
    assert first.value.record is not None and first.value.record.fingerprint in str(first.value)
    assert billed(pipeline)["CVSync2AsyncSubmitTask"] == 1

    with pytest.raises(DuplicateSubmitRiskError, match="not submitted again"):
        await produce_video(request)  # a re-run must not pay again for an answer it never saw
    assert billed(pipeline)["CVSync2AsyncSubmitTask"] == 1


# A lost StartWorkflow / SubmitAITranslationWorkflow / UploadMediaByUrl / CreateProject answer in a whole production:
# tests/flows/engine/test_engine.py::test_every_lost_vod_answer_is_recovered_and_billed_once (dropped and 5xx).


async def test_expired_output_names_the_cause_and_a_new_take_pays_once(pipeline: Pipeline) -> None:
    from flows.engine.buy import OutputGoneError

    # The URL dies almost as soon as the job is done: the copy loses the race, every time.
    pipeline.emulator.configure(durations={"jimeng_url_ttl": 0.001})
    request = unique_request()
    for _ in range(2):  # the cached job is not paid again, and each run says why it cannot finish
        with pytest.raises(OutputGoneError, match=r"expired before it could be stored.*clip.take to 1"):
            await produce_video(request)
    assert billed(pipeline)["CVSync2AsyncSubmitTask"] == 1

    pipeline.emulator.reset()
    retake = request.model_copy(update={"clip": request.clip.model_copy(update={"take": 1})})
    result = await produce_video(retake)  # deliberately buys a new generation
    assert result.status is JobState.SUCCEEDED
    assert billed(pipeline)["CVSync2AsyncSubmitTask"] == 1  # the ledger was reset: one new purchase


async def test_no_secret_reaches_results_or_artifacts(pipeline: Pipeline) -> None:
    from prefect.client.orchestration import get_client

    result = await produce_video(unique_request())
    secrets = [pipeline.emulator.secret_key, pipeline.emulator.gateway_key, pipeline.env["CLIPFLOW_S3_SECRET_KEY"]]
    dumped = result.model_dump_json()
    async with get_client() as client:
        artifacts = await client.read_artifacts()
        logs = await client.read_logs()
    texts = [dumped] + [str(a.data) for a in artifacts] + [log.message for log in logs]
    assert artifacts and logs
    for text in texts:
        for secret in secrets:
            assert secret not in text
        assert "Signature=" not in text and "X-Amz-Signature" not in text


async def test_two_simultaneous_runs_of_one_production_pay_once(pipeline: Pipeline) -> None:
    import asyncio

    # A slow submit keeps the first run's paid call in flight while the second run reaches the same step.
    pipeline.emulator.set_faults([{"action": "CVSync2AsyncSubmitTask", "latency": 3.0, "count": 2}])
    request = unique_request()
    first, second = await asyncio.gather(produce_video(request), produce_video(request))

    assert first.status is JobState.SUCCEEDED and second.status is JobState.SUCCEEDED
    assert first.clip.job_id == second.clip.job_id
    assert [lang.project_id for lang in first.languages] == [lang.project_id for lang in second.languages]
    assert billed(pipeline) == Counter(
        {
            "CVSync2AsyncSubmitTask": 1, "UploadMediaByUrl": 1, "CreateProject": 1,
            "StartWorkflow": 1, "SubmitAITranslationWorkflow": 2,
        }
    )
