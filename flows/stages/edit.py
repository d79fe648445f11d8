"""Stage 2: a VOD track edit project around the clip, optionally rendered with the direct-edit API."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.logging import get_run_logger

from flows.runtime import resources
from flows.runtime.caching import cached_task_options
from flows.runtime.quotas import quota_slot
from flows.models import BlockRefs, EditResult, EditSpec, ImportedClip
from flows.runtime.waiting import poll_delays, scaled, wait_for
from flows.runtime.retry import call_rejected_safe, retry_options
from flows.runtime.journal import fingerprint, submit_once
from providers.errors import JobFailedError
from providers.states import JobState
from providers.vod.edit_param import single_clip_edit_param
from providers.vod.models import CreateProjectRequest, SubmitDirectEditTaskRequest

RENDER_TYPICAL_SECONDS = 60.0
RENDER_DEADLINE_SECONDS = 3600.0


def build_project_request(title: str, clip: ImportedClip, spec: EditSpec) -> CreateProjectRequest:
    edit_param = single_clip_edit_param(
        name=title, space_name=clip.space_name, vid=clip.vid,
        duration_ms=int((clip.duration_seconds or 5.0) * 1000),
        width=spec.width, height=spec.height, fps=spec.fps, video_codec=spec.video_codec, crf=spec.crf,
    )
    return CreateProjectRequest(project_name=title, space=clip.space_name, edit_param=edit_param, project_type="track")


def _project_wire(request: CreateProjectRequest) -> dict[str, Any]:
    wire = request.to_wire()
    # CreateTime/UpdateTime are stamped at build time: leave them out of what identifies the purchase.
    wire.get("EditParam", {}).get("Project", {}).pop("CreateTime", None)
    wire.get("EditParam", {}).get("Project", {}).pop("UpdateTime", None)
    return wire


@task(**retry_options(), **cached_task_options(lambda p: f"clipflow-project-{p['fp']}"))
async def create_project(request: CreateProjectRequest, refs: BlockRefs, fp: str) -> EditResult:
    creds = await resources.volcengine(refs)
    async with creds.get_vod_client() as vod:
        result_holder: dict[str, Any] = {}

        async def submit() -> str:
            async with quota_slot("vod", "CreateProject"):
                result = await call_rejected_safe(lambda: vod.create_project(request))
            result_holder["group_id"] = result.group_id
            return result.project_id

        job = await submit_once(provider="vod", action="CreateProject", fp=fp, submit=submit)
    return EditResult(project_id=job.job_id, group_id=result_holder.get("group_id"))


@task(**retry_options(), **cached_task_options(lambda p: f"clipflow-render-{p['fp']}"))
async def render_project(request: SubmitDirectEditTaskRequest, refs: BlockRefs, fp: str) -> str:
    """Render through the direct-edit API and wait for the output Vid. Cached by the render request."""
    creds = await resources.volcengine(refs)
    async with creds.get_vod_client() as vod:

        async def submit() -> str:
            async with quota_slot("vod", "SubmitDirectEditTaskAsync"):
                return await call_rejected_safe(lambda: vod.submit_direct_edit_task_async(request))

        job = await submit_once(provider="vod", action="SubmitDirectEditTaskAsync", fp=fp, submit=submit)
        get_run_logger().info("Waiting on direct-edit render %s", job.job_id)

        async def poll() -> Any:
            async with quota_slot("vod", "GetDirectEditResult"):
                results = await vod.get_direct_edit_result([job.job_id])
            return results[0] if results else None

        result = await wait_for(
            poll, lambda r: r is not None and r.state.is_terminal, delays=poll_delays(RENDER_TYPICAL_SECONDS),
            deadline_seconds=scaled(RENDER_DEADLINE_SECONDS), describe=f"direct edit {job.job_id}",
        )
    if result.state is not JobState.SUCCEEDED or not result.output_vid:
        raise JobFailedError(
            f"render {job.job_id} ended {result.status}: {result.message or ''}",
            provider="vod", action="SubmitDirectEditTaskAsync",
        )
    return result.output_vid


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
    if spec.render:
        render = SubmitDirectEditTaskRequest(uploader=clip.space_name, edit_param=request.edit_param)
        render_fp = fingerprint("vod", "SubmitDirectEditTaskAsync", _project_wire(request), account)
        result = result.model_copy(update={"rendered_vid": await render_project(render, refs, render_fp)})
    return result
