"""Lookups that reconcile a lost submit read every page of the provider's listing (fakes over respx)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest
import respx

import providers.vod.lookups as lookups
from providers.errors import RequestValidationError
from providers.vod import VodClient

ENDPOINT = "https://vod.volcengineapi.com"
T0 = dt.datetime(2025, 6, 4, 12, 0, 0, tzinfo=dt.timezone.utc)


def ok(result: Any) -> httpx.Response:
    return httpx.Response(200, json={"ResponseMetadata": {"RequestId": "r"}, "Result": result})


def action_of(request: httpx.Request) -> str:
    return request.url.params["Action"]


# --- SearchGlobalProject -------------------------------------------------------------------------------------


async def test_find_projects_by_name_reads_every_page(api: respx.MockRouter, vod: VodClient) -> None:
    projects = [{"ProjectId": f"p{i}", "ProjectName": "wanted" if i in (3, 44) else f"other-{i}", "Space": "s"}
                for i in range(45)]
    seen_bodies: list[dict[str, Any]] = []

    def search(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen_bodies.append(body)
        offset, limit = body["Offset"], body["Limit"]
        return ok({"Total": len(projects), "Detail": projects[offset: offset + limit]})

    api.route().mock(side_effect=search)
    found = await vod.find_projects_by_name("s", "wanted", page_size=20)
    assert [p.project_id for p in found] == ["p3", "p44"]
    assert [(b["Offset"], b["Limit"], b["Space"]) for b in seen_bodies] == [(0, 20, "s"), (20, 20, "s"), (40, 20, "s")]


async def test_projects_shifting_while_read_are_not_reported_twice(api: respx.MockRouter, vod: VodClient) -> None:
    # A project created between two pages pushes the list down: page 2 repeats the last item of page 1.
    pages = [
        {"Total": 3, "Detail": [{"ProjectId": "b", "ProjectName": "n"}, {"ProjectId": "a", "ProjectName": "n"}]},
        {"Total": 4, "Detail": [{"ProjectId": "a", "ProjectName": "n"}, {"ProjectId": "z", "ProjectName": "n"}]},
        {"Total": 4, "Detail": []},
    ]
    api.route().mock(side_effect=[ok(p) for p in pages])
    found = await vod.find_projects_by_name("s", "n", page_size=2)
    assert [p.project_id for p in found] == ["b", "a", "z"]


async def test_empty_space_is_one_call(api: respx.MockRouter, vod: VodClient) -> None:
    route = api.route().mock(return_value=ok({"Total": 0, "Detail": None}))
    assert await vod.find_projects_by_name("s", "x") == []
    assert route.call_count == 1


# --- ListAITranslationProject --------------------------------------------------------------------------------


def translation(i: int, vid: str, language: str) -> dict[str, Any]:
    return {
        "ProjectId": f"tp{i}",
        "CreatedAt": str(int(T0.timestamp()) + i),
        "Status": "InProcessing",
        "TranslationTypeList": ["SubtitleTranslation", "VoiceTranslation"],
        "InputVideo": {"IsAudio": False, "Vid": vid},
        "TargetBlueprints": [{"Id": f"bp{i}", "Language": language}],
    }


async def test_translation_projects_every_page_with_matching_fields(api: respx.MockRouter, vod: VodClient) -> None:
    projects = [translation(i, f"v{i % 2}", "en" if i < 5 else "ja") for i in range(7)]
    queries: list[dict[str, str]] = []

    def listing(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        queries.append(params)
        number, size = int(params["PageNumber"]), int(params["PageSize"])
        return ok({"TotalCount": len(projects), "Projects": projects[(number - 1) * size: number * size]})

    api.route().mock(side_effect=listing)
    found = await vod.list_all_ai_translation_projects("space-a", page_size=3)
    assert [p.project_id for p in found] == [f"tp{i}" for i in range(7)]
    assert [(q["PageNumber"], q["PageSize"], q["SpaceName"]) for q in queries] == [
        ("1", "3", "space-a"), ("2", "3", "space-a"), ("3", "3", "space-a")]
    last = found[6]
    assert last.vid == "v0" and last.target_languages == ["ja"]
    assert last.translation_type_list == ["SubtitleTranslation", "VoiceTranslation"]
    assert last.created_time == T0 + dt.timedelta(seconds=6)
    assert last.created_time.tzinfo is not None


async def test_translation_listing_stops_on_a_short_page_without_total(api: respx.MockRouter, vod: VodClient) -> None:
    route = api.route().mock(side_effect=[ok({"Projects": [translation(0, "v", "en")]})])
    assert len(await vod.list_all_ai_translation_projects("s", page_size=2)) == 1
    assert route.call_count == 1


def test_created_time_tolerates_milliseconds_and_absence() -> None:
    from providers.vod import AITranslationProject

    ms = AITranslationProject.model_validate({"ProjectId": "p", "CreatedAt": str(int(T0.timestamp() * 1000))})
    assert ms.created_time == T0
    assert AITranslationProject.model_validate({"ProjectId": "p"}).created_time is None
    assert AITranslationProject.model_validate({"ProjectId": "p", "CreatedAt": ""}).vid is None


# --- GetMediaList --------------------------------------------------------------------------------------------


def parse(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


class FakeMediaList:
    """GetMediaList over a list of (created, title) with the vendor's filters, order, paging and 10000 cap."""

    def __init__(self, media: list[tuple[dt.datetime, str]], cap: int = 10_000) -> None:
        self.media = [{"BasicInfo": {"Vid": f"v{i}", "Title": title, "SpaceName": "s",
                                     "CreateTime": created.strftime("%Y-%m-%dT%H:%M:%SZ")},
                       "SourceInfo": {"Md5": f"md5-{i}", "FileName": f"{title}.mp4"}}
                      for i, (created, title) in enumerate(media)]
        self.cap = cap
        self.queries: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        q = dict(request.url.params)
        self.queries.append(q)
        start = parse(q.get("StartTime", "1999-01-01T00:00:00Z"))
        end = parse(q["EndTime"]) if "EndTime" in q else dt.datetime.now(dt.timezone.utc)
        hits = [m for m in self.media if start <= parse(m["BasicInfo"]["CreateTime"]) <= end]
        hits.sort(key=lambda m: m["BasicInfo"]["CreateTime"], reverse=q.get("Order", "Desc") == "Desc")
        offset, size = int(q.get("Offset", "0")), int(q.get("PageSize", "10"))
        if offset > self.cap:
            return httpx.Response(400, json={"ResponseMetadata": {"Error": {"Code": "InvalidParameter"}}})
        page = hits[offset: min(offset + size, self.cap)]
        return ok({"SpaceName": "s", "MediaInfoList": page, "TotalCount": len(hits), "Offset": offset,
                   "PageSize": size})


async def test_get_media_list_sends_the_documented_query(api: respx.MockRouter, vod: VodClient) -> None:
    fake = FakeMediaList([(T0, "a")])
    api.route().mock(side_effect=fake)
    page = await vod.get_media_list("s", start_time=T0, end_time=T0 + dt.timedelta(seconds=1.5), offset=0,
                                    page_size=50, order="Asc", tags=["x", "y"])
    query = fake.queries[0]
    assert query["Action"] == "GetMediaList" and query["Version"] == "2022-12-01"
    # the end rounds up so the window sent covers the one asked for
    assert (query["StartTime"], query["EndTime"]) == ("2025-06-04T12:00:00Z", "2025-06-04T12:00:02Z")
    assert (query["Offset"], query["PageSize"], query["Order"], query["Tags"]) == ("0", "50", "Asc", "x,y")
    assert page.total_count == 1 and page.media_info_list[0].title == "a"
    assert page.media_info_list[0].basic_info.created_time == T0
    assert page.media_info_list[0].source_info is not None and page.media_info_list[0].source_info.md5 == "md5-0"


@pytest.mark.parametrize("kwargs,field", [
    ({"page_size": 101}, "PageSize"), ({"page_size": 0}, "PageSize"), ({"offset": -1}, "Offset"),
    ({"start_time": T0, "end_time": T0}, "EndTime"), ({"tags": "a,b"}, "Tags"),
])
async def test_get_media_list_validates_locally(vod: VodClient, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(RequestValidationError) as info:
        await vod.get_media_list("s", **kwargs)
    assert info.value.field == field


async def test_find_media_by_title_reads_every_page_of_the_window(api: respx.MockRouter, vod: VodClient) -> None:
    media = [(T0 + dt.timedelta(seconds=i), "clipflow-target" if i in (2, 230) else f"other-{i}") for i in range(250)]
    media.append((T0 - dt.timedelta(hours=1), "clipflow-target"))  # before the window: not this import
    fake = FakeMediaList(media)
    api.route().mock(side_effect=fake)
    found = await vod.find_media_by_title("s", "clipflow-target", created_after=T0,
                                          created_before=T0 + dt.timedelta(hours=1))
    assert [m.vid for m in found] == ["v2", "v230"]
    assert [q["Offset"] for q in fake.queries] == ["0", "100", "200"]
    assert {q["Order"] for q in fake.queries} == {"Asc"}


async def test_window_larger_than_the_provider_cap_is_split(
    api: respx.MockRouter, vod: VodClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lookups, "MEDIA_LIST_MAX_OFFSET", 10)
    media = [(T0 + dt.timedelta(seconds=i), f"t{i}") for i in range(40)]
    fake = FakeMediaList(media, cap=10)
    api.route().mock(side_effect=fake)
    found = [m async for m in vod.iter_media("s", start_time=T0, end_time=T0 + dt.timedelta(seconds=39),
                                             page_size=5)]
    assert sorted(m.title for m in found) == sorted(f"t{i}" for i in range(40))  # none lost to the cap
    assert len({m.vid for m in found}) == len(found)  # the halves' shared second is not reported twice
