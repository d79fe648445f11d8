"""Per-AK per-action QPS buckets answer each provider's documented throttling code."""

from __future__ import annotations

import time

import httpx

from emulator.config import DEMO_VID
from emulator.testing import EmulatorHandle
from tests.emulator.helpers import call, error_code, jimeng_get, jimeng_submit, result

TRANSLATE = {"SpaceName": "demo", "Vid": DEMO_VID,
             "TranslationConfig": {"SourceLanguage": "zh", "TargetLanguage": "en"}}


def test_vod_flow_limit_exceeded(emu: EmulatorHandle, vod: httpx.Client) -> None:
    """SubmitAITranslationWorkflow is documented at 1 QPS."""
    assert result(call(vod, "SubmitAITranslationWorkflow", "2025-01-01", body=TRANSLATE))
    refused = call(vod, "SubmitAITranslationWorkflow", "2025-01-01", body=TRANSLATE)
    assert refused.status_code == 429 and error_code(refused) == "FlowLimitExceeded"
    assert refused.headers["retry-after"] == "1"
    assert len(emu.ledger()) == 1  # a throttled call is not billed
    time.sleep(1.0)
    assert result(call(vod, "SubmitAITranslationWorkflow", "2025-01-01", body=TRANSLATE))


def test_buckets_are_per_action(emu: EmulatorHandle, vod: httpx.Client) -> None:
    emu.configure(qps={"GetWorkflowExecution": 2})
    codes = [call(vod, "GetWorkflowExecution", "2020-08-01", method="GET", query={"RunId": "x"}).status_code
             for _ in range(3)]
    assert codes == [404, 404, 429]
    other = call(vod, "QueryUploadTaskInfo", "2020-08-01", method="GET", query={"JobIds": "a"})
    assert other.status_code == 200


def test_cv_qps_50429(emu: EmulatorHandle, cv: httpx.Client) -> None:
    emu.configure(qps={"CVSync2AsyncGetResult": 1})
    assert jimeng_get(cv, "1").status_code == 200
    refused = jimeng_get(cv, "1")
    assert refused.status_code == 429 and refused.json()["code"] == 50429
    assert refused.headers["retry-after"]


def test_default_jimeng_submit_qps(emu: EmulatorHandle, cv: httpx.Client) -> None:
    emu.configure(jimeng_concurrency=None)
    codes = [jimeng_submit(cv, prompt="q").json()["code"] for _ in range(3)]
    assert codes == [10000, 10000, 50429]  # providers.quotas.JIMENG_QPS = 2


def test_quotas_can_be_disabled(emu: EmulatorHandle, vod: httpx.Client) -> None:
    emu.configure(quotas_enabled=False)
    for _ in range(3):
        assert result(call(vod, "SubmitAITranslationWorkflow", "2025-01-01", body=TRANSLATE))
