"""Stage 3: StartWorkflow (transcode template with overrides), waited on until it finishes."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.logging import get_run_logger

from flows.runtime import resources
from flows.runtime.caching import cached_task_options
from flows.runtime.quotas import quota_slot
from flows.models import BlockRefs, TranscodeOutput, TranscodeResult, TranscodeSpec
from flows.runtime.waiting import poll_delays, scaled, wait_for
from flows.runtime.retry import call_rejected_safe, retry_options
from flows.runtime.journal import SubmittedJob, fingerprint, submit_once
from providers.errors import JobFailedError
from providers.states import JobState
from providers.vod.models import StartWorkflowRequest

TYPICAL_SECONDS = 60.0
DEADLINE_SECONDS = 4 * 3600.0  # idle-time (low priority) transcoding may wait for hours


def build_workflow_request(vid: str, space_name: str, spec: TranscodeSpec, client_token: str = "") -> StartWorkflowRequest:
    overrides: dict[str, Any] = {}
    if spec.watermark_text:
        overrides["Logo"] = [{"TemplateId": "All", "Vars": {"input_text": spec.watermark_text}}]
    if spec.clip_start_ms is not None or spec.clip_end_ms is not None:
        clip = {"StartTime": spec.clip_start_ms or 0, "EndTime": spec.clip_end_ms or 0}
        overrides["TranscodeVideo"] = [{"TemplateId": ["All"], "Clip": clip}]
    return StartWorkflowRequest(
        vid=vid,
        template_id=spec.template_id,
        input={"OverrideParams": overrides} if overrides else None,
        priority=spec.priority,
        enable_low_priority=spec.low_priority,
        client_token=client_token or None,
    )


def workflow_fingerprint(vid: str, space_name: str, spec: TranscodeSpec, account: str) -> str:
    return fingerprint("vod", "StartWorkflow", build_workflow_request(vid, space_name, spec).to_wire(), account)


@task(**retry_options(), **cached_task_options(lambda p: f"clipflow-workflow-{p['fp']}"))
async def submit_transcode_workflow(vid: str, space_name: str, spec: TranscodeSpec, refs: BlockRefs, fp: str) -> SubmittedJob:
    """StartWorkflow with a ClientToken derived from the request: the provider itself deduplicates a repeat,
    so even an answer lost in transit is safe to send again."""
    request = build_workflow_request(vid, space_name, spec, client_token=f"clipflow-{fp[:48]}")
    creds = await resources.volcengine(refs)
    async with creds.get_vod_client() as vod:

        async def submit() -> str:
            async with quota_slot("vod", "StartWorkflow"):
                return await call_rejected_safe(lambda: vod.start_workflow(request))

        return await submit_once(provider="vod", action="StartWorkflow", fp=fp, submit=submit, safe_to_repeat=True)


@task(**retry_options(), **cached_task_options(lambda p: f"clipflow-workflow-result-{p['job'].job_id}"))
async def wait_transcode_workflow(job: SubmittedJob, refs: BlockRefs) -> TranscodeResult:
    creds = await resources.volcengine(refs)
    get_run_logger().info("Waiting on VOD workflow run %s", job.job_id)
    async with creds.get_vod_client() as vod:

        async def poll() -> Any:
            async with quota_slot("vod", "GetWorkflowExecution"):
                return await vod.get_workflow_execution(job.job_id)

        execution = await wait_for(
            poll, lambda e: e.state.is_terminal, delays=poll_delays(TYPICAL_SECONDS),
            deadline_seconds=scaled(DEADLINE_SECONDS), describe=f"workflow {job.job_id}",
        )
        if execution.state is not JobState.SUCCEEDED:
            raise JobFailedError(
                f"workflow {job.job_id} ended with status {execution.status}", provider="vod", action="StartWorkflow"
            )
        async with quota_slot("vod", "GetWorkflowExecutionResult"):
            result = await vod.get_workflow_execution_result(job.job_id)
    outputs = [
        TranscodeOutput(
            file_id=t.file_id, store_uri=t.store_uri, format=t.format,
            duration=getattr(t, "duration", None), size=getattr(t, "size", None),
        )
        for t in (result.transcode_infos or [])
    ]
    return TranscodeResult(run_id=job.job_id, status=execution.state, outputs=outputs)


@flow(name="start-transcode-workflow", log_prints=True)
async def start_transcode_workflow(
    vid: str, space_name: str = "demo", spec: TranscodeSpec | None = None, blocks: BlockRefs | None = None
) -> TranscodeResult:
    """Start the transcode workflow for ``vid`` and return its outputs once it finishes."""
    refs, spec = blocks or BlockRefs(), spec or TranscodeSpec()
    creds = await resources.volcengine(refs)
    fp = workflow_fingerprint(vid, space_name, spec, resources.account_id(creds))
    job = await submit_transcode_workflow(vid, space_name, spec, refs, fp)
    return await wait_transcode_workflow(job, refs)
