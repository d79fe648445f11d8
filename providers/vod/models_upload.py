"""URL pull uploads: UploadMediaByUrl and QueryUploadTaskInfo."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from providers.states import JobState, upload_state
from providers.vod.models_base import (
    LaxFloat,
    LaxInt,
    LaxList,
    NonEmptyStr,
    OpenVodParams,
    VodRequest,
    VodResult,
    dumps_compact,
    rule_error,
)

MAX_URLS = 20
MAX_JOB_IDS = 20


class UrlSet(OpenVodParams):
    """One URL to pull. Unknown options (Tags, ClassificationId, StorageClass...) are passed through."""

    source_url: str
    file_name: str | None = None
    title: str | None = None
    md5: str | None = None
    callback_args: str | None = None
    file_extension: str | None = None
    template_id: str | None = None

    @field_validator("source_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise rule_error("must be an http(s) URL")
        return v


class UploadMediaByUrlRequest(VodRequest):
    action = "UploadMediaByUrl"

    space_name: NonEmptyStr
    url_sets: list[UrlSet] = Field(alias="URLSets")

    @field_validator("url_sets")
    @classmethod
    def _count(cls, v: list[UrlSet]) -> list[UrlSet]:
        if not 1 <= len(v) <= MAX_URLS:
            raise rule_error(f"must hold 1-{MAX_URLS} URLs (got {len(v)})")
        return v

    def to_wire(self) -> dict[str, Any]:
        body = super().to_wire()
        body["URLSets"] = dumps_compact(body["URLSets"])  # the vendor wants the array JSON-encoded as a string
        return body


class UploadJob(VodResult):
    job_id: str
    source_url: str | None = None


class SourceInfo(VodResult):
    file_id: str | None = None
    file_name: str | None = None
    store_uri: str | None = None
    md5: str | None = None
    file_type: str | None = None
    format: str | None = None
    codec: str | None = None
    duration: LaxFloat = None  # seconds
    size: LaxInt = None  # bytes
    width: LaxInt = None
    height: LaxInt = None
    bitrate: LaxInt = None
    fps: LaxFloat = None
    definition: str | None = None
    create_time: str | None = None


class UploadTaskInfo(VodResult):
    job_id: str
    source_url: str | None = None
    raw_state: str | None = Field(default=None, alias="State")  # initial | processing | success | failed
    vid: str | None = None
    space_name: str | None = None
    account_id: str | None = None
    request_id: str | None = None
    callback_args: str | None = None
    source_info: SourceInfo | None = None

    @property
    def state(self) -> JobState:
        return upload_state(self.raw_state)


class QueryUploadTaskInfoResult(VodResult):
    media_info_list: LaxList[UploadTaskInfo] = Field(default_factory=list)
    not_exist_job_ids: LaxList[str] = Field(default_factory=list)

    def by_job_id(self) -> dict[str, UploadTaskInfo]:
        return {item.job_id: item for item in self.media_info_list}
