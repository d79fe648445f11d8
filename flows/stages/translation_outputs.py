"""A VOD translation project's status call and what is kept of it once it ends: source and target subtitles
(SRT and WebVTT) into the bucket, every output video and audio stem recorded by Vid / file name (never by
signed URL: those expire), and optionally the videos copied into the bucket. Shared by the translate stage,
the review gate and revise-translation."""

from __future__ import annotations

import asyncio
from typing import Any

from prefect.logging import get_run_logger

from flows.models import BlockRefs, LanguageResult, TranslateSpec, TranslationOutput
from flows.outputs.storage import SourceExpiredError, copy_url_to_bucket
from flows.outputs.subtitles import cues_from_translation, to_srt, to_webvtt
from flows.runtime import resources
from flows.runtime.engine import JobPoll
from flows.runtime.quotas import quota_slot

SUBTITLE_ADDITIONS = ["SourceUtterances", "SourceClips", "TargetUtterances", "TargetClips"]
# The output videos copied into the bucket when ``export_outputs`` is set (the audio stems and previews are
# recorded by Vid / file name only).
EXPORTED_KINDS = ("output_video", "voice_translation_video", "facial_translation_video")


def translation_poll(space_name: str) -> JobPoll[Any]:
    return JobPoll(
        "vod", "GetAITranslationProject", lambda c, project_id: c.get_ai_translation_project(space_name, project_id),
        lambda p: p.state, typical_seconds=300.0, deadline_seconds=3 * 3600.0,
        failure=lambda p: f"{p.status}: {p.error_msg or p.error_code}",
    )


async def put_subtitles(bucket: Any, prefix: str, name: str, cues: list[Any]) -> dict[str, str]:
    """``{prefix}{name}.srt`` and ``.vtt`` in the bucket; returns their keys by extension."""
    keys = {}
    for ext, text in (("srt", to_srt(cues)), ("vtt", to_webvtt(cues))):
        key = f"{prefix}{name}.{ext}"
        await asyncio.to_thread(
            bucket.client.put_object, Bucket=bucket.name, Key=key, Body=text.encode(),
            ContentType="application/x-subrip" if ext == "srt" else "text/vtt",
        )
        keys[ext] = key
    return keys


async def _export(bucket: Any, kind: str, url: str | None, project_id: str) -> TranslationOutput | None:
    """Copy one output video into the bucket (content-addressed); the signed URL is used once, never kept."""
    if not url:
        return None
    try:
        stored = await copy_url_to_bucket(url, s3_client=bucket.client, bucket=bucket.name, prefix="translations/")
    except SourceExpiredError:
        get_run_logger().warning("The %s video of project %s expired before it was exported", kind, project_id)
        return None
    return TranslationOutput(kind=kind, key=stored.key, sha256=stored.sha256, size=stored.size)


async def collect_translation(
    project_id: str, space_name: str, language: str, spec: TranslateSpec, refs: BlockRefs, *, prefix: str = ""
) -> LanguageResult:
    """A finished project's subtitles (source and target, SRT and WebVTT) into the bucket and every output
    recorded. ``prefix`` separates a revision's files from the first export's."""
    async with await resources.client("vod", refs) as vod, quota_slot("vod", "GetAITranslationProject"):
        detail = await vod.get_ai_translation_project(space_name, project_id, additions=SUBTITLE_ADDITIONS)
    bucket = await resources.bucket(refs)
    base = f"subtitles/{project_id}/{prefix}"
    target = await put_subtitles(
        bucket, base, language, cues_from_translation(detail.target_utterances or [], detail.target_clips or [])
    )
    source = await put_subtitles(
        bucket, base, f"{spec.source_language}.source",
        cues_from_translation(detail.source_utterances or [], detail.source_clips or []),
    )
    outputs: list[TranslationOutput] = []
    for found in detail.outputs:  # videos, audio stems, previews, subtitle files: by Vid and file name
        recorded = TranslationOutput(kind=found.kind, vid=found.vid, file_name=found.file_name)
        if spec.export_outputs and found.kind in EXPORTED_KINDS and (
            exported := await _export(bucket, found.kind, found.url, project_id)
        ):
            recorded = recorded.model_copy(update={"key": exported.key, "sha256": exported.sha256, "size": exported.size})
        outputs.append(recorded)
    return LanguageResult(
        language=language, project_id=project_id, status=detail.state, output_vid=detail.output_vid,
        outputs=outputs, srt_key=target["srt"], vtt_key=target["vtt"],
        source_srt_key=source["srt"], source_vtt_key=source["vtt"],
    )
