"""Stage 3: StartWorkflow (transcode template with overrides), waited on until it finishes.

Every field of the vendor page is built from ``TranscodeSpec``: the source (a Vid, or ``source_file`` of the
production's space as DirectUrl) and every override, one item or several per kind. The text watermark goes under
the template's own variable key, read with the free GetWorkflowTemplate before anything is paid, which also
checks the keys of ``watermarks``. ``spec.run`` is the deliberate re-run knob: it is part of the fingerprint (so
of the cache key and the ClientToken), never sent to the vendor.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task

from flows.models import (
    AudioOverride, BlockRefs, SnapshotOutput, SnapshotOverride, TranscodeOutput, TranscodeResult, TranscodeSpec,
    VideoOverride,
)
from flows.outputs.artifacts import publish_renditions
from flows.runtime import resources
from flows.engine.caching import cached_task_options
from flows.engine.buy import JobPoll, PaidAction, Receipt, buy, watch
from flows.engine.journal import SubmittedJob, fingerprint
from flows.coordination.quotas import quota_slot
from flows.engine.retry import retry_options
from providers.errors import InvalidRequestError, NotFoundError, RequestValidationError
from providers.vod.models import StartWorkflowRequest
from providers.vod.models_workflow import WorkflowExecutionResult

TEMPLATE_ACTION = "GetWorkflowTemplate"
# Only local validation (validate_production) builds a request before the template was read: the stage itself
# always sends the template's own key.
UNRESOLVED_LOGO_KEY = "input_text"


async def _start(client: Any, request: StartWorkflowRequest) -> Receipt:
    return Receipt(await client.start_workflow(request))


START_WORKFLOW = PaidAction[StartWorkflowRequest]("vod", "StartWorkflow", _start, token=True)
WORKFLOW_RUN = JobPoll[Any](
    "vod", "GetWorkflowExecution", lambda c, run_id: c.get_workflow_execution(run_id), lambda e: e.state,
    # idle-time (low priority) transcoding may wait for hours
    typical_seconds=60.0, deadline_seconds=4 * 3600.0, failure=lambda e: f"status {e.status}",
)


def _clip(start: int | None, end: int | None) -> dict[str, int] | None:
    if start is None and end is None:
        return None
    return {"StartTime": start or 0, "EndTime": end or 0}  # EndTime 0: to the end of the video


def _drop_none(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if v is not None}


def _video_item(video: VideoOverride | None, clip: dict[str, int] | None) -> dict[str, Any] | None:
    body = _drop_none({
        "Clip": clip or (_clip(video.clip_start_ms, video.clip_end_ms) if video else None),
        "FileName": video.file_name if video else None,
        "LogoTemplateId": video.logo_template_id if video else None,
    })
    return {"TemplateId": list(video.template_ids) if video else ["All"], **body} if body else None


def _audio_item(audio: AudioOverride) -> dict[str, Any] | None:
    body = _drop_none({"Clip": _clip(audio.clip_start_ms, audio.clip_end_ms), "FileName": audio.file_name})
    return {"TemplateId": list(audio.template_ids), **body} if body else None


def _snapshot_item(shot: SnapshotOverride) -> dict[str, Any] | None:
    body = _drop_none({
        "FileName": shot.file_name, "FileIndex": shot.file_index, "OffsetTime": shot.offset_time_ms,
        "SampleOffsets": shot.sample_offsets_s, "OffsetTimeList": shot.offset_time_list_ms,
        "Width": shot.width, "Height": shot.height,
    })
    return {"TemplateId": list(shot.template_ids), **body} if body else None


def build_overrides(spec: TranscodeSpec, logo_variable: str | None = None) -> dict[str, Any]:
    """Input.OverrideParams of the vendor page, from the spec: per kind, the first item then the ``more_*``
    ones, in the form's order; an item with nothing to say is left out, and so is a kind without items."""
    logos = [{"TemplateId": w.logo_template_id, "Vars": dict(w.texts)} for w in spec.watermarks]
    if spec.watermark_text:
        key = logo_variable or spec.watermark_variable or UNRESOLVED_LOGO_KEY
        logos.insert(0, {"TemplateId": spec.logo_template_id, "Vars": {key: spec.watermark_text}})
    kinds: dict[str, list[dict[str, Any] | None]] = {
        "Logo": list(logos),
        "TranscodeVideo": [_video_item(spec.video, _clip(spec.clip_start_ms, spec.clip_end_ms))]
        + [_video_item(v, None) for v in spec.more_video],
        "TranscodeAudio": [_audio_item(a) for a in ([spec.audio] if spec.audio else []) + spec.more_audio],
        "Snapshot": [_snapshot_item(x) for x in ([spec.snapshot] if spec.snapshot else []) + spec.more_snapshot],
    }
    return {kind: kept for kind, items in kinds.items() if (kept := [i for i in items if i])}


def build_workflow_request(
    vid: str, space_name: str, spec: TranscodeSpec, client_token: str = "", *, logo_variable: str | None = None
) -> StartWorkflowRequest:
    """StartWorkflow for ``vid``, or (``spec.source_file``) for that file of ``space_name`` by DirectUrl: only the
    production's own space is ever named (no BucketName: VOD takes the space's bucket)."""
    overrides = build_overrides(spec, logo_variable)
    source: dict[str, Any] = (
        {"direct_url": {"FileName": spec.source_file, "SpaceName": space_name}} if spec.source_file
        else {"vid": vid}
    )
    return StartWorkflowRequest(
        **source,
        template_id=spec.template_id,
        input={"OverrideParams": overrides} if overrides else None,
        priority=spec.priority,
        callback_args=spec.callback_args,
        enable_low_priority=spec.low_priority,
        client_token=client_token or None,
    )


def workflow_fingerprint(
    vid: str, space_name: str, spec: TranscodeSpec, account: str, *, logo_variable: str | None = None
) -> str:
    wire = build_workflow_request(vid, space_name, spec, logo_variable=logo_variable).to_wire()
    if spec.run:  # the re-run knob: a new purchase of the same request (run 0 keeps the historic fingerprint)
        wire = {**wire, "clipflow.run": spec.run}
    return fingerprint("vod", "StartWorkflow", wire, account)


# --- the template's own watermark variable ---------------------------------------------------------------


def logo_variables(template: dict[str, Any]) -> dict[str, list[str]]:
    """Watermark template id -> its text variable keys, wherever the workflow template lists them (an object
    with ``Vars``: a list of keys, of ``{Key}`` objects, or a key -> default map). Image logos are skipped."""
    found: dict[str, list[str]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for value in node:
                walk(value)
            return
        if not isinstance(node, dict):
            return
        names = node.get("Vars", node.get("Variables"))
        kind = str(node.get("LogoType") or node.get("Type") or "text").lower()
        if names is not None and kind == "text":
            keys = list(names) if isinstance(names, dict) else [
                n if isinstance(n, str) else n.get("Key") if isinstance(n, dict) else None for n in names
            ]
            bucket = found.setdefault(str(node.get("TemplateId") or "All"), [])
            bucket.extend(k for k in keys if isinstance(k, str) and k and k not in bucket)
        for key, value in node.items():
            if key not in ("Vars", "Variables"):
                walk(value)

    walk(template)
    return found


def choose_logo_variable(spec: TranscodeSpec, template: dict[str, Any]) -> str:
    """The key the text goes under, or a refusal naming the field to fix."""

    def refuse(field: str, rule: str) -> RequestValidationError:
        return RequestValidationError(f"transcode.{field}", rule, provider="vod", action=TEMPLATE_ACTION)

    logos = logo_variables(template)
    if spec.logo_template_id != "All":
        if spec.logo_template_id not in logos:
            raise refuse("logo_template_id", f"workflow template {spec.template_id!r} has no text watermark "
                         f"{spec.logo_template_id!r} (its text watermarks: {sorted(logos) or 'none'})")
        keys = logos[spec.logo_template_id]
    else:
        keys = list(dict.fromkeys(k for ks in logos.values() for k in ks))
    if not keys:
        raise refuse("watermark_text", f"workflow template {spec.template_id!r} has no text-watermark variable to "
                     "put the text in: leave watermark_text empty or use a template with a text watermark")
    if spec.watermark_variable:
        if spec.watermark_variable not in keys:
            raise refuse("watermark_variable", f"the template's text-watermark variables are {keys}, "
                         f"not {spec.watermark_variable!r}")
        return spec.watermark_variable
    if len(keys) > 1:
        raise refuse("watermark_variable", f"the template has several text-watermark variables {keys}: name one")
    return keys[0]


def check_watermarks(spec: TranscodeSpec, template: dict[str, Any]) -> None:
    """Every key of ``spec.watermarks`` is a text variable of its watermark template (of any, for All)."""
    logos = logo_variables(template)
    for n, mark in enumerate(spec.watermarks):
        if mark.logo_template_id != "All" and mark.logo_template_id not in logos:
            raise RequestValidationError(
                f"transcode.watermarks[{n}].logo_template_id", f"workflow template {spec.template_id!r} has no text "
                f"watermark {mark.logo_template_id!r} (its text watermarks: {sorted(logos) or 'none'})",
                provider="vod", action=TEMPLATE_ACTION,
            )
        keys = logos[mark.logo_template_id] if mark.logo_template_id != "All" else list(
            dict.fromkeys(k for ks in logos.values() for k in ks)
        )
        for key in mark.texts:
            if key not in keys:
                raise RequestValidationError(
                    f"transcode.watermarks[{n}].texts.{key}", f"not a text variable of watermark "
                    f"{mark.logo_template_id!r} in workflow template {spec.template_id!r} (its variables: {keys})",
                    provider="vod", action=TEMPLATE_ACTION,
                )


@task(task_run_name="read_template-{spec.template_id}", **retry_options())
async def resolve_logo_variable(spec: TranscodeSpec, refs: BlockRefs) -> str | None:
    """Read the template (free), check the watermark keys the spec names and choose the key of
    ``watermark_text``; None when there is no watermark text."""
    if not spec.watermark_text and not spec.watermarks:
        return None
    try:
        async with await resources.client("vod", refs) as vod, quota_slot("vod", TEMPLATE_ACTION):
            template = await vod.get_workflow_template(spec.template_id)
    except (NotFoundError, InvalidRequestError) as exc:
        if exc.code != "InvalidActionOrVersion":
            raise RequestValidationError("transcode.template_id", f"workflow template {spec.template_id!r} "
                                         f"cannot be read ({exc.code or exc})", provider="vod",
                                         action=TEMPLATE_ACTION) from None
        # This endpoint cannot tell: trust the keys the user named (watermarks' always are).
        if spec.watermark_variable or not spec.watermark_text:
            return spec.watermark_variable
        raise RequestValidationError(
            "transcode.watermark_variable", f"this VOD endpoint does not offer {TEMPLATE_ACTION}, so the template's "
            "watermark variable cannot be read: name it", provider="vod", action=TEMPLATE_ACTION,
        ) from None
    check_watermarks(spec, template)
    return choose_logo_variable(spec, template) if spec.watermark_text else None


# --- paying and collecting ---------------------------------------------------------------------------------


@task(
    task_run_name="transcode-{spec.template_id}",
    **retry_options(), **cached_task_options(lambda p: f"clipflow-transcode-{p['fp']}"),
)
async def transcode_video(
    vid: str, space_name: str, spec: TranscodeSpec, refs: BlockRefs, fp: str, logo_variable: str | None = None
) -> TranscodeResult:
    """One paid workflow run, from StartWorkflow until its renditions are known: one task per paid job. A retry
    or a re-run after a crash resumes waiting on the same run (journal and ClientToken); once it has finished
    the task is cached, and a re-run neither pays nor polls again."""
    job = await submit_transcode_workflow(vid, space_name, spec, refs, fp, logo_variable)
    return await wait_transcode_workflow(job, refs, spec, build_overrides(spec, logo_variable))


async def submit_transcode_workflow(
    vid: str, space_name: str, spec: TranscodeSpec, refs: BlockRefs, fp: str, logo_variable: str | None = None
) -> SubmittedJob:
    """StartWorkflow with a ClientToken derived from the request: the provider itself deduplicates a repeat,
    so even an answer lost in transit is safe to send again."""
    request = build_workflow_request(
        vid, space_name, spec, client_token=f"clipflow-{fp[:48]}", logo_variable=logo_variable
    )
    return await buy(START_WORKFLOW, request, fp=fp, refs=refs)


def collect_result(
    run_id: str, status: Any, result: WorkflowExecutionResult, spec: TranscodeSpec,
    overrides: dict[str, Any] | None = None,
) -> TranscodeResult:
    """Every rendition and snapshot the run reported, by id and store URI (never a signed URL), with the source
    and the overrides the run was started with (as sent)."""
    outputs = [
        TranscodeOutput(
            file_id=t.file_id, store_uri=t.store_uri, file_name=t.file_name, format=t.format, file_type=t.file_type,
            definition=t.definition, template_id=t.template_id, duration=t.duration, size=t.size,
            width=t.width or (t.video_stream_meta.width if t.video_stream_meta else None),
            height=t.height or (t.video_stream_meta.height if t.video_stream_meta else None),
            bitrate=t.bitrate, md5=t.md5, logo_type=t.logo_type,
        )
        for t in result.transcode_infos
    ]
    snapshots = [
        SnapshotOutput(
            type=s.type, template_id=s.template_id, store_uris=s.store_uris,
            width=s.detail.get("Width"), height=s.detail.get("Height"),
        )
        for s in result.snapshot_infos
    ]
    return TranscodeResult(
        run_id=run_id, status=status, outputs=outputs, snapshots=snapshots, template_id=spec.template_id, run=spec.run,
        source_vid=None if spec.source_file else (result.vid or None), source_file=spec.source_file,
        overrides=overrides or {},
    )


async def wait_transcode_workflow(
    job: SubmittedJob, refs: BlockRefs, spec: TranscodeSpec | None = None, overrides: dict[str, Any] | None = None
) -> TranscodeResult:
    execution = await watch(WORKFLOW_RUN, job.job_id, refs=refs, describe=f"VOD workflow run {job.job_id}")
    async with await resources.client("vod", refs) as vod, quota_slot("vod", "GetWorkflowExecutionResult"):
        result = await vod.get_workflow_execution_result(job.job_id)
    if not result.vid and execution.vid:
        result = result.model_copy(update={"vid": execution.vid})
    return collect_result(job.job_id, execution.state, result, spec or TranscodeSpec(), overrides)


@flow(name="start-transcode-workflow", log_prints=True)
async def start_transcode_workflow(
    vid: str, space_name: str = "demo", spec: TranscodeSpec | None = None, blocks: BlockRefs | None = None,
    title: str | None = None,
) -> TranscodeResult:
    """Start the transcode workflow for ``vid`` (or for ``spec.source_file`` of the space, then ``vid`` is not
    used) and return its renditions once it finishes. The renditions table artifact is keyed by ``title`` (the
    production's), else by the source."""
    refs, spec = blocks or BlockRefs(), spec or TranscodeSpec()
    creds = await resources.volcengine(refs)
    # Before paying (a refusal costs nothing); without watermark texts there is nothing to read.
    watermarked = spec.watermark_text or spec.watermarks
    logo_variable = await resolve_logo_variable(spec, refs) if watermarked else None
    fp = workflow_fingerprint(vid, space_name, spec, resources.account_id(creds), logo_variable=logo_variable)
    result = await transcode_video(vid, space_name, spec, refs, fp, logo_variable)
    await publish_renditions(result, title or "transcode", of=spec.source_file or vid)
    return result
