"""Stage 4: VOD AI translation, one project per target language, waited on; every output recorded.

Per language: submit (every SubmitAITranslationWorkflow option of ``TranslateSpec``; with ``review`` set, also
``ProcessConfig.SuspensionStageList`` so the project pauses for a person), wait, and, when it paused, hand it to
the review gate (``flows.stages.review``), which stores the drafts, waits for the decision without holding a
worker, applies edits and continues. A finished project is collected: source and target subtitles (SRT and
WebVTT) into the bucket, every output video and audio stem recorded by Vid / file name (never by signed URL:
those expire), and optionally the videos copied into the bucket.
"""

from __future__ import annotations

import asyncio
from typing import Any

from prefect import flow, task

from flows.models import BlockRefs, LanguageResult, TranslateSpec, TranslateVideoResult
from flows.models.translate import SUSPENSION_STAGE
from flows.costs.model import MaxCost
from flows.costs.translation import translation_costs
from flows.runtime import resources
from flows.engine.caching import cached_task_options
from flows.engine.buy import PaidAction, Receipt, buy, watch
from flows.engine.journal import Journal, JournalRecord, SubmittedJob, fingerprint
from flows.coordination.quotas import quota_slot
from flows.engine.retry import retry_options
from flows.engine.waiting import WaitTimeoutError
from flows.stages.review import review_gate
from flows.stages.translation_outputs import collect_translation, translation_poll
from providers.errors import ProviderError
from providers.states import JobState
from providers.vod.models import SubmitAITranslationWorkflowRequest

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


def _subtitle_config(spec: TranslateSpec) -> dict[str, Any] | None:
    style = spec.subtitles
    wire = {
        "IsHardSubtitle": style.hard_subtitle, "IsEraseSource": style.erase_source, "FontSize": style.font_size,
        "MarginL": style.margin_l, "MarginR": style.margin_r, "MarginV": style.margin_v, "ShowLines": style.show_lines,
    }
    wire = {k: v for k, v in wire.items() if v is not None}
    return wire or None


def build_translation_request(vid: str, space_name: str, language: str, spec: TranslateSpec) -> SubmitAITranslationWorkflowRequest:
    """Every option of ``spec``; an unset one is left out so the vendor's default applies."""
    translation: dict[str, Any] = {
        "SourceLanguage": spec.source_language,
        "TargetLanguage": language,
        "TranslationTypeList": spec.translation_types,
    }
    if spec.termbase_ids:
        translation["TermbaseConfig"] = {"TranslationTermbaseIds": list(spec.termbase_ids)}
    recognition: dict[str, Any] = {"RecognitionType": spec.recognition}
    if spec.is_vision is not None:
        recognition["IsVision"] = spec.is_vision
    operator: dict[str, Any] = {"SubtitleRecognitionConfig": recognition}
    if spec.background_volume is not None:
        operator["VoiceCloneConfig"] = {"BackgroundVolume": spec.background_volume}
    body: dict[str, Any] = {
        "SpaceName": space_name, "Vid": vid, "TranslationConfig": translation, "OperatorConfig": operator,
    }
    if (subtitles := _subtitle_config(spec)) is not None:
        body["SubtitleConfig"] = subtitles
    if spec.review != "none":
        body["ProcessConfig"] = {"SuspensionStageList": [SUSPENSION_STAGE[spec.review]]}
    return SubmitAITranslationWorkflowRequest.model_validate(body)


def validate_translation(vid: str, space_name: str, spec: TranslateSpec) -> None:
    """Build every language's request up front so a bad language fails before anything is paid for; then the
    spec's own rules once more (a spec changed in code skipped them)."""
    for language in spec.target_languages:
        build_translation_request(vid or "v-placeholder", space_name, language, spec)
    TranslateSpec.model_validate(spec.model_dump())


def translation_fingerprint(vid: str, space_name: str, language: str, spec: TranslateSpec, account: str) -> str:
    wire = build_translation_request(vid, space_name, language, spec).to_wire()
    if spec.review_again and spec.review != "none":
        # A deliberate new purchase, reviewed afresh; stable, so a re-run of this request reuses it.
        wire = {**wire, "clipflow.review_again": True}
    if spec.take:  # a deliberate new take is a new purchase; take 0 keeps the fingerprints of earlier versions
        wire = {**wire, "clipflow.take": spec.take}
    return fingerprint("vod", "SubmitAITranslationWorkflow", wire, account)


@task(
    task_run_name="submit_translation-{language}",
    **retry_options(),
    **cached_task_options(lambda p: f"clipflow-translation-{p['fp']}"),
)
async def submit_translation(vid: str, space_name: str, language: str, spec: TranslateSpec, refs: BlockRefs, fp: str) -> SubmittedJob:
    """One paid translation project. A lost answer is reconciled through ListAITranslationProject."""
    return await buy(TRANSLATION, build_translation_request(vid, space_name, language, spec), fp=fp, refs=refs)


async def wait_translation(job: SubmittedJob, space_name: str, language: str, spec: TranslateSpec, refs: BlockRefs) -> LanguageResult:
    """Wait for the project to finish (a paused one is the review gate's), then collect it."""
    await watch(translation_poll(space_name), job.job_id, refs=refs, describe=f"translation {job.job_id} ({language})")
    return await collect_translation(job.job_id, space_name, language, spec, refs)


@task(
    task_run_name="translation-{language}",
    **retry_options(),
    **cached_task_options(lambda p: f"clipflow-translated-{p['fp']}-{int(p['spec'].export_outputs)}"),
)
async def translate_unreviewed(
    vid: str, space_name: str, language: str, spec: TranslateSpec, refs: BlockRefs, fp: str
) -> LanguageResult:
    """One paid translation project from submit until it is collected: one task per paid job. The journal
    keeps the submit to one per fingerprint, so a retry or a re-run after a crash resumes waiting on the same
    project; once collected the task is cached, and a re-run neither pays, polls nor copies again."""
    job = await submit_translation.fn(vid, space_name, language, spec, refs, fp)
    return await wait_translation(job, space_name, language, spec, refs)


async def translate_language(
    vid: str, space_name: str, language: str, spec: TranslateSpec, refs: BlockRefs, account: str
) -> LanguageResult:
    fp = translation_fingerprint(vid, space_name, language, spec, account)
    project_id = ""
    try:
        if spec.review == "none":
            return await translate_unreviewed(vid, space_name, language, spec, refs, fp)
        # Reviewed: the project id is needed on its own, for the gate that pauses the run between the steps.
        job = await submit_translation(vid, space_name, language, spec, refs, fp)
        project_id = job.job_id
        return await review_gate(job.job_id, space_name, language, spec, refs)
    except (ProviderError, WaitTimeoutError) as exc:
        # One language failing (or still running at its deadline: a re-run resumes waiting on the same project)
        # must not lose the others; the result says which and why, and the project when one was bought.
        project_id = project_id or await _bought_project(fp)
        return LanguageResult(
            language=language, project_id=project_id, status=JobState.FAILED, error=str(exc),
            takes=int(bool(project_id)),
        )


async def _bought_project(fp: str) -> str:
    """The project the journal has for ``fp`` ("" when nothing was bought, or the journal cannot say)."""
    try:
        record = await (await Journal.default()).read(fp)
    except Exception:  # noqa: BLE001 - only decorates a failure being reported already
        return ""
    return record.job_id if record is not None and record.job_id else ""


@flow(name="ai-translate", log_prints=True)
async def ai_translate(
    vid: str, space_name: str = "demo", spec: TranslateSpec | None = None, blocks: BlockRefs | None = None,
    max_cost: MaxCost | None = None,
) -> TranslateVideoResult:
    """Translate ``vid`` into every target language concurrently (within the 1 QPS submit quota).
    ``max_cost``: refuse, before anything is paid, when the estimate is above it (a production estimates
    its translations itself: this estimate is translate-video's own)."""
    from flows.outputs.artifacts import publish_languages

    refs, spec = blocks or BlockRefs(), spec or TranslateSpec()
    validate_translation(vid, space_name, spec)
    account = resources.account_id(await resources.volcengine(refs))
    fingerprints = {lang: translation_fingerprint(vid, space_name, lang, spec, account) for lang in spec.target_languages}
    async with translation_costs(vid, space_name, spec, refs, fingerprints, max_cost) as cost:  # estimate, cap, spend
        results = list(await asyncio.gather(
            *(translate_language(vid, space_name, lang, spec, refs, account) for lang in spec.target_languages)
        ))
    await publish_languages(f"translate-{vid}", results, (await resources.bucket(refs)).name)
    return TranslateVideoResult(languages=results, cost=cost[0] if cost else None)
