"""Every fault works everywhere: error_rate on every action (reads too), drop_after_accept and error_after_accept
on every paid submit (the job is created and billed, the client never sees the answer)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from emulator.config import DEMO_SPACE, DEMO_TEMPLATE, DEMO_VID, FaultRule
from emulator.registry import REGISTRY
from emulator.testing import EmulatorHandle
from tests.emulator.helpers import call, error_code, jimeng_submit

EDIT_PARAM = {"Upload": {"SpaceName": DEMO_SPACE, "VideoName": "cut"}, "Canvas": {"Width": 1920, "Height": 1080}}


class Clients:
    def __init__(self, emu: EmulatorHandle, vod: httpx.Client, cv: httpx.Client, gw: httpx.Client) -> None:
        self.emu, self.vod, self.cv, self.gw = emu, vod, cv, gw


@pytest.fixture
def clients(emu: EmulatorHandle, vod: httpx.Client, cv: httpx.Client, gw: httpx.Client) -> Clients:
    emu.configure(quotas_enabled=False)
    return Clients(emu, vod, cv, gw)


def _upload(c: Clients) -> httpx.Response:
    source = f"{c.emu.base_url}/_media/vod/{DEMO_VID}.mp4"
    return call(c.vod, "UploadMediaByUrl", "2020-08-01", form={
        "SpaceName": DEMO_SPACE, "URLSets": json.dumps([{"SourceUrl": source, "Title": "clipflow-0123456789abcdef"}])})


def _translation_project(c: Clients, stage: str | None) -> str:
    """A project paused at ``stage`` (or finished when None), set up before the fault under test is armed."""
    body: dict[str, Any] = {"SpaceName": DEMO_SPACE, "Vid": DEMO_VID,
                            "TranslationConfig": {"SourceLanguage": "zh", "TargetLanguage": "en"}}
    if stage:
        body["ProcessConfig"] = {"SuspensionStageList": [stage]}
    faults = c.emu.faults()
    c.emu.set_faults([])
    response = call(c.vod, "SubmitAITranslationWorkflow", "2025-01-01", body=body)
    c.emu.advance(500)
    c.emu.set_faults(faults)
    return response.json()["Result"]["ProjectBaseInfo"]["ProjectId"]


def _continue(c: Clients) -> httpx.Response:
    project_id = _translation_project(c, "SubtitleTranslation")
    return call(c.vod, "ContinueAITranslationWorkflow", "2025-01-01",
                body={"SpaceName": DEMO_SPACE, "ProjectId": project_id})


def _refresh(c: Clients) -> httpx.Response:
    project_id = _translation_project(c, None)
    return call(c.vod, "RefreshAITranslationProject", "2025-01-01",
                body={"SpaceName": DEMO_SPACE, "ProjectId": project_id, "RefreshType": "whole"})


# Paid actions on an existing project: the submit that made the project is billed first.
SETUP_BILLS = {"ContinueAITranslationWorkflow": ["SubmitAITranslationWorkflow"],
               "RefreshAITranslationProject": ["SubmitAITranslationWorkflow"]}

# fault action -> (send the paid request, ledger action, health job counter)
SUBMITS: dict[str, tuple[Callable[[Clients], httpx.Response], str, str]] = {
    "UploadMediaByUrl": (_upload, "UploadMediaByUrl", "uploads"),
    "CreateProject": (lambda c: call(c.vod, "CreateProject", "2018-01-01", body={
        "ProjectName": "lost-answer", "Space": DEMO_SPACE, "EditParam": EDIT_PARAM, "ProjectType": "track"}),
        "CreateProject", "edit_projects"),
    "StartWorkflow": (lambda c: call(c.vod, "StartWorkflow", "2020-08-01", body={
        "Vid": DEMO_VID, "TemplateId": DEMO_TEMPLATE}), "StartWorkflow", "workflows"),
    "SubmitAITranslationWorkflow": (lambda c: call(c.vod, "SubmitAITranslationWorkflow", "2025-01-01", body={
        "SpaceName": DEMO_SPACE, "Vid": DEMO_VID,
        "TranslationConfig": {"SourceLanguage": "zh", "TargetLanguage": "en"}}),
        "SubmitAITranslationWorkflow", "translations"),
    "SubmitDirectEditTaskAsync": (lambda c: call(c.vod, "SubmitDirectEditTaskAsync", "2018-01-01", body={
        "Uploader": DEMO_SPACE, "Application": "VideoTrackToB", "EditParam": EDIT_PARAM}),
        "SubmitDirectEditTaskAsync", "direct_edits"),
    "ContinueAITranslationWorkflow": (_continue, "ContinueAITranslationWorkflow", "translations"),
    "RefreshAITranslationProject": (_refresh, "RefreshAITranslationProject", "translations"),
    "CVSync2AsyncSubmitTask": (lambda c: jimeng_submit(c.cv, prompt="lost answer"), "CVSync2AsyncSubmitTask",
                               "jimeng"),
    "gateway.create": (lambda c: c.gw.post("/v1/video/create", json={"model": "veo3.1", "prompt": "lost answer"}),
                       "create", "gateway"),
}

# What error_after_accept answers by default: the provider's gateway timeout, never a "nothing was created"
# (Jimeng's: a 504 page without the service's envelope, since 50500 in it means "retry, nothing was started").
AFTER_ACCEPT_DEFAULT = {"vod": (504, "InternalServiceTimeout"), "cv": (504, "no vendor body"),
                        "gateway": (504, "upstream_timeout")}


def provider_of(action: str) -> str:
    if action.startswith("gateway."):
        return "gateway"
    return REGISTRY[action].service


def error_of(response: httpx.Response, provider: str) -> tuple[int, Any]:
    if not response.headers.get("content-type", "").startswith("application/json"):
        return response.status_code, "no vendor body"
    body = response.json()
    if provider == "vod":
        return response.status_code, body["ResponseMetadata"]["Error"]["Code"]
    if provider == "cv":
        return response.status_code, body["code"]
    return response.status_code, body["error"]["code"]


def assert_billed_once(c: Clients, ledger_action: str, counter: str) -> None:
    ledger = c.emu.ledger()
    assert [e["action"] for e in ledger] == [*SETUP_BILLS.get(ledger_action, []), ledger_action]
    assert ledger[-1]["job_id"]
    assert c.emu.health()["jobs"][counter] == 1  # the job exists, not just a ledger line


# --- error_rate on every action ------------------------------------------------------------------------------


@pytest.mark.parametrize("action", sorted(REGISTRY), ids=sorted(REGISTRY))
def test_error_rate_works_on_every_volcengine_action(clients: Clients, action: str) -> None:
    spec = REGISTRY[action]
    clients.emu.set_faults([{"action": action, "error_rate": 1, "count": 1}])
    client = clients.cv if spec.service == "cv" else clients.vod
    # The fault fires before the handler: the parameters do not matter.
    response = call(client, action, spec.version, body={})
    if spec.service == "cv":
        assert (response.status_code, response.json()["code"]) == (500, 50500)
    else:
        assert (response.status_code, error_code(response)) == (500, "InternalError")
    assert clients.emu.faults()[0]["count"] == 0 and clients.emu.ledger() == []


def test_error_rate_works_on_gateway_query(clients: Clients) -> None:
    clients.emu.set_faults([{"action": "gateway.query", "error_rate": 1, "count": 1,
                             "error": {"status": 500, "code": "boom"}}])
    response = clients.gw.get("/v1/video/query", params={"id": "grok:x"})
    assert (response.status_code, response.json()["error"]["code"]) == (500, "boom")


def test_error_rate_on_a_status_read_leaves_the_job_alone(clients: Clients) -> None:
    run_id = SUBMITS["StartWorkflow"][0](clients).json()["Result"]["RunId"]
    clients.emu.set_faults([{"action": "GetWorkflowExecution", "error_rate": 1, "count": 1,
                             "error": {"code": "ServiceUnavailable", "status": 503}}])

    def read() -> httpx.Response:
        return call(clients.vod, "GetWorkflowExecution", "2020-08-01", method="GET", query={"RunId": run_id})

    failed = read()
    assert (failed.status_code, error_code(failed)) == (503, "ServiceUnavailable")
    assert read().json()["Result"]["RunId"] == run_id  # the next read answers normally


# --- drop_after_accept and error_after_accept on every paid submit --------------------------------------------


@pytest.mark.parametrize("action", list(SUBMITS))
def test_drop_after_accept_on_every_submit(clients: Clients, action: str) -> None:
    send, ledger_action, counter = SUBMITS[action]
    clients.emu.set_faults([{"action": action, "drop_after_accept": True, "count": 1}])
    with pytest.raises(httpx.RemoteProtocolError):
        send(clients)
    assert_billed_once(clients, ledger_action, counter)


@pytest.mark.parametrize("action", list(SUBMITS))
def test_error_after_accept_on_every_submit(clients: Clients, action: str) -> None:
    send, ledger_action, counter = SUBMITS[action]
    clients.emu.set_faults([{"action": action, "error_after_accept": True, "count": 1}])
    response = send(clients)
    provider = provider_of(action)
    assert error_of(response, provider) == AFTER_ACCEPT_DEFAULT[provider]
    assert_billed_once(clients, ledger_action, counter)


def test_error_after_accept_with_a_named_error(clients: Clients) -> None:
    clients.emu.set_faults([{"action": "CreateProject", "error_after_accept": True, "count": 1,
                             "error": {"code": "InternalError", "status": 500, "message": "late"}}])
    response = SUBMITS["CreateProject"][0](clients)
    assert (response.status_code, error_code(response)) == (500, "InternalError")
    assert_billed_once(clients, "CreateProject", "edit_projects")


def test_error_after_accept_keeps_a_real_refusal(clients: Clients) -> None:
    clients.emu.set_faults([{"action": "StartWorkflow", "error_after_accept": True, "count": 1}])
    refused = call(clients.vod, "StartWorkflow", "2020-08-01", body={"Vid": DEMO_VID, "TemplateId": "no-such"})
    assert refused.status_code == 404 and error_code(refused) == "ResourceNotFound"
    assert clients.emu.ledger() == []


def test_error_after_accept_fires_by_default_and_round_trips() -> None:
    rule = FaultRule(action="StartWorkflow", error_after_accept=True)
    assert rule.error_rate == 1.0
    assert FaultRule(action="StartWorkflow", error_after_accept=True, error_rate=0.25).error_rate == 0.25
    assert FaultRule.model_validate(rule.model_dump()) == rule
