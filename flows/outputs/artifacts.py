"""Run artifacts: what a person opens in the Prefect UI to find every id and output of a production.

Only s3:// locations and provider URLs go here: presigned URLs are bearer credentials and stay out.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from typing import Any

from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from flows.models import LanguageResult, ProductionResult
from flows.models.transcode import TranscodeResult


# A cell starting with one of these is a formula to a spreadsheet (CSV/Excel export of a table artifact).
# Set by a batch for each of its items (flows.stages.batch): the batch's items table is their record.
BATCH_ITEM: ContextVar[bool] = ContextVar("clipflow_batch_item", default=False)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """A table cell a spreadsheet shows as text: a string that would start a formula (``=HYPERLINK(…)``,
    ``+1``, ``@SUM``, a leading tab or CR) gets a leading single quote. Other values are returned as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def safe_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every cell of a table artifact through ``safe_cell``."""
    return [{key: safe_cell(value) for key, value in row.items()} for row in rows]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")


def artifact_key(title: str, suffix: str, of: str = "") -> str:
    """``<title>[-<of>]-<suffix>`` in the lower-case letters, digits and dashes artifact keys allow. ``of`` (the
    production's source Vid) keeps two productions with the same title (every UI run keeps the default title)
    from writing versions of one artifact; a re-run of the same production adds a version of its own."""
    slug = _slug(title)[:40].strip("-") or "production"
    tail = _slug(of)[-12:].strip("-")
    return f"{slug}-{tail}-{suffix}" if tail else f"{slug}-{suffix}"


def production_markdown(result: ProductionResult, bucket_name: str) -> str:
    clip, edit, tr = result.clip, result.edit, result.transcode
    lines = [
        f"# {result.title}: {result.status.value}",
        "",
        "| stage | id | detail |",
        "|---|---|---|",
        f"| generate | `{clip.job_id}` | {clip.provider}, {clip.takes} take(s), "
        f"s3://{clip.stored.bucket}/{clip.stored.key} "
        f"({clip.stored.size} bytes, sha256 `{clip.stored.sha256[:16]}…`) |",
        f"| import | `{clip.imported.vid}` | space {clip.imported.space_name} |",
        f"| edit project | `{edit.project_id}` | group {edit.group_id or '-'}, rendered {edit.rendered_vid or '-'} |",
        f"| transcode | `{tr.run_id}` | {tr.status.value}, {len(tr.outputs)} output(s) |",
    ]
    if (videos := result.videos) is not None:  # which video the later stages started from
        lines.append(f"| sources | - | transcode: {videos.sources.get('transcode')} "
                     f"`{videos.transcode or videos.transcode_file}`, translate: {videos.sources.get('translate')} "
                     f"`{videos.translate}` |")
    for lang in result.languages:
        lines.append(
            f"| translate {lang.language} | `{lang.project_id or '-'}` | {lang.status.value}"
            f"{', vid ' + lang.output_vid if lang.output_vid else ''}"
            f"{', outputs: ' + outputs_cell(lang, bucket_name) if lang.outputs else ''}"
            f"{', review: ' + review_cell(lang) if lang.review else ''}"
            f"{', s3://' + bucket_name + '/' + lang.srt_key if lang.srt_key else ''}"
            f"{', error: ' + lang.error if lang.error else ''} |"
        )
    if result.cost is not None:
        from flows.costs.guard import cost_rows

        lines += cost_rows(result.cost)
    return "\n".join(lines)


def language_rows(result: ProductionResult | list[LanguageResult], bucket_name: str) -> list[dict[str, Any]]:
    return [
        {
            "language": lang.language,
            "status": lang.status.value,
            "project_id": lang.project_id,
            "output_vid": lang.output_vid or "",
            "srt": f"s3://{bucket_name}/{lang.srt_key}" if lang.srt_key else "",
            "vtt": f"s3://{bucket_name}/{lang.vtt_key}" if lang.vtt_key else "",
            "source_srt": f"s3://{bucket_name}/{lang.source_srt_key}" if lang.source_srt_key else "",
            "source_vtt": f"s3://{bucket_name}/{lang.source_vtt_key}" if lang.source_vtt_key else "",
            "outputs": outputs_cell(lang, bucket_name),
            "review": review_cell(lang),
            "takes": lang.takes,
            "error": lang.error or "",
        }
        for lang in (result if isinstance(result, list) else result.languages)
    ]


def outputs_cell(lang: LanguageResult, bucket_name: str) -> str:
    """Every output of a language as ``kind vid file [s3://…]``: Vids and file names, never signed URLs."""
    return "; ".join(
        " ".join(
            part for part in (
                o.kind, o.vid or "", o.file_name or "", f"s3://{bucket_name}/{o.key}" if o.key else "",
            ) if part
        )
        for o in lang.outputs
    )


def review_cell(lang: LanguageResult) -> str:
    review = lang.review
    if review is None:
        return ""
    text = f"{review.decision} ({review.stage}, {review.edits} edit(s))"
    if review.review_run_id:
        text += f", review run {review.review_run_id}"
    if review.reused:
        text += f", {review.reused}"
    return text + (f": {review.resume}" if review.resume else "")


async def publish_languages(title: str, languages: list[LanguageResult], bucket_name: str) -> None:
    """The table of a translate-video run (or a revision): one row per language, every output."""
    if in_batch_item():
        return
    await acreate_table_artifact(
        table=safe_rows(language_rows(languages, bucket_name)), key=artifact_key(title, "languages"),
        description="Translation status and outputs per language",
    )


def utterance_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A review table: the cells a spreadsheet would run as formulas neutralised."""
    return safe_rows(rows)


async def publish_production(result: ProductionResult, bucket: Any) -> None:
    if in_batch_item():
        return
    await acreate_markdown_artifact(
        markdown=production_markdown(result, bucket.name),
        key=artifact_key(result.title, "production", of=result.clip.imported.vid),
        description=f"Every id and output of {result.title}",
    )
    await acreate_table_artifact(
        table=safe_rows(language_rows(result, bucket.name)),
        key=artifact_key(result.title, "languages", of=result.clip.imported.vid),
        description="Translation status per language",
    )
    # No link artifact for the output videos: their URLs are signed and expire; the Vids above stay valid.


def rendition_rows(result: TranscodeResult) -> list[dict[str, Any]]:
    """One row per transcode rendition and per snapshot file: ids, store URIs and file names, never a URL."""
    rows = [
        {
            "kind": out.file_type or "video",
            "file_name": out.file_name or "",
            "store_uri": out.store_uri or "",
            "file_id": out.file_id or "",
            "format": out.format or "",
            "definition": out.definition or "",
            "template_id": out.template_id or "",
            "duration_s": out.duration if out.duration is not None else "",
            "size_bytes": out.size if out.size is not None else "",
            "resolution": f"{out.width}x{out.height}" if out.width and out.height else "",
        }
        for out in result.outputs
    ]
    for shot in result.snapshots:
        for uri in shot.store_uris:
            rows.append({
                "kind": f"snapshot {(shot.type or '').lower()}".strip(), "file_name": uri.split("/", 1)[-1],
                "store_uri": uri, "file_id": "", "format": uri.rsplit(".", 1)[-1] if "." in uri else "",
                "definition": "", "template_id": shot.template_id or "", "duration_s": "", "size_bytes": "",
                "resolution": f"{shot.width}x{shot.height}" if shot.width and shot.height else "",
            })
    return rows


async def publish_renditions(result: TranscodeResult, title: str, of: str = "") -> None:
    """The ``<title>-<vid>-renditions`` table: every output of the transcode workflow run."""
    if in_batch_item():
        return
    await acreate_table_artifact(
        table=safe_rows(rendition_rows(result)), key=artifact_key(title, "renditions", of=of),
        description=f"Transcode renditions of workflow run {result.run_id} ({result.status.value})",
    )


def in_batch_item() -> bool:
    """True in a batch's item: the batch's items table carries the item's ids and outputs (one artifact per
    batch), so the item does not write its own three (bench/vs_plain.py: 4 artifact writes per item)."""
    return BATCH_ITEM.get()


def is_top_level_run(flow_name: str) -> bool:
    """True in a run of ``flow_name`` started on its own (a deployment, a script); False in a subflow or when the
    flow's body runs inline in another flow (a batch item): the production or batch publishes the ids itself."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return (
        context is not None and context.flow_run is not None and context.flow is not None
        and context.flow.name == flow_name and context.flow_run.parent_task_run_id is None
    )


async def publish_ids(title: str, kind: str, rows: dict[str, Any], of: str = "") -> None:
    """A two-column table of every id a stage run produced (a stage run on its own: see ``is_top_level_run``)."""
    await acreate_table_artifact(
        table=safe_rows([{"field": k, "value": "" if v is None else v} for k, v in rows.items()]),
        key=artifact_key(title, kind, of=of), description=f"Every id and output of this {kind} run",
    )
