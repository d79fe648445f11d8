"""Stage 4: VOD AI translation, one project per target language, waited on; SRT and WebVTT into the bucket."""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import flow, task
from prefect.logging import get_run_logger

from flows.runtime import resources
from flows.runtime.caching import cached_task_options
from flows.runtime.quotas import quota_slot
from flows.models import BlockRefs, LanguageResult, TranslateSpec
from flows.runtime.waiting import WaitTimeoutError, poll_delays, scaled, wait_for
from flows.runtime.retry import call_rejected_safe, retry_options
from flows.runtime.journal import SubmittedJob, fingerprint, submit_once
from flows.outputs.subtitles import cues_from_translation, to_srt, to_webvtt
from providers.errors import JobFailedError, ProviderError
from providers.states import JobState
from providers.vod.models import SubmitAITranslationWorkflowRequest

TYPICAL_SECONDS = 300.0
DEADLINE_SECONDS = 3 * 3600.0
SUBTITLE_ADDITIONS = ["TargetUtterances", "TargetClips"]


def build_translation_request(vid: str, space_name: str, language: str, spec: TranslateSpec) -> SubmitAITranslationWorkflowRequest:
    return SubmitAITranslationWorkflowRequest.model_validate(
        {
            "SpaceName": space_name,
            "Vid": vid,
            "TranslationConfig": {
                "SourceLanguage": spec.source_language,
                "TargetLanguage": language,
                "TranslationTypeList": spec.translation_types,
            },
            "OperatorConfig": {"SubtitleRecognitionConfig": {"RecognitionType": spec.recognition}},
        }
    )


def validate_translation(vid: str, space_name: str, spec: TranslateSpec) -> None:
    """Build every language's request up front so a bad language fails before anything is paid for."""
    for language in spec.target_languages:
        build_translation_request(vid or "v-placeholder", space_name, language, spec)


@task(
    task_run_name="submit_translation-{language}",
    **retry_options(),
    **cached_task_options(lambda p: f"clipflow-translation-{p['fp']}"),
)
async def submit_translation(vid: str, space_name: str, language: str, spec: TranslateSpec, refs: BlockRefs, fp: str) -> SubmittedJob:
    """One paid translation project. A lost answer is reconciled through ListAITranslationProject."""
    request = build_translation_request(vid, space_name, language, spec)
    creds = await resources.volcengine(refs)
    async with creds.get_vod_client() as vod:

        async def submit() -> str:
            async with quota_slot("vod", "SubmitAITranslationWorkflow"):
                info = await call_rejected_safe(lambda: vod.submit_ai_translation_workflow(request))
            return info.project_id

        async def reconcile() -> str | None:
            async with quota_slot("vod", "ListAITranslationProject"):
                listing = await vod.list_ai_translation_project(space_name, page_size=100)
            for project in listing.projects or []:
                if _project_matches(project, vid, language):
                    return project.project_id
            return None

        return await submit_once(
            provider="vod", action="SubmitAITranslationWorkflow", fp=fp, submit=submit, reconcile=reconcile
        )


def _project_matches(project: Any, vid: str, language: str) -> bool:
    input_video = getattr(project, "input_video", None)
    targets = getattr(project, "target_blueprints", None) or []
    return bool(
        input_video is not None
        and getattr(input_video, "vid", None) == vid
        and any(getattr(b, "language", None) == language for b in targets)
    )


@task(
    task_run_name="wait_translation-{language}",
    **retry_options(),
    **cached_task_options(lambda p: f"clipflow-translation-result-{p['job'].job_id}"),
)
async def wait_translation(job: SubmittedJob, space_name: str, language: str, refs: BlockRefs) -> LanguageResult:
    """Wait for the project, then write its subtitles (SRT + WebVTT) into the bucket."""
    creds = await resources.volcengine(refs)
    get_run_logger().info("Waiting on translation project %s (%s)", job.job_id, language)
    async with creds.get_vod_client() as vod:

        async def poll() -> Any:
            async with quota_slot("vod", "GetAITranslationProject"):
                return await vod.get_ai_translation_project(space_name, job.job_id)

        project = await wait_for(
            poll, lambda p: p.state.is_terminal, delays=poll_delays(TYPICAL_SECONDS),
            deadline_seconds=scaled(DEADLINE_SECONDS), describe=f"translation {job.job_id} ({language})",
        )
        if project.state is not JobState.SUCCEEDED:
            raise JobFailedError(
                f"translation {job.job_id} ({language}) ended {project.status}: {project.error_msg or project.error_code}",
                provider="vod", action="SubmitAITranslationWorkflow",
            )
        async with quota_slot("vod", "GetAITranslationProject"):
            detail = await vod.get_ai_translation_project(space_name, job.job_id, additions=SUBTITLE_ADDITIONS)
    cues = cues_from_translation(detail.target_utterances or [], detail.target_clips or [])
    bucket = await resources.bucket(refs)
    keys = {}
    for ext, text in (("srt", to_srt(cues)), ("vtt", to_webvtt(cues))):
        key = f"subtitles/{job.job_id}/{language}.{ext}"
        await asyncio.to_thread(
            bucket.client.put_object, Bucket=bucket.name, Key=key, Body=text.encode(),
            ContentType="application/x-subrip" if ext == "srt" else "text/vtt",
        )
        keys[ext] = key
    output = detail.output_video
    return LanguageResult(
        language=language, project_id=job.job_id, status=project.state,
        output_vid=getattr(output, "vid", None) or None, output_url=getattr(output, "url", None) or None,
        srt_key=keys["srt"], vtt_key=keys["vtt"],
    )


async def translate_language(vid: str, space_name: str, language: str, spec: TranslateSpec, refs: BlockRefs, account: str) -> LanguageResult:
    fp = fingerprint("vod", "SubmitAITranslationWorkflow", build_translation_request(vid, space_name, language, spec).to_wire(), account)
    try:
        job = await submit_translation(vid, space_name, language, spec, refs, fp)
        return await wait_translation(job, space_name, language, refs)
    except (ProviderError, WaitTimeoutError) as exc:
        # One language failing (or still running at its deadline: a re-run resumes waiting on the same project)
        # must not lose the others; the result says which and why.
        return LanguageResult(language=language, project_id="", status=JobState.FAILED, error=str(exc))


@flow(name="ai-translate", log_prints=True)
async def ai_translate(
    vid: str, space_name: str = "demo", spec: TranslateSpec | None = None, blocks: BlockRefs | None = None
) -> list[LanguageResult]:
    """Translate ``vid`` into every target language concurrently (within the 1 QPS submit quota)."""
    refs, spec = blocks or BlockRefs(), spec or TranslateSpec()
    validate_translation(vid, space_name, spec)
    account = resources.account_id(await resources.volcengine(refs))
    return list(
        await asyncio.gather(*(translate_language(vid, space_name, lang, spec, refs, account) for lang in spec.target_languages))
    )
