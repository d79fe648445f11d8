"""Stage 2: a VOD track edit project around the clip, optionally rendered with the direct-edit API."""

from __future__ import annotations

import json
from typing import Any

from prefect import flow, task

from flows.models import BlockRefs, EditResult, EditSpec, ImportedClip
from flows.models.rules import PROJECT_TAG_HEX, PROJECT_TAG_PREFIX
from flows.outputs.artifacts import is_top_level_run, publish_ids
from flows.runtime import resources
from flows.engine.caching import cached_task_options
from flows.engine.buy import JobPoll, PaidAction, Receipt, buy, watch
from flows.engine.journal import JournalRecord, fingerprint
from flows.coordination.quotas import quota_slot
from flows.engine.retry import retry_options
from providers.vod.edit_param import single_clip_edit_param
from providers.vod.models import CreateProjectRequest, SubmitDirectEditTaskRequest

SEARCH_PAGE = 50


async def _create_project(client: Any, request: CreateProjectRequest) -> Receipt:
    result = await client.create_project(request)
    return Receipt(result.project_id, {"group_id": result.group_id})


async def _find_project(client: Any, request: CreateProjectRequest, _record: JournalRecord) -> Receipt | None:
    """The project name carries the request's fingerprint (``tagged_project``), so a project of that name in the
    space is the one the lost request created."""
    offset = 0
    while True:
        async with quota_slot("vod", "SearchGlobalProject"):
            page = await client.search_global_project(request.space, offset=offset, limit=SEARCH_PAGE)
        for project in page.detail or []:
            if project.project_name == request.project_name and project.project_id:
                return Receipt(project.project_id, {"group_id": project.group_id})
        offset += len(page.detail or [])
        if not page.detail or (page.total is not None and offset >= page.total):
            return None


CREATE_PROJECT = PaidAction[CreateProjectRequest](
    "vod", "CreateProject", _create_project, reconcile=_find_project,
    look_for=lambda r: f"an edit project named {r.project_name} in space {r.space}",
)


async def _render(client: Any, request: SubmitDirectEditTaskRequest) -> Receipt:
    return Receipt(await client.submit_direct_edit_task_async(request))


async def _render_result(client: Any, job_id: str) -> Any:
    results = await client.get_direct_edit_result([job_id])
    return results[0] if results else None


RENDER = PaidAction[SubmitDirectEditTaskRequest](
    "vod", "SubmitDirectEditTaskAsync", _render,
    look_for=lambda r: f"a direct-edit render into space {r.uploader}",
)
RENDER_RESULT = JobPoll[Any](
    "vod", "GetDirectEditResult", _render_result, lambda r: r.state if r is not None else None,
    typical_seconds=60.0, deadline_seconds=3600.0, failure=lambda r: f"{r.status}: {r.message or ''}",
)


def build_project_request(title: str, clip: ImportedClip, spec: EditSpec) -> CreateProjectRequest:
    edit_param = single_clip_edit_param(
        name=title, space_name=clip.space_name, vid=clip.vid,
        duration_ms=int((clip.duration_seconds or 5.0) * 1000),
        width=spec.width, height=spec.height, fps=spec.fps, video_codec=spec.video_codec, crf=spec.crf,
        preset=spec.preset, audio_codec=spec.audio_codec, audio_bitrate=spec.audio_bitrate,
        background_color=spec.background_color, alpha=spec.alpha, disable_video=spec.disable_video,
        disable_audio=spec.disable_audio, disable_cover=spec.disable_cover, cover_time_ms=list(spec.cover_times_ms),
    )
    return CreateProjectRequest(project_name=title, space=clip.space_name, edit_param=edit_param, project_type="track")


def tagged_project(request: CreateProjectRequest, fp: str) -> CreateProjectRequest:
    """The project as sent: its name ends in a tag of the fingerprint, which is how a lost answer is found.
    Validated again (a copy skips validation): the tagged name must fit the vendor's rules too."""
    tag = f"{PROJECT_TAG_PREFIX}{fp[:PROJECT_TAG_HEX]}"
    return request.model_copy(update={"project_name": f"{request.project_name}{tag}"}).revalidated()


def _project_wire(request: CreateProjectRequest) -> dict[str, Any]:
    wire = request.to_wire()
    # CreateTime/UpdateTime are stamped at build time: leave them out of what identifies the purchase.
    wire.get("EditParam", {}).get("Project", {}).pop("CreateTime", None)
    wire.get("EditParam", {}).get("Project", {}).pop("UpdateTime", None)
    return wire


@task(task_run_name="create_project", **retry_options(), **cached_task_options(lambda p: f"clipflow-project-{p['fp']}"))
async def create_project(request: CreateProjectRequest, refs: BlockRefs, fp: str) -> EditResult:
    job = await buy(CREATE_PROJECT, tagged_project(request, fp), fp=fp, refs=refs)
    return EditResult(project_id=job.job_id, group_id=job.detail.get("group_id"))


@task(task_run_name="render_project", **retry_options(), **cached_task_options(lambda p: f"clipflow-render-{p['fp']}"))
async def render_project(request: SubmitDirectEditTaskRequest, refs: BlockRefs, fp: str) -> str:
    """Render through the direct-edit API and wait for the output Vid. Cached by the render request."""
    job = await buy(RENDER, request, fp=fp, refs=refs)
    result = await watch(RENDER_RESULT, job.job_id, refs=refs, describe=f"direct-edit render {job.job_id}")
    if not result.output_vid:
        raise ValueError(f"render {job.job_id} succeeded without an output Vid")
    return result.output_vid


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@flow(name="create-edit-project", log_prints=True)
async def create_edit_project(
    title: str, clip: ImportedClip, spec: EditSpec | None = None, blocks: BlockRefs | None = None
) -> EditResult:
    """CreateProject with a single-clip track EditParam; with ``spec.render`` also render it to a new Vid."""
    refs, spec = blocks or BlockRefs(), spec or EditSpec()
    request = build_project_request(title, clip, spec)
    creds = await resources.volcengine(refs)
    account = resources.account_id(creds)
    result = await create_project(request, refs, fingerprint("vod", "CreateProject", _project_wire(request), account))
    # What the project was built from and with, as sent (added here, not in the cached task's result).
    sent = request.edit_param.to_wire()
    result = result.model_copy(update={
        "source_vid": clip.vid, "output": sent.get("Output"), "canvas": sent.get("Canvas"),
    })
    if spec.render:
        render = SubmitDirectEditTaskRequest(uploader=clip.space_name, edit_param=request.edit_param)
        render_fp = fingerprint("vod", "SubmitDirectEditTaskAsync", _project_wire(request), account)
        result = result.model_copy(update={"rendered_vid": await render_project(render, refs, render_fp)})
    if is_top_level_run("create-edit-project"):
        await publish_ids(title, "edit", {
            "source_vid": clip.vid, "project_id": result.project_id, "group_id": result.group_id,
            "rendered_vid": result.rendered_vid,
            "output": _compact(result.output), "canvas": _compact(result.canvas),
        }, of=clip.vid)
    return result
