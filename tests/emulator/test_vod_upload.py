"""UploadMediaByUrl really downloads; QueryUploadTaskInfo reports State, Vid and SourceInfo."""

from __future__ import annotations

import hashlib
import json

import httpx

from emulator.config import DEMO_VID
from emulator.media import variant
from emulator.testing import EmulatorHandle
from tests.emulator.conftest import LocalServer
from tests.emulator.helpers import call, error_code, result, wait_for


def upload(vod: httpx.Client, *entries: dict, space: str = "demo") -> list[str]:
    answer = result(call(vod, "UploadMediaByUrl", "2020-08-01",
                         form={"SpaceName": space, "URLSets": json.dumps(list(entries))}))
    return [d["JobId"] for d in answer["Data"]]


def query(vod: httpx.Client, *job_ids: str) -> dict:
    return result(call(vod, "QueryUploadTaskInfo", "2020-08-01", method="GET",
                       query={"JobIds": ",".join(job_ids)}))["Data"]


def finished(vod: httpx.Client, job_id: str) -> dict:
    def done() -> dict | None:
        item = query(vod, job_id)["MediaInfoList"][0]
        return item if item["State"] in ("success", "failed") else None

    return wait_for(done)


def test_downloads_from_a_local_server(emu: EmulatorHandle, vod: httpx.Client, local_server: LocalServer) -> None:
    data = variant("upload-test")
    local_server.files["/clips/cat.mp4"] = data
    emu.configure(time_scale=0.5)  # 3 s to finish, not the test scale's 30 ms: the first query sees it unfinished
    (job_id,) = upload(vod, {"SourceUrl": f"{local_server.url}/clips/cat.mp4", "CallbackArgs": "cb"})
    first = query(vod, job_id)["MediaInfoList"][0]
    assert first["State"] in ("initial", "processing") and first["Vid"] == ""
    item = finished(vod, job_id)
    assert item["State"] == "success" and item["Vid"].startswith("v0") and item["SpaceName"] == "demo"
    info = item["SourceInfo"]
    assert info["Md5"] == hashlib.md5(data).hexdigest() and info["Size"] == len(data)
    assert info["Format"] == "mp4" and info["FileName"] == "cat.mp4"
    assert info["Width"] == 160 and info["Height"] == 90 and 2.9 < info["Duration"] < 3.1
    assert item["CallbackArgs"] == "cb"
    served = httpx.get(f"{emu.base_url}/_media/vod/{item['Vid']}.mp4")
    assert served.content == data
    assert emu.ledger()[0]["job_id"] == job_id and emu.ledger()[0]["action"] == "UploadMediaByUrl"


def test_downloads_the_emulators_own_media_and_checks_md5(emu: EmulatorHandle, vod: httpx.Client) -> None:
    url = f"{emu.base_url}/_media/vod/{DEMO_VID}.mp4"
    demo = httpx.get(url).content
    good, bad = upload(vod, {"SourceUrl": url, "FileName": "copy", "FileExtension": ".mp4",
                             "Md5": hashlib.md5(demo).hexdigest()},
                       {"SourceUrl": url, "Md5": "0" * 32})
    assert finished(vod, good)["SourceInfo"]["FileName"] == "copy.mp4"
    assert finished(vod, bad)["State"] == "failed"
    assert len(emu.ledger()) == 2  # one billed job per URL


def test_failed_download(emu: EmulatorHandle, vod: httpx.Client, local_server: LocalServer) -> None:
    (job_id,) = upload(vod, {"SourceUrl": f"{local_server.url}/missing.mp4"})
    item = finished(vod, job_id)
    assert item["State"] == "failed" and item["Vid"] == "" and item["SourceInfo"] == {}


def test_unknown_job_ids(vod: httpx.Client) -> None:
    data = query(vod, "nope1", "nope2")
    assert data == {"MediaInfoList": [], "NotExistJobIds": ["nope1", "nope2"]}


def test_uploaded_vid_feeds_a_workflow(emu: EmulatorHandle, vod: httpx.Client) -> None:
    (job_id,) = upload(vod, {"SourceUrl": f"{emu.base_url}/_media/vod/{DEMO_VID}.mp4"})
    vid = finished(vod, job_id)["Vid"]
    run = result(call(vod, "StartWorkflow", "2020-08-01", method="GET",
                      query={"Vid": vid, "TemplateId": "demo-transcode-template"}))
    assert run["RunId"]


def test_validation(emu: EmulatorHandle, vod: httpx.Client) -> None:
    entries = [{"SourceUrl": "https://example.com/a.mp4"}]
    as_object = call(vod, "UploadMediaByUrl", "2020-08-01", body={"SpaceName": "demo", "URLSets": entries})
    assert as_object.status_code == 400 and error_code(as_object) == "InvalidParameter"  # must be a JSON string
    as_string = call(vod, "UploadMediaByUrl", "2020-08-01", body={"SpaceName": "demo", "URLSets": json.dumps(entries)})
    assert as_string.status_code == 200
    unknown_space = call(vod, "UploadMediaByUrl", "2020-08-01",
                         form={"SpaceName": "nope", "URLSets": json.dumps(entries)})
    assert unknown_space.status_code == 404 and error_code(unknown_space) == "ResourceNotFound"
    missing = call(vod, "UploadMediaByUrl", "2020-08-01", form={"SpaceName": "demo"})
    assert missing.status_code == 400 and error_code(missing) == "MissingParameter"
    too_many = call(vod, "UploadMediaByUrl", "2020-08-01",
                    form={"SpaceName": "demo", "URLSets": json.dumps(entries * 21)})
    assert too_many.status_code == 400
    bad_url = call(vod, "UploadMediaByUrl", "2020-08-01",
                   form={"SpaceName": "demo", "URLSets": json.dumps([{"SourceUrl": "ftp://x/a.mp4"}])})
    assert bad_url.status_code == 400
    assert len(emu.ledger()) == 1
