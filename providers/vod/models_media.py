"""GetMediaList (2022-12-01): the videos of a space, filtered by creation time and paged by Offset/PageSize.

Vendor page https://www.volcengine.com/docs/4/69205 (BytePlus mirror: docs.byteplus.com reference-getmedialist).
It filters by SpaceName, Vid, Status, Tags, ClassificationIds and creation time only: not by Title, FileName or
CallbackArgs, so a caller looking for one upload pages through a time window and matches ``BasicInfo.Title``.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from pydantic import Field

from providers.vod.models_base import LaxInt, LaxList, VodResult
from providers.vod.models_upload import SourceInfo

MEDIA_LIST_MAX_PAGE_SIZE: Final = 100  # vendor: default 10, at most 100
MEDIA_LIST_MAX_OFFSET: Final = 10_000  # vendor: only the first 10000 matches of a filter can be read


def format_media_time(value: dt.datetime, *, round_up: bool = False) -> str:
    """The ``yyyy-MM-ddTHH:mm:ssZ`` UTC form StartTime/EndTime take (naive datetimes are taken as UTC).

    The wire has whole seconds: a window's start rounds down and its end (``round_up``) rounds up, so the window
    sent always covers the one asked for.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    value = value.astimezone(dt.timezone.utc)
    if round_up and value.microsecond:
        value = value.replace(microsecond=0) + dt.timedelta(seconds=1)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_media_time(value: str | None) -> dt.datetime | None:
    """RFC 3339 / ISO 8601 as VOD prints it (``...Z`` or ``+08:00``); None when absent or unreadable."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


class MediaBasicInfo(VodResult):
    space_name: str | None = None
    vid: str | None = None
    title: str | None = None
    description: str | None = None
    poster_uri: str | None = None
    publish_status: str | None = None  # Published | Unpublished
    tags: LaxList[str] = Field(default_factory=list)
    create_time: str | None = None

    @property
    def created_time(self) -> dt.datetime | None:
        return parse_media_time(self.create_time)


class MediaInfo(VodResult):
    basic_info: MediaBasicInfo = Field(default_factory=MediaBasicInfo)
    source_info: SourceInfo | None = None
    transcode_infos: LaxList[dict] = Field(default_factory=list)

    @property
    def vid(self) -> str | None:
        return self.basic_info.vid

    @property
    def title(self) -> str | None:
        return self.basic_info.title


class MediaListResult(VodResult):
    space_name: str | None = None
    media_info_list: LaxList[MediaInfo] = Field(default_factory=list)
    total_count: LaxInt = None
    offset: LaxInt = None
    page_size: LaxInt = None
