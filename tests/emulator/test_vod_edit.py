"""Edit projects and direct edit tasks, with their Result quirks (bare int, array)."""

from __future__ import annotations

import json

import httpx
import pytest

from emulator.testing import EmulatorHandle
from tests.emulator.helpers import call, error_code, result, wait_for

EDIT_PARAM = {"Upload": {"SpaceName": "demo", "VideoName": "cut"}, "Canvas": {"Width": 1920, "Height": 1080}}


def create(vod: httpx.Client, **patch: object) -> httpx.Response:
    body = {"ProjectName": "新建项目-test", "Space": "demo", "EditParam": EDIT_PARAM, "ProjectType": "track", **patch}
    return call(vod, "CreateProject", "2018-01-01", body=body)


def test_create_and_search_projects(emu: EmulatorHandle, vod: httpx.Client) -> None:
    response = create(vod)
    meta = response.json()["ResponseMetadata"]
    assert meta["Action"] == "CreateProject" and meta["Version"] == "2018-01-01" and meta["Service"] == "vod"
    project = result(response)
    assert set(project) == {"ProjectId", "GroupId"}
    create(vod, ProjectName="second")
    found = result(call(vod, "SearchGlobalProject", "2018-01-01", body={"Space": "demo", "Limit": 1}))
    assert found["Total"] == 2 and found["Detail"][0]["ProjectName"] == "second"
    assert len(emu.ledger()) == 2


@pytest.mark.parametrize("patch,status,code", [
    ({"ProjectName": "bad name!"}, 400, "InvalidParameter.InvalidParam"),
    ({"ProjectType": "timeline"}, 400, "InvalidParameter.InvalidParam"),
    ({"EditParam": '{"a": 1}'}, 400, "InvalidParameter.InvalidParam"),  # a JSON object, not a string
    ({"EditParam": None}, 400, "MissingParameter"),
    ({"Space": "nope"}, 404, "ResourceNotFound"),
])
def test_create_project_validation(emu: EmulatorHandle, vod: httpx.Client, patch: dict, status: int,
                                   code: str) -> None:
    response = create(vod, **patch)
    assert response.status_code == status and error_code(response) == code


def test_direct_edit_progress_and_result(emu: EmulatorHandle, vod: httpx.Client) -> None:
    submitted = call(vod, "SubmitDirectEditTaskAsync", "2018-01-01", body={
        "Uploader": "demo", "Application": "VideoTrackToB", "EditParam": EDIT_PARAM, "CallbackArgs": "a"})
    req_id = result(submitted)["ReqId"]
    progress = [result(call(vod, "GetDirectEditProgress", "2018-01-01", method="GET", query={"ReqId": req_id}))]
    emu.advance(10)
    progress.append(result(call(vod, "GetDirectEditProgress", "2018-01-01", method="GET", query={"ReqId": req_id})))
    emu.advance(10)
    progress.append(result(call(vod, "GetDirectEditProgress", "2018-01-01", method="GET", query={"ReqId": req_id})))
    assert all(isinstance(p, int) for p in progress) and progress == sorted(progress) and 1 <= progress[0] < 100

    def finished() -> list | None:
        items = result(call(vod, "GetDirectEditResult", "2018-01-01", body={"ReqIds": [req_id, "unknown"]}))
        return items if items[0]["Status"] == "success" else None

    items = wait_for(finished)
    assert isinstance(items, list) and len(items) == 1
    assert items[0]["ReqId"] == req_id and items[0]["OutputVid"].startswith("v0")
    assert httpx.get(f"{emu.base_url}/_media/vod/{items[0]['OutputVid']}.mp4").status_code == 200
    assert result(call(vod, "GetDirectEditProgress", "2018-01-01", method="GET", query={"ReqId": req_id})) == 100


def test_direct_edit_failure_and_validation(emu: EmulatorHandle, vod: httpx.Client) -> None:
    req_id = result(call(vod, "SubmitDirectEditTaskAsync", "2018-01-01", body={
        "Uploader": "demo", "Application": "VideoTrackToB", "EditParam": EDIT_PARAM,
        "CallbackArgs": "EMULATOR_FAIL"}))["ReqId"]
    emu.advance(60)
    items = result(call(vod, "GetDirectEditResult", "2018-01-01", body={"ReqIds": [req_id]}))
    assert items[0]["Status"] == "failed_run" and items[0]["OutputVid"] == ""
    bad = call(vod, "SubmitDirectEditTaskAsync", "2018-01-01",
               body={"Uploader": "demo", "Application": "Other", "EditParam": EDIT_PARAM})
    assert bad.status_code == 400
    missing = call(vod, "GetDirectEditProgress", "2018-01-01", method="GET", query={"ReqId": "nope"})
    assert missing.status_code == 404


FULL_OUTPUT = {
    "Alpha": True, "Fps": 30,
    "Codec": {"VideoCodec": "h265", "Preset": "fast", "Crf": 20, "AudioCodec": "aac", "AudioBitrate": 192},
    "DisableVideo": False, "DisableAudio": True, "Cover": {"DisableCover": False, "CoverTime": [0, 1500]},
}


def test_every_output_leaf_is_accepted_and_kept_with_the_project(emu: EmulatorHandle, vod: httpx.Client) -> None:
    edit_param = {**EDIT_PARAM, "Output": FULL_OUTPUT,
                  "Canvas": {"Width": 1080, "Height": 1920, "BackgroundColor": "#11223344"}}
    project = result(create(vod, EditParam=edit_param))
    found = result(call(vod, "SearchGlobalProject", "2018-01-01", body={"Space": "demo"}))["Detail"]
    assert found[0]["ProjectId"] == project["ProjectId"]
    assert json.loads(found[0]["LatestEditParam"]) == edit_param


def _with_output(**patch: object) -> dict:
    return {**EDIT_PARAM, "Output": {**FULL_OUTPUT, **patch}}


@pytest.mark.parametrize(("edit_param", "named"), [
    (_with_output(Alpha="yes"), "Output.Alpha"),
    (_with_output(Fps=0), "Output.Fps"),
    (_with_output(Codec={"Preset": "placebo"}), "Output.Codec.Preset"),
    (_with_output(Codec={"AudioCodec": "mp3"}), "Output.Codec.AudioCodec"),
    (_with_output(Codec={"AudioBitrate": 1000}), "Output.Codec.AudioBitrate"),
    (_with_output(Codec={"Crf": 52}), "Output.Codec.Crf"),
    (_with_output(DisableVideo=1), "Output.DisableVideo"),
    (_with_output(Cover={"CoverTime": [-5]}), "Output.Cover.CoverTime"),
    (_with_output(Cover={"DisableCover": True, "CoverTime": [0]}), "CoverTime is given while DisableCover"),
    (_with_output(DisableVideo=True, DisableAudio=True), "DisableVideo and DisableAudio are both true"),
    (_with_output(Alpha=True, Codec={"VideoCodec": "h264"}), "Output.Alpha needs"),
    ({**EDIT_PARAM, "Canvas": {"Width": 1920, "Height": 1080, "BackgroundColor": "black"}}, "Canvas.BackgroundColor"),
])
def test_bad_edit_params_are_refused_unbilled(emu: EmulatorHandle, vod: httpx.Client, edit_param: dict,
                                              named: str) -> None:
    for action, body in (
        ("CreateProject", {"ProjectName": "p", "Space": "demo", "EditParam": edit_param, "ProjectType": "track"}),
        ("SubmitDirectEditTaskAsync", {"Uploader": "demo", "Application": "VideoTrackToB", "EditParam": edit_param}),
    ):
        response = call(vod, action, "2018-01-01", body=body)
        assert response.status_code == 400 and error_code(response) == "InvalidParameter.InvalidParam"
        assert named in response.json()["ResponseMetadata"]["Error"]["Message"]
    assert emu.ledger() == []
