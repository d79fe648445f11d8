"""Edit projects (CreateProject, SearchGlobalProject) and direct edit tasks (SubmitDirectEditTaskAsync...)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from providers.states import JobState, direct_edit_state
from providers.vod.edit_param import EditParam
from providers.vod.models_base import (
    JSON_STRING_OK,
    LaxInt,
    LaxList,
    NonEmptyStr,
    VodRequest,
    VodResult,
    rule_error,
)
# Doc's list for ProjectName: CJK ideographs (basic, ext A, compatibility, ext B+), ASCII letters, digits, - and _.
_PROJECT_NAME = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134fA-Za-z0-9_-]{1,128}")


class CreateProjectRequest(VodRequest):
    action = "CreateProject"

    project_name: str
    space: NonEmptyStr
    edit_param: EditParam
    project_type: str = "track"

    @field_validator("project_name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _PROJECT_NAME.fullmatch(v):
            raise rule_error("must be 1-128 characters of CJK ideographs, ASCII letters, digits, '-' or '_'")
        return v

    @field_validator("project_type")
    @classmethod
    def _track(cls, v: str) -> str:
        if v != "track":
            raise rule_error("must be 'track' (the only type the vendor supports)")
        return v


class CreateProjectResult(VodResult):
    project_id: str
    group_id: str | None = None


class SearchGlobalProjectRequest(VodRequest):
    action = "SearchGlobalProject"

    space: NonEmptyStr
    offset: int = 0
    limit: int = 20
    sort_by: str = "updated_at"

    @field_validator("offset")
    @classmethod
    def _offset(cls, v: int) -> int:
        if v < 0:
            raise rule_error("must be >= 0")
        return v

    @field_validator("limit")
    @classmethod
    def _limit(cls, v: int) -> int:
        if v < 1:
            raise rule_error("must be >= 1")
        return v


class GlobalProject(VodResult):
    project_id: str | None = None
    group_id: str | None = None
    project_name: str | None = None
    project_type: str | None = None
    template_id: str | None = None
    latest_edit_param: Annotated[dict[str, Any] | None, JSON_STRING_OK] = None
    thumbnails: str | None = None
    space: str | None = None
    callback_type: str | None = None
    callback_uri: str | None = None


class SearchGlobalProjectResult(VodResult):
    total: LaxInt = None
    detail: LaxList[GlobalProject] = Field(default_factory=list)


class SubmitDirectEditTaskRequest(VodRequest):
    action = "SubmitDirectEditTaskAsync"

    uploader: NonEmptyStr  # space that receives the output
    application: Literal["VideoTrackToB"] = "VideoTrackToB"
    edit_param: EditParam
    priority: int | None = None
    callback_uri: str | None = None
    callback_args: str | None = None

    @field_validator("callback_args")
    @classmethod
    def _args_size(cls, v: str | None) -> str | None:
        if v is not None and len(v.encode()) > 64 * 1024:
            raise rule_error("must be at most 64 KB (UTF-8)")
        return v


class DirectEditResult(VodResult):
    req_id: str
    status: str | None = None  # pending | start | success | failed_run | user_canceled
    output_vid: str | None = None
    message: str | None = None
    edit_param: Annotated[dict[str, Any] | None, JSON_STRING_OK] = None
    priority: LaxInt = None
    callback_uri: str | None = None
    callback_args: str | None = None

    @property
    def state(self) -> JobState:
        return direct_edit_state(self.status)
