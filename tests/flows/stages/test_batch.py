"""produce_batch and generate_clips under a real Prefect API, against the emulator and moto S3."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
)

from flows.outputs.artifacts import artifact_key
from flows.stages.batch_rows import ItemStatus
from flows.stages.batch import generate_clips, produce_batch
from flows.outputs.manifest import ManifestError
from flows.models import GatewayClipSpec, JimengClipSpec, ProductionRequest, TranslateSpec
from tests.harness import Pipeline

pytestmark = pytest.mark.slow


def tag() -> str:
    """Results are cached across the session on purpose: every test buys things no other test bought."""
    return uuid.uuid4().hex[:8]


def defaults(t: str, languages: list[str]) -> ProductionRequest:
    return ProductionRequest(title=f"batch-{t}", translate=TranslateSpec(target_languages=languages))


def prompt(t: str, n: int, extra: str = "") -> dict[str, Any]:
    return {"clip": {"prompt": f"A kite over the harbour {extra}, take {t}-{n}"}}


def billed(pipeline: Pipeline) -> Counter[str]:
    return Counter(entry["action"] for entry in pipeline.emulator.ledger())


def put(pipeline: Pipeline, key: str, body: str) -> None:
    pipeline.s3_client.put_object(Bucket=pipeline.bucket, Key=key, Body=body.encode())


async def read_artifact(key: str) -> Any:
    async with get_client() as client:
        found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert found, f"no artifact {key}"
    return max(found, key=lambda a: a.created)


async def test_inline_batch_all_succeed_with_artifacts(pipeline: Pipeline) -> None:
    t = tag()
    result = await produce_batch(items=[prompt(t, n) for n in range(3)], defaults=defaults(t, ["en", "ja"]))

    assert (result.total, result.succeeded, result.failed) == (3, 3, 0)
    for row in result.items:
        assert row.status is ItemStatus.SUCCEEDED and row.error is None
        assert row.clip_job_id and row.vid and row.project_id and row.workflow_run_id and row.clip_sha256
        assert row.clip and row.clip.startswith(f"s3://{pipeline.bucket}/clips/")
        assert [tr.language for tr in row.translations] == ["en", "ja"]
        assert all(tr.project_id and tr.output_vid and tr.srt and tr.vtt for tr in row.translations)
        assert row.title.startswith(f"batch-{t}-")
    assert len({row.title for row in result.items}) == 3
    assert billed(pipeline) == Counter(
        {"CVSync2AsyncSubmitTask": 3, "UploadMediaByUrl": 3, "CreateProject": 3, "StartWorkflow": 3,
         "SubmitAITranslationWorkflow": 6}
    )

    progress = await read_artifact(artifact_key(f"batch-{t}-batch", "progress"))
    assert progress.type == "progress" and float(progress.data) == 100.0
    table = await read_artifact(artifact_key(f"batch-{t}-batch", "items"))
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert [r["status"] for r in rows] == ["succeeded"] * 3
    assert {r["vid"] for r in rows} == {row.vid for row in result.items}
    assert "3 succeeded" in (table.description or "")
    # The table is the items' record: the items write no artifacts of their own (4 writes per item saved), and
    # they are no runs of their own either (the batch's run holds their task runs).
    async with get_client() as client:
        mine = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_=f"batch-{t}-%")))
        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[progress.flow_run_id])
        ))
    money = {artifact_key(f"batch-{t}-batch", "estimate"), artifact_key(f"batch-{t}-batch", "cost")}
    assert {a.key for a in mine} == {progress.key, table.key, *money}
    assert runs == []


async def test_jsonl_manifest_with_bad_items_runs_the_good_ones_and_bills_nothing_for_the_bad(
    pipeline: Pipeline,
) -> None:
    t = tag()
    lines = [
        json.dumps(prompt(t, 1)),
        "",  # blank lines are ignored
        json.dumps({"clip": {"prompt": "x" * 801}}),  # a Jimeng rule: prompt ≤ 800 characters
        json.dumps({"clip": {"prompt": f"kite {t}", "frames": 99}}),  # a pydantic rule
        json.dumps({"clip": {"promt": "typo"}}),  # unknown field
        "{not json",
        json.dumps({"clip": {"prompt": f"kite {t}"}, "translate": {"target_languages": ["xx"]}}),  # language enum
    ]
    key = f"manifests/{t}.jsonl"
    put(pipeline, key, "\n".join(lines) + "\n")

    result = await produce_batch(manifest_key=key, defaults=defaults(t, ["en"]))

    assert (result.total, result.succeeded, result.invalid) == (6, 1, 5)
    by_item = {row.item: row for row in result.items}
    assert by_item[1].status is ItemStatus.SUCCEEDED and by_item[1].line == 1
    assert by_item[2].line == 3 and "prompt" in by_item[2].error and "800" in by_item[2].error
    assert by_item[3].line == 4 and "clip.frames" in by_item[3].error
    assert by_item[4].line == 5 and "clip.promt: unknown field" in by_item[4].error
    assert by_item[5].line == 6 and "invalid JSON" in by_item[5].error
    assert by_item[6].line == 7 and "translate.target_languages.0" in by_item[6].error
    assert all(by_item[n].status is ItemStatus.INVALID for n in range(2, 7))
    assert billed(pipeline) == Counter(
        {"CVSync2AsyncSubmitTask": 1, "UploadMediaByUrl": 1, "CreateProject": 1, "StartWorkflow": 1,
         "SubmitAITranslationWorkflow": 1}
    )


async def test_csv_manifest_with_dotted_columns_and_language_lists(pipeline: Pipeline) -> None:
    t = tag()
    csv_text = (
        "title,clip.prompt,clip.seed,translate.target_languages\n"
        f"csv-{t}-a,\"A kite, over the harbour {t}\",7,en;ja\n"
        f"csv-{t}-b,A lighthouse at dusk {t},,fr\n"
    )
    key = f"manifests/{t}.csv"
    put(pipeline, key, csv_text)

    result = await produce_batch(manifest_key=key, defaults=defaults(t, ["en"]))

    assert (result.total, result.succeeded) == (2, 2)
    first, second = result.items
    assert (first.title, first.line, second.title, second.line) == (f"csv-{t}-a", 2, f"csv-{t}-b", 3)
    assert [tr.language for tr in first.translations] == ["en", "ja"]
    assert [tr.language for tr in second.translations] == ["fr"]
    assert billed(pipeline)["SubmitAITranslationWorkflow"] == 3


async def test_bad_csv_header_or_on_invalid_fail_stops_before_any_paid_call(pipeline: Pipeline) -> None:
    t = tag()
    key = f"manifests/{t}-bad.csv"
    put(pipeline, key, "title,clip.promt\nx,y\n")
    with pytest.raises(ManifestError, match=r"unknown column\(s\) \['clip.promt'\]"):
        await produce_batch(manifest_key=key, defaults=defaults(t, ["en"]))

    items = [prompt(t, 1), {"clip": {"prompt": f"kite {t}", "aspect_ratio": "5:4"}}]
    with pytest.raises(ManifestError, match=r"(?s)1 invalid item.*item 2: clip.aspect_ratio"):
        await produce_batch(items=items, defaults=defaults(t, ["en"]), on_invalid="fail")
    assert pipeline.emulator.ledger() == []


async def test_failing_item_does_not_stop_the_others_and_a_rerun_redoes_only_what_failed(
    pipeline: Pipeline,
) -> None:
    t = tag()
    items = [prompt(t, 1), prompt(t, 2, extra="EMULATOR_FAIL"), prompt(t, 3)]
    # One refused CreateProject (not retryable): whichever good item gets there first fails at the edit stage.
    pipeline.emulator.set_faults(
        [{"action": "CreateProject", "error": {"code": "InvalidParameter", "status": 400, "message": "bad canvas"},
          "count": 1}]
    )
    first = await produce_batch(items=items, defaults=defaults(t, ["en"]))

    assert (first.succeeded, first.failed) == (1, 2)
    by_item = {row.item: row for row in first.items}
    # The marked job fails with 50511 (the vendor marks it retryable): one re-take, then the item stops.
    assert by_item[2].status is ItemStatus.FAILED and "TakesExhaustedError" in by_item[2].error
    assert by_item[2].clip_job_id is None and by_item[2].vid is None
    refused = next(row for row in first.items if row.item != 2 and row.status is ItemStatus.FAILED)
    assert "bad canvas" in refused.error and refused.vid and refused.clip_job_id  # ids kept up to the failure
    assert refused.project_id is None
    after_first = billed(pipeline)
    assert after_first == Counter(
        {"CVSync2AsyncSubmitTask": 4, "UploadMediaByUrl": 2, "CreateProject": 1, "StartWorkflow": 1,
         "SubmitAITranslationWorkflow": 1}
    )

    second = await produce_batch(items=items, defaults=defaults(t, ["en"]))

    assert (second.succeeded, second.failed) == (2, 1)
    again = {row.item: row for row in second.items}
    assert again[2].status is ItemStatus.FAILED  # the failed Jimeng job is not paid for again
    assert again[refused.item].status is ItemStatus.SUCCEEDED and again[refused.item].vid == refused.vid
    ok_before = next(row for row in first.items if row.status is ItemStatus.SUCCEEDED)
    same = again[ok_before.item].model_dump(exclude={"cost"})  # a re-run's estimate is 0: it reuses everything
    assert same == ok_before.model_dump(exclude={"cost"})  # the same ids and outputs, from the cache
    # Only the refused item's remaining steps were bought: no new generation, no new import.
    assert billed(pipeline) - after_first == Counter(
        {"CreateProject": 1, "StartWorkflow": 1, "SubmitAITranslationWorkflow": 1}
    )


async def test_budget_stops_the_batch_cleanly(pipeline: Pipeline) -> None:
    t = tag()
    # One item buys 5 things (generate, import, project, workflow, one translation). With 7, item 2 is
    # started (budget left), buys generate + import, then is refused its project; item 3 never starts.
    result = await produce_batch(
        items=[prompt(t, n) for n in range(1, 4)], defaults=defaults(t, ["en"]),
        max_paid_submissions=7, max_concurrency=1,
    )

    statuses = [row.status for row in result.items]
    assert statuses == [ItemStatus.SUCCEEDED, ItemStatus.FAILED, ItemStatus.SKIPPED]
    assert "BudgetExceededError" in result.items[1].error and "budget of 7 paid submissions" in result.items[1].error
    assert result.stopped and "budget of 7 paid submissions used up" in result.stopped
    assert result.paid_submissions == 7 and len(pipeline.emulator.ledger()) == 7
    assert "not started" in result.items[2].error


async def test_generate_clips(pipeline: Pipeline) -> None:
    t = tag()
    specs = [
        JimengClipSpec(prompt=f"A lantern {t} 1"),
        GatewayClipSpec(model="grok-video-3", aspect_ratio="3:2", prompt=f"A lantern {t} 2"),
        JimengClipSpec.model_construct(prompt="y" * 801),  # the model refuses it: built in code, unchecked
    ]
    result = await generate_clips(specs)

    assert [c.status for c in result.clips] == [ItemStatus.SUCCEEDED, ItemStatus.SUCCEEDED, ItemStatus.INVALID]
    assert all(c.vid and c.job_id and c.clip for c in result.clips[:2])
    assert "prompt" in result.clips[2].error
    assert billed(pipeline)["UploadMediaByUrl"] == 2


def test_emulator_counts_the_429s_it_answers(emu: Any) -> None:
    """bench.batch_throughput reports this counter: check it counts (gateway quota, no Prefect needed)."""
    import httpx

    emu.configure(qps={"gateway.query": 0.001})
    headers = {"Authorization": f"Bearer {emu.gateway_key}"}
    with httpx.Client(base_url=emu.base_url, headers=headers) as client:
        answers = [client.get("/v1/video/query", params={"id": "grok:none"}).status_code for _ in range(3)]
    assert answers.count(429) == 2
    assert emu.health()["throttled_answers"] == 2
    emu.reset()
    assert emu.health()["throttled_answers"] == 0
