"""AI translation (2025-01-01): SubmitAITranslationWorkflow, GetAITranslationProject, ListAITranslationProject."""

from __future__ import annotations

import datetime as dt
from typing import Final

from pydantic import Field, field_validator, model_validator

from providers.states import JobState, translation_state
from providers.vod.models_base import (
    LaxFloat,
    LaxInt,
    LaxList,
    NonEmptyStr,
    VodParams,
    VodRequest,
    VodResult,
    rule_error,
)

SOURCE_LANGUAGES: Final = ("zh", "en")
TARGET_LANGUAGES: Final = ("zh", "en", "ja", "ko", "de", "fr", "ru", "es", "pt", "it", "id", "vi", "th", "ar", "tr")
TRANSLATION_TYPES: Final = ("SubtitleTranslation", "VoiceTranslation", "FacialTranslation")
# Each allowed combination is a prefix of TRANSLATION_TYPES: voice needs subtitles, facial needs voice.
ALLOWED_TYPE_LISTS: Final = tuple(list(TRANSLATION_TYPES[: n + 1]) for n in range(len(TRANSLATION_TYPES)))
RECOGNITION_TYPES: Final = ("OCR", "ASR")
SUSPENSION_STAGES: Final = ("SubtitleRecognition", "SubtitleTranslation")
ADDITIONS: Final = (
    "Speakers",
    "SourceUtterances",
    "SourceTracks",
    "SourceClips",
    "TargetUtterances",
    "TargetTracks",
    "TargetClips",
    "BackgroundClip",
)
PROJECT_STATUSES: Final = (
    "InProcessing",
    "ProcessSucceed",
    "ProcessFailed",
    "InExporting",
    "ExportSucceed",
    "ExportFailed",
)


# --- request -------------------------------------------------------------------------------------------------


class TermbaseConfig(VodParams):
    translation_termbase_ids: list[str] = Field(default_factory=list)


class TranslationConfig(VodParams):
    source_language: str
    target_language: str  # one per submission: several languages are several projects
    translation_type_list: list[str] = Field(default_factory=lambda: ["SubtitleTranslation"])
    termbase_config: TermbaseConfig | None = None

    @field_validator("source_language")
    @classmethod
    def _source(cls, v: str) -> str:
        if v not in SOURCE_LANGUAGES:
            raise rule_error(f"must be one of {', '.join(SOURCE_LANGUAGES)} (got {v!r})")
        return v

    @field_validator("target_language")
    @classmethod
    def _target(cls, v: str) -> str:
        if v not in TARGET_LANGUAGES:
            raise rule_error(f"must be one of {' '.join(TARGET_LANGUAGES)} (got {v!r})")
        return v

    @field_validator("translation_type_list")
    @classmethod
    def _types(cls, v: list[str]) -> list[str]:
        if not v:
            raise rule_error("must be non-empty")
        unknown = [t for t in v if t not in TRANSLATION_TYPES]
        if unknown:
            raise rule_error(f"unknown type(s) {unknown}; allowed: {', '.join(TRANSLATION_TYPES)}")
        canonical = [t for t in TRANSLATION_TYPES if t in v]  # order-insensitive, sent in the documented order
        if len(canonical) != len(v) or canonical not in ALLOWED_TYPE_LISTS:
            raise rule_error(f"must be one of the allowed combinations {[list(c) for c in ALLOWED_TYPE_LISTS]}")
        return canonical

    @model_validator(mode="after")
    def _different(self) -> TranslationConfig:
        if self.target_language == self.source_language:
            raise rule_error("must differ from SourceLanguage", "TargetLanguage")
        return self


class SubtitleRecognitionConfig(VodParams):
    recognition_type: str = "OCR"

    @field_validator("recognition_type")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in RECOGNITION_TYPES:
            raise rule_error(f"must be OCR or ASR (got {v!r})")
        return v


class VoiceCloneConfig(VodParams):
    background_volume: int | None = None


class OperatorConfig(VodParams):
    subtitle_recognition_config: SubtitleRecognitionConfig | None = None
    voice_clone_config: VoiceCloneConfig | None = None


class SubtitleConfig(VodParams):
    is_hard_subtitle: bool | None = None
    is_erase_source: bool | None = None
    font_size: int | None = None
    margin_l: int | None = None
    margin_r: int | None = None
    margin_v: int | None = None
    show_lines: int | None = None


class ProcessConfig(VodParams):
    suspension_stage_list: list[str] = Field(default_factory=list)

    @field_validator("suspension_stage_list")
    @classmethod
    def _stages(cls, v: list[str]) -> list[str]:
        unknown = [s for s in v if s not in SUSPENSION_STAGES]
        if unknown:
            raise rule_error(f"unknown stage(s) {unknown}; allowed: {', '.join(SUSPENSION_STAGES)}")
        return v


class SubmitAITranslationWorkflowRequest(VodRequest):
    action = "SubmitAITranslationWorkflow"

    space_name: NonEmptyStr
    vid: NonEmptyStr
    translation_config: TranslationConfig
    operator_config: OperatorConfig | None = None
    subtitle_config: SubtitleConfig | None = None
    process_config: ProcessConfig | None = None


class ProjectBaseInfo(VodResult):
    project_id: str
    project_version: str | None = None


# --- response ------------------------------------------------------------------------------------------------


def unix_time(value: int | None) -> dt.datetime | None:
    """Unix seconds -> aware UTC datetime. Tolerates milliseconds (a 13-digit value), which some VOD answers use."""
    if value is None or value <= 0:
        return None
    seconds = value / 1000 if value >= 10**12 else value
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


class MediaObject(VodResult):
    """A file of the project. ``vid`` is only filled for InputVideo and OutputVideo."""

    is_audio: bool | None = None
    uri: str | None = None
    vid: str | None = None
    duration_second: LaxFloat = None
    url: str | None = None


class Speaker(VodResult):
    id: str
    name: str | None = None
    voice: str | None = None
    project_id: str | None = None


class Utterance(VodResult):
    """One line of dialogue, source or target (``translation_type``); target lines point at ``source_id``."""

    id: str
    speaker_id: str | None = None
    blueprint_id: str | None = None
    clip_id: str | None = None
    text: str | None = None
    project_id: str | None = None
    is_facial_translation: bool | None = None
    translation_type: str | None = None  # source | target
    status: str | None = None  # online | need_update
    source_id: str | None = None


class TranslationTrack(VodResult):
    id: str
    blueprint_id: str | None = None
    speaker_id: str | None = None
    translation_type: str | None = None


class Blueprint(VodResult):
    id: str
    language: str | None = None
    project_id: str | None = None
    translation_type: str | None = None


class Trim(VodResult):
    start: LaxInt = None  # ms
    end: LaxInt = None  # ms

    @property
    def duration_ms(self) -> int | None:
        return None if self.start is None or self.end is None else self.end - self.start


class TranslationClip(VodResult):
    """A timed piece of audio/video; also used for BackgroundClip (``translation_type`` background).

    The vendor page lists BackgroundClip with Blueprint fields (Language, ProjectId), most likely a copy slip;
    since every field is optional and unknown ones are kept, either shape parses.
    """

    id: str | None = None
    trim: Trim | None = None
    volume: LaxInt = None  # 0-100
    clip_audio: MediaObject | None = None
    clip_video: MediaObject | None = None
    translation_type: str | None = None  # source | target | background
    track_id: str | None = None


class RecognitionConfigInfo(VodResult):
    recognition_type: str | None = None


class OperatorConfigInfo(VodResult):
    subtitle_recognition_config: RecognitionConfigInfo | None = None


class AITranslationProject(VodResult):
    """``Result.ProjectInfo`` of GetAITranslationProject (and an item of ListAITranslationProject)."""

    project_id: str
    project_version: str | None = None
    workflow_id: str | None = None
    created_at: LaxInt = None  # unix seconds (sent as a string)
    updated_at: LaxInt = None
    status: str | None = None
    input_video_title: str | None = None
    translation_type_list: LaxList[str] = Field(default_factory=list)
    background_audio: MediaObject | None = None
    foreground_audio: MediaObject | None = None
    input_video: MediaObject | None = None
    preview_video: MediaObject | None = None
    preview_video_muted: MediaObject | None = None
    output_video: MediaObject | None = None
    voice_translation_video: MediaObject | None = None
    facial_translation_video: MediaObject | None = None
    speakers: LaxList[Speaker] = Field(default_factory=list)
    source_utterances: LaxList[Utterance] = Field(default_factory=list)
    target_utterances: LaxList[Utterance] = Field(default_factory=list)
    source_tracks: LaxList[TranslationTrack] = Field(default_factory=list)
    target_tracks: LaxList[TranslationTrack] = Field(default_factory=list)
    source_blueprints: LaxList[Blueprint] = Field(default_factory=list)
    target_blueprints: LaxList[Blueprint] = Field(default_factory=list)
    source_clips: LaxList[TranslationClip] = Field(default_factory=list)
    target_clips: LaxList[TranslationClip] = Field(default_factory=list)
    background_clip: TranslationClip | None = None
    operator_config: OperatorConfigInfo | None = None
    error_code: LaxInt = None  # 0 ok; 5001xx / 5002xx failures
    error_msg: str | None = None

    @property
    def state(self) -> JobState:
        return translation_state(self.status)

    @property
    def target_languages(self) -> list[str]:
        return [b.language for b in self.target_blueprints if b.language]

    @property
    def vid(self) -> str | None:
        """The input video's Vid: what a lost submit is matched on (with the target language)."""
        return self.input_video.vid if self.input_video and self.input_video.vid else None

    @property
    def created_time(self) -> dt.datetime | None:
        """``CreatedAt`` (unix seconds, sent as a string) as an aware UTC datetime."""
        return unix_time(self.created_at)

    @property
    def output_vid(self) -> str | None:
        return self.output_video.vid if self.output_video and self.output_video.vid else None


class ListAITranslationProjectResult(VodResult):
    total_count: LaxInt = None
    projects: LaxList[AITranslationProject] = Field(default_factory=list)
