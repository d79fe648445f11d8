"""What a translation result keeps of its VOD project beyond the files (GetAITranslationProject's ProjectInfo):
version, workflow, times, who speaks, the tracks and blueprints, the background clip, how subtitles were
recognised and the error code with its meaning. Ids and names only: a signed URL expires, so none is kept."""

from __future__ import annotations

import datetime as dt
from pydantic import BaseModel, Field

class SpeakerRecord(BaseModel):
    id: str
    name: str | None = None
    voice: str | None = None  # the voice the dubbing uses for this speaker


class TrackRecord(BaseModel):
    """One speaker's audio track on one side (SourceTracks / TargetTracks)."""

    id: str
    side: str  # source | target (the vendor's TranslationType)
    speaker_id: str | None = None
    blueprint_id: str | None = None


class BlueprintRecord(BaseModel):
    """One language version of the project (SourceBlueprints / TargetBlueprints)."""

    id: str
    side: str
    language: str | None = None


class BackgroundClipRecord(BaseModel):
    """The separated background (everything but speech), as the dubbing mixes it."""

    id: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    volume: int | None = None  # 0-100
    track_id: str | None = None
    audio_vid: str | None = None
    audio_file_name: str | None = None


class ProjectRecord(BaseModel):
    project_version: str | None = None
    workflow_id: str | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    input_video_title: str | None = None
    translation_types: list[str] = Field(default_factory=list)
    recognition_type: str | None = None  # OCR | ASR
    error_code: int | None = None  # 0: succeeded
    error_meaning: str | None = None  # the code in words, from the vendor's list
    error_msg: str | None = None
    speakers: list[SpeakerRecord] = Field(default_factory=list)
    tracks: list[TrackRecord] = Field(default_factory=list)
    blueprints: list[BlueprintRecord] = Field(default_factory=list)
    background_clip: BackgroundClipRecord | None = None
