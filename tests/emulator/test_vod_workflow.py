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


def test_result_is_empty_while_running(emu: EmulatorHandle, vod: httpx.Client) -> None:
    emu.configure(durations={"workflow_pending": 600})  # 3 s at the test scale: no race with a busy machine
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


# --- overrides: validated as the vendor would, and visible in what the workflow produced ----------------------

FULL = "full-template"
FULL_TEMPLATES = {TEMPLATE: ["480p", "720p"], FULL: ["720p", "audio:m4a", "snapshot:poster", "logo:caption"]}


def with_input(overrides: dict, template: str = FULL) -> dict:
    return {"Vid": DEMO_VID, "TemplateId": template, "Input": json.dumps({"OverrideParams": overrides})}


def finished_result(emu: EmulatorHandle, vod: httpx.Client, run_id: str) -> dict:
    emu.advance(600)
    out = result(call(vod, "GetWorkflowExecutionResult", "2022-12-01", method="GET", query={"RunId": run_id}))
    assert out["Status"] == "0"
    return out


def test_template_lists_its_tasks_and_text_watermark_variables(emu: EmulatorHandle, vod: httpx.Client) -> None:
    emu.configure(workflow_templates=FULL_TEMPLATES)
    full = result(call(vod, "GetWorkflowTemplate", "2023-07-01", method="GET", query={"TemplateId": FULL}))
    activities = full["WorkflowTemplate"]["Activities"]
    assert [(a["Type"], a["TemplateId"]) for a in activities] == [
        ("Transcode", f"{FULL}-720p"), ("TranscodeAudio", f"{FULL}-audio-m4a"), ("Snapshot", f"{FULL}-snapshot-poster"),
    ]
    assert activities[0]["Logo"] == {"TemplateId": f"{FULL}-logo", "Type": "Text", "Vars": ["caption"]}
    # The demo template's text variable is not the vendor's example key: a client has to read it.
    demo = result(call(vod, "GetWorkflowTemplate", "2023-07-01", method="GET", query={"TemplateId": TEMPLATE}))
    assert {a["Logo"]["Vars"][0] for a in demo["WorkflowTemplate"]["Activities"] if "Logo" in a} == {"keyword"}


def test_overrides_show_in_the_outputs(emu: EmulatorHandle, vod: httpx.Client) -> None:
    emu.configure(workflow_templates=FULL_TEMPLATES)
    overrides = {
        "Logo": [{"TemplateId": f"{FULL}-logo", "Vars": {"caption": "Harbour 港"}}],
        "TranscodeVideo": [{"TemplateId": ["All"], "Clip": {"StartTime": 1000, "EndTime": 2500},
                            "FileName": "out/{{fileTitle}}_{{templateId}}"}],
        "TranscodeAudio": [{"TemplateId": [f"{FULL}-audio-m4a"], "Clip": {"StartTime": 2000, "EndTime": 0},
                            "FileName": "audio/{{vid}}.m4a"}],
        "Snapshot": [{"TemplateId": ["All"], "OffsetTime": 1500, "Width": 64, "Height": 36,
                      "FileName": "covers/{{fileTitle}}"}],
    }
    run_id = result(call(vod, "StartWorkflow", "2020-08-01", body=with_input(overrides)))["RunId"]
    assert execution(vod, run_id)["Input"] == {"OverrideParams": overrides}  # the record of what was sent
    out = finished_result(emu, vod, run_id)
    video, audio = out["TranscodeInfos"]
    assert (video["FileType"], video["Duration"], video["StoreUri"]) == (
        "video", 1.5, f"tos-emulator-demo/out/demo-sample_{FULL}.mp4")
    assert video["LogoType"] == "text" and video["LogoVars"] == {"caption": "Harbour 港"}
    assert "Harbour" in httpx.get(video["Url"]).content[-64:].decode(errors="ignore")  # burnt into the file
    assert (audio["FileType"], audio["Format"], audio["Duration"]) == ("audio", "m4a", 1.008)  # 2 s to the end
    assert audio["StoreUri"] == f"tos-emulator-demo/audio/{DEMO_VID}.m4a" and "LogoVars" not in audio
    [poster] = out["Snapshots"]
    assert poster["Type"] == "Poster" and poster["TemplateId"] == f"{FULL}-snapshot-poster"
    assert poster["Poster"]["StoreUri"] == "tos-emulator-demo/covers/demo-sample.jpg"
    assert (poster["Poster"]["Width"], poster["Poster"]["Height"], poster["Poster"]["OffsetTime"]) == (64, 36, 1500)


def test_without_overrides_a_template_keeps_its_defaults(emu: EmulatorHandle, vod: httpx.Client) -> None:
    emu.configure(workflow_templates=FULL_TEMPLATES)
    run_id = result(call(vod, "StartWorkflow", "2020-08-01", body={"Vid": DEMO_VID, "TemplateId": FULL}))["RunId"]
    out = finished_result(emu, vod, run_id)
    assert [i["Duration"] for i in out["TranscodeInfos"]] == [3.008, 3.008]
    assert not any("LogoVars" in i for i in out["TranscodeInfos"]) and len(out["Snapshots"]) == 1


@pytest.mark.parametrize("overrides,code,names", [
    ({"Watermark": []}, "InvalidParameter", "OverrideParams.Watermark"),
    ({"TranscodeVideo": {"TemplateId": ["All"]}}, "InvalidParameter", "TranscodeVideo must be an array"),
    ({"TranscodeVideo": [{"TemplateId": ["All"], "Bitrate": 800}]}, "InvalidParameter", "TranscodeVideo[0].Bitrate"),
    ({"TranscodeVideo": [{"TemplateId": "All"}]}, "InvalidParameter", "TranscodeVideo[0].TemplateId"),
    ({"TranscodeVideo": [{"TemplateId": ["nope-720p"]}]}, "InvalidParameter", "nope-720p"),
    ({"TranscodeVideo": [{"TemplateId": ["All"], "Clip": {"StartTime": 3000, "EndTime": 1000}}]}, "InvalidParameter",
     "Clip.EndTime"),
    ({"TranscodeVideo": [{"TemplateId": ["All"], "Clip": {"StartTime": 2000, "EndTime": 2000}}]}, "InvalidParameter",
     "Clip.EndTime"),
    ({"TranscodeVideo": [{"TemplateId": ["All"], "Clip": {"StartTime": -1}}]}, "InvalidParameter", "StartTime"),
    ({"TranscodeVideo": [{"TemplateId": ["All"], "FileName": "/abs/x"}]}, "InvalidParameter", "FileName"),
    ({"TranscodeVideo": [{"TemplateId": ["All"], "FileName": "a/../b"}]}, "InvalidParameter", "FileName"),
    ({"TranscodeVideo": [{"TemplateId": ["All"], "FileName": "{{title}}"}]}, "InvalidParameter", "{{title}}"),
    ({"TranscodeVideo": [{"TemplateId": ["All"], "FileName": "a b?.mp4"}]}, "InvalidParameter", "FileName"),
    ({"TranscodeVideo": [{"TemplateId": ["All"], "FileName": "{{count}}"}]}, "InvalidParameter", "{{count}}"),
    ({"TranscodeVideo": [{"TemplateId": ["All"], "LogoTemplateId": "other-logo"}]}, "InvalidParameter",
     "LogoTemplateId"),
    ({"TranscodeAudio": [{"TemplateId": [f"{FULL}-720p"]}]}, "InvalidParameter", "TranscodeAudio[0].TemplateId"),
    ({"Logo": [{"Vars": {"caption": "x"}}]}, "MissingParameter", "Logo[0].TemplateId"),
    ({"Logo": [{"TemplateId": "All", "Vars": {"input_text": "x"}}]}, "InvalidParameter", "Vars.input_text"),
    ({"Logo": [{"TemplateId": "All", "Vars": {"caption": 7}}]}, "InvalidParameter", "Logo[0].Vars"),
    ({"Snapshot": [{"TemplateId": ["All"], "Width": 4097}]}, "InvalidParameter", "Snapshot[0].Width"),
    ({"Snapshot": [{"TemplateId": ["All"], "SampleOffsets": [-1]}]}, "InvalidParameter", "SampleOffsets"),
])
def test_bad_overrides_are_refused_and_not_billed(
    emu: EmulatorHandle, vod: httpx.Client, overrides: dict, code: str, names: str
) -> None:
    emu.configure(workflow_templates=FULL_TEMPLATES)
    response = call(vod, "StartWorkflow", "2020-08-01", body=with_input(overrides))
    assert response.status_code == 400 and error_code(response) == code, response.text
    assert names in response.json()["ResponseMetadata"]["Error"]["Message"]
    assert emu.ledger() == []


def test_a_template_without_a_text_watermark_refuses_logo_text(emu: EmulatorHandle, vod: httpx.Client) -> None:
    emu.configure(workflow_templates={**FULL_TEMPLATES, "plain": ["720p"]})
    body = with_input({"Logo": [{"TemplateId": "All", "Vars": {"input_text": "x"}}]}, template="plain")
    response = call(vod, "StartWorkflow", "2020-08-01", body=body)
    assert response.status_code == 400 and "no variable 'input_text'" in response.text
    assert emu.ledger() == []


# --- DirectUrl: a file of the space, checked as an object key of that space ---------------------------------


def test_direct_url_with_the_space_bucket_is_recorded(emu: EmulatorHandle, vod: httpx.Client) -> None:
    direct = {"FileName": "demo-sample.mp4", "SpaceName": "demo", "BucketName": "tos-emulator-demo"}
    body = {"DirectUrl": json.dumps(direct), "TemplateId": TEMPLATE}
    run_id = result(call(vod, "StartWorkflow", "2020-08-01", body=body))["RunId"]
    assert execution(vod, run_id)["DirectUrl"] == direct and execution(vod, run_id)["Vid"] == ""
    out = finished_result(emu, vod, run_id)
    assert out["DirectUrl"] == direct and out["TranscodeInfos"][0]["Duration"] == 3.008  # the file's own length
    assert len(emu.ledger()) == 1


@pytest.mark.parametrize("direct,code,names", [
    ({"FileName": "demo-sample.mp4", "Space": "demo"}, "InvalidParameter", "DirectUrl.Space"),
    ({"FileName": "", "SpaceName": "demo"}, "MissingParameter", "DirectUrl.FileName"),
    ({"FileName": "/demo-sample.mp4"}, "InvalidParameter", "DirectUrl.FileName"),
    ({"FileName": "x/../demo-sample.mp4"}, "InvalidParameter", "DirectUrl.FileName"),
    ({"FileName": "https://example.com/a.mp4"}, "InvalidParameter", "DirectUrl.FileName"),
    ({"FileName": "demo-sample.mp4", "SpaceName": ""}, "InvalidParameter", "DirectUrl.SpaceName"),
    ({"FileName": "demo-sample.mp4", "BucketName": "other-bucket"}, "InvalidParameter", "DirectUrl.BucketName"),
])
def test_bad_direct_url_is_refused_and_not_billed(
    emu: EmulatorHandle, vod: httpx.Client, direct: dict, code: str, names: str
) -> None:
    response = call(vod, "StartWorkflow", "2020-08-01", body={"DirectUrl": json.dumps(direct), "TemplateId": TEMPLATE})
    assert response.status_code == 400 and error_code(response) == code
    assert names in response.json()["ResponseMetadata"]["Error"]["Message"]
    assert emu.ledger() == []


# --- several watermark templates: each rendition gets the texts of its own ----------------------------------


def test_further_watermark_templates_are_listed_and_chosen_per_rendition(emu: EmulatorHandle, vod: httpx.Client) -> None:
    emu.configure(workflow_templates={FULL: ["480p", "720p", "logo:caption", "logo:date", "logo:badge/label"]})
    listed = result(call(vod, "GetWorkflowTemplate", "2023-07-01", method="GET", query={"TemplateId": FULL}))
    assert listed["WorkflowTemplate"]["Activities"][0]["Logo"]["Vars"] == ["caption", "date"]
    assert listed["WorkflowTemplate"]["LogoTemplates"] == [
        {"TemplateId": f"{FULL}-logo-badge", "Type": "Text", "Vars": ["label"]}]
    overrides = {
        "Logo": [{"TemplateId": f"{FULL}-logo", "Vars": {"caption": "a", "date": "b"}},
                 {"TemplateId": f"{FULL}-logo-badge", "Vars": {"label": "c"}}],
        "TranscodeVideo": [{"TemplateId": [f"{FULL}-720p"], "LogoTemplateId": f"{FULL}-logo-badge"}],
    }
    run_id = result(call(vod, "StartWorkflow", "2020-08-01", body=with_input(overrides)))["RunId"]
    out = finished_result(emu, vod, run_id)
    assert [i["LogoVars"] for i in out["TranscodeInfos"]] == [{"caption": "a", "date": "b"}, {"label": "c"}]
    bad = {"Logo": [{"TemplateId": f"{FULL}-logo-badge", "Vars": {"caption": "x"}}]}
    response = call(vod, "StartWorkflow", "2020-08-01", body=with_input(bad))
    assert response.status_code == 400 and "Vars.caption" in response.json()["ResponseMetadata"]["Error"]["Message"]
    assert len(emu.ledger()) == 1
