"""Track edit projects (CreateProject, SearchGlobalProject) and direct edit tasks (SubmitDirectEditTaskAsync...)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from emulator.clock import iso, phase
from emulator.errors import invalid, not_found
from emulator.media import variant
from emulator.params import contains_marker
from emulator.registry import Ctx, action
from emulator.state import VodMedia, new_hex, new_id, new_vid
from emulator.vod.common import require_space

# Chinese characters, letters, digits, '-' and '_' (CreateProject page), 1-128 characters.
PROJECT_NAME = re.compile(r"^[\w\-\u4e00-\u9fff]{1,128}$")


def _param_error(message: str):
    return invalid(message, "InvalidParameter.InvalidParam")


# EditParam.Output / Canvas leaves of the CreateProject example, with the rules clipflow holds them to
# (docs/vendor-fields.md): an absent leaf takes the vendor's default, a present one must fit.
VIDEO_CODECS = {"h264", "h265"}
PRESETS = {"ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"}
AUDIO_CODECS = {"aac"}
RGBA = re.compile(r"^#[0-9A-Fa-f]{8}$")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _leaf(obj: dict[str, Any], key: str, path: str, ok: Any, rule: str) -> Any:
    value = obj.get(key)
    if value is not None and not ok(value):
        raise _param_error(f"EditParam.{path}{key} {rule} (got {value!r}).")
    return value


def _part(obj: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _param_error(f"EditParam.{path}{key} must be an object.")
    return value


def check_edit_param(edit_param: dict[str, Any]) -> None:
    """The Output and Canvas leaves: types, enums, ranges, and the settings that contradict each other."""
    output = _part(edit_param, "Output", "")
    alpha = _leaf(output, "Alpha", "Output.", _is_bool, "must be a boolean")
    _leaf(output, "Fps", "Output.", lambda v: _is_int(v) and 0 < v <= 120, "must be an integer in (0, 120]")
    no_video = _leaf(output, "DisableVideo", "Output.", _is_bool, "must be a boolean")
    no_audio = _leaf(output, "DisableAudio", "Output.", _is_bool, "must be a boolean")
    codec = _part(output, "Codec", "Output.")
    video_codec = _leaf(codec, "VideoCodec", "Output.Codec.", lambda v: v in VIDEO_CODECS, "must be h264 or h265")
    _leaf(codec, "Preset", "Output.Codec.", lambda v: v in PRESETS, f"must be one of {sorted(PRESETS)}")
    _leaf(codec, "Crf", "Output.Codec.", lambda v: _is_int(v) and 0 <= v <= 51, "must be an integer in [0, 51]")
    _leaf(codec, "AudioCodec", "Output.Codec.", lambda v: v in AUDIO_CODECS, "must be aac")
    _leaf(codec, "AudioBitrate", "Output.Codec.", lambda v: _is_int(v) and 32 <= v <= 320,
          "must be an integer in [32, 320] (kbps)")
    cover = _part(output, "Cover", "Output.")
    no_cover = _leaf(cover, "DisableCover", "Output.Cover.", _is_bool, "must be a boolean")
    times = _leaf(cover, "CoverTime", "Output.Cover.",
                  lambda v: isinstance(v, list) and bool(v) and all(_is_int(t) and t >= 0 for t in v),
                  "must be a non-empty list of times in ms, each >= 0")
    canvas = _part(edit_param, "Canvas", "")
    for side in ("Width", "Height"):
        _leaf(canvas, side, "Canvas.", lambda v: _is_int(v) and v > 0, "must be a positive integer")
    _leaf(canvas, "BackgroundColor", "Canvas.", lambda v: isinstance(v, str) and bool(RGBA.match(v)),
          "must be #RRGGBBAA")
    if no_video and no_audio:
        raise _param_error("EditParam.Output.DisableVideo and DisableAudio are both true: nothing to output.")
    if alpha and (no_video or (video_codec or "h264") == "h264"):
        raise _param_error("EditParam.Output.Alpha needs a video stream in h265 (DisableVideo false, VideoCodec h265).")
    if no_cover and times:
        raise _param_error("EditParam.Output.Cover.CoverTime is given while DisableCover is true.")


@dataclass
class EditProject:
    project_id: str
    group_id: str
    name: str
    space: str
    project_type: str
    edit_param: dict[str, Any]
    created: float

    def summary(self) -> dict[str, Any]:
        return {
            "ProjectId": self.project_id, "GroupId": self.group_id, "ProjectName": self.name,
            "ProjectType": self.project_type, "Space": self.space,
            "CreateTime": iso(self.created), "UpdateTime": iso(self.created),
            # The project's EditParam as created (JSON-encoded; the client reads an object or a string).
            "LatestEditParam": json.dumps(self.edit_param, ensure_ascii=False, separators=(",", ":")),
        }


@action("CreateProject", "2018-01-01")
async def create_project(ctx: Ctx) -> dict[str, Any]:
    p = ctx.params
    name = p.str("ProjectName", required=True)
    assert name is not None
    if not PROJECT_NAME.match(name):
        raise _param_error("ProjectName must be 1-128 characters: Chinese, letters, digits, '-' or '_'.")
    space = require_space(ctx, "Space")
    edit_param = p.json("EditParam", dict, mode="object", required=True)
    check_edit_param(edit_param)
    project_type = p.str("ProjectType", required=True)
    if project_type != "track":
        raise _param_error("ProjectType must be 'track'.")
    project = EditProject(new_id("p0", 22), new_id("g0", 24), name, space, project_type, edit_param, ctx.now)
    with ctx.state.lock:
        ctx.state.edit_projects[project.project_id] = project
        ctx.bill(project.project_id)
    return {"ProjectId": project.project_id, "GroupId": project.group_id}


@action("SearchGlobalProject", "2018-01-01")
async def search_global_project(ctx: Ctx) -> dict[str, Any]:
    p = ctx.params
    offset = p.int("Offset", default=0, lo=0)
    limit = p.int("Limit", default=10, lo=1, hi=100)
    sort_by = p.str("SortBy") or "CreateTime"
    space = p.str("Space")
    if space is not None and space not in ctx.config.spaces:
        raise not_found(f"The space {space} does not exist.")
    with ctx.state.lock:
        projects = [pr for pr in ctx.state.edit_projects.values() if space is None or pr.space == space]
    key = (lambda pr: pr.name) if sort_by == "ProjectName" else (lambda pr: pr.created)
    projects.sort(key=key, reverse=sort_by != "ProjectName")
    assert offset is not None and limit is not None
    return {"Total": len(projects), "Detail": [pr.summary() for pr in projects[offset : offset + limit]]}


@dataclass
class DirectEdit:
    req_id: str
    space: str
    application: str
    edit_param: dict[str, Any]
    priority: int
    callback_uri: str
    callback_args: str
    created: float
    pending_s: float
    running_s: float
    fails: bool
    output_vid: str
    registered: bool = field(default=False)

    def status(self, now: float) -> tuple[str, int]:
        """(Status, progress 1-100)."""
        name, frac = phase(now - self.created, [("pending", self.pending_s), ("start", self.running_s)], "end")
        if name == "pending":
            return "pending", 1
        if name == "start":
            return "start", max(1, min(99, 1 + int(frac * 98)))
        return ("failed_run", 60) if self.fails else ("success", 100)

    @property
    def end_time(self) -> float:
        return self.created + self.pending_s + self.running_s


@action("SubmitDirectEditTaskAsync", "2018-01-01")
async def submit_direct_edit(ctx: Ctx) -> dict[str, Any]:
    p = ctx.params
    space = require_space(ctx, "Uploader")
    application = p.str("Application", required=True)
    if application != "VideoTrackToB":
        raise invalid("Application must be 'VideoTrackToB'.")
    edit_param = p.json("EditParam", dict, mode="object", required=True)
    check_edit_param(edit_param)
    priority = p.int("Priority", default=0)
    edit = DirectEdit(
        req_id=new_hex(32), space=space, application=application, edit_param=edit_param,
        priority=priority or 0, callback_uri=p.str("CallbackUri") or "", callback_args=p.str("CallbackArgs") or "",
        created=ctx.now, pending_s=ctx.scaled("direct_edit_pending"), running_s=ctx.scaled("direct_edit_running"),
        fails=contains_marker(p.values, ctx.config.fail_marker), output_vid=new_vid(),
    )
    with ctx.state.lock:
        if not edit.fails:
            name = (edit_param.get("Upload") or {}).get("VideoName") or f"direct-edit-{edit.req_id}"
            ctx.state.add_vid(VodMedia(edit.output_vid, space, f"{name}.mp4", variant(f"direct-edit {edit.req_id}"),
                                       available_at=edit.end_time, source="direct_edit"))
        ctx.state.direct_edits[edit.req_id] = edit
        ctx.bill(edit.req_id)
    return {"ReqId": edit.req_id}


@action("GetDirectEditProgress", "2018-01-01")
async def get_direct_edit_progress(ctx: Ctx) -> int:
    req_id = ctx.params.str("ReqId", required=True)
    with ctx.state.lock:
        edit = ctx.state.direct_edits.get(req_id)
    if edit is None:
        raise not_found(f"The ReqId {req_id} does not exist.")
    return edit.status(ctx.now)[1]


@action("GetDirectEditResult", "2018-01-01")
async def get_direct_edit_result(ctx: Ctx) -> list[dict[str, Any]]:
    req_ids = ctx.params.list_of_str("ReqIds", required=True)
    if len(req_ids) > 100:
        raise invalid("ReqIds accepts at most 100 ids.")
    out = []
    with ctx.state.lock:
        edits = [ctx.state.direct_edits.get(r) for r in req_ids]
    for edit in edits:
        if edit is None:
            continue
        status, _ = edit.status(ctx.now)
        started = edit.created + edit.pending_s if status != "pending" else None
        ended = edit.end_time if status in ("success", "failed_run") else None
        out.append({
            "ReqId": edit.req_id,
            "Status": status,
            "OutputVid": edit.output_vid if status == "success" else "",
            "Message": "render failed (emulated failure)" if status == "failed_run" else "",
            "Uploader": edit.space,
            "Application": edit.application,
            "EditParam": edit.edit_param,
            "Priority": edit.priority,
            "CallbackUri": edit.callback_uri,
            "CallbackArgs": edit.callback_args,
            "SubmitTime": iso(edit.created),
            "TaskStartTime": iso(started),
            "TaskEndTime": iso(ended),
        })
    return out
