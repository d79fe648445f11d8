"""revise-translation: correct a FINISHED translation and re-export it, without paying for a new project.

Edits (by utterance id: text, speaker, timing, volume; the ids are in every translation's result, ``lines``, and
its ``lines-<project>`` table artifact; or a corrected .srt/.vtt under ``subtitles/{project}/`` in the bucket, at
most 2 MiB, whose cues replace the target lines in order) are checked as the vendor does (speakers of the project,
timing inside the video, lines in order without overlap) and go in with UpdateAITranslationUtterances;
RefreshAITranslationProject
(``RefreshType: whole``) then re-exports the project (``InExporting`` -> ``ExportSucceed`` | ``ExportFailed``),
bought through the paid-job engine: the purchase is journaled by project + edits + ``take``, so a re-run of the
same revision reuses it and a lost answer is settled by reading the project's status, never by exporting twice.
The new outputs and subtitles are recorded under ``subtitles/{project}/revision-{id}/``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from prefect import flow

from flows.models import BlockRefs, LanguageResult, ReviewDecision, TranslateSpec, UtteranceEdit
from flows.outputs.artifacts import publish_languages
from flows.runtime import resources
from flows.engine.buy import PaidAction, Receipt, buy, watch
from flows.engine.journal import Journal, JournalRecord, fingerprint
from flows.coordination.quotas import quota_slot
from flows.stages.review import read_project
from flows.stages.review_edits import apply_edits, check_subtitle_key, planned_edits
from flows.stages.review_form import ReviewInputError
from flows.stages.translate import CLOCK_SKEW_SECONDS
from flows.stages.translation_outputs import collect_translation, translation_poll
from providers.states import JobState
from providers.vod.models_translation import RefreshAITranslationProjectRequest

EXPORT_STATUSES = ("InExporting", "ExportSucceed", "ExportFailed")


async def _refresh(client: Any, request: RefreshAITranslationProjectRequest) -> Receipt:
    info = await client.refresh_ai_translation_project(request.space_name, request.project_id, request.refresh_type)
    return Receipt(request.project_id, {"project_version": info.project_version or ""})


async def _refreshed(client: Any, request: RefreshAITranslationProjectRequest, record: JournalRecord) -> Receipt | None:
    """A lost Refresh answer went through when the project is exporting, or finished an export after it left."""
    async with quota_slot("vod", "GetAITranslationProject"):
        project = await client.get_ai_translation_project(request.space_name, request.project_id)
    sent = (record.sent_at or record.at).timestamp() - CLOCK_SKEW_SECONDS
    if project.status == "InExporting" or (
        project.status in EXPORT_STATUSES and project.updated_at is not None and project.updated_at >= sent
    ):
        return Receipt(request.project_id)
    return None


REFRESH = PaidAction[RefreshAITranslationProjectRequest](
    "vod", "RefreshAITranslationProject", _refresh, reconcile=_refreshed,
    look_for=lambda r: f"a re-export of translation project {r.project_id}",
)


@flow(name="revise-translation", log_prints=True)
async def revise_translation(
    project_id: str,
    language: str,
    space_name: str = "demo",
    edits: list[UtteranceEdit] | None = None,
    subtitle_key: str | None = None,
    take: int = 0,
    spec: TranslateSpec | None = None,
    blocks: BlockRefs | None = None,
) -> LanguageResult:
    """Apply ``edits`` / the corrected file at ``subtitle_key`` to a finished project and re-export it.
    ``take``: raise it to deliberately pay for another export of the same edits."""
    refs = blocks or BlockRefs()
    spec = (spec or TranslateSpec()).model_copy(update={"review": "after_translation"})  # edits go to the target
    if take < 0:
        raise ReviewInputError("take: must be >= 0")
    if subtitle_key is not None:
        check_subtitle_key(subtitle_key, project_id)  # by name, before anything is read
    try:
        decision = ReviewDecision(action="edit", edits=edits or [], subtitle_key=subtitle_key)
    except ValueError as exc:
        raise ReviewInputError(str(exc)) from None
    project = await read_project(space_name, project_id, refs)
    if project.state is not JobState.SUCCEEDED:
        raise ReviewInputError(
            f"project_id: translation {project_id} is {project.status}; only a finished project (ProcessSucceed or "
            "ExportSucceed) can be revised (a paused one is reviewed: review-translation)"
        )
    planned = await planned_edits(decision, project, spec, refs)
    request = RefreshAITranslationProjectRequest(space_name=space_name, project_id=project_id, refresh_type="whole")
    # Each distinct revision (what was asked, and the take) is its own purchase; asking the same again reuses it.
    revision = hashlib.sha256(json.dumps([decision.model_dump(mode="json"), take], sort_keys=True).encode()).hexdigest()[:12]
    account = resources.account_id(await resources.volcengine(refs))
    fp = fingerprint("vod", REFRESH.action, {**request.to_wire(), "clipflow.revision": revision}, account)
    if not planned and (await (await Journal.default()).read(fp)) is None:
        raise ReviewInputError("edits: every edit repeats the current text; nothing to revise")
    await apply_edits(space_name, project_id, planned, refs)
    await buy(REFRESH, request, fp=fp, refs=refs)
    await watch(translation_poll(space_name), project_id, refs=refs, describe=f"re-export of {project_id} ({language})")
    result = await collect_translation(project_id, space_name, language, spec, refs, prefix=f"revision-{revision}/")
    bucket = (await resources.bucket(refs)).name
    await publish_languages(f"revise-{project_id.lower()}-{dt.datetime.now(dt.timezone.utc):%Y%m%d%H%M%S}", [result], bucket)
    return result
