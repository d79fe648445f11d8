"""Bucket scoping: what a form field may name in the bucket (first-frame images, a review's corrected subtitle
file, a batch manifest), how much of it is read, and that a refusal says nothing about other buckets, projects or
objects.

Through the public entry points (produce_video, the review Resume answer, revise-translation, produce-batch)
against the emulator over HTTP, moto S3 and a real Prefect API (tests.harness ``pipeline``). What S3 was asked is
seen by a botocore event hook on the S3 client the flows use (prefect-aws caches one client per credentials), what
was paid by the emulator's ledger.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from emulator.config import DEMO_VID
from flows.models import BlockRefs, ProductionRequest, TranslateSpec
from flows.outputs.manifest import ManifestError
from flows.stages.preflight_checks import PreflightError, PreflightMemo
from flows.stages.preflight import preflight_production
from providers.states import JobState
from tests.flows.stages.test_preflight_images import png
from tests.flows.stages.test_review import (  # noqa: F401 - _runs_of_this_test is an autouse fixture
    WAIT_SECONDS,
    _runs_of_this_test,
    paused_run,
    resume,
    review_spec,
    start,
)
from tests.harness import Pipeline

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MIB = 1024 * 1024
SECRET = "SECRET-" + uuid.uuid4().hex  # object content that must never appear in a message


def tag() -> str:
    return uuid.uuid4().hex[:8]


def billed(pipeline: Pipeline) -> Counter[str]:
    return Counter(entry["action"] for entry in pipeline.emulator.ledger())


class S3Calls:
    """Every S3 operation the flows' client makes while the hook is on: (operation, bucket, key)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None, str | None]] = []

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, params.get("Bucket"), params.get("Key")))

    def on(self, key: str) -> list[str]:
        return [op for op, _, k in self.calls if k == key]

    def in_bucket(self, bucket: str) -> list[str]:
        return [op for op, b, _ in self.calls if b == bucket]


@pytest.fixture
async def s3_calls(pipeline: Pipeline) -> AsyncIterator[S3Calls]:
    from prefect_aws import S3Bucket

    client = (await S3Bucket.aload("clipflow")).credentials.get_s3_client()  # the flows' (cached) client
    spy = S3Calls()
    client.meta.events.register("before-parameter-build.s3", spy)
    try:
        yield spy
    finally:
        client.meta.events.unregister("before-parameter-build.s3", spy)


def put(pipeline: Pipeline, key: str, body: bytes | str, bucket: str | None = None) -> None:
    data = body.encode() if isinstance(body, str) else body
    pipeline.s3_client.put_object(Bucket=bucket or pipeline.bucket, Key=key, Body=data)


# --- first-frame images: the production's bucket, or one the operator lists --------------------------------------


def image_request(ref: str) -> ProductionRequest:
    t = tag()
    return ProductionRequest.model_validate({
        "title": f"scope-{t}", "clip": {"prompt": f"A first frame comes alive, take {t}", "image_url": ref},
        "translate": {"target_languages": []},
    })


async def image_refusal(ref: str) -> str:
    from flows.stages.pipeline import produce_video

    with pytest.raises(PreflightError) as raised:
        await produce_video(image_request(ref))
    assert raised.value.field == "clip.image_url"
    with pytest.raises(PreflightError) as alone:
        await preflight_production(image_request(ref), PreflightMemo())
    assert str(alone.value) == str(raised.value)
    return str(raised.value)


@pytest.mark.parametrize("exists", [True, False], ids=["existing-bucket", "missing-bucket"])
async def test_an_image_in_another_bucket_is_refused_by_name_before_s3_and_before_paying(
    pipeline: Pipeline, s3_calls: S3Calls, exists: bool
) -> None:
    other = f"other-team-{tag()}"
    if exists:
        pipeline.s3_client.create_bucket(Bucket=other)
        put(pipeline, "private/face.png", png(640, 480), bucket=other)
    message = await image_refusal(f"s3://{other}/private/face.png")

    assert f"clip.image_url: s3://{other}/private/face.png is not allowed" in message, message
    assert "CLIPFLOW_IMAGE_BUCKETS" in message
    # Decided by name: S3 was never asked about that bucket, so the answer cannot depend on whether it exists.
    assert s3_calls.in_bucket(other) == []
    assert "exist" not in message and "denied" not in message.lower()
    assert pipeline.emulator.ledger() == []


async def test_the_refusal_is_the_same_whether_the_other_bucket_exists_or_not(pipeline: Pipeline) -> None:
    real, missing = f"other-team-{tag()}", f"other-team-{tag()}"
    pipeline.s3_client.create_bucket(Bucket=real)
    put(pipeline, "face.png", png(640, 480), bucket=real)
    first = await image_refusal(f"s3://{real}/face.png")
    second = await image_refusal(f"s3://{missing}/face.png")
    assert first.replace(real, "B") == second.replace(missing, "B")
    assert pipeline.emulator.ledger() == []


async def test_a_bucket_listed_in_clipflow_image_buckets_is_read(
    pipeline: Pipeline, s3_calls: S3Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = f"shared-frames-{tag()}"
    pipeline.s3_client.create_bucket(Bucket=extra)
    put(pipeline, "frames/a.png", png(640, 480), bucket=extra)
    monkeypatch.setenv("CLIPFLOW_IMAGE_BUCKETS", f"some-other, {extra}")

    await preflight_production(image_request(f"s3://{extra}/frames/a.png"), PreflightMemo())
    assert s3_calls.on("frames/a.png") == ["HeadObject", "GetObject"]  # HEAD-checked, then read

    monkeypatch.delenv("CLIPFLOW_IMAGE_BUCKETS")
    message = await image_refusal(f"s3://{extra}/frames/a.png")
    assert "is not allowed" in message
    assert pipeline.emulator.ledger() == []


async def test_the_productions_own_bucket_by_s3_uri_or_key_is_read(pipeline: Pipeline, s3_calls: S3Calls) -> None:
    key = f"frames/{tag()}/own.png"
    put(pipeline, key, png(640, 480))
    memo = PreflightMemo()
    await preflight_production(image_request(f"s3://{pipeline.bucket}/{key}"), memo)
    await preflight_production(image_request(key), memo)
    assert memo.performed["image"] == 2 and s3_calls.on(key).count("HeadObject") == 2
    assert pipeline.emulator.ledger() == []


@pytest.mark.parametrize("key", ["frames/../reviews/tp-1/face.png", "frames//face.png", "frames/./face.png"],
                         ids=["dot-dot", "empty-segment", "dot"])
async def test_an_image_key_with_path_tricks_is_refused_before_s3(
    pipeline: Pipeline, s3_calls: S3Calls, key: str
) -> None:
    message = await image_refusal(key)
    assert f"s3://{pipeline.bucket}/{key} is not allowed: a key must not have empty, '.' or '..' parts" in message
    assert s3_calls.on(key) == []
    assert pipeline.emulator.ledger() == []


# --- a review's corrected subtitle file: the project's own folder, at most 2 MiB, HEAD first ----------------------


PROJECT = "tp-scoping-0001"


@pytest.mark.parametrize(
    "key",
    [
        "subtitles/tp-other-project/en.srt",  # another project's subtitles
        f"reviews/{PROJECT}/decision.json",  # a review decision, not a subtitle file
        f"subtitles/{PROJECT}/../tp-other-project/en.srt",  # a path that some stores normalise
        f"subtitles/{PROJECT}-2/en.srt",  # a sibling whose name starts with the project id
        f"subtitles/{PROJECT}/",  # the folder itself
        f"subtitles/{PROJECT}//en.srt",  # an empty segment
        f"subtitles\\{PROJECT}\\en.srt",  # backslashes
        f"clips/{PROJECT}.mp4",
    ],
    ids=["other-project", "decision-file", "dot-dot", "sibling-prefix", "folder", "empty-segment", "backslash",
         "clip"],
)
async def test_revise_refuses_a_subtitle_key_outside_the_projects_folder_by_name(
    pipeline: Pipeline, s3_calls: S3Calls, key: str
) -> None:
    from flows.stages.review import ReviewInputError
    from flows.stages.revise import revise_translation

    if not key.endswith("/"):
        put(pipeline, key, f"1\n00:00:00,000 --> 00:00:01,000\n{SECRET}\n")
    with pytest.raises(ReviewInputError) as raised:
        await revise_translation(PROJECT, "en", "demo", subtitle_key=key)
    message = str(raised.value)
    assert message.startswith(f"subtitle_key: must be a file under subtitles/{PROJECT}/"), message
    assert SECRET not in message
    assert s3_calls.on(key) == []  # refused by its name: the object was neither read nor looked at
    assert pipeline.emulator.ledger() == []


async def test_a_review_answer_naming_another_projects_subtitles_is_refused_and_nothing_is_paid(
    pipeline: Pipeline, s3_calls: S3Calls
) -> None:
    from flows.outputs.subtitles import parse_subtitles, to_srt

    running = await start(review_spec())
    run = await paused_run()
    project_id = run.state.state_details.pause_key.removeprefix("review-")
    draft = pipeline.s3_client.get_object(Bucket=pipeline.bucket, Key=f"subtitles/{project_id}/draft/en.srt")
    cues = parse_subtitles(draft["Body"].read().decode())
    # Another project's file with the same shape: were it read, its text would land in this project's outputs.
    stolen = [c.__class__(c.start_ms, c.end_ms, f"{SECRET} {n}") for n, c in enumerate(cues)]
    key = f"subtitles/tp-someone-else-{tag()}/en.srt"
    put(pipeline, key, to_srt(stolen))

    await resume(run.id, {"action": "edit", "subtitle_key": key})
    [result] = (await asyncio.wait_for(running, WAIT_SECONDS)).languages

    assert result.status is JobState.FAILED
    assert (result.error or "").startswith(f"subtitle_key: must be a file under subtitles/{project_id}/")
    assert SECRET not in (result.error or "")
    assert s3_calls.on(key) == []
    assert billed(pipeline) == Counter({"SubmitAITranslationWorkflow": 1})  # no update, no continue


async def test_revise_heads_a_subtitle_file_and_refuses_3_mib_without_reading_it(
    pipeline: Pipeline, s3_calls: S3Calls
) -> None:
    from flows.stages.review import ReviewInputError
    from flows.stages.revise import revise_translation
    from flows.stages.translate import ai_translate

    spec = TranslateSpec(target_languages=["ja"], termbase_ids=[f"s-{tag()}"])
    [done] = (await ai_translate(DEMO_VID, "demo", spec, BlockRefs())).languages
    before = billed(pipeline)
    folder = f"subtitles/{done.project_id}"

    big = f"{folder}/big.srt"
    put(pipeline, big, (f"{SECRET}\n" * (3 * MIB // (len(SECRET) + 1) + 1)).encode()[: 3 * MIB])
    with pytest.raises(ReviewInputError) as raised:
        await revise_translation(done.project_id, "ja", "demo", subtitle_key=big)
    message = str(raised.value)
    assert "subtitle_key:" in message and "3,145,728 bytes" in message and "2,097,152 bytes (2 MiB)" in message
    assert s3_calls.on(big) == ["HeadObject"]  # the HEAD said too large: GetObject never happened
    assert SECRET not in message

    # A file under the folder that is no subtitle file is read (it is small) but not repeated back.
    notes = f"{folder}/notes.srt"
    put(pipeline, notes, f"{SECRET}\nnot a cue at all\n")
    with pytest.raises(ReviewInputError, match="subtitle_key: .* is not SRT/WebVTT") as raised:
        await revise_translation(done.project_id, "ja", "demo", subtitle_key=notes)
    assert SECRET not in str(raised.value)
    binary = f"{folder}/binary.srt"
    put(pipeline, binary, b"\xff\xfe" + SECRET.encode("utf-16-le"))
    with pytest.raises(ReviewInputError, match="subtitle_key: .* is not UTF-8 text") as raised:
        await revise_translation(done.project_id, "ja", "demo", subtitle_key=binary)
    assert SECRET not in str(raised.value) and "\\x" not in str(raised.value)
    assert billed(pipeline) == before  # no update, no re-export


# --- manifests: under the prefix, bounded in bytes and rows, never echoed ------------------------------------------


def defaults(t: str) -> ProductionRequest:
    return ProductionRequest(title=f"scope-{t}", translate=TranslateSpec(target_languages=["en"]))


@pytest.mark.parametrize(
    ("key", "fmt"),
    [
        ("reviews/tp-x/decision.json", "csv"),  # the probe that once echoed a decision's first line
        ("reviews/tp-x/decision.jsonl", "auto"),
        ("subtitles/tp-x/en.srt", "jsonl"),
        ("manifests/../reviews/tp-x/decision.csv", "auto"),
        ("manifests-old/nightly.jsonl", "auto"),
        ("/manifests/nightly.jsonl", "auto"),
        ("Manifests/nightly.jsonl", "auto"),
    ],
    ids=["decision-as-csv", "decision-jsonl", "subtitles", "dot-dot", "sibling-prefix", "leading-slash", "case"],
)
async def test_a_manifest_outside_the_prefix_is_refused_without_reading_or_echoing_it(
    pipeline: Pipeline, s3_calls: S3Calls, key: str, fmt: str
) -> None:
    from flows.stages.batch import produce_batch

    put(pipeline, key, json.dumps({"decision": {"action": "edit", "reason": SECRET}}) + "\n")
    with pytest.raises(ManifestError) as raised:
        await produce_batch(manifest_key=key, defaults=defaults(tag()), manifest_format=fmt)  # type: ignore[arg-type]
    message = str(raised.value)
    assert message.startswith("manifest_key: must be a .jsonl or .csv file under manifests/"), message
    assert SECRET not in message
    assert s3_calls.on(key) == []
    assert pipeline.emulator.ledger() == []


async def test_a_csv_manifest_whose_first_line_is_not_a_header_is_not_echoed(pipeline: Pipeline) -> None:
    from flows.stages.batch import produce_batch

    key = f"manifests/{tag()}-copied-decision.csv"
    put(pipeline, key, json.dumps({"decision": {"action": "edit", "reason": SECRET}, "at": "2026"}) + "\n")
    with pytest.raises(ManifestError, match=r"CSV header \(line 1\): unknown column\(s\) \['column 1") as raised:
        await produce_batch(manifest_key=key, defaults=defaults(tag()))
    assert SECRET not in str(raised.value) and "decision" not in str(raised.value)
    assert pipeline.emulator.ledger() == []


async def test_clipflow_manifest_prefix_moves_the_allowed_folder(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.stages.batch import produce_batch

    monkeypatch.setenv("CLIPFLOW_MANIFEST_PREFIX", "batches/nightly/")
    t = tag()
    key = f"batches/nightly/{t}.jsonl"
    put(pipeline, key, json.dumps({"clip": {"prompt": f"kite {t}", "frames": 99}}) + "\n")  # invalid: nothing paid
    result = await produce_batch(manifest_key=key, defaults=defaults(t))
    assert (result.total, result.invalid) == (1, 1) and "clip.frames" in (result.items[0].error or "")

    put(pipeline, f"manifests/{t}.jsonl", "{}\n")
    with pytest.raises(ManifestError, match="manifest_key: must be .* under batches/nightly/"):
        await produce_batch(manifest_key=f"manifests/{t}.jsonl", defaults=defaults(t))
    assert pipeline.emulator.ledger() == []


async def test_a_manifest_of_max_plus_one_rows_is_refused_with_the_count_quickly(pipeline: Pipeline) -> None:
    from flows.stages.batch import produce_batch

    t = tag()
    key = f"manifests/{t}-big.jsonl"
    put(pipeline, key, "".join(json.dumps({"clip": {"prompt": f"kite {t} {n}"}}) + "\n" for n in range(10_001)))
    started = time.monotonic()
    with pytest.raises(ManifestError) as raised:
        await produce_batch(manifest_key=key, defaults=defaults(t))
    elapsed = time.monotonic() - started
    message = str(raised.value)
    assert f"manifest_key: s3://{pipeline.bucket}/{key}: 10,001 items" in message, message
    assert "at most 10,000 (CLIPFLOW_MAX_BATCH_ITEMS)" in message
    assert elapsed < 10, elapsed  # counted from its lines; 10,001 validated and preflighted items take far longer
    assert "kite" not in message
    assert pipeline.emulator.ledger() == []


async def test_max_batch_items_counts_csv_records_and_inline_items(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.stages.batch import produce_batch

    monkeypatch.setenv("CLIPFLOW_MAX_BATCH_ITEMS", "3")
    t = tag()
    rows = [f'"kite {t} {n}\nover two lines",99' for n in range(4)]  # quoted cells span lines: 4 records, 9 lines
    key = f"manifests/{t}.csv"
    put(pipeline, key, "clip.prompt,clip.frames\n" + "\n".join(rows) + "\n")
    with pytest.raises(ManifestError, match=r": 4 items, a batch takes at most 3 \(CLIPFLOW_MAX_BATCH_ITEMS\)"):
        await produce_batch(manifest_key=key, defaults=defaults(t))

    put(pipeline, key, "clip.prompt,clip.frames\n" + "\n".join(rows[:3]) + "\n")
    result = await produce_batch(manifest_key=key, defaults=defaults(t))  # 3: read and validated (all invalid)
    assert (result.total, result.invalid) == (3, 3)

    with pytest.raises(ManifestError, match=r"^items: 4 items, a batch takes at most 3"):
        await produce_batch(items=[{"clip": {"prompt": f"kite {t} {n}"}} for n in range(4)], defaults=defaults(t))
    assert pipeline.emulator.ledger() == []


async def test_a_manifest_over_the_byte_limit_is_refused_by_head_without_reading(
    pipeline: Pipeline, s3_calls: S3Calls
) -> None:
    from flows.outputs.manifest import MAX_MANIFEST_BYTES
    from flows.stages.batch import produce_batch

    t = tag()
    key = f"manifests/{t}-huge.jsonl"
    line = (json.dumps({"clip": {"prompt": SECRET}}) + "\n").encode()
    put(pipeline, key, (line * (MAX_MANIFEST_BYTES // len(line) + 1))[: MAX_MANIFEST_BYTES + 1])
    with pytest.raises(ManifestError) as raised:
        await produce_batch(manifest_key=key, defaults=defaults(t))
    message = str(raised.value)
    assert f"is {MAX_MANIFEST_BYTES + 1:,} bytes, a manifest is at most {MAX_MANIFEST_BYTES:,} bytes" in message
    assert s3_calls.on(key) == ["HeadObject"] and SECRET not in message
    assert pipeline.emulator.ledger() == []


async def test_the_items_artifact_is_capped_while_the_result_keeps_every_row(pipeline: Pipeline) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.outputs.artifacts import artifact_key
    from flows.stages.batch_rows import ARTIFACT_MAX_ROWS
    from flows.stages.batch import produce_batch

    t = tag()
    count = ARTIFACT_MAX_ROWS + 5
    key = f"manifests/{t}-wide.jsonl"
    put(pipeline, key, "".join(json.dumps({"clip": {"prompt": f"k {n}", "frames": 99}}) + "\n" for n in range(count)))
    result = await produce_batch(manifest_key=key, defaults=defaults(t))
    assert (result.total, result.invalid, len(result.items)) == (count, count, count)

    async with get_client() as client:
        [table] = await client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[artifact_key(f"scope-{t}-batch", "items")])
        ))
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert len(rows) == ARTIFACT_MAX_ROWS and [r["item"] for r in rows] == list(range(1, ARTIFACT_MAX_ROWS + 1))
    assert f"shows {ARTIFACT_MAX_ROWS:,} of {count:,} rows" in (table.description or "")
    assert pipeline.emulator.ledger() == []
