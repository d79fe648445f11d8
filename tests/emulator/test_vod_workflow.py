"""StartWorkflow: quirks, idempotency, state machine, TranscodeInfos."""

from __future__ import annotations

import json

import httpx
import pytest

from emulator.config import DEMO_VID
from emulator.media import probe
from emulator.testing import EmulatorHandle
from tests.emulator.helpers import call, error_code, result, wait_for

TEMPLATE = "demo-transcode-template"


def start(vod: httpx.Client, **params: str) -> httpx.Response:
    return call(vod, "StartWorkflow", "2020-08-01", body={"Vid": DEMO_VID, "TemplateId": TEMPLATE, **params})


def execution(vod: httpx.Client, run_id: str) -> dict:
    return result(call(vod, "GetWorkflowExecution", "2020-08-01", method="GET", query={"RunId": run_id}))


def test_runs_to_success_with_transcode_infos(emu: EmulatorHandle, vod: httpx.Client) -> None:
    run_id = result(start(vod, CallbackArgs="ctx-1"))["RunId"]
    first = execution(vod, run_id)
    assert first["Status"] in ("PendingStart", "Running") and first["Vid"] == DEMO_VID
    assert first["SpaceName"] == "demo" and first["CallbackArgs"] == "ctx-1" and first["TasksDetail"]
    done = wait_for(lambda: (e := execution(vod, run_id))["Status"] == "0" and e)
    assert done["EndTime"] and done["TasksDetail"][0]["Progress"] == 100
    out = result(call(vod, "GetWorkflowExecutionResult", "2022-12-01", method="GET", query={"RunId": run_id}))
    assert out["Status"] == "0" and [t["Definition"] for t in out["TranscodeInfos"]] == ["480p", "720p"]
    info = out["TranscodeInfos"][0]
    assert {"FileId", "StoreUri", "Format", "Duration", "Size"} <= set(info)
    assert probe(httpx.get(info["Url"]).content) is not None


def test_result_is_empty_while_running(vod: httpx.Client) -> None:
    run_id = result(start(vod))["RunId"]
    out = result(call(vod, "GetWorkflowExecutionResult", "2022-12-01", method="GET", query={"RunId": run_id}))
    assert out["Status"] == "PendingStart" and out["TranscodeInfos"] == []


def test_fail_marker_gives_a_2xxx_status(emu: EmulatorHandle, vod: httpx.Client) -> None:
    run_id = result(start(vod, CallbackArgs="EMULATOR_FAIL"))["RunId"]
    emu.advance(60)
    assert execution(vod, run_id)["Status"] == "2001"


def test_client_token_idempotency(emu: EmulatorHandle, vod: httpx.Client) -> None:
    first = result(start(vod, ClientToken="tok-1"))["RunId"]
    again = result(start(vod, ClientToken="tok-1"))["RunId"]
    # the GET form of the same request is the same request
    as_get = result(call(vod, "StartWorkflow", "2020-08-01", method="GET",
                         query={"Vid": DEMO_VID, "TemplateId": TEMPLATE, "ClientToken": "tok-1"}))["RunId"]
    assert first == again == as_get
    conflict = start(vod, ClientToken="tok-1", CallbackArgs="different")
    assert conflict.status_code == 400 and error_code(conflict) == "InvalidParameter"
    other = result(start(vod, ClientToken="tok-2"))["RunId"]
    assert other != first
    assert [e["job_id"] for e in emu.ledger()] == [first, other]


def test_without_token_every_call_is_a_new_billed_run(emu: EmulatorHandle, vod: httpx.Client) -> None:
    runs = {result(start(vod))["RunId"] for _ in range(2)}
    assert len(runs) == 2 and len(emu.ledger()) == 2


def test_optional_dedup_without_token(emu: EmulatorHandle, vod: httpx.Client) -> None:
    emu.configure(idempotent_without_token=True)
    assert result(start(vod))["RunId"] == result(start(vod))["RunId"]
    assert len(emu.ledger()) == 1


def test_direct_url_mode(vod: httpx.Client) -> None:
    direct = json.dumps({"FileName": "demo-sample.mp4", "SpaceName": "demo"})
    run_id = result(call(vod, "StartWorkflow", "2020-08-01",
                         body={"DirectUrl": direct, "TemplateId": TEMPLATE}))["RunId"]
    assert execution(vod, run_id)["DirectUrl"]["FileName"] == "demo-sample.mp4"


@pytest.mark.parametrize("body,status,code", [
    ({"Vid": DEMO_VID, "TemplateId": "nope"}, 404, "ResourceNotFound"),
    ({"Vid": "v0unknown", "TemplateId": TEMPLATE}, 404, "ResourceNotFound"),
    ({"TemplateId": TEMPLATE}, 400, "MissingParameter"),
    ({"Vid": DEMO_VID}, 400, "MissingParameter"),
    ({"Vid": DEMO_VID, "TemplateId": TEMPLATE, "DirectUrl": '{"FileName": "demo-sample.mp4"}'}, 400,
     "InvalidParameter"),
    ({"DirectUrl": {"FileName": "demo-sample.mp4"}, "TemplateId": TEMPLATE}, 400, "InvalidParameter"),
    ({"Vid": DEMO_VID, "TemplateId": TEMPLATE, "Input": {"OverrideParams": {}}}, 400, "InvalidParameter"),
    ({"Vid": DEMO_VID, "TemplateId": TEMPLATE, "Input": "{not json"}, 400, "InvalidParameter"),
    ({"Vid": DEMO_VID, "TemplateId": TEMPLATE, "Priority": 9}, 400, "InvalidParameter"),
    ({"Vid": DEMO_VID, "TemplateId": TEMPLATE, "ClientToken": "x" * 65}, 400, "InvalidParameter"),
    ({"Vid": DEMO_VID, "TemplateId": TEMPLATE, "CallbackArgs": "x" * 513}, 400, "InvalidParameter"),
])
def test_validation(emu: EmulatorHandle, vod: httpx.Client, body: dict, status: int, code: str) -> None:
    response = call(vod, "StartWorkflow", "2020-08-01", body=body)
    assert response.status_code == status and error_code(response) == code
    assert emu.ledger() == []


def test_unknown_run(vod: httpx.Client) -> None:
    response = call(vod, "GetWorkflowExecution", "2020-08-01", method="GET", query={"RunId": "lb:x"})
    assert response.status_code == 404 and error_code(response) == "ResourceNotFound"
