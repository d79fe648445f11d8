"""Preflight: every bad configuration is refused before any paid call (the emulator's ledger stays empty), with
a message naming the block, field and value; a good one passes; a batch reads each distinct value once.

Against the emulator over HTTP, moto S3 and a real Prefect API (tests.harness ``pipeline``)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from flows.app.block_setup import build_blocks
from flows.models import BlockRefs, ProductionRequest
from flows.stages.preflight_checks import ATTEMPTS, PROBE_PREFIX, PreflightError, PreflightMemo, PreflightUnavailableError, _bucket_error
from flows.stages.preflight import preflight, preflight_production, verify_setup
from providers.vod.client import VodClient
from tests.harness import Pipeline

pytestmark = pytest.mark.slow


def request(**fields: Any) -> ProductionRequest:
    tag = uuid.uuid4().hex[:8]
    data: dict[str, Any] = {
        "title": f"preflight-{tag}", "clip": {"prompt": f"A lighthouse at dawn, take {tag}"},
        "translate": {"target_languages": ["en"]},
    }
    for key, value in fields.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return ProductionRequest.model_validate(data)


def gateway_clip(model: str) -> dict[str, Any]:
    return {"provider": "gateway", "model": model, "prompt": f"A tram in the snow {uuid.uuid4().hex[:6]}",
            "aspect_ratio": "16:9"}


async def save_variant(pipeline: Pipeline, **env: str) -> str:
    """Blocks built from the pipeline's env with ``env`` changed, saved under a new name (returned)."""
    name = f"pf-{uuid.uuid4().hex[:8]}"
    for block in build_blocks({**pipeline.env, **env}).values():
        await block.asave(name, overwrite=True)  # type: ignore[attr-defined]
    return name


@pytest.fixture
def without_template_reads() -> Iterator[None]:
    """An endpoint that does not offer GetWorkflowTemplate (it answers InvalidActionOrVersion)."""
    from emulator.registry import REGISTRY

    spec = REGISTRY.pop("GetWorkflowTemplate")
    try:
        yield
    finally:
        REGISTRY["GetWorkflowTemplate"] = spec


@pytest.fixture
def media_list_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """GetMediaList requests actually sent, by space."""
    calls: Counter[str] = Counter()
    original = VodClient.get_media_list

    async def counting(self: VodClient, space_name: str, **kwargs: Any) -> Any:
        calls[space_name] += 1
        return await original(self, space_name, **kwargs)

    monkeypatch.setattr(VodClient, "get_media_list", counting)
    return calls


def probes_left(pipeline: Pipeline) -> list[str]:
    listed = pipeline.s3_client.list_objects_v2(Bucket=pipeline.bucket, Prefix=PROBE_PREFIX)
    return [obj["Key"] for obj in listed.get("Contents", [])]


# --- a good configuration ------------------------------------------------------------------------------------


async def test_good_config_passes_reads_each_value_once_and_bills_nothing(
    pipeline: Pipeline, media_list_calls: Counter[str]
) -> None:
    memo = PreflightMemo()
    for _ in range(3):  # three productions of one run: one read per distinct value
        await preflight_production(request(), memo)
    await preflight_production(request(clip=gateway_clip("veo3.1")), memo)
    assert memo.performed == Counter(
        {"block": 3, "bucket": 1, "journal": 1, "vod-space": 1, "template": 1, "jimeng": 1, "gateway": 1,
         "gateway-model": 1}
    )
    assert media_list_calls == Counter({"demo": 1})
    assert pipeline.emulator.ledger() == []
    assert probes_left(pipeline) == []  # the probe object was written and deleted


# --- each bad configuration: refused, nothing billed, the message names what to fix ---------------------------


async def expect_refused(pipeline: Pipeline, req: ProductionRequest, *needles: str, secret: str = "") -> str:
    """Through produce_video itself (the real wiring), then preflight alone: both refuse, nothing billed."""
    from flows.stages.pipeline import produce_video

    with pytest.raises(PreflightError) as raised:
        await produce_video(req)
    message = str(raised.value)
    for needle in needles:
        assert needle in message, message
    if secret:
        assert secret not in message
    assert pipeline.emulator.ledger() == []
    assert raised.value.retryable is False
    return message


async def test_unknown_space(pipeline: Pipeline) -> None:
    await expect_refused(pipeline, request(space_name="no-such-space"), "space_name", "'no-such-space'",
                         "does not exist", "volcengine-credentials/clipflow")


async def test_unknown_transcode_template(pipeline: Pipeline) -> None:
    await expect_refused(pipeline, request(transcode={"template_id": "no-such-template"}), "transcode.template_id",
                         "'no-such-template'", "does not exist")


async def test_template_unverifiable_without_get_workflow_template_is_not_a_refusal(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture, without_template_reads: None
) -> None:
    """An endpoint without the action answers InvalidActionOrVersion: logged as not verified, not refused."""
    memo = await preflight_production(request(transcode={"template_id": "no-such-template"}), PreflightMemo())
    assert memo.performed["template"] == 1
    assert "not verified" in caplog.text and "no-such-template" in caplog.text
    assert pipeline.emulator.ledger() == []


async def test_missing_bucket(pipeline: Pipeline) -> None:
    name = await save_variant(pipeline, CLIPFLOW_S3_BUCKET="no-such-bucket-" + uuid.uuid4().hex[:6])
    await expect_refused(pipeline, request(blocks={"bucket": name}), f"block s3-bucket/{name}", "field bucket_name",
                         "'no-such-bucket-", "does not exist")


def test_access_denied_maps_to_not_writable() -> None:
    from botocore.exceptions import ClientError

    exc = ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "PutObject")
    error = _bucket_error(exc, "block s3-bucket/x", "locked", block=None)
    assert isinstance(error, PreflightError)
    assert "block s3-bucket/x field bucket_name" in str(error) and "'locked' is not writable" in str(error)


async def test_missing_block(pipeline: Pipeline) -> None:
    await expect_refused(pipeline, request(blocks={"volcengine": "no-such-block"}), "blocks.volcengine",
                         "volcengine-credentials/no-such-block", "does not exist")


async def test_missing_gateway_block_for_a_gateway_clip(pipeline: Pipeline) -> None:
    await expect_refused(pipeline, request(clip=gateway_clip("veo3.1"), blocks={"gateway": "no-such-gateway"}),
                         "blocks.gateway", "video-gateway-credentials/no-such-gateway")


async def test_wrong_vod_secret_key(pipeline: Pipeline) -> None:
    secret = "wrong-secret-" + uuid.uuid4().hex
    name = await save_variant(pipeline, CLIPFLOW_VOLC_SECRET_KEY=secret)
    await expect_refused(pipeline, request(blocks={"volcengine": name}), f"volcengine-credentials/{name}",
                         "secret_access_key", "SignatureDoesNotMatch", secret=secret)


async def test_wrong_gateway_key(pipeline: Pipeline) -> None:
    secret = "wrong-gateway-key-" + uuid.uuid4().hex
    name = await save_variant(pipeline, CLIPFLOW_GATEWAY_KEY=secret)
    await expect_refused(pipeline, request(clip=gateway_clip("veo3.1"), blocks={"gateway": name}),
                         f"video-gateway-credentials/{name}", "field api_key", secret=secret)


async def test_gateway_model_the_block_does_not_list(pipeline: Pipeline) -> None:
    name = await save_variant(pipeline, CLIPFLOW_GATEWAY_MODELS="veo3.1")
    await expect_refused(pipeline, request(clip=gateway_clip("sora-2"), blocks={"gateway": name}), "clip.model",
                         "'sora-2'", f"video-gateway-credentials/{name}", "field models", "['veo3.1']")


async def test_a_model_added_to_the_block_list_passes(pipeline: Pipeline) -> None:
    name = await save_variant(pipeline, CLIPFLOW_GATEWAY_MODELS="veo3.1,sora-2")
    await preflight(BlockRefs(gateway=name), clip=request(clip=gateway_clip("sora-2")).clip)
    assert pipeline.emulator.ledger() == []


def test_the_gateway_block_lists_the_known_models_by_default() -> None:
    from blocks import VideoGatewayCredentials

    block = VideoGatewayCredentials(base_url="http://gw", api_key="k")
    assert {"grok-video-3", "veo3.1", "sora-2"} <= set(block.models)


async def test_provider_unreachable_names_the_endpoint(pipeline: Pipeline) -> None:
    name = await save_variant(pipeline, CLIPFLOW_VOD_ENDPOINT="http://127.0.0.1:9")
    with pytest.raises(PreflightError, match=r"vod_endpoint.*http://127\.0\.0\.1:9/? is unreachable"):
        await preflight(BlockRefs(volcengine=name), space_name="demo")


# --- batches -------------------------------------------------------------------------------------------------


async def test_batch_of_20_over_2_spaces_reads_each_space_once(
    pipeline: Pipeline, media_list_calls: Counter[str]
) -> None:
    """Budget 0: nothing may be paid, so the items are skipped after the preflight; the bad space's items are
    invalid rows naming the space, the others are not."""
    from flows.stages.batch_rows import ItemStatus
    from flows.stages.batch import produce_batch

    tag = uuid.uuid4().hex[:6]
    items = [
        {"title": f"pf-{tag}-{n}", "clip": {"prompt": f"Boats in a harbour, shot {n} {tag}"},
         "space_name": "demo" if n % 2 else "nowhere"}
        for n in range(20)
    ]
    result = await produce_batch(items=items, max_paid_submissions=0)
    assert media_list_calls == Counter({"demo": 1, "nowhere": 1})
    statuses = Counter(row.status for row in result.items)
    assert statuses == Counter({ItemStatus.INVALID: 10, ItemStatus.SKIPPED: 10})
    for row in result.items:
        if row.status is ItemStatus.INVALID:
            assert "space_name" in (row.error or "") and "'nowhere'" in (row.error or "")
    assert pipeline.emulator.ledger() == []


async def test_batch_item_in_a_missing_space_is_invalid_and_the_others_run(
    pipeline: Pipeline, media_list_calls: Counter[str]
) -> None:
    from flows.stages.batch_rows import ItemStatus
    from flows.stages.batch import produce_batch

    tag = uuid.uuid4().hex[:6]
    items = [
        {"title": f"ok-{tag}", "clip": {"prompt": f"A fox in tall grass {tag}"}, "translate": {"target_languages": ["en"]}},
        {"title": f"bad-{tag}", "clip": {"prompt": f"An owl at night {tag}"}, "space_name": "nowhere"},
    ]
    result = await produce_batch(items=items)
    rows = {row.item: row for row in result.items}
    assert rows[1].status is ItemStatus.SUCCEEDED
    assert rows[2].status is ItemStatus.INVALID and "'nowhere'" in (rows[2].error or "")
    # The item that ran reused the batch's checks (its own preflight read nothing again); only it was paid for.
    assert media_list_calls == Counter({"demo": 1, "nowhere": 1})
    assert Counter(e["action"] for e in pipeline.emulator.ledger())["CVSync2AsyncSubmitTask"] == 1


async def test_generate_clips_refuses_a_missing_space_before_paying(
    pipeline: Pipeline, media_list_calls: Counter[str]
) -> None:
    from flows.stages.batch_rows import ItemStatus
    from flows.stages.batch import generate_clips

    specs = [request(clip={"prompt": f"Rain on a window {n} {uuid.uuid4().hex[:6]}"}).clip for n in range(5)]
    result = await generate_clips(specs=specs, space_name="nowhere")
    assert [c.status for c in result.clips] == [ItemStatus.INVALID] * 5
    assert all("space_name" in (c.error or "") for c in result.clips)
    assert media_list_calls == Counter({"nowhere": 1})
    assert pipeline.emulator.ledger() == []


# --- a provider that is failing: retried, and if it keeps failing the run stops; no value is refused -----------

READ_ACTIONS = ["GetMediaList", "GetWorkflowTemplate", "CVSync2AsyncGetResult"]


@pytest.mark.parametrize("action", READ_ACTIONS)
async def test_a_read_failing_a_few_times_is_retried_not_refused(pipeline: Pipeline, action: str) -> None:
    pipeline.emulator.set_faults([{"action": action, "error_rate": 1, "count": ATTEMPTS - 1}])
    memo = PreflightMemo()
    await preflight_production(request(), memo)
    assert [r["count"] for r in pipeline.emulator.faults()] == [0]  # every injected 500 was answered and retried
    assert pipeline.emulator.ledger() == []


@pytest.mark.parametrize("action", READ_ACTIONS)
async def test_a_provider_that_keeps_failing_stops_the_batch_and_refuses_no_item(
    pipeline: Pipeline, action: str
) -> None:
    """The chaos run that found this: one 500 on the batch's only GetMediaList turned 12 good items 'invalid'."""
    from flows.stages.batch import produce_batch

    pipeline.emulator.set_faults([{"action": action, "error_rate": 1}])
    tag = uuid.uuid4().hex[:6]
    items = [{"title": f"down-{tag}-{n}", "clip": {"prompt": f"Gulls over a pier, shot {n} {tag}"}} for n in range(3)]
    with pytest.raises(PreflightUnavailableError) as raised:
        await produce_batch(items=items)
    message = str(raised.value)
    assert action in message and "nothing was paid" in message and "HTTP 500" in message, message
    assert raised.value.retryable and not isinstance(raised.value, PreflightError)
    assert pipeline.emulator.ledger() == []


async def test_a_single_production_stops_the_same_way(pipeline: Pipeline) -> None:
    from flows.stages.pipeline import produce_video

    pipeline.emulator.set_faults([{"action": "GetMediaList", "error_rate": 1}])
    with pytest.raises(PreflightUnavailableError, match="VOD space 'demo'"):
        await produce_video(request())
    assert pipeline.emulator.ledger() == []


async def test_setup_reports_an_unverifiable_provider_as_not_verified(pipeline: Pipeline) -> None:
    pipeline.emulator.set_faults([{"action": "CVSync2AsyncGetResult", "error_rate": 1}])
    problems = await verify_setup("clipflow", gateway=False)
    assert [(p.field, "not verified" in p.rule) for p in problems] == [
        ("the Jimeng keys (CVSync2AsyncGetResult)", True)
    ]


@pytest.mark.parametrize(("code", "status"), [("InternalError", 500), ("SlowDown", 503), ("ServiceUnavailable", 503)])
def test_a_failing_s3_endpoint_is_unavailable_not_a_bad_bucket(code: str, status: int) -> None:
    from botocore.exceptions import ClientError

    exc = ClientError({"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                      "PutObject")
    error = _bucket_error(exc, "block s3-bucket/x", "media", block=None)
    assert isinstance(error, PreflightUnavailableError) and error.retryable
    assert "bucket 'media'" in str(error) and code in str(error)
