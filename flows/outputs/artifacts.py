"""Run artifacts: what a person opens in the Prefect UI to find every id and output of a production.

Only s3:// locations and provider URLs go here: presigned URLs are bearer credentials and stay out.
"""

from __future__ import annotations

import re
from typing import Any

from prefect.artifacts import acreate_link_artifact, acreate_markdown_artifact, acreate_table_artifact

from flows.models import ProductionResult


# A cell starting with one of these is a formula to a spreadsheet (CSV/Excel export of a table artifact).
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


def artifact_key(title: str, suffix: str) -> str:
    """Artifact keys allow lower-case letters, digits and dashes only."""
    slug = re.sub(r"[^a-z0-9-]+", "-", title.lower()).strip("-") or "production"
    return f"{slug[:40]}-{suffix}"


def production_markdown(result: ProductionResult, bucket_name: str) -> str:
    clip, edit, tr = result.clip, result.edit, result.transcode
    lines = [
        f"# {result.title}: {result.status.value}",
        "",
        "| stage | id | detail |",
        "|---|---|---|",
        f"| generate | `{clip.job_id}` | {clip.provider}, s3://{clip.stored.bucket}/{clip.stored.key} "
        f"({clip.stored.size} bytes, sha256 `{clip.stored.sha256[:16]}…`) |",
        f"| import | `{clip.imported.vid}` | space {clip.imported.space_name} |",
        f"| edit project | `{edit.project_id}` | group {edit.group_id or '-'}, rendered {edit.rendered_vid or '-'} |",
        f"| transcode | `{tr.run_id}` | {tr.status.value}, {len(tr.outputs)} output(s) |",
    ]
    for lang in result.languages:
        lines.append(
            f"| translate {lang.language} | `{lang.project_id or '-'}` | {lang.status.value}"
            f"{', vid ' + lang.output_vid if lang.output_vid else ''}"
            f"{', s3://' + bucket_name + '/' + lang.srt_key if lang.srt_key else ''}"
            f"{', error: ' + lang.error if lang.error else ''} |"
        )
    return "\n".join(lines)


def language_rows(result: ProductionResult, bucket_name: str) -> list[dict[str, Any]]:
    return [
        {
            "language": lang.language,
            "status": lang.status.value,
            "project_id": lang.project_id,
            "output_vid": lang.output_vid or "",
            "srt": f"s3://{bucket_name}/{lang.srt_key}" if lang.srt_key else "",
            "vtt": f"s3://{bucket_name}/{lang.vtt_key}" if lang.vtt_key else "",
            "error": lang.error or "",
        }
        for lang in result.languages
    ]


async def publish_production(result: ProductionResult, bucket: Any) -> None:
    await acreate_markdown_artifact(
        markdown=production_markdown(result, bucket.name), key=artifact_key(result.title, "production"),
        description=f"Every id and output of {result.title}",
    )
    await acreate_table_artifact(
        table=safe_rows(language_rows(result, bucket.name)), key=artifact_key(result.title, "languages"),
        description="Translation status per language",
    )
    for lang in result.languages:
        if lang.output_url:
            await acreate_link_artifact(
                link=lang.output_url, link_text=f"{result.title} ({lang.language})",
                key=artifact_key(result.title, f"video-{lang.language}"),
            )
