"""Stage 1: generate a clip (Jimeng or a gateway model), copy it into the bucket at once, import it into VOD."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
from typing import Any

from prefect import flow, task
from prefect.logging import get_run_logger

from flows.models import BlockRefs, ClipSpec, GatewayClipSpec, GeneratedClip, ImportedClip, JimengClipSpec, StoredClip
from flows.models.rules import bucket_image
from flows.outputs.artifacts import is_top_level_run, publish_ids
from flows.outputs.storage import SourceExpiredError, copy_url_to_bucket, presigned_get_url
from flows.runtime import resources
from flows.engine.caching import cached_task_options
from flows.engine.buy import JobPoll, OutputGoneError, PaidAction, Receipt, buy, watch
from flows.engine.journal import Journal, JournalRecord, SubmittedJob, fingerprint
from flows.coordination.quotas import quota_slot
from flows.engine.retry import retry_options
from providers.errors import JobFailedError
from providers.gateway.models import GatewayVideoRequest
from providers.jimeng.models import JimengResult, JimengVideoRequest
from providers.vod.models import UploadMediaByUrlRequest, UrlSet


def _prompt_hint(prompt: str | None) -> str:
    return f"task with the prompt {prompt[:60]!r}" if prompt else "image-to-video task"


async def _jimeng_submit(client: Any, request: JimengVideoRequest) -> Receipt:
    return Receipt(await client.submit_task(request))


async def _gateway_submit(client: Any, request: GatewayVideoRequest) -> Receipt:
    return Receipt((await client.create_video(request)).id)


# Neither Jimeng nor the gateway takes an idempotency token or lists tasks: a lost answer goes to an operator.
JIMENG_SUBMIT = PaidAction[JimengVideoRequest](
    "jimeng", "CVSync2AsyncSubmitTask", _jimeng_submit,
    look_for=lambda r: f"a Jimeng 3.0 Pro {_prompt_hint(r.prompt)} (seed {r.seed})",
)
GATEWAY_CREATE = PaidAction[GatewayVideoRequest](
    "gateway", "create", _gateway_submit, look_for=lambda r: f"a {r.model} {_prompt_hint(r.prompt)}",
)
# Typical durations shape the poll schedule (seconds): Jimeng 5 s clips take ~1-3 min.
JIMENG_RESULT = JobPoll[Any](
    "jimeng", "CVSync2AsyncGetResult", lambda c, job: c.get_result(job), lambda r: r.state,
    typical_seconds=90.0, deadline_seconds=1800.0, failure=lambda r: r.message or "",
)
GATEWAY_RESULT = JobPoll[Any](
    "gateway", "query", lambda c, job: c.query_video(job), lambda r: r.state,
    typical_seconds=120.0, deadline_seconds=1800.0, failure=lambda r: r.error_message or "",
)


async def _upload_submit(client: Any, request: UploadMediaByUrlRequest) -> Receipt:
    return Receipt((await client.upload_media_by_url(request))[0].job_id)


async def _find_import(client: Any, request: UploadMediaByUrlRequest, record: JournalRecord) -> Receipt | None:
    """The import a lost request started: a video of the space titled with the request's tag, created after the
    request left. Listed only once the pull has finished, so the engine looks again before it re-sends."""
    since = (record.sent_at or record.at) - dt.timedelta(seconds=CLOCK_SKEW_SECONDS)
    async with quota_slot("vod", "GetMediaList"):
        found = await client.find_media_by_title(request.space_name, request.url_sets[0].title or "", created_after=since)
    if not found or not found[0].vid:
        return None
    info = found[0].source_info
    return Receipt(found[0].vid, {
        "vid": found[0].vid, "duration": getattr(info, "duration", None), "width": getattr(info, "width", None),
        "height": getattr(info, "height", None),
    })


async def _upload_status(client: Any, job_id: str) -> Any:
    info = await client.query_upload_task_info([job_id])
    return info.media_info_list[0] if info.media_info_list else None


UPLOAD = PaidAction[UploadMediaByUrlRequest](
    "vod", "UploadMediaByUrl", _upload_submit, reconcile=_find_import,
    look_for=lambda r: f"a video titled {r.url_sets[0].title} in space {r.space_name}",
)
CLOCK_SKEW_SECONDS = 300
UPLOAD_STATUS = JobPoll[Any](
    "vod", "QueryUploadTaskInfo", _upload_status, lambda i: i.state if i is not None else None,
    typical_seconds=20.0, deadline_seconds=900.0,
)


def build_clip_request(spec: ClipSpec, first_frame: bytes | None = None) -> JimengVideoRequest | GatewayVideoRequest:
    """Validate the spec into the provider's request model; raises RequestValidationError naming the field.

    A Jimeng first frame in the bucket (``image_url`` = ``s3://…`` or a key) stays a ``first_frame_ref`` (never
    sent) until its bytes are given as ``first_frame``: then it goes as base64. A URL goes as is (Jimeng fetches)."""
    if isinstance(spec, JimengClipSpec):
        in_bucket = bool(spec.image_url) and bucket_image(spec.image_url or "") is not None
        url = spec.image_url if spec.image_url and not in_bucket else None
        inline = spec.image_base64
        if in_bucket and first_frame is not None:
            inline = base64.b64encode(first_frame).decode("ascii")
        return JimengVideoRequest(
            prompt=spec.prompt or None,
            image_urls=[url] if url else None,
            binary_data_base64=[inline] if inline else None,
            first_frame_ref=spec.image_url if in_bucket and first_frame is None else None,
            frames=spec.frames,
            aspect_ratio=spec.aspect_ratio,
            seed=spec.seed,
        )
    if not isinstance(spec, GatewayClipSpec):
        raise TypeError(f"not a clip spec: {type(spec).__name__}")
    return GatewayVideoRequest(
        model=spec.model,
        prompt=spec.prompt,
        aspect_ratio=spec.aspect_ratio,
        size=spec.size,
        images=[ref for _, ref in spec.image_refs()],  # first frame, then the last frame or the references
    )


async def clip_fingerprint(spec: ClipSpec, refs: BlockRefs) -> str:
    request = build_clip_request(spec)
    creds = await (resources.volcengine(refs) if spec.provider == "jimeng" else resources.gateway(refs))
    wire = request.to_wire()
    if isinstance(request, JimengVideoRequest) and request.first_frame_ref:
        # A bucket image is bought by reference (like a URL): its full s3:// name, whatever bucket a key meant.
        wire = {**wire, "clipflow.first_frame": await _bucket_uri(request.first_frame_ref, refs)}
    if spec.take:  # a deliberate new take is a new purchase; take 0 keeps the fingerprints of earlier versions
        wire = {**wire, "clipflow.take": spec.take}
    return fingerprint(spec.provider, "submit", wire, resources.account_id(creds))


async def _bucket_uri(ref: str, refs: BlockRefs) -> str:
    bucket, key = bucket_image(ref) or (None, ref)
    return f"s3://{bucket or (await resources.bucket(refs)).name}/{key}"


def _new_take_hint(spec: ClipSpec) -> str:
    return f"To pay for a new generation of this request, set clip.take to {spec.take + 1}."


class RetakeableFailureError(JobFailedError):
    """A paid generation ended failed with a code the vendor documents as retryable (Jimeng 50511: its output
    failed moderation, a new generation may pass). Never retried as it is (the same job fails the same way on
    every poll): the stage buys the next take instead, up to ``clip.max_takes``."""

    retryable = False


class TakesExhaustedError(JobFailedError):
    """Every take ``clip.max_takes`` allows was bought and failed with a retryable code."""

    retryable = False


def _retakeable(result: Any) -> bool:
    """Whether a failed job's last answer carries a code its vendor documents as retryable. Only Jimeng has such
    codes (``JimengResult.failure_retryable``, the page's table); the gateway documents none for a failed job."""
    return isinstance(result, JimengResult) and result.failure_retryable


@task(
    task_run_name="clip-{spec.provider}",
    **retry_options(),
    **cached_task_options(lambda p: f"clipflow-clip-{p['fp']}"),
)
async def make_clip(spec: ClipSpec, refs: BlockRefs, fp: str) -> StoredClip:
    """One paid generation, from submit until its bytes are in the bucket: one task per paid job.

    The journal makes the submit happen at most once per fingerprint, so a retry or a re-run after a crash
    finds the job and resumes waiting on it; once the bytes are stored the task is cached, and a re-run neither
    pays, polls nor downloads again."""
    job = await submit_clip_job(spec, refs, fp)
    return await collect_clip(job, refs, _new_take_hint(spec))


async def make_clip_takes(spec: ClipSpec, refs: BlockRefs, fp: str) -> tuple[StoredClip, int]:
    """``make_clip``, and when the job fails with a code the vendor documents as retryable, the next take (its own
    fingerprint, journal record and cache entry), until ``spec.max_takes`` takes were bought in all. Returns the
    stored clip and how many takes it cost. Each take is a paid submit: the batch budget counts it, and refuses
    it when used up. A re-run walks the same takes: the failed ones are read from the journal (a poll, not a
    purchase), the stored one from the cache."""
    logger = get_run_logger()
    take = spec
    for n in range(1, spec.max_takes + 1):
        try:
            return await make_clip(take, refs, fp), n
        except RetakeableFailureError as exc:
            if n == spec.max_takes:
                raise TakesExhaustedError(
                    f"every take clip.max_takes={spec.max_takes} allows failed with a retryable code (the last: "
                    f"{exc.message}). Raise clip.max_takes, or set clip.take to {take.take + 1} to pay for another",
                    provider=exc.provider, action=exc.action, code=exc.code, retryable=False,
                ) from exc
            why = f"failed with retryable code {exc.code} ({exc.message}); buying"
        except OutputGoneError:
            # A re-run long after a re-take: the given-up take's job is gone (Jimeng keeps a task 12 h), but an
            # earlier run already went on to the next take (the journal has it): follow it, buying nothing here.
            if n == spec.max_takes or not await _journaled(await clip_fingerprint(_next_take(take), refs)):
                raise
            why = "is gone and an earlier run went on; resuming"
        take = _next_take(take)
        fp = await clip_fingerprint(take, refs)
        logger.warning("Take %d of this clip %s take %d (%d of at most %d)", take.take - 1, why, take.take, n + 1,
                       spec.max_takes)
    raise AssertionError("unreachable: max_takes >= 1")


def _next_take(spec: ClipSpec) -> ClipSpec:
    return spec.model_copy(update={"take": spec.take + 1})


async def _journaled(fp: str) -> bool:
    return await (await Journal.default()).read(fp) is not None


async def submit_clip_job(spec: ClipSpec, refs: BlockRefs, fp: str) -> SubmittedJob:
    """Pay for one generation, at most once per request fingerprint (the engine's journal)."""
    request = build_clip_request(spec)
    if isinstance(request, JimengVideoRequest):
        if request.first_frame_ref:
            from flows.stages.preflight_images import fetch_image

            # Read once for this submit and checked again: the bytes sent are the bytes checked.
            request = build_clip_request(spec, await fetch_image(refs, request.first_frame_ref, "jimeng"))
        return await buy(JIMENG_SUBMIT, request, fp=fp, refs=refs)
    return await buy(GATEWAY_CREATE, request, fp=fp, refs=refs)


async def _result_url(job: SubmittedJob, refs: BlockRefs, new_take: str) -> str:
    """Wait until the job is done; return its (short-lived) result URL. A failure the vendor documents as
    retryable raises ``RetakeableFailureError`` (for the stage to buy the next take)."""
    base = JIMENG_RESULT if job.provider == "jimeng" else GATEWAY_RESULT
    last: list[Any] = []

    async def fetch(client: Any, job_id: str) -> Any:
        answer = await base.fetch(client, job_id)
        last[:] = [answer]  # the answer the wait ended on: its code says whether a new take may pass
        return answer

    poll = dataclasses.replace(base, fetch=fetch)
    describe = f"{job.provider} task {job.job_id}"
    try:
        result = await watch(poll, job.job_id, refs=refs, describe=describe, new_take=new_take)
    except JobFailedError as exc:
        if last and _retakeable(last[0]):
            raise RetakeableFailureError(
                f"{describe} failed with code {last[0].code}, which the vendor marks retryable: {last[0].message}",
                provider=job.provider, action=base.action, code=last[0].code, request_id=last[0].request_id,
            ) from exc
        raise
    # Jimeng names it video_url; gateways spread it over several fields, resolved by result_url.
    url = result.video_url if job.provider == "jimeng" else result.result_url
    if not url:
        raise OutputGoneError(f"{job.provider} task {job.job_id} succeeded without a video URL. {new_take}",
                              provider=job.provider, action=poll.action)
    return url


async def collect_clip(job: SubmittedJob, refs: BlockRefs, new_take: str = "") -> StoredClip:
    """Wait for the generation, then stream it into the bucket before the URL expires (1 h for Jimeng)."""
    bucket = await resources.bucket(refs)
    url = await _result_url(job, refs, new_take)
    try:
        stored = await copy_url_to_bucket(url, s3_client=bucket.client, bucket=bucket.name)
    except SourceExpiredError:
        # The URL lapsed between answer and download: ask once more (providers re-sign on each query).
        get_run_logger().warning("Result URL of %s expired before the copy; asking for a fresh one", job.job_id)
        url = await _result_url(job, refs, new_take)
        try:
            stored = await copy_url_to_bucket(url, s3_client=bucket.client, bucket=bucket.name)
        except SourceExpiredError as exc:
            raise OutputGoneError(
                f"the result of {job.provider} task {job.job_id} expired before it could be stored ({exc.message}). "
                f"{new_take}", provider=job.provider, action="collect",
            ) from exc
    get_run_logger().info("Stored %s as s3://%s/%s (sha256 %s)", job.job_id, stored.bucket, stored.key, stored.sha256)
    return StoredClip(bucket=stored.bucket, key=stored.key, size=stored.size, sha256=stored.sha256, source_job_id=job.job_id)


@task(
    task_run_name="import_clip-{space_name}",
    **retry_options(), **cached_task_options(lambda p: f"clipflow-import-{p['space_name']}-{p['clip'].sha256}"),
)
async def import_clip_to_vod(clip: StoredClip, space_name: str, refs: BlockRefs) -> ImportedClip:
    """UploadMediaByUrl with a presigned bucket URL, then wait for the Vid. Cached by content hash + space."""
    creds = await resources.volcengine(refs)
    bucket = await resources.bucket(refs)
    url = presigned_get_url(bucket.client, bucket.name, clip.key, expires=6 * 3600)
    fp = fingerprint("vod", "UploadMediaByUrl", {"space": space_name, "sha256": clip.sha256}, resources.account_id(creds))
    # The title tags the import with its fingerprint: how an import whose answer was lost is found again.
    request = UploadMediaByUrlRequest(
        space_name=space_name,
        url_sets=[UrlSet(source_url=url, file_name=clip.key.rsplit("/", 1)[-1], title=f"clipflow-{fp[:16]}")],
    )
    job = await buy(UPLOAD, request, fp=fp, refs=refs)
    if job.detail.get("vid"):  # found in the media library after a lost answer: already imported
        found = job.detail
        return ImportedClip(
            vid=found["vid"], space_name=space_name, duration_seconds=found.get("duration"),
            width=found.get("width"), height=found.get("height"),
        )
    item = await watch(UPLOAD_STATUS, job.job_id, refs=refs, describe=f"VOD URL import {job.job_id}")
    if not item.vid:
        raise OutputGoneError(f"URL import {job.job_id} succeeded without a Vid", provider="vod", action="UploadMediaByUrl")
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
        stored, takes = await make_clip_takes(spec, refs, fp)
    imported = await import_clip_to_vod(stored, space_name, refs)
    generated = GeneratedClip(
        provider=spec.provider, job_id=stored.source_job_id, stored=stored, imported=imported, takes=takes,
    )
    if is_top_level_run("generate-clip"):
        await publish_ids("clip", "clip", {
            "provider": spec.provider, "job_id": stored.source_job_id, "bucket": stored.bucket, "key": stored.key,
            "sha256": stored.sha256, "size": stored.size, "space": imported.space_name, "vid": imported.vid,
            "takes": takes,
        }, of=imported.vid)
    return generated
