"""Media-processing workflows: StartWorkflow (ClientToken idempotency), GetWorkflowExecution[Result]."""

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


def _outputs(state: EmulatorState, run: WorkflowRun, definitions: list[str], base_url: str) -> list[dict[str, Any]]:
    source = run.source.data if run.source else sample_bytes()
    outputs = []
    for definition in definitions:
        file_id = new_hex(32)
        data = variant(f"transcode {run.run_id} {definition}", base=source)
        key = f"vod/files/{file_id}.mp4"
        state.media.put(key, MediaItem(data, available_at=run.end_time))
        info = probe(data)
        duration = info.duration if info else 0.0
        outputs.append({
            "FileId": file_id,
            "StoreUri": f"tos-emulator-{run.space}/{file_id}.mp4",
            "Format": "mp4",
            "Duration": duration,
            "Size": len(data),
            "Md5": VodMedia(file_id, run.space, "", data).md5,
            "Width": info.width if info else 0,
            "Height": info.height if info else 0,
            "Bitrate": int(len(data) * 8 / duration) if duration else 0,
            "Definition": definition,
            "FileType": "video",
            "TemplateId": f"{run.template_id}-{definition}",
            "Vid": run.vid,
            "Url": state.media.url(base_url, key),
        })
    return outputs


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
            "Snapshots": [],
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
    if template_id not in ctx.config.workflow_templates:
        raise not_found(f"The workflow template {template_id} does not exist.")
    source, space = _source(ctx, vid, direct)
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
        run.outputs = _outputs(state, run, ctx.config.workflow_templates[template_id], ctx.media_base())
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
    definitions = ctx.config.workflow_templates.get(run.template_id, [])
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
            {"DisplayName": f"transcode-{d}", "TemplateId": f"{run.template_id}-{d}", "Status": status,
             "Progress": progress}
            for d in definitions
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
        "Snapshots": [],
    }


@action("GetWorkflowTemplate", "2023-07-01")
async def get_workflow_template(ctx: Ctx) -> dict[str, Any]:
    """Vendor doc 4/1108513: a free read of one workflow template (clipflow's preflight proves it exists)."""
    template_id = ctx.params.str("TemplateId", required=True)
    definitions = ctx.config.workflow_templates.get(template_id)
    if definitions is None:
        raise not_found(f"The TemplateId {template_id} does not exist.")
    return {
        "WorkflowTemplate": {
            "TemplateId": template_id,
            "Name": template_id,
            "Activities": [{"Type": "Transcode", "TemplateId": f"{template_id}-{d}"} for d in definitions],
        }
    }
