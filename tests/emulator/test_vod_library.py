"""GetMediaList (2022-12-01) over raw signed HTTP: the vendor's filters, order, paging and refusals."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest

from emulator.config import DEMO_VID
from emulator.testing import EmulatorHandle
from tests.emulator.helpers import call, error_code, result, wait_for


def media_list(vod: httpx.Client, **query: str) -> httpx.Response:
    return call(vod, "GetMediaList", "2022-12-01", method="GET", query={"SpaceName": "demo", **query})


def stamp(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def upload(emu: EmulatorHandle, vod: httpx.Client, title: str, tags: str = "") -> None:
    entry = {"SourceUrl": f"{emu.base_url}/_media/vod/{DEMO_VID}.mp4", "Title": title, "FileName": f"{title}.mp4"}
    if tags:
        entry["Tags"] = tags
    result(call(vod, "UploadMediaByUrl", "2020-08-01", form={"SpaceName": "demo", "URLSets": json.dumps([entry])}))


def test_lists_pulled_uploads_with_title_and_time(emu: EmulatorHandle, vod: httpx.Client) -> None:
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=2)
    upload(emu, vod, "first", tags="a,b")
    upload(emu, vod, "second")
    window = {"StartTime": stamp(start), "EndTime": stamp(start + dt.timedelta(minutes=5))}
    listing = wait_for(lambda: (r := result(media_list(vod, **window, Order="Asc")))["TotalCount"] == 3 and r)
    titles = [m["BasicInfo"]["Title"] for m in listing["MediaInfoList"]]
    assert titles[0] == "demo-sample.mp4" and sorted(titles[1:]) == ["first", "second"]
    item = listing["MediaInfoList"][1]
    assert set(item) == {"BasicInfo", "SourceInfo", "TranscodeInfos"}
    assert item["BasicInfo"]["SpaceName"] == "demo" and item["BasicInfo"]["Vid"].startswith("v0")
    assert item["BasicInfo"]["CreateTime"].endswith("Z") and item["SourceInfo"]["Md5"]
    assert (listing["Offset"], listing["PageSize"], listing["SpaceName"]) == (0, 10, "demo")
    # Desc (the default) reverses; Tags and Vid filter
    desc = result(media_list(vod, **window))["MediaInfoList"]
    assert [m["BasicInfo"]["Vid"] for m in desc] == [m["BasicInfo"]["Vid"] for m in reversed(listing["MediaInfoList"])]
    tagged = result(media_list(vod, **window, Tags="b,z"))["MediaInfoList"]
    assert [m["BasicInfo"]["Title"] for m in tagged] == ["first"]
    one = result(media_list(vod, Vid=DEMO_VID))["MediaInfoList"]
    assert [m["BasicInfo"]["Vid"] for m in one] == [DEMO_VID]


def test_paging_and_time_window(emu: EmulatorHandle, vod: httpx.Client) -> None:
    for i in range(5):
        upload(emu, vod, f"clip-{i}")
    wait_for(lambda: result(media_list(vod))["TotalCount"] == 6)
    pages = [result(media_list(vod, Offset=str(o), PageSize="2", Order="Asc"))["MediaInfoList"] for o in (0, 2, 4, 6)]
    assert [len(p) for p in pages] == [2, 2, 2, 0]
    vids = [m["BasicInfo"]["Vid"] for p in pages for m in p]
    assert len(set(vids)) == 6
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    empty = result(media_list(vod, StartTime=stamp(future), EndTime=stamp(future + dt.timedelta(hours=1))))
    assert empty["TotalCount"] == 0 and empty["MediaInfoList"] == []


@pytest.mark.parametrize("query,status,code", [
    ({"SpaceName": "nope"}, 404, "ResourceNotFound"),
    ({"StartTime": "yesterday"}, 400, "InvalidParameter"),
    ({"StartTime": "2025-01-02T00:00:00Z", "EndTime": "2025-01-01T00:00:00Z"}, 400, "InvalidParameter"),
    ({"PageSize": "101"}, 400, "InvalidParameter"),
    ({"Offset": "10001"}, 400, "InvalidParameter"),
    ({"Order": "Random"}, 400, "InvalidParameter"),
    ({"Status": "Deleted"}, 400, "InvalidParameter"),
])
def test_refusals(emu: EmulatorHandle, vod: httpx.Client, query: dict[str, str], status: int, code: str) -> None:
    response = media_list(vod, **query)
    assert response.status_code == status and error_code(response) == code


def test_wrong_version_is_refused(emu: EmulatorHandle, vod: httpx.Client) -> None:
    response = call(vod, "GetMediaList", "2020-08-01", method="GET", query={"SpaceName": "demo"})
    assert response.status_code == 404 and error_code(response) == "InvalidActionOrVersion"
