"""WorkflowComplete and AITranslationComplete are POSTed to the configured callback URL."""

from __future__ import annotations

import httpx

from emulator.config import DEMO_VID
from emulator.testing import EmulatorHandle
from tests.emulator.conftest import LocalServer
from tests.emulator.helpers import call, result, wait_for


def test_callbacks_delivered(emu: EmulatorHandle, vod: httpx.Client, local_server: LocalServer) -> None:
    emu.configure(callback_url=f"{local_server.url}/hook")
    run_id = result(call(vod, "StartWorkflow", "2020-08-01", body={
        "Vid": DEMO_VID, "TemplateId": "demo-transcode-template", "CallbackArgs": "job-42"}))["RunId"]
    project_id = result(call(vod, "SubmitAITranslationWorkflow", "2025-01-01", body={
        "SpaceName": "demo", "Vid": DEMO_VID,
        "TranslationConfig": {"SourceLanguage": "zh", "TargetLanguage": "en"}}))["ProjectBaseInfo"]["ProjectId"]
    emu.advance(200)
    events = wait_for(lambda: local_server.received if len(local_server.received) >= 2 else None)
    by_type = {e["EventType"]: e for e in events}
    workflow = by_type["WorkflowComplete"]
    assert {"RequestId", "Version", "EventType", "EventTime", "Data"} <= set(workflow)
    assert workflow["Data"]["RunId"] == run_id and workflow["Data"]["CallbackArgs"] == "job-42"
    assert workflow["Data"]["Code"] == "Success" and len(workflow["Data"]["TranscodeInfos"]) == 2
    translation = by_type["AITranslationComplete"]["Data"]
    assert translation["ProjectId"] == project_id and translation["ErrorCode"] == 0
    assert translation["TargetVid"].startswith("v0") and translation["SpaceName"] == "demo"
    log = wait_for(lambda: emu.callbacks() if len(emu.callbacks()) >= 2 else None)
    assert all(r["ok"] and r["status"] == 200 for r in log)


def test_unreachable_receiver_is_logged_not_fatal(emu: EmulatorHandle, vod: httpx.Client) -> None:
    emu.configure(callback_url="http://127.0.0.1:9/nothing-listens-here")
    result(call(vod, "StartWorkflow", "2020-08-01", body={"Vid": DEMO_VID, "TemplateId": "demo-transcode-template"}))
    emu.advance(60)
    record = wait_for(lambda: emu.callbacks())[0]
    assert record["ok"] is False and record["error"]
    assert emu.health()["status"] == "ok"


def test_no_callback_url_no_callbacks(emu: EmulatorHandle, vod: httpx.Client, local_server: LocalServer) -> None:
    result(call(vod, "StartWorkflow", "2020-08-01", body={"Vid": DEMO_VID, "TemplateId": "demo-transcode-template"}))
    emu.advance(60)
    assert not local_server.posted.wait(0.2)
