"""Stage 4: VOD AI translation, one project per target language, waited on; SRT and WebVTT into the bucket."""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import flow, task

from flows.models import BlockRefs, LanguageResult, TranslateSpec
from flows.outputs.subtitles import cues_from_translation, to_srt, to_webvtt
from flows.runtime import resources
from flows.runtime.caching import cached_task_options
from flows.runtime.engine import JobPoll, PaidAction, Receipt, buy, watch
from flows.runtime.journal import JournalRecord, SubmittedJob, fingerprint
from flows.runtime.quotas import quota_slot
from flows.runtime.retry import retry_options
from flows.runtime.waiting import WaitTimeoutError
from providers.errors import ProviderError
from providers.states import JobState
from providers.vod.models import SubmitAITranslationWorkflowRequest

SUBTITLE_ADDITIONS = ["TargetUtterances", "TargetClips"]
LIST_PAGE = 100
CLOCK_SKEW_SECONDS = 300  # a project listed as created this long before our request left may still be ours


async def _submit(client: Any, request: SubmitAITranslationWorkflowRequest) -> Receipt:
    return Receipt((await client.submit_ai_translation_workflow(request)).project_id)


async def _find_translation(
    client: Any, request: SubmitAITranslationWorkflowRequest, record: JournalRecord
) -> Receipt | None:
    """The project the lost request created: same Vid, target language and translation types, created after the
    request left (less the clock skew between us and the provider). Every page is read."""
    wire = request.to_wire()
    config = wire["TranslationConfig"]
    wanted_types = sorted(config["TranslationTypeList"])
    sent = (record.sent_at or record.at).timestamp() - CLOCK_SKEW_SECONDS
    page = 1
    while True:
        async with quota_slot("vod", "ListAITranslationProject"):
            listing = await client.list_ai_translation_project(wire["SpaceName"], page_number=page, page_size=LIST_PAGE)
        for project in listing.projects or []:
            if (
                project.input_video is not None
                and project.input_video.vid == wire["Vid"]
                and config["TargetLanguage"] in project.target_languages
                and sorted(project.translation_type_list or wanted_types) == wanted_types
                and (project.created_at is None or project.created_at >= sent)
            ):
                return Receipt(project.project_id)
        seen = (page - 1) * LIST_PAGE + len(listing.projects or [])
        if not listing.projects or (listing.total_count is not None and seen >= listing.total_count):
            return None
        page += 1


TRANSLATION = PaidAction[SubmitAITranslationWorkflowRequest](
    "vod", "SubmitAITranslationWorkflow", _submit, reconcile=_find_translation,
    look_for=lambda r: f"a translation project of {r.vid} into {r.translation_config.target_language}",
)


def translation_poll(space_name: str) -> JobPoll[Any]:
    return JobPoll(
        "vod", "GetAITranslationProject", lambda c, project_id: c.get_ai_translation_project(space_name, project_id),
        lambda p: p.state, typical_seconds=300.0, deadline_seconds=3 * 3600.0,
        failure=lambda p: f"{p.status}: {p.error_msg or p.error_code}",
    )


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
    return await buy(TRANSLATION, build_translation_request(vid, space_name, language, spec), fp=fp, refs=refs)


@task(
    task_run_name="wait_translation-{language}",
    **retry_options(),
    **cached_task_options(lambda p: f"clipflow-translation-result-{p['job'].job_id}"),
)
async def wait_translation(job: SubmittedJob, space_name: str, language: str, refs: BlockRefs) -> LanguageResult:
    """Wait for the project, then write its subtitles (SRT + WebVTT) into the bucket."""
    project = await watch(
        translation_poll(space_name), job.job_id, refs=refs, describe=f"translation {job.job_id} ({language})"
    )
    async with await resources.client("vod", refs) as vod, quota_slot("vod", "GetAITranslationProject"):
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
