"""Stage 1: generate a clip (Jimeng or a gateway model), copy it into the bucket at once, import it into VOD."""

from __future__ import annotations

import contextlib
from typing import Any

from prefect import flow, task
from prefect.logging import get_run_logger

from flows.runtime import resources
from flows.runtime.caching import cached_task_options
from flows.runtime.quotas import quota_slot
from flows.models import BlockRefs, ClipSpec, GeneratedClip, ImportedClip, StoredClip
from flows.runtime.waiting import poll_delays, scaled, wait_for
from flows.runtime.retry import call_rejected_safe, retry_options
from flows.outputs.storage import SourceExpiredError, copy_url_to_bucket, presigned_get_url
from flows.runtime.journal import SubmittedJob, fingerprint, submit_once
from providers.errors import JobFailedError
from providers.gateway.models import GatewayVideoRequest
from providers.jimeng.models import JimengVideoRequest
from providers.states import JobState
from providers.vod.models import UploadMediaByUrlRequest, UrlSet

# Typical durations shape the poll schedule (seconds): Jimeng 5 s clips take ~1-3 min.
TYPICAL_SECONDS = {"jimeng": 90.0, "gateway": 120.0, "vod-import": 20.0}
DEADLINE_SECONDS = {"jimeng": 1800.0, "gateway": 1800.0, "vod-import": 900.0}


def build_clip_request(spec: ClipSpec) -> JimengVideoRequest | GatewayVideoRequest:
    """Validate the spec into the provider's request model; raises RequestValidationError naming the field."""
    if spec.provider == "jimeng":
        return JimengVideoRequest(
            prompt=spec.prompt or None,
            image_urls=[spec.image_url] if spec.image_url else None,
            binary_data_base64=[spec.image_base64] if spec.image_base64 else None,
            frames=spec.frames,
            aspect_ratio=spec.aspect_ratio,
            seed=spec.seed,
        )
    return GatewayVideoRequest(
        model=spec.model,
        prompt=spec.prompt,
        aspect_ratio=spec.aspect_ratio,
        size=spec.size,
        images=[spec.image_url] if spec.image_url else [],
    )


async def clip_fingerprint(spec: ClipSpec, refs: BlockRefs) -> str:
    request = build_clip_request(spec)
    creds = await (resources.volcengine(refs) if spec.provider == "jimeng" else resources.gateway(refs))
    return fingerprint(spec.provider, "submit", request.to_wire(), resources.account_id(creds))


@task(
    task_run_name="submit_clip_job-{spec.provider}",
    **retry_options(),
    **cached_task_options(lambda p: f"clipflow-submit-clip-{p['fp']}"),
)
async def submit_clip_job(spec: ClipSpec, refs: BlockRefs, fp: str) -> SubmittedJob:
    """Pay for one generation, at most once per request fingerprint."""
    request = build_clip_request(spec)
    if spec.provider == "jimeng":
        creds = await resources.volcengine(refs)

        async def submit() -> str:
            async with creds.get_jimeng_client() as client:
                async with quota_slot("jimeng", "CVSync2AsyncSubmitTask"):
                    return await call_rejected_safe(lambda: client.submit_task(request))  # type: ignore[arg-type]

        return await submit_once(provider="jimeng", action="CVSync2AsyncSubmitTask", fp=fp, submit=submit)

    gw = await resources.gateway(refs)

    async def submit_gateway() -> str:
        async with gw.get_client() as client, quota_slot("gateway", "create"):
            task_ = await call_rejected_safe(lambda: client.create_video(request))  # type: ignore[arg-type]
            return task_.id

    return await submit_once(provider="gateway", action="create", fp=fp, submit=submit_gateway)


async def _wait_result_url(job: SubmittedJob, refs: BlockRefs) -> str:
    """Poll until the job is done; return its (short-lived) result URL."""
    get_run_logger().info("Waiting on %s job %s", job.provider, job.job_id)
    if job.provider == "jimeng":
        client: Any = (await resources.volcengine(refs)).get_jimeng_client()
        status_action, fetch = "CVSync2AsyncGetResult", lambda: client.get_result(job.job_id)
    else:
        client = (await resources.gateway(refs)).get_client()
        status_action, fetch = "query", lambda: client.query_video(job.job_id)

    async def poll() -> Any:
        async with quota_slot(job.provider, status_action):
            return await fetch()

    async with client:
        result = await wait_for(
            poll, lambda r: r.state.is_terminal, delays=poll_delays(TYPICAL_SECONDS[job.provider]),
            deadline_seconds=scaled(DEADLINE_SECONDS[job.provider]), describe=f"{job.provider} task {job.job_id}",
        )
    # Jimeng names it video_url; gateways spread it over several fields, resolved by result_url.
    url = result.video_url if job.provider == "jimeng" else result.result_url
    if result.state is not JobState.SUCCEEDED or not url:
        reason = getattr(result, "message", None) or getattr(result, "error_message", None) or ""
        raise JobFailedError(f"job {job.job_id} ended {result.state.value}: {reason}", provider=job.provider, action="wait")
    return url


@task(**retry_options(), **cached_task_options(lambda p: f"clipflow-collect-{p['job'].provider}-{p['job'].job_id}"))
async def collect_clip(job: SubmittedJob, refs: BlockRefs) -> StoredClip:
    """Wait for the generation, then stream it into the bucket before the URL expires (1 h for Jimeng).

    Cached by job id: once the bytes are in the bucket, a re-run never polls or downloads again.
    """
    bucket = await resources.bucket(refs)
    url = await _wait_result_url(job, refs)
    try:
        stored = await copy_url_to_bucket(url, s3_client=bucket.client, bucket=bucket.name)
    except SourceExpiredError:
        # The URL lapsed between answer and download: ask once more (providers re-sign on each query).
        get_run_logger().warning("Result URL of %s expired before the copy; asking for a fresh one", job.job_id)
        url = await _wait_result_url(job, refs)
        stored = await copy_url_to_bucket(url, s3_client=bucket.client, bucket=bucket.name)
    get_run_logger().info("Stored %s as s3://%s/%s (sha256 %s)", job.job_id, stored.bucket, stored.key, stored.sha256)
    return StoredClip(bucket=stored.bucket, key=stored.key, size=stored.size, sha256=stored.sha256, source_job_id=job.job_id)


@task(**retry_options(), **cached_task_options(lambda p: f"clipflow-import-{p['space_name']}-{p['clip'].sha256}"))
async def import_clip_to_vod(clip: StoredClip, space_name: str, refs: BlockRefs) -> ImportedClip:
    """UploadMediaByUrl with a presigned bucket URL, then wait for the Vid. Cached by content hash + space."""
    creds = await resources.volcengine(refs)
    bucket = await resources.bucket(refs)
    url = presigned_get_url(bucket.client, bucket.name, clip.key, expires=6 * 3600)
    request = UploadMediaByUrlRequest(
        space_name=space_name,
        url_sets=[UrlSet(source_url=url, file_name=clip.key.rsplit("/", 1)[-1])],
    )
    fp = fingerprint("vod", "UploadMediaByUrl", {"space": space_name, "sha256": clip.sha256}, resources.account_id(creds))
    async with creds.get_vod_client() as vod:

        async def submit() -> str:
            async with quota_slot("vod", "UploadMediaByUrl"):
                jobs = await call_rejected_safe(lambda: vod.upload_media_by_url(request))
            return jobs[0].job_id

        job = await submit_once(provider="vod", action="UploadMediaByUrl", fp=fp, submit=submit)
        get_run_logger().info("Waiting on VOD URL import %s", job.job_id)

        async def poll() -> Any:
            async with quota_slot("vod", "QueryUploadTaskInfo"):
                info = await vod.query_upload_task_info([job.job_id])
            return info.media_info_list[0] if info.media_info_list else None

        item = await wait_for(
            poll, lambda i: i is not None and i.state.is_terminal, delays=poll_delays(TYPICAL_SECONDS["vod-import"]),
            deadline_seconds=scaled(DEADLINE_SECONDS["vod-import"]), describe=f"VOD import {job.job_id}",
        )
    if item.state is not JobState.SUCCEEDED or not item.vid:
        raise JobFailedError(f"URL import {job.job_id} ended {item.state.value}", provider="vod", action="UploadMediaByUrl")
    info = item.source_info
    return ImportedClip(
        vid=item.vid, space_name=space_name,
        duration_seconds=getattr(info, "duration", None), width=getattr(info, "width", None),
        height=getattr(info, "height", None),
    )


@flow(name="generate-clip", log_prints=True)
async def generate_clip(spec: ClipSpec, space_name: str = "demo", blocks: BlockRefs | None = None) -> GeneratedClip:
    """Generate one clip, keep it in the bucket, and import it into VOD."""
    refs = blocks or BlockRefs()
    fp = await clip_fingerprint(spec, refs)  # validates before anything is paid for
    # Jimeng limits jobs in flight per account: hold a slot from submit until the bytes are safe.
    jobs_slot = quota_slot("jimeng", "jobs") if spec.provider == "jimeng" else contextlib.nullcontext()
    async with jobs_slot:
        job = await submit_clip_job(spec, refs, fp)
        stored = await collect_clip(job, refs)
    imported = await import_clip_to_vod(stored, space_name, refs)
    return GeneratedClip(provider=spec.provider, job_id=job.job_id, stored=stored, imported=imported)
