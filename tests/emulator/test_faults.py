"""Fault injection: injected errors, latency, drop-after-accept (billed once, client sees a transport error)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from emulator.config import DEMO_VID
from emulator.testing import EmulatorHandle
from tests.emulator.helpers import call, error_code, jimeng_get, jimeng_submit, result

WORKFLOW = {"Vid": DEMO_VID, "TemplateId": "demo-transcode-template"}


def start(vod: httpx.Client, **extra: str) -> httpx.Response:
    return call(vod, "StartWorkflow", "2020-08-01", body={**WORKFLOW, **extra})


def test_injected_vod_error_for_the_next_call_only(emu: EmulatorHandle, vod: httpx.Client) -> None:
    emu.set_faults([{"action": "StartWorkflow", "error_rate": 1.0, "count": 1,
                     "error": {"code": "ServiceUnavailable", "status": 503, "message": "try later"}}])
    refused = start(vod)
    assert refused.status_code == 503 and error_code(refused) == "ServiceUnavailable"
    assert refused.json()["ResponseMetadata"]["Error"]["Message"] == "try later"
    assert start(vod).status_code == 200
    assert emu.faults()[0]["count"] == 0
    assert len(emu.ledger()) == 1  # the refused call was not billed


def test_injected_throttle_has_retry_after(emu: EmulatorHandle, vod: httpx.Client) -> None:
    emu.set_faults(StartWorkflow={"error_rate": 1, "count": 1, "error": {"code": "RequestLimitExceeded",
                                                                          "status": 429}})
    refused = start(vod)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"


def test_injected_cv_and_gateway_errors_use_their_envelopes(emu: EmulatorHandle, cv: httpx.Client,
                                                             gw: httpx.Client) -> None:
    emu.set_faults([
        {"action": "CVSync2AsyncSubmitTask", "error_rate": 1, "count": 1, "error": {"code": 50501, "status": 500}},
        {"action": "CVSync2AsyncSubmitTask", "error_rate": 1, "count": 1},
        {"action": "gateway.create", "error_rate": 1, "count": 1},
    ])
    first, second = jimeng_submit(cv, prompt="x"), jimeng_submit(cv, prompt="x")
    assert (first.status_code, first.json()["code"]) == (500, 50501)
    assert (second.status_code, second.json()["code"]) == (500, 50500)  # the default CV server error
    created = gw.post("/v1/video/create", json={"model": "veo3.1", "prompt": "x"})
    assert created.status_code == 503 and "饱和" in created.json()["error"]["message"]
    assert emu.ledger() == []


def test_latency(emu: EmulatorHandle, vod: httpx.Client) -> None:
    emu.set_faults([{"action": "GetWorkflowExecution", "latency": 0.3, "count": 1}])
    started = time.perf_counter()
    call(vod, "GetWorkflowExecution", "2020-08-01", method="GET", query={"RunId": "x"})
    assert time.perf_counter() - started >= 0.3
    started = time.perf_counter()
    call(vod, "GetWorkflowExecution", "2020-08-01", method="GET", query={"RunId": "x"})
    assert time.perf_counter() - started < 0.25


def test_latency_makes_client_time_out(emu: EmulatorHandle, vod: httpx.Client) -> None:
    emu.set_faults([{"action": "GetWorkflowExecution", "latency": 0.5, "count": 1}])
    with pytest.raises(httpx.ReadTimeout):
        vod.get("/", params={"Action": "GetWorkflowExecution", "Version": "2020-08-01", "RunId": "x"}, timeout=0.1)


def test_drop_after_accept_is_billed_once(emu: EmulatorHandle, vod: httpx.Client) -> None:
    emu.set_faults([{"action": "StartWorkflow", "drop_after_accept": True, "count": 1}])
    with pytest.raises(httpx.RemoteProtocolError):
        start(vod, ClientToken="retry-me")
    ledger = emu.ledger()
    assert len(ledger) == 1 and ledger[0]["action"] == "StartWorkflow"
    # the client's retry with the same ClientToken finds the run it never heard about, and is not billed
    run_id = result(start(vod, ClientToken="retry-me"))["RunId"]
    assert run_id == ledger[0]["job_id"]
    assert len(emu.ledger()) == 1


def test_drop_after_accept_on_jimeng_and_gateway(emu: EmulatorHandle, cv: httpx.Client, gw: httpx.Client) -> None:
    emu.set_faults([{"action": "CVSync2AsyncSubmitTask", "drop_after_accept": True, "count": 1},
                    {"action": "gateway.create", "drop_after_accept": True, "count": 1}])
    with pytest.raises(httpx.RemoteProtocolError):
        jimeng_submit(cv, prompt="lost answer")
    with pytest.raises(httpx.RemoteProtocolError):
        gw.post("/v1/video/create", json={"model": "veo3.1", "prompt": "lost answer"})
    assert [(e["provider"], e["action"]) for e in emu.ledger()] == [
        ("jimeng", "CVSync2AsyncSubmitTask"), ("gateway", "create")]
    # the server is fine afterwards, on the same client connection pool
    assert jimeng_submit(cv, prompt="ok").json()["code"] == 10000


def test_lost_translation_found_by_listing(emu: EmulatorHandle, vod: httpx.Client) -> None:
    emu.set_faults([{"action": "SubmitAITranslationWorkflow", "drop_after_accept": True, "count": 1}])
    with pytest.raises(httpx.RemoteProtocolError):
        call(vod, "SubmitAITranslationWorkflow", "2025-01-01", body={
            "SpaceName": "demo", "Vid": DEMO_VID,
            "TranslationConfig": {"SourceLanguage": "zh", "TargetLanguage": "en"}})
    listing = result(call(vod, "ListAITranslationProject", "2025-01-01", method="GET", query={"SpaceName": "demo"}))
    assert [p["ProjectId"] for p in listing["Projects"]] == [emu.ledger()[0]["job_id"]]


def test_error_rate_and_wildcard(emu: EmulatorHandle, vod: httpx.Client) -> None:
    emu.configure(quotas_enabled=False)
    emu.set_faults([{"action": "*", "error_rate": 0.5}])
    codes = [call(vod, "GetWorkflowExecution", "2020-08-01", method="GET", query={"RunId": "x"}).status_code
             for _ in range(40)]
    assert set(codes) == {404, 500}
    emu.set_faults([])
    assert emu.faults() == []


def test_faults_cleared_by_reset_and_validated(emu: EmulatorHandle) -> None:
    emu.set_faults([{"action": "StartWorkflow", "error_rate": 1}])
    emu.reset()
    assert emu.faults() == []
    bad = httpx.put(f"{emu.base_url}/_emulator/faults", json=[{"action": "X", "error_rate": 2}])
    assert bad.status_code == 400


# --- the vendors' retry tables: before the job exists a retryable refusal, after it a lost answer -------------


@pytest.mark.parametrize("body", ["proxy", "empty"])
def test_a_proxy_answers_without_a_vendor_body(emu: EmulatorHandle, cv: httpx.Client, body: str) -> None:
    emu.set_faults([{"action": "CVSync2AsyncSubmitTask", "count": 1, "error": {"status": 502, "message": "Bad Gateway",
                                                                               "body": body}}])
    answer = jimeng_submit(cv, prompt="x")
    assert answer.status_code == 502 and "application/json" not in answer.headers.get("content-type", "")
    assert ("502 Bad Gateway" in answer.text) if body == "proxy" else answer.content == b""
    assert emu.ledger() == []  # before acceptance: nothing created, though the client cannot know it


def test_jimeng_error_after_accept_is_a_gateway_timeout_without_the_envelope(
    emu: EmulatorHandle, cv: httpx.Client
) -> None:
    emu.set_faults([{"action": "CVSync2AsyncSubmitTask", "error_after_accept": True, "count": 1}])
    late = jimeng_submit(cv, prompt="x")
    assert late.status_code == 504 and "application/json" not in late.headers.get("content-type", "")
    assert "50500" not in late.text and "code" not in late.text
    assert [e["action"] for e in emu.ledger()] == ["CVSync2AsyncSubmitTask"]  # created and billed


def test_a_named_cv_gateway_code_keeps_its_name(emu: EmulatorHandle, cv: httpx.Client) -> None:
    """A string code on a CV action is the OpenAPI gateway's (ResponseMetadata), never coerced into 50500."""
    emu.set_faults([{"action": "CVSync2AsyncSubmitTask", "error_after_accept": True, "count": 1,
                     "error": {"code": "InternalServiceTimeout", "status": 504}}])
    late = jimeng_submit(cv, prompt="x")
    assert late.status_code == 504 and error_code(late) == "InternalServiceTimeout" and "code" not in late.json()


@pytest.mark.parametrize(
    "error",
    [
        pytest.param({"code": 50500, "status": 500}, id="jimeng-50500"),
        pytest.param({"code": "50501", "status": 500}, id="jimeng-50501-as-string"),
        pytest.param({"code": 50430, "status": 429}, id="jimeng-concurrency"),
        pytest.param({"code": "FlowLimitExceeded", "status": 429}, id="vod-throttle"),
        pytest.param({"code": "upstream_saturated", "status": 503}, id="gateway-saturation-code"),
        pytest.param({"status": 500, "message": "上游负载已饱和"}, id="gateway-saturation-message"),
    ],
)
def test_error_after_accept_cannot_promise_nothing_was_created(emu: EmulatorHandle, error: dict[str, Any]) -> None:
    refused = httpx.put(f"{emu.base_url}/_emulator/faults",
                        json=[{"action": "CVSync2AsyncSubmitTask", "error_after_accept": True, "error": error}])
    assert refused.status_code == 400 and "error_after_accept" in refused.text and "safe to retry" in refused.text
    assert emu.faults() == []
    # Before acceptance the same answer is what the vendor sends when it refused: allowed.
    emu.set_faults([{"action": "CVSync2AsyncSubmitTask", "error": error, "count": 1}])
    # ... and after acceptance a lost answer's shape is allowed too.
    emu.set_faults([{"action": "CVSync2AsyncSubmitTask", "error_after_accept": True,
                     "error": {**error, "body": "proxy"}}])


def test_fail_job_fails_only_the_jobs_it_counts(emu: EmulatorHandle, cv: httpx.Client, gw: httpx.Client) -> None:
    emu.configure(qps={"CVSync2AsyncSubmitTask": 100})
    emu.set_faults([{"action": "CVSync2AsyncSubmitTask", "fail_job": True, "count": 1},
                    {"action": "gateway.create", "fail_job": True, "count": 1}])
    first, second = (jimeng_submit(cv, prompt="same").json()["data"]["task_id"] for _ in range(2))
    failing, fine = (gw.post("/v1/video/create", json={"model": "veo3.1", "prompt": "same"}).json()["id"]
                     for _ in range(2))
    emu.advance(100)
    failed = jimeng_get(cv, first)
    assert failed.status_code == 400 and failed.json()["code"] == 50511 and failed.json()["data"]["status"] == "done"
    assert jimeng_get(cv, second).json()["data"]["video_url"]
    assert gw.get("/v1/video/query", params={"id": failing}).json()["status"] == "failed"
    assert gw.get("/v1/video/query", params={"id": fine}).json()["status"] == "completed"
    assert len(emu.ledger()) == 4  # a failed job was paid for all the same
