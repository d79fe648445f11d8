"""Edit projects and direct edit tasks, with their Result quirks (bare int, array)."""

from __future__ import annotations

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
