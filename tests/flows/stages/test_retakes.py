"""The vendors' retry tables and re-takes, end to end: the clip stage under a real Prefect API, against the emulator
(over HTTP, its billing ledger as the judge) and moto S3.

- A submit refused with the vendor's own retryable body (Jimeng 50500, the gateway's saturation 503) is sent again in
  place and billed once; the same failure without the vendor's body (a proxy's 502) goes to an operator.
- A job that *failed* with a code the vendor marks retryable (Jimeng 50511) is bought again as a new take, up to
  ``clip.max_takes`` and within the batch budget.
"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from flows.models import BlockRefs, GatewayClipSpec, JimengClipSpec
from flows.engine.journal import DuplicateSubmitRiskError, Journal
from flows.stages.batch_rows import ItemStatus
from flows.stages.batch import generate_clips
from flows.stages.generate import TakesExhaustedError, clip_fingerprint, generate_clip
from tests.harness import Pipeline

pytestmark = pytest.mark.slow

JIMENG_SUBMIT = "CVSync2AsyncSubmitTask"


def billed(pipeline: Pipeline) -> Counter[str]:
    return Counter(entry["action"] for entry in pipeline.emulator.ledger())


def jimeng(words: str = "", **fields: object) -> JimengClipSpec:
    """A request no other test of the session bought (results are cached across the session on purpose)."""
    return JimengClipSpec(prompt=f"A lighthouse in fog {words} {uuid.uuid4().hex[:10]}", **fields)


# --- retried in place: the vendor's own body says nothing was created ----------------------------------------


async def test_jimeng_50500_with_its_vendor_body_is_retried_and_billed_once(pipeline: Pipeline) -> None:
    # Two refusals in the service's envelope (code 50500, HTTP 500: the page marks it 可重试), then it goes through.
    pipeline.emulator.set_faults([{"action": JIMENG_SUBMIT, "error": {"code": 50500, "status": 500}, "count": 2}])

    clip = await generate_clip(jimeng(), "demo", BlockRefs())

    assert clip.imported.vid and clip.takes == 1
    assert pipeline.emulator.faults()[0]["count"] == 0  # both refusals were met, then the third send was accepted
    assert billed(pipeline) == Counter({JIMENG_SUBMIT: 1, "UploadMediaByUrl": 1})


async def test_gateway_saturation_503_is_retried_and_billed_once(pipeline: Pipeline) -> None:
    pipeline.emulator.set_faults([{"action": "gateway.create", "error_rate": 1, "count": 2}])  # saturation 503

    spec = GatewayClipSpec(model="grok-video-3", prompt=f"A lighthouse, saturated {uuid.uuid4().hex[:10]}")
    clip = await generate_clip(spec, "demo", BlockRefs())

    assert clip.imported.vid
    assert pipeline.emulator.faults()[0]["count"] == 0
    assert billed(pipeline)["create"] + billed(pipeline)["gateway.create"] == 1


async def test_strict_policy_hands_a_vendor_retryable_code_to_an_operator(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLIPFLOW_RETRY_POLICY", "strict")
    pipeline.emulator.set_faults([{"action": JIMENG_SUBMIT, "error": {"code": 50500, "status": 500}, "count": 1}])

    with pytest.raises(DuplicateSubmitRiskError, match="clipflow journal"):
        await generate_clip(jimeng("strict"), "demo", BlockRefs())
    assert billed(pipeline)[JIMENG_SUBMIT] == 0


async def test_a_proxy_502_without_a_vendor_body_goes_to_an_operator(pipeline: Pipeline) -> None:
    # The emulator created nothing, but a proxy's page cannot say so: the request may have reached Jimeng.
    pipeline.emulator.set_faults([{"action": JIMENG_SUBMIT, "error": {"status": 502, "body": "proxy"}, "count": 1}])
    spec = jimeng("proxy")

    with pytest.raises(DuplicateSubmitRiskError, match="clipflow journal attach"):
        await generate_clip(spec, "demo", BlockRefs())
    with pytest.raises(DuplicateSubmitRiskError, match="not submitted again"):
        await generate_clip(spec, "demo", BlockRefs())  # a re-run does not send it blindly either
    assert billed(pipeline)[JIMENG_SUBMIT] == 0


# --- re-takes: a job that failed with a code the vendor marks retryable ---------------------------------------


async def test_a_job_failed_with_50511_is_bought_again_as_one_new_take(pipeline: Pipeline) -> None:
    pipeline.emulator.set_faults([{"action": JIMENG_SUBMIT, "fail_job": True, "count": 1}])  # the first job: 50511
    spec = jimeng("retake")

    clip = await generate_clip(spec, "demo", BlockRefs())

    assert clip.takes == 2 and clip.imported.vid
    assert billed(pipeline) == Counter({JIMENG_SUBMIT: 2, "UploadMediaByUrl": 1})
    # Each take is its own purchase: its own fingerprint and journal record, the second's job is the clip's.
    journal = await Journal.default()
    first = await journal.read(await clip_fingerprint(spec, BlockRefs()))
    second = await journal.read(await clip_fingerprint(spec.model_copy(update={"take": 1}), BlockRefs()))
    assert first is not None and second is not None and first.job_id and second.job_id
    assert first.job_id != second.job_id and second.job_id == clip.job_id
    jobs = [e["job_id"] for e in pipeline.emulator.ledger() if e["action"] == JIMENG_SUBMIT]
    assert jobs == [first.job_id, second.job_id]

    again = await generate_clip(spec, "demo", BlockRefs())  # a re-run buys nothing: same clip, same takes
    assert (again.job_id, again.takes) == (clip.job_id, 2)
    # ... nor a day later, when Jimeng no longer knows the failed take's task (it keeps one 12 h).
    pipeline.emulator.advance(real_seconds=24 * 3600)
    later = await generate_clip(spec, "demo", BlockRefs())
    assert (later.job_id, later.takes) == (clip.job_id, 2)
    assert billed(pipeline)[JIMENG_SUBMIT] == 2


@pytest.mark.parametrize("max_takes", [1, 3])
async def test_max_takes_is_respected(pipeline: Pipeline, max_takes: int) -> None:
    spec = jimeng("EMULATOR_FAIL", max_takes=max_takes)  # every job of this prompt ends 50511

    with pytest.raises(TakesExhaustedError, match=f"max_takes={max_takes}") as info:
        await generate_clip(spec, "demo", BlockRefs())

    assert info.value.code == 50511 and f"clip.take to {max_takes}" in str(info.value)
    assert billed(pipeline) == Counter({JIMENG_SUBMIT: max_takes})


async def test_a_new_take_is_refused_by_the_batch_budget(pipeline: Pipeline) -> None:
    pipeline.emulator.set_faults([{"action": JIMENG_SUBMIT, "fail_job": True, "count": 1}])

    result = await generate_clips([jimeng("budget")], max_paid_submissions=1)

    (row,) = result.clips
    assert row.status is ItemStatus.FAILED and row.error and "BudgetExceededError" in row.error
    assert billed(pipeline) == Counter({JIMENG_SUBMIT: 1})  # the failed take only: the new one was not bought


# --- translations: a take on purpose --------------------------------------------------------------------------


async def test_translate_take_buys_a_new_translation_on_purpose(pipeline: Pipeline) -> None:
    from emulator.config import DEMO_VID
    from flows.models import TranslateSpec
    from flows.stages.translate import ai_translate

    spec = TranslateSpec(target_languages=["en"], termbase_ids=[f"tb-{uuid.uuid4().hex[:8]}"])
    (first,) = (await ai_translate(DEMO_VID, "demo", spec, BlockRefs())).languages
    (again,) = (await ai_translate(DEMO_VID, "demo", spec, BlockRefs())).languages
    (retake,) = (await ai_translate(DEMO_VID, "demo", spec.model_copy(update={"take": 1}), BlockRefs())).languages

    assert first.project_id == again.project_id != retake.project_id
    assert (first.takes, retake.takes) == (1, 1)
    assert billed(pipeline) == Counter({"SubmitAITranslationWorkflow": 2})
