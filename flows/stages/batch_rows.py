"""What a batch reports: one row per item (its status, clip, translations, cost) and the tables and artifacts built from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from prefect.artifacts import acreate_table_artifact
from pydantic import BaseModel, Field

from flows.costs.model import RunCost
from flows.outputs.artifacts import artifact_key, safe_cell, safe_rows
from flows.engine.journal import DuplicateSubmitRiskError
from flows.outputs.manifest import ItemProblem, ValidItem
from flows.models import ProductionResult
from providers.states import JobState


ERROR_CHARS = 500


@dataclass
class ItemSlot:
    """What the batch sees of one item while it runs: each stage's result as it lands."""

    stages: dict[str, Any] = field(default_factory=dict)


class ItemStatus(str, Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INVALID = "invalid"
    SKIPPED = "skipped"
    AWAITING_REVIEW = "awaiting_review"
    DUPLICATE = "duplicate"


class TranslationRow(BaseModel):
    language: str
    status: str
    project_id: str | None = None
    output_vid: str | None = None
    srt: str | None = None
    vtt: str | None = None
    review_run_id: str | None = Field(None, description="The review-translation run a person answers.")
    resume: str | None = Field(None, description="How to answer the review, while it waits.")
    error: str | None = None


class BatchItemRow(BaseModel):
    item: int = Field(description="1-based item number in the manifest.")
    line: int | None = Field(None, description="Source line in the manifest file.")
    title: str = ""
    status: ItemStatus
    clip_job_id: str | None = None
    clip: str | None = Field(None, description="s3:// location of the generated clip.")
    clip_sha256: str | None = Field(None, description="sha256 of the clip as it was copied into the bucket.")
    vid: str | None = None
    project_id: str | None = None
    workflow_run_id: str | None = None
    transcode_outputs: list[str] = []
    translations: list[TranslationRow] = []
    duplicate_of: int | None = Field(
        None, description="The item that buys exactly the same (this row's request means the same): that one ran."
    )
    error: str | None = None
    cost: RunCost | None = Field(None, description="The item's estimate and what it bought.")


class LostAnswer(BaseModel):
    """A paid request whose answer was lost and that the provider cannot find: an operator resolves it."""

    item: int = Field(description="1-based item number in the manifest.")
    fingerprint: str
    provider: str
    action: str
    at: str = Field(description="When the request left (UTC, ISO 8601).")
    look_for: str = Field("", description="What to search for in the provider console.")
    resolve: str = Field("", description="The commands that resolve it.")


def lost_answer(item: int, exc: BaseException) -> LostAnswer | None:
    """The operator's view of an item that stopped on a lost answer (None for any other failure)."""
    record = getattr(exc, "record", None) if isinstance(exc, DuplicateSubmitRiskError) else None
    if record is None:
        return None
    fp = record.fingerprint
    return LostAnswer(
        item=item, fingerprint=fp, provider=record.provider, action=record.action,
        at=(record.sent_at or record.at).isoformat(), look_for=record.look_for,
        resolve=f"clipflow journal attach {fp} JOB_ID | clipflow journal release {fp}",
    )


async def publish_lost_answers(title: str, lost: list[LostAnswer]) -> None:
    if lost:
        await acreate_table_artifact(
            table=[answer.model_dump() for answer in lost], key=artifact_key(f"{title}-batch", "lost-answers"),
            description=f"{len(lost)} paid request(s) whose answer was lost: find each job in the provider console, "
            "then attach its id or release the record (`clipflow journal`).",
        )


class BatchResult(BaseModel):
    total: int
    succeeded: int
    failed: int
    invalid: int
    skipped: int
    awaiting_review: int = Field(0, description="Items whose translations wait for a person (see their rows).")
    duplicates: int = Field(0, description="Items that mean the same request as an earlier one (run once).")
    paid_submissions: int | None = Field(None, description="Paid submits this run made (when a budget was set).")
    stopped: str | None = Field(None, description="Why items were skipped, if they were.")
    lost_answers: list[LostAnswer] = Field(default_factory=list, description="Items waiting for an operator.")
    cost: RunCost | None = Field(None, description="The batch's estimate and what its items bought.")
    items: list[BatchItemRow]


def _row(
    valid: ValidItem, slot: ItemSlot, result: ProductionResult | None, error: str | None, bucket: str
) -> BatchItemRow:
    stages = dict(slot.stages)
    if result is not None:
        stages.update(clip=result.clip, edit=result.edit, transcode=result.transcode)
    clip, edit, transcode = stages.get("clip"), stages.get("edit"), stages.get("transcode")
    translations = [
        TranslationRow(
            language=lang.language, status=lang.status.value, project_id=lang.project_id or None,
            output_vid=lang.output_vid, srt=f"s3://{bucket}/{lang.srt_key}" if lang.srt_key else None,
            vtt=f"s3://{bucket}/{lang.vtt_key}" if lang.vtt_key else None, error=lang.error,
            review_run_id=lang.review.review_run_id if lang.review else None,
            resume=lang.review.resume or None if lang.review else None,
        )
        for lang in (result.languages if result else [])
    ]
    ok = result is not None and result.status is JobState.SUCCEEDED
    waiting = result is not None and result.status is JobState.PAUSED
    if result is not None and not ok and not waiting and error is None:
        error = "; ".join(f"{t.language}: {t.error or t.status}" for t in translations if t.status != "succeeded")
        if transcode is not None and transcode.status is not JobState.SUCCEEDED:
            error = f"transcode {transcode.status.value}; {error}"
    return BatchItemRow(
        item=valid.item, line=valid.line, title=valid.request.title,
        status=ItemStatus.SUCCEEDED if ok else ItemStatus.AWAITING_REVIEW if waiting else ItemStatus.FAILED,
        clip_job_id=clip.job_id if clip else None,
        clip=f"s3://{clip.stored.bucket}/{clip.stored.key}" if clip else None,
        clip_sha256=clip.stored.sha256 if clip else None,
        vid=clip.imported.vid if clip else None, project_id=edit.project_id if edit else None,
        workflow_run_id=transcode.run_id if transcode else None,
        transcode_outputs=[o.store_uri or o.file_id or "" for o in transcode.outputs] if transcode else [],
        translations=translations, error=(error or None) and error[:ERROR_CHARS],
        cost=result.cost if result is not None else None,
    )


def _duplicate_row(valid: ValidItem, first: int) -> BatchItemRow:
    return BatchItemRow(
        item=valid.item, line=valid.line, title=valid.request.title, status=ItemStatus.DUPLICATE, duplicate_of=first,
        error=f"the same request as item {first} (it buys exactly what that item buys): run once, as item {first}",
    )


def _problem_rows(problems: list[ItemProblem], titles: dict[int, str]) -> list[BatchItemRow]:
    by_item: dict[int, list[ItemProblem]] = {}
    for problem in problems:
        by_item.setdefault(problem.item, []).append(problem)
    return [
        BatchItemRow(
            item=item, line=found[0].line, title=safe_cell(titles.get(item, "")), status=ItemStatus.INVALID,
            error=safe_cell("; ".join(f"{p.field}: {p.rule}" for p in found)[:ERROR_CHARS]),
        )
        for item, found in by_item.items()
    ]


ARTIFACT_MAX_ROWS = 1000  # the items table artifact stays small; the flow's result keeps every row


def _shown_rows(rows: list[BatchItemRow]) -> list[BatchItemRow]:
    """The rows the table artifact shows: every row up to ``ARTIFACT_MAX_ROWS``; past that, the ones a person
    acts on first (failed, invalid, awaiting review, skipped), then succeeded ones, in item order."""
    if len(rows) <= ARTIFACT_MAX_ROWS:
        return rows
    attention = [r for r in rows if r.status is not ItemStatus.SUCCEEDED][:ARTIFACT_MAX_ROWS]
    done = [r for r in rows if r.status is ItemStatus.SUCCEEDED][: ARTIFACT_MAX_ROWS - len(attention)]
    return sorted(attention + done, key=lambda r: r.item)


def _table(rows: list[BatchItemRow]) -> list[dict[str, Any]]:
    """The batch's table artifact; cells a spreadsheet would run as formulas are neutralised (``safe_rows``)."""
    return safe_rows([
        {
            "item": r.item,
            "line": r.line if r.line is not None else "",
            "title": r.title,
            "status": r.status.value,
            "clip_job": r.clip_job_id or "",
            "vid": r.vid or "",
            "project": r.project_id or "",
            "workflow_run": r.workflow_run_id or "",
            "translations": ", ".join(f"{t.language}:{t.project_id or '-'}:{t.status}" for t in r.translations),
            "outputs": " ".join(
                [r.clip or ""] + [t.output_vid or "" for t in r.translations] + [t.srt or "" for t in r.translations]
            ).strip(),
            "review": " ".join(
                f"{t.language}:{t.project_id}:run {t.review_run_id or '-'}" for t in r.translations if t.status == "paused"
            ),
            "error": r.error or "",
        }
        for r in rows
    ])


class ClipRow(BaseModel):
    item: int
    status: ItemStatus
    job_id: str | None = None
    clip: str | None = Field(None, description="s3:// location of the clip.")
    vid: str | None = None
    takes: int | None = Field(None, description="Generations this clip cost (a retryable failure is bought again).")
    error: str | None = None


class ClipsResult(BaseModel):
    total: int
    succeeded: int
    failed: int
    invalid: int
    skipped: int
    lost_answers: list[LostAnswer] = Field(default_factory=list, description="Clips waiting for an operator.")
    cost: RunCost | None = Field(None, description="The clips' estimate and what they bought.")
    clips: list[ClipRow]

