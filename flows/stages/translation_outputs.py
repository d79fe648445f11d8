"""A VOD translation project's status call and what is kept of it once it ends: source and target subtitles
(SRT and WebVTT) into the bucket, every output video and audio stem recorded by Vid / file name (never by
signed URL: those expire), and optionally the videos copied into the bucket. Shared by the translate stage,
the review gate and revise-translation."""

from __future__ import annotations

import asyncio
from typing import Any

from prefect.logging import get_run_logger

from flows.models import BlockRefs, LanguageResult, TranslateSpec, TranslationOutput
from flows.models.translation_record import (
    BackgroundClipRecord, BlueprintRecord, ProjectRecord, SpeakerRecord, TrackRecord,
)
from flows.outputs.storage import SourceExpiredError, copy_url_to_bucket
from flows.outputs.subtitles import cues_from_translation, to_srt, to_webvtt
from flows.runtime import resources
from flows.engine.buy import JobPoll
from flows.coordination.quotas import quota_slot
from flows.stages.review_form import publish_lines

SUBTITLE_ADDITIONS = ["SourceUtterances", "SourceClips", "TargetUtterances", "TargetClips"]
# Asked for when a finished project is collected, for its record (``project_record``): speakers always (who says
# each line, with the dubbing voice); the audio tracks and the separated background clip only when the project
# dubs (VoiceTranslation): a subtitle-only project has neither, so asking would only lengthen the answer.
RECORD_ADDITIONS = ["Speakers"]
VOICE_ADDITIONS = ["SourceTracks", "TargetTracks", "BackgroundClip"]


def collect_additions(spec: TranslateSpec) -> list[str]:
    """The Additions of the collecting GetAITranslationProject call (a free read: one call, whatever it asks)."""
    voice = VOICE_ADDITIONS if "VoiceTranslation" in spec.translation_types else []
    return [*SUBTITLE_ADDITIONS, *RECORD_ADDITIONS, *voice]


def _failure(project: Any) -> str:
    """Why a project failed: its status, ErrorCode with the vendor's meaning, and ErrorMsg."""
    code = f"ErrorCode {project.error_code} ({project.error_meaning})" if project.error_code is not None else ""
    return ": ".join(part for part in (project.status, code, project.error_msg) if part)


# The output videos copied into the bucket when ``export_outputs`` is set (the audio stems and previews are
# recorded by Vid / file name only).
EXPORTED_KINDS = ("output_video", "voice_translation_video", "facial_translation_video")


def translation_poll(space_name: str) -> JobPoll[Any]:
    return JobPoll(
        "vod", "GetAITranslationProject", lambda c, project_id: c.get_ai_translation_project(space_name, project_id),
        lambda p: p.state, typical_seconds=300.0, deadline_seconds=3 * 3600.0,
        failure=_failure,
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
        detail = await vod.get_ai_translation_project(space_name, project_id, additions=collect_additions(spec))
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
        recorded = TranslationOutput(
            kind=found.kind, vid=found.vid, file_name=found.file_name, duration_seconds=found.duration_second,
        )
        if spec.export_outputs and found.kind in EXPORTED_KINDS and (
            exported := await _export(bucket, found.kind, found.url, project_id)
        ):
            recorded = recorded.model_copy(update={"key": exported.key, "sha256": exported.sha256, "size": exported.size})
        outputs.append(recorded)
    return LanguageResult(
        language=language, project_id=project_id, status=detail.state, output_vid=detail.output_vid,
        outputs=outputs, srt_key=target["srt"], vtt_key=target["vtt"],
        source_srt_key=source["srt"], source_vtt_key=source["vtt"], project=project_record(detail),
        lines=await publish_lines(project_id, language, detail),  # the ids revise-translation edits by
    )


def project_record(detail: Any) -> ProjectRecord:
    """Every ProjectInfo field that is neither a file (``outputs``) nor a line of dialogue (the subtitles)."""
    background = detail.background_clip
    trim = background.trim if background else None
    audio = background.clip_audio if background else None
    return ProjectRecord(
        project_version=detail.project_version, workflow_id=detail.workflow_id,
        created_at=detail.created_time, updated_at=detail.updated_time, input_video_title=detail.input_video_title,
        translation_types=list(detail.translation_type_list), recognition_type=detail.recognition_type,
        error_code=detail.error_code, error_meaning=detail.error_meaning, error_msg=detail.error_msg or None,
        speakers=[SpeakerRecord(id=s.id, name=s.name, voice=s.voice) for s in detail.speakers],
        tracks=[
            TrackRecord(id=t.id, side=t.translation_type or side, speaker_id=t.speaker_id, blueprint_id=t.blueprint_id)
            for side, tracks in (("source", detail.source_tracks), ("target", detail.target_tracks)) for t in tracks
        ],
        blueprints=[
            BlueprintRecord(id=b.id, side=b.translation_type or side, language=b.language)
            for side, blueprints in (("source", detail.source_blueprints), ("target", detail.target_blueprints))
            for b in blueprints
        ],
        background_clip=None if background is None else BackgroundClipRecord(
            id=background.id, start_ms=trim.start if trim else None, end_ms=trim.end if trim else None,
            volume=background.volume, track_id=background.track_id or None,
            audio_vid=(audio.vid or None) if audio else None, audio_file_name=audio.file_name if audio else None,
        ),
    )
