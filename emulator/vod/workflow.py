"""Media-processing workflows: StartWorkflow (ClientToken idempotency), GetWorkflowExecution[Result]. What a
request may hold (templates, DirectUrl, overrides) is checked in ``workflow_checks``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emulator.clock import iso, phase
from emulator.errors import ApiError, invalid, new_request_id, not_found
from emulator.media import MediaItem, probe, sample_bytes, variant
from emulator.params import contains_marker
from emulator.registry import Ctx, action
from emulator.state import EmulatorState, VodMedia, new_hex
from emulator.vod.common import require_vid
from emulator.vod.workflow_checks import (
    VARIABLE, Template, check_direct_url, match_override, space_bucket, template_of, validate_overrides,
)

VERSION = "2020-08-01"
FAILED_STATUS = "2001"  # "2000-2999: failed by the system"; what a fail-marker run ends with


@dataclass
class WorkflowRun:
    run_id: str
    ak: str
    fingerprint: str
    vid: str
    direct_url: dict[str, Any] | None
    template_id: str
    space: str
    input: dict[str, Any] | None
    priority: int
    callback_args: str
    low_priority: bool
    created: float
    pending_s: float
    running_s: float
    fails: bool
    source: VodMedia | None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)

    @property
    def end_time(self) -> float:
        return self.created + self.pending_s + self.running_s

    def status(self, now: float) -> tuple[str, float]:
        name, frac = phase(now - self.created, [("PendingStart", self.pending_s), ("Running", self.running_s)], "end")
        if name == "end":
            return (FAILED_STATUS if self.fails else "0"), 1.0
        return name, frac if name == "Running" else 0.0

    def finished(self, now: float) -> bool:
        return now >= self.end_time


def _validate_token(token: str | None) -> None:
    if token is None:
        return
    if len(token) > 64 or not all(0x20 <= ord(c) < 0x7F for c in token):
        raise invalid("ClientToken must be at most 64 printable ASCII characters.")


def _source(ctx: Ctx, vid: str | None, direct: dict[str, Any] | None) -> tuple[VodMedia | None, str]:
    if vid:
        media = require_vid(ctx, vid)
        return media, media.space if media else ctx.config.spaces[0] if ctx.config.spaces else ""
    assert direct is not None
    check_direct_url(ctx, direct)
    file_name = direct["FileName"]
    space = direct.get("SpaceName") or ""
    bucket = direct.get("BucketName")
    if not space and bucket:
        space = next(s for s in ctx.config.spaces if space_bucket(s) == bucket)
    with ctx.state.lock:
        matches = [m for m in ctx.state.vids.values()
                   if m.file_name == file_name and (not space or m.space == space) and m.available_at <= ctx.now]
    if not matches and ctx.config.strict_vids:
        raise not_found(f"The file {file_name} does not exist.")
    media = matches[0] if matches else None
    return media, space or (media.space if media else "")


def _source_name(run: WorkflowRun) -> str:
    if run.source:
        return run.source.file_name
    return str((run.direct_url or {}).get("FileName") or "")


def _path(pattern: str, run: WorkflowRun, fmt: str, **extra: Any) -> str:
    """An override's FileName with its variables replaced, plus the output format's suffix."""
    source = _source_name(run)
    folder, _, base = source.rpartition("/")
    values = {
        "fileName": source, "fileTitle": base.rsplit(".", 1)[0], "filePrefix": f"{folder}/" if folder else "",
        "vid": run.vid, "templateId": run.template_id, "random": new_hex(32), "outFormat": fmt, **extra,
    }
    name = VARIABLE.sub(lambda m: str(values.get(m.group(1), "")), pattern)
    return name if name.endswith(f".{fmt}") else f"{name}.{fmt}"


def _clipped(duration: float, clip: dict[str, Any]) -> float:
    start = (clip.get("StartTime") or 0) / 1000
    end = (clip.get("EndTime") or 0) / 1000 or duration
    return round(max(0.0, min(end, duration) - min(start, duration)), 3)


def _rendition(state: EmulatorState, run: WorkflowRun, base_url: str, *, file_type: str, definition: str,
               template_id: str, override: dict[str, Any], logo_vars: dict[str, str] | None) -> dict[str, Any]:
    source = run.source.data if run.source else sample_bytes()
    fmt = "mp4" if file_type == "video" else "m4a"
    file_id = new_hex(32)
    # The watermark text goes into the file itself (a trailing box), so the output differs by its logo.
    logo_tag = f" logo {sorted(logo_vars.items())}" if logo_vars else ""
    data = variant(f"transcode {run.run_id} {definition}{logo_tag}", base=source)
    key = f"vod/files/{file_id}.{fmt}"
    state.media.put(key, MediaItem(data, content_type=f"{file_type}/mp4", available_at=run.end_time))
    info = probe(data)
    duration = _clipped(info.duration if info else 0.0, override.get("Clip") or {})
    file_name = _path(override["FileName"], run, fmt) if override.get("FileName") else f"{file_id}.{fmt}"
    entry = {
        "FileId": file_id,
        "StoreUri": f"{space_bucket(run.space)}/{file_name}",
        "Format": fmt,
        "Duration": duration,
        "Size": len(data),
        "Md5": VodMedia(file_id, run.space, "", data).md5,
        "Width": info.width if info and file_type == "video" else 0,
        "Height": info.height if info and file_type == "video" else 0,
        "Bitrate": int(len(data) * 8 / duration) if duration else 0,
        "Definition": definition,
        "FileType": file_type,
        "TemplateId": template_id,
        "Vid": run.vid,
        "Url": state.media.url(base_url, key),
    }
    if logo_vars:
        entry["LogoType"] = "text"
        entry["LogoVars"] = dict(logo_vars)  # the emulator's record of the burnt-in text
    return entry


def _logo_vars(template: Template, logo_id: str, items: list[dict[str, Any]]) -> dict[str, str] | None:
    """The texts burnt in with watermark ``logo_id``: its variables' values from the Logo item naming it (or
    All), only the variables that watermark has."""
    keys = template.logo_vars_of(logo_id)
    found = (match_override(items, logo_id) or {}).get("Vars") or {}
    kept = {k: v for k, v in found.items() if k in keys}
    return kept or None


def _outputs(state: EmulatorState, run: WorkflowRun, template: Template, overrides: dict[str, list[dict[str, Any]]],
             base_url: str) -> list[dict[str, Any]]:
    outputs = []
    for definition in template.video:
        tid = template.video_id(definition)
        override = match_override(overrides.get("TranscodeVideo", []), tid) or {}
        logo_id = override.get("LogoTemplateId") or template.logo_id
        logo_vars = _logo_vars(template, logo_id, overrides.get("Logo", []))
        outputs.append(_rendition(state, run, base_url, file_type="video", definition=definition, template_id=tid,
                                  override=override, logo_vars=logo_vars))
    for name in template.audio:
        tid = template.audio_id(name)
        override = match_override(overrides.get("TranscodeAudio", []), tid) or {}
        outputs.append(_rendition(state, run, base_url, file_type="audio", definition=name, template_id=tid,
                                  override=override, logo_vars=None))
    return outputs


def _snapshots(
    run: WorkflowRun, template: Template, overrides: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    info = probe(run.source.data if run.source else sample_bytes())
    bucket = space_bucket(run.space)
    shots = []
    for kind in template.snapshots:
        tid = template.snapshot_id(kind)
        override = match_override(overrides.get("Snapshot", []), tid) or {}
        width = override.get("Width") or (info.width if info else 0)
        height = override.get("Height") or (info.height if info else 0)
        default = f"snapshot/{new_hex(16)}-{kind}" + ("-{{count}}" if kind == "sample" else "")
        pattern = override.get("FileName") or default
        if kind == "sample":
            offsets = override.get("SampleOffsets") or [0.0, 1.0]
            uris = [f"{bucket}/{_path(pattern, run, 'jpg', count=f'{n:05d}', width=width, height=height)}"
                    for n, _ in enumerate(offsets, start=1)]
            detail: dict[str, Any] = {"StoreUris": uris, "SampleOffsets": offsets}
        else:
            uri = f"{bucket}/{_path(pattern, run, 'jpg', count='00001', width=width, height=height)}"
            detail = {"StoreUri": uri, "OffsetTime": override.get("OffsetTime", 0)}
        type_name = kind.capitalize()
        shots.append({"Type": type_name, "TemplateId": tid, type_name: {**detail, "Width": width, "Height": height,
                                                                        "Format": "jpg"}})
    return shots


def _callback(run: WorkflowRun) -> dict[str, Any]:
    ok = not run.fails
    return {
        "RequestId": new_request_id(),
        "Version": "1.0",
        "EventType": "WorkflowComplete",
        "EventTime": iso(run.end_time),
        "Data": {
            "Code": "Success" if ok else FAILED_STATUS,
            "Message": "Success" if ok else "transcode failed (emulated failure)",
            "Vid": run.vid,
            "RunId": run.run_id,
            "SpaceName": run.space,
            "TemplateId": run.template_id,
            "CallbackArgs": run.callback_args,
            "SourceInfo": run.source.source_info() if run.source else {},
            "TranscodeInfos": run.outputs if ok else [],
            "Snapshots": run.snapshots if ok else [],
        },
    }


@action("StartWorkflow", VERSION)
async def start_workflow(ctx: Ctx) -> dict[str, Any]:
    p = ctx.params
    vid = p.str("Vid")
    direct = p.json("DirectUrl", dict, mode="string")
    if vid and direct:
        raise invalid("Set Vid or DirectUrl, not both.")
    if not vid and not direct:
        raise ApiError("MissingParameter", 400, "The request is missing Vid or DirectUrl parameter.")
    template_id = p.str("TemplateId", required=True)
    assert template_id is not None
    workflow_input = p.json("Input", dict, mode="string")
    if workflow_input is not None and not isinstance(workflow_input.get("OverrideParams", {}), dict):
        raise invalid("Input.OverrideParams must be an object.")
    priority = p.int("Priority", default=0, lo=-5, hi=5) or 0
    callback_args = p.str("CallbackArgs") or ""
    if len(callback_args.encode()) > 512:
        raise invalid("CallbackArgs is longer than 512 bytes.")
    low_priority = p.bool("EnableLowPriority")
    token = p.str("ClientToken")
    _validate_token(token)
    template = template_of(ctx.config, template_id)
    if template is None:
        raise not_found(f"The workflow template {template_id} does not exist.")
    source, space = _source(ctx, vid, direct)
    overrides = validate_overrides(workflow_input, template)
    fp = ctx.fingerprint()

    state = ctx.state
    with state.lock:
        if token:
            previous = state.client_tokens.get(f"{ctx.ak}\n{token}")
            if previous is not None:
                if previous[0] != fp:
                    raise invalid("ClientToken was already used with different parameters.")
                return {"RunId": previous[1]}  # the idempotent repeat: same run, not billed again
        elif ctx.config.idempotent_without_token:
            for run in state.workflows.values():
                if run.ak == ctx.ak and run.fingerprint == fp and not run.finished(ctx.now):
                    return {"RunId": run.run_id}
        run = WorkflowRun(
            run_id=f"lb:{new_hex(32)}", ak=ctx.ak, fingerprint=fp, vid=vid or "", direct_url=direct,
            template_id=template_id, space=space, input=workflow_input, priority=priority,
            callback_args=callback_args, low_priority=low_priority, created=ctx.now,
            pending_s=ctx.scaled("workflow_pending"), running_s=ctx.scaled("workflow_running"),
            fails=contains_marker(p.values, ctx.config.fail_marker), source=source,
        )
        run.outputs = _outputs(state, run, template, overrides, ctx.media_base())
        run.snapshots = _snapshots(run, template, overrides)
        state.workflows[run.run_id] = run
        if token:
            state.client_tokens[f"{ctx.ak}\n{token}"] = (fp, run.run_id)
        ctx.bill(run.run_id, fp)
        state.schedule_callback(run.end_time, "WorkflowComplete", run.run_id, lambda: _callback(run))
    return {"RunId": run.run_id}


def _run(ctx: Ctx) -> WorkflowRun:
    run_id = ctx.params.str("RunId", required=True)
    with ctx.state.lock:
        run = ctx.state.workflows.get(run_id)
    if run is None:
        raise not_found(f"The RunId {run_id} does not exist.")
    return run


@action("GetWorkflowExecution", VERSION)
async def get_workflow_execution(ctx: Ctx) -> dict[str, Any]:
    run = _run(ctx)
    status, frac = run.status(ctx.now)
    started = run.created + run.pending_s if status != "PendingStart" else None
    progress = 0 if status == "PendingStart" else 100 if status in ("0", FAILED_STATUS) else int(frac * 100)
    tasks = [(f"transcode-{o['Definition']}", o["TemplateId"]) for o in run.outputs]
    tasks += [(f"snapshot-{s['Type'].lower()}", s["TemplateId"]) for s in run.snapshots]
    return {
        "RunId": run.run_id,
        "Vid": run.vid,
        "TemplateId": run.template_id,
        "SpaceName": run.space,
        "Status": status,
        "CreateTime": iso(run.created),
        "StartTime": iso(started),
        "EndTime": iso(run.end_time) if run.finished(ctx.now) else "",
        "CallbackArgs": run.callback_args,
        "Priority": run.priority,
        "EnableLowPriority": run.low_priority,
        "DirectUrl": run.direct_url,
        "Input": run.input,
        "TasksDetail": [
            {"DisplayName": name, "TemplateId": tid, "Status": status, "Progress": progress} for name, tid in tasks
        ],
    }


@action("GetWorkflowExecutionResult", "2022-12-01")
async def get_workflow_execution_result(ctx: Ctx) -> dict[str, Any]:
    run = _run(ctx)
    status, _ = run.status(ctx.now)
    return {
        "RunId": run.run_id,
        "Vid": run.vid,
        "TemplateId": run.template_id,
        "SpaceName": run.space,
        "Status": status,
        "CallbackArgs": run.callback_args,
        "DirectUrl": run.direct_url,
        "CreateTime": iso(run.created),
        "EndTime": iso(run.end_time) if run.finished(ctx.now) else "",
        "TranscodeInfos": run.outputs if status == "0" else [],
        "Snapshots": run.snapshots if status == "0" else [],
    }


@action("GetWorkflowTemplate", "2023-07-01")
async def get_workflow_template(ctx: Ctx) -> dict[str, Any]:
    """Vendor doc 4/1108513: a free read of one workflow template (clipflow's preflight proves it exists)."""
    template_id = ctx.params.str("TemplateId", required=True)
    assert template_id is not None
    template = template_of(ctx.config, template_id)
    if template is None:
        raise not_found(f"The TemplateId {template_id} does not exist.")
    # A video transcode activity names its watermark template and that template's text variables; the further
    # watermark templates a TranscodeVideo override may choose are listed beside the activities.
    logo = {"TemplateId": template.logo_id, "Type": "Text", "Vars": template.logo_vars} if template.logo_vars else None
    activities: list[dict[str, Any]] = [
        {"Type": "Transcode", "TemplateId": template.video_id(d), **({"Logo": logo} if logo else {})}
        for d in template.video
    ]
    others = [{"TemplateId": lid, "Type": "Text", "Vars": keys} for lid, keys in template.other_logos.items()]
    activities += [{"Type": "TranscodeAudio", "TemplateId": template.audio_id(a)} for a in template.audio]
    activities += [{"Type": "Snapshot", "TemplateId": template.snapshot_id(k), "SnapshotType": k.capitalize()}
                   for k in template.snapshots]
    body: dict[str, Any] = {"TemplateId": template_id, "Name": template_id, "Activities": activities}
    return {"WorkflowTemplate": body | ({"LogoTemplates": others} if others else {})}
