"""Stage 3: StartWorkflow (transcode template with overrides), waited on until it finishes."""

from __future__ import annotations

from typing import Any

from prefect import flow, task

from flows.models import BlockRefs, TranscodeOutput, TranscodeResult, TranscodeSpec
from flows.runtime import resources
from flows.runtime.caching import cached_task_options
from flows.runtime.engine import JobPoll, PaidAction, Receipt, buy, watch
from flows.runtime.journal import SubmittedJob, fingerprint
from flows.runtime.quotas import quota_slot
from flows.runtime.retry import retry_options
from providers.vod.models import StartWorkflowRequest


async def _start(client: Any, request: StartWorkflowRequest) -> Receipt:
    return Receipt(await client.start_workflow(request))


START_WORKFLOW = PaidAction[StartWorkflowRequest]("vod", "StartWorkflow", _start, token=True)
WORKFLOW_RUN = JobPoll[Any](
    "vod", "GetWorkflowExecution", lambda c, run_id: c.get_workflow_execution(run_id), lambda e: e.state,
    # idle-time (low priority) transcoding may wait for hours
    typical_seconds=60.0, deadline_seconds=4 * 3600.0, failure=lambda e: f"status {e.status}",
)


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
    return await buy(START_WORKFLOW, request, fp=fp, refs=refs)


@task(**retry_options(), **cached_task_options(lambda p: f"clipflow-workflow-result-{p['job'].job_id}"))
async def wait_transcode_workflow(job: SubmittedJob, refs: BlockRefs) -> TranscodeResult:
    execution = await watch(WORKFLOW_RUN, job.job_id, refs=refs, describe=f"VOD workflow run {job.job_id}")
    async with await resources.client("vod", refs) as vod, quota_slot("vod", "GetWorkflowExecutionResult"):
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
