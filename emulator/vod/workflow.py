"""Media-processing workflows: StartWorkflow (ClientToken idempotency), GetWorkflowExecution[Result]."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from emulator.clock import iso, phase
from emulator.config import DEMO_TEMPLATE, EmulatorConfig
from emulator.errors import ApiError, invalid, new_request_id, not_found
from emulator.media import MediaItem, probe, sample_bytes, variant
from emulator.params import contains_marker
from emulator.registry import Ctx, action
from emulator.state import EmulatorState, VodMedia, new_hex
from emulator.vod.common import require_vid

VERSION = "2020-08-01"
FAILED_STATUS = "2001"  # "2000-2999: failed by the system"; what a fail-marker run ends with

# A configured template lists its outputs: "480p" is a video rendition, "audio:<name>" an audio rendition,
# "snapshot:poster|sample" a snapshot task and "logo:<key>" a text watermark with that variable key. The demo
# template, when configured with renditions only, also has a poster snapshot and a text watermark whose key is
# not the vendor's example key (so a client must read it from the template).
DEMO_TEMPLATE_TASKS = ["snapshot:poster", "logo:keyword"]
OVERRIDE_KINDS = ("Logo", "Snapshot", "TranscodeAudio", "TranscodeVideo")
_ITEM_KEYS = {
    "Logo": {"TemplateId", "Vars"},
    "Snapshot": {"TemplateId", "FileName", "FileIndex", "OffsetTime", "SampleOffsets", "OffsetTimeList", "Width",
                 "Height"},
    "TranscodeAudio": {"TemplateId", "Clip", "FileName"},
    "TranscodeVideo": {"TemplateId", "Clip", "FileName", "LogoTemplateId"},
}
# Output path variables (vendor doc 4/130881); count/width/height only for snapshots.
PATH_VARIABLES = {"fileName", "fileTitle", "filePrefix", "vid", "templateId", "random", "outFormat"}
SNAPSHOT_PATH_VARIABLES = PATH_VARIABLES | {"count", "width", "height"}
_VARIABLE = re.compile(r"\{\{([^{}]*)\}\}")
_PATH_CHARS = re.compile(r"^[A-Za-z0-9_./-]*$")


@dataclass(frozen=True)
class Template:
    """What one workflow template produces, with the ids of its transcode/snapshot/logo templates."""

    template_id: str
    video: list[str]
    audio: list[str]
    snapshots: list[str]
    logo_vars: list[str]

    @property
    def logo_id(self) -> str:
        return f"{self.template_id}-logo"

    def video_id(self, definition: str) -> str:
        return f"{self.template_id}-{definition}"

    def audio_id(self, name: str) -> str:
        return f"{self.template_id}-audio-{name}"

    def snapshot_id(self, kind: str) -> str:
        return f"{self.template_id}-snapshot-{kind}"

    def ids(self, kind: str) -> set[str]:
        if kind == "TranscodeVideo":
            return {self.video_id(d) for d in self.video}
        if kind == "TranscodeAudio":
            return {self.audio_id(a) for a in self.audio}
        if kind == "Snapshot":
            return {self.snapshot_id(k) for k in self.snapshots}
        return {self.logo_id} if self.logo_vars else set()


def template_of(config: EmulatorConfig, template_id: str) -> Template | None:
    entries = config.workflow_templates.get(template_id)
    if entries is None:
        return None
    if template_id == DEMO_TEMPLATE and not any(":" in e for e in entries):
        entries = [*entries, *DEMO_TEMPLATE_TASKS]
    typed: dict[str, list[str]] = {"video": [], "audio": [], "snapshot": [], "logo": []}
    for entry in entries:
        kind, _, name = entry.rpartition(":")
        typed[kind or "video"].append(name)
    return Template(template_id, typed["video"], typed["audio"], typed["snapshot"], typed["logo"])


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
    file_name = direct.get("FileName")
    if not isinstance(file_name, str) or not file_name:
        raise ApiError("MissingParameter", 400, "The request is missing DirectUrl.FileName parameter.")
    space = direct.get("SpaceName") or ""
    if space and space not in ctx.config.spaces:
        raise not_found(f"The space {space} does not exist.")
    with ctx.state.lock:
        matches = [m for m in ctx.state.vids.values()
                   if m.file_name == file_name and (not space or m.space == space) and m.available_at <= ctx.now]
    if not matches and ctx.config.strict_vids:
        raise not_found(f"The file {file_name} does not exist.")
    media = matches[0] if matches else None
    return media, space or (media.space if media else "")


def _match(items: list[dict[str, Any]], template_id: str) -> dict[str, Any] | None:
    """The first override item that names ``template_id`` (or All)."""
    for item in items:
        ids = item.get("TemplateId")
        ids = [ids] if isinstance(ids, str) else ids or []
        if "All" in ids or template_id in ids:
            return item
    return None


def _check_path(value: Any, where: str, variables: set[str]) -> None:
    if not isinstance(value, str) or not value:
        raise invalid(f"{where} must be a non-empty string.")
    if len(value) > 1024 or value.startswith("/") or ".." in value or "//" in value:
        raise invalid(f"{where} must be a relative path of at most 1024 characters without '..' or '//'.")
    unknown = sorted(set(_VARIABLE.findall(value)) - variables)
    if unknown:
        raise invalid(f"{where} uses the unknown variable {{{{{unknown[0]}}}}} (known: {sorted(variables)}).")
    if not _PATH_CHARS.match(_VARIABLE.sub("", value)):
        raise invalid(f"{where} may hold only letters, digits, - _ . / and variables.")


def _check_int(item: dict[str, Any], key: str, where: str, lo: int = 0, hi: int | None = None) -> None:
    value = item.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        raise invalid(f"{where}.{key} must be an integer in [{lo}, {hi if hi is not None else 'inf'}].")


def _check_clip(clip: Any, where: str) -> None:
    if not isinstance(clip, dict) or set(clip) - {"StartTime", "EndTime"}:
        raise invalid(f"{where} must be an object with StartTime and EndTime (ms).")
    _check_int(clip, "StartTime", where)
    _check_int(clip, "EndTime", where)
    start, end = clip.get("StartTime") or 0, clip.get("EndTime") or 0
    if end and end <= start:
        raise invalid(f"{where}.EndTime ({end}) must be after StartTime ({start}); 0 means the end of the video.")


def _check_item(kind: str, item: dict[str, Any], where: str, template: Template) -> None:
    extra = sorted(set(item) - _ITEM_KEYS[kind])
    if extra:
        raise invalid(f"{where}.{extra[0]} is not a parameter of {kind} (known: {sorted(_ITEM_KEYS[kind])}).")
    ids = item.get("TemplateId")
    if kind == "Logo":
        if not isinstance(ids, str) or not ids:
            raise ApiError("MissingParameter", 400, f"The request is missing {where}.TemplateId parameter.")
        ids = [ids]
    elif not isinstance(ids, list) or not ids or not all(isinstance(t, str) and t for t in ids):
        raise invalid(f"{where}.TemplateId must be a non-empty array of template ids (or All).")
    known = template.ids(kind)
    for tid in ids:
        if tid != "All" and tid not in known:
            raise invalid(f"{where}.TemplateId {tid} is not a {kind} template of workflow {template.template_id}.")
    if "Clip" in item:
        _check_clip(item["Clip"], f"{where}.Clip")
    variables = SNAPSHOT_PATH_VARIABLES if kind == "Snapshot" else PATH_VARIABLES
    for key in ("FileName", "FileIndex"):
        if key in item:
            _check_path(item[key], f"{where}.{key}", variables)
    if kind == "Logo":
        variables_ = item.get("Vars") or {}
        if not isinstance(variables_, dict) or not all(isinstance(v, str) for v in variables_.values()):
            raise invalid(f"{where}.Vars must be an object of string values.")
        for key in variables_:
            if key not in template.logo_vars:
                raise invalid(f"{where}.Vars.{key}: the watermark template of workflow {template.template_id} has "
                              f"no variable {key!r} (it has: {template.logo_vars}).")
    if kind == "Snapshot":
        for key in ("Width", "Height"):
            _check_int(item, key, where, 0, 4096)
        _check_int(item, "OffsetTime", where)
        for key in ("SampleOffsets", "OffsetTimeList"):
            values = item.get(key)
            if values is not None and (not isinstance(values, list) or not all(
                    isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in values)):
                raise invalid(f"{where}.{key} must be an array of non-negative numbers.")
    if kind == "TranscodeVideo" and "LogoTemplateId" in item and item["LogoTemplateId"] not in template.ids("Logo"):
        raise invalid(f"{where}.LogoTemplateId {item['LogoTemplateId']} is not a watermark template of workflow "
                      f"{template.template_id}.")


def validate_overrides(workflow_input: dict[str, Any] | None, template: Template) -> dict[str, list[dict[str, Any]]]:
    """Input.OverrideParams checked as the vendor would, before anything is billed."""
    params = (workflow_input or {}).get("OverrideParams")
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise invalid("Input.OverrideParams must be an object.")
    unknown = sorted(set(params) - set(OVERRIDE_KINDS))
    if unknown:
        raise invalid(f"Input.OverrideParams.{unknown[0]} is not a supported override (known: {list(OVERRIDE_KINDS)}).")
    for kind, items in params.items():
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise invalid(f"Input.OverrideParams.{kind} must be an array of objects.")
        for n, item in enumerate(items):
            _check_item(kind, item, f"Input.OverrideParams.{kind}[{n}]", template)
    return params


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
    name = _VARIABLE.sub(lambda m: str(values.get(m.group(1), "")), pattern)
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
        "StoreUri": f"tos-emulator-{run.space}/{file_name}",
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


def _outputs(state: EmulatorState, run: WorkflowRun, template: Template, overrides: dict[str, list[dict[str, Any]]],
             base_url: str) -> list[dict[str, Any]]:
    logo = _match(overrides.get("Logo", []), template.logo_id)
    outputs = []
    for definition in template.video:
        tid = template.video_id(definition)
        override = _match(overrides.get("TranscodeVideo", []), tid) or {}
        logo_vars = (logo or {}).get("Vars") or None if template.logo_vars else None
        outputs.append(_rendition(state, run, base_url, file_type="video", definition=definition, template_id=tid,
                                  override=override, logo_vars=logo_vars))
    for name in template.audio:
        tid = template.audio_id(name)
        override = _match(overrides.get("TranscodeAudio", []), tid) or {}
        outputs.append(_rendition(state, run, base_url, file_type="audio", definition=name, template_id=tid,
                                  override=override, logo_vars=None))
    return outputs


def _snapshots(
    run: WorkflowRun, template: Template, overrides: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    info = probe(run.source.data if run.source else sample_bytes())
    bucket = f"tos-emulator-{run.space}"
    shots = []
    for kind in template.snapshots:
        tid = template.snapshot_id(kind)
        override = _match(overrides.get("Snapshot", []), tid) or {}
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
    # A video transcode activity names its watermark template and that template's text variables.
    logo = {"TemplateId": template.logo_id, "Type": "Text", "Vars": template.logo_vars} if template.logo_vars else None
    activities: list[dict[str, Any]] = [
        {"Type": "Transcode", "TemplateId": template.video_id(d), **({"Logo": logo} if logo else {})}
        for d in template.video
    ]
    activities += [{"Type": "TranscodeAudio", "TemplateId": template.audio_id(a)} for a in template.audio]
    activities += [{"Type": "Snapshot", "TemplateId": template.snapshot_id(k), "SnapshotType": k.capitalize()}
                   for k in template.snapshots]
    return {"WorkflowTemplate": {"TemplateId": template_id, "Name": template_id, "Activities": activities}}
