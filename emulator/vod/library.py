"""The media library of a space: GetMediaList (2022-12-01), the documented way to find an upload whose
UploadMediaByUrl answer was lost (by creation time, then by Title). Vendor page: volcengine.com/docs/4/69205."""

from __future__ import annotations

import datetime as dt
from typing import Any

from emulator.clock import iso
from emulator.errors import invalid
from emulator.registry import Ctx, action
from emulator.state import VodMedia
from emulator.vod.common import require_space

VERSION = "2022-12-01"
MAX_OFFSET = 10_000  # the vendor serves only the first 10000 matches of a filter
MAX_PAGE_SIZE = 100
DEFAULT_START = dt.datetime(1999, 1, 1, tzinfo=dt.timezone.utc).timestamp()  # the vendor's default StartTime


def _time(ctx: Ctx, key: str, default: float) -> float:
    """``yyyy-MM-ddTHH:mm:ssZ`` (UTC) -> emulated epoch seconds."""
    value = ctx.params.str(key)
    if value is None:
        return default
    try:
        parsed = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise invalid(f"{key} must be yyyy-MM-ddTHH:mm:ssZ (UTC), got {value!r}.") from None
    return parsed.timestamp()


def _info(media: VodMedia) -> dict[str, Any]:
    source = media.source_info()
    source["CreateTime"] = iso(media.created)
    return {
        "BasicInfo": {
            "SpaceName": media.space, "Vid": media.vid, "Title": media.title, "Description": "",
            "PosterUri": "", "PublishStatus": "Published", "Tags": list(media.tags),
            "CreateTime": iso(media.created),
        },
        "SourceInfo": source,
        "TranscodeInfos": [],
    }


@action("GetMediaList", VERSION)
async def get_media_list(ctx: Ctx) -> dict[str, Any]:
    p = ctx.params
    space = require_space(ctx, "SpaceName")
    start = _time(ctx, "StartTime", DEFAULT_START)
    end = _time(ctx, "EndTime", ctx.now)
    if end <= start:
        raise invalid("EndTime must be later than StartTime.")
    order = p.str("Order") or "Desc"
    if order not in ("Asc", "Desc"):
        raise invalid("Order must be Asc or Desc.")
    statuses = p.list_of_str("Status")
    if any(s not in ("Published", "Unpublished") for s in statuses):
        raise invalid("Status accepts Published and Unpublished.")
    offset = p.int("Offset", default=0, lo=0, hi=MAX_OFFSET) or 0
    size = p.int("PageSize", default=10, lo=1, hi=MAX_PAGE_SIZE) or 10
    vid = p.str("Vid")
    tags = set(p.list_of_str("Tags"))
    with ctx.state.lock:
        # Only media already in the space: an upload still being pulled has no Vid to list yet.
        media = [m for m in ctx.state.vids.values() if m.space == space and m.available_at <= ctx.now]
    hits = [
        m for m in media
        if start <= m.created <= end
        and (vid is None or m.vid == vid)
        and (not statuses or "Published" in statuses)
        and (not tags or tags & set(m.tags))
    ]
    hits.sort(key=lambda m: (m.created, m.vid), reverse=order == "Desc")
    page = hits[offset: min(offset + size, MAX_OFFSET)]
    return {"SpaceName": space, "MediaInfoList": [_info(m) for m in page], "TotalCount": len(hits),
            "Offset": offset, "PageSize": size}
