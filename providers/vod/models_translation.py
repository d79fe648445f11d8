"""AI translation (2025-01-01): SubmitAITranslationWorkflow, GetAITranslationProject, ListAITranslationProject, and the
staged review actions UpdateAITranslationUtterances, ContinueAITranslationWorkflow, RefreshAITranslationProject
(vendor guide doc 4/1995603; pages 4/1758811, 4/1758812, 4/1779205)."""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from dataclasses import dataclass
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
    "ProcessSuspended",  # paused at a SuspensionStageList stage (not on the seed page; the vendor's poller uses it)
    "ProcessSucceed",
    "ProcessFailed",
    "InExporting",
    "ExportSucceed",
    "ExportFailed",
)

# ErrorCode of a project and its meaning (GetAITranslationProject page, ErrorCode list).
ERROR_CODES: Final[dict[int, str]] = {
    0: "任务执行成功 (succeeded)",
    500200: "回调状态为空 (the callback status was empty)",
    500210: "AI 翻译后处理失败 (post-processing after the AI translation failed)",
    500100: "AI 翻译工作流内部错误 (internal error of the AI translation workflow)",
    500110: "背景音分离失败 (separating the background audio failed)",
    500120: "字幕文本翻译失败 (subtitle text translation failed)",
    500130: "语音翻译失败 (voice translation failed)",
    500140: "面容翻译失败 (facial translation failed)",
}


def error_meaning(code: int | None) -> str | None:
    """What an ErrorCode means per the vendor's list; None when no code was sent, and says so for one not listed."""
    if code is None:
        return None
    return ERROR_CODES.get(code, f"not in the vendor's list of codes ({code})")


# What a person reviewing a paused project needs: both sides' lines, their timing (clips) and speakers.
REVIEW_ADDITIONS: Final = ("Speakers", "SourceUtterances", "SourceClips", "TargetUtterances", "TargetClips")
# UpdateType -> the body field naming a subtitle file already in the space (None: edit utterances by Id).
# OutputSubtitleFileName is in the vendor guide's example; the other two names follow the same pattern.
UPDATE_TYPES: Final[dict[str, str | None]] = {
    "Utterances": None,
    "InputSubtitleFile": "InputSubtitleFileName",
    "OutputSubtitleFile": "OutputSubtitleFileName",
    "BilingualSubtitleFile": "BilingualSubtitleFileName",
}
SUBTITLE_EXTENSIONS: Final = (".srt", ".vtt")  # the vendor page: SRT or WebVTT
REFRESH_TYPES: Final = ("whole",)
MAX_VOLUME: Final = 100  # clip Volume is 0-100 on the vendor pages
# Marks allowed at the start of a subtitle line (doc 4/1995603): they must reach the provider untouched.
SUBTITLE_MARK = re.compile(r"^(?:<v [^<>]+>|<a (?:MuteSpeech|UseOriginal)>)+")


def leading_marks(text: str) -> str:
    """The ``<v Speaker>`` / ``<a MuteSpeech>`` / ``<a UseOriginal>`` marks at the start of ``text`` ("" if none)."""
    match = SUBTITLE_MARK.match(text or "")
    return match.group(0) if match else ""


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
    recognition_type: str = "OCR"  # the vendor's default (GetAITranslationProject page, mediakit poller)
    is_vision: bool | None = None  # None: not sent, the provider decides

    @field_validator("recognition_type")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in RECOGNITION_TYPES:
            raise rule_error(f"must be OCR or ASR (got {v!r})")
        return v


class VoiceCloneConfig(VodParams):
    background_volume: int | None = None  # None: the provider's default mix

    @field_validator("background_volume")
    @classmethod
    def _volume(cls, v: int | None) -> int | None:
        if v is not None and not 0 <= v <= MAX_VOLUME:
            raise rule_error(f"must be 0-{MAX_VOLUME} (got {v})")
        return v


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


class UtteranceUpdate(VodParams):
    """One sentence edited by Id (UpdateType ``Utterances``): text, timing (ms), speaker or volume.

    Only Id/Text/SpeakerId appear in the vendor guide's example; Start/End/Volume are named like the clip Trim
    and Volume fields of GetAITranslationProject (the page says timing and volume can be edited).
    """

    id: NonEmptyStr
    text: str | None = None
    speaker_id: str | None = None
    start: int | None = None  # ms
    end: int | None = None  # ms
    volume: int | None = None  # 0-100

    @field_validator("text")
    @classmethod
    def _text(cls, v: str | None) -> str | None:
        # An empty line would be dubbed as silence by accident; silence is asked for with <a MuteSpeech>.
        if v is not None and not v[len(leading_marks(v)):].strip():
            raise rule_error("must hold some text after its marks (use '<a MuteSpeech>text' to silence a line)")
        return v

    @field_validator("start", "end")
    @classmethod
    def _ms(cls, v: int | None) -> int | None:
        if v is not None and v < 0:
            raise rule_error(f"must be >= 0 ms (got {v})")
        return v

    @field_validator("volume")
    @classmethod
    def _volume(cls, v: int | None) -> int | None:
        if v is not None and not 0 <= v <= MAX_VOLUME:
            raise rule_error(f"must be 0-{MAX_VOLUME} (got {v})")
        return v

    @field_validator("speaker_id")
    @classmethod
    def _speaker(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise rule_error("must be non-empty when given")
        return v

    @model_validator(mode="after")
    def _something(self) -> UtteranceUpdate:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise rule_error(f"must be later than Start ({self.end} <= {self.start})", "End")
        if all(v is None for v in (self.text, self.speaker_id, self.start, self.end, self.volume)):
            raise rule_error("an edit must change at least one of Text, SpeakerId, Start, End, Volume", "Id")
        return self


class UpdateAITranslationUtterancesRequest(VodRequest):
    """Edit a paused or finished project: sentences by Id, or a whole subtitle file already in the space."""

    action = "UpdateAITranslationUtterances"

    space_name: NonEmptyStr
    project_id: NonEmptyStr
    update_type: str = "Utterances"
    utterances: list[UtteranceUpdate] | None = None
    input_subtitle_file_name: str | None = None
    output_subtitle_file_name: str | None = None
    bilingual_subtitle_file_name: str | None = None

    @field_validator("update_type")
    @classmethod
    def _type(cls, v: str) -> str:
        if v not in UPDATE_TYPES:
            raise rule_error(f"must be one of {', '.join(UPDATE_TYPES)} (got {v!r})")
        return v

    @model_validator(mode="after")
    def _matches_type(self) -> UpdateAITranslationUtterancesRequest:
        files = {
            "InputSubtitleFileName": self.input_subtitle_file_name,
            "OutputSubtitleFileName": self.output_subtitle_file_name,
            "BilingualSubtitleFileName": self.bilingual_subtitle_file_name,
        }
        wanted = UPDATE_TYPES[self.update_type]
        for name, value in files.items():
            if name != wanted and value is not None:
                raise rule_error(f"must not be set with UpdateType {self.update_type}", name)
        if wanted is None:
            if not self.utterances:
                raise rule_error("must hold at least one edit when UpdateType is Utterances", "Utterances")
            ids = [u.id for u in self.utterances]
            if len(set(ids)) != len(ids):
                raise rule_error("must not edit the same Id twice", "Utterances")
            return self
        if self.utterances is not None:
            raise rule_error(f"must not be set with UpdateType {self.update_type}", "Utterances")
        name = files[wanted]
        if not name or not name.strip():
            raise rule_error(f"is required with UpdateType {self.update_type}", wanted)
        if "/" in name or not name.lower().endswith(SUBTITLE_EXTENSIONS):
            raise rule_error(f"must be the file name of an SRT or WebVTT file in the space (got {name!r})", wanted)
        return self


class ContinueAITranslationWorkflowRequest(VodRequest):
    action = "ContinueAITranslationWorkflow"

    space_name: NonEmptyStr
    project_id: NonEmptyStr


class RefreshAITranslationProjectRequest(VodRequest):
    action = "RefreshAITranslationProject"

    space_name: NonEmptyStr
    project_id: NonEmptyStr
    refresh_type: str = "whole"

    @field_validator("refresh_type")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in REFRESH_TYPES:
            raise rule_error(f"must be one of {', '.join(REFRESH_TYPES)} (got {v!r})")
        return v


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
    """A file of the project. ``vid`` is only filled for InputVideo and OutputVideo.

    ``url`` is signed and expires: record ``vid`` / ``file_name`` (stable), fetch the URL only to copy the bytes.
    """

    is_audio: bool | None = None
    uri: str | None = None
    vid: str | None = None
    duration_second: LaxFloat = None
    url: str | None = None

    @property
    def file_name(self) -> str | None:
        """The file's name in the space: the last part of its store ``Uri``."""
        name = posixpath.basename(self.uri or "")
        return name or None

    @property
    def present(self) -> bool:
        return bool(self.uri or self.vid or self.url)


class SubtitleFile(MediaObject):
    """InputSubtitle / OutputSubtitle of a project (the guide names them, not their fields): the media-object
    fields plus whatever else the provider sends (kept as extras)."""

    format: str | None = None  # srt | vtt, when sent


@dataclass(frozen=True)
class TranslationOutput:
    """One thing a project produced. ``kind``: see ``OUTPUT_KINDS``. Keep ``vid``/``file_name``; ``url`` expires."""

    kind: str
    vid: str | None
    file_name: str | None
    url: str | None
    uri: str | None
    is_audio: bool
    duration_second: float | None


# kind -> the ProjectInfo field holding it, in the order outputs are listed.
OUTPUT_KINDS: Final = {
    "output_video": "output_video",
    "voice_translation_video": "voice_translation_video",
    "facial_translation_video": "facial_translation_video",
    "preview_video": "preview_video",
    "preview_video_muted": "preview_video_muted",
    "foreground_audio": "foreground_audio",  # speech stem
    "background_audio": "background_audio",  # everything but speech
    "input_subtitle": "input_subtitle",
    "output_subtitle": "output_subtitle",
}


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
    # Not utterance fields on the page: filled from the clip (``ClipId`` -> Trim) and Speakers when those
    # Additions were asked for, so a line carries its timing and speaker name (see REVIEW_ADDITIONS).
    start: LaxInt = None  # ms
    end: LaxInt = None  # ms
    speaker_name: str | None = None

    @property
    def marks(self) -> str:
        """Leading ``<v ...>`` / ``<a ...>`` marks of the text, kept verbatim."""
        return leading_marks(self.text or "")


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
    input_subtitle: SubtitleFile | None = None  # while paused and after: the source-language subtitle file
    output_subtitle: SubtitleFile | None = None  # after SubtitleTranslation: the target-language subtitle file
    operator_config: OperatorConfigInfo | None = None
    error_code: LaxInt = None  # 0 ok; 5001xx / 5002xx failures
    error_msg: str | None = None

    @model_validator(mode="after")
    def _line_up(self) -> AITranslationProject:
        """Give each utterance its clip's Trim and its speaker's name (the page links them only by id)."""
        names = {s.id: s.name for s in self.speakers}
        for utterances, clips in ((self.source_utterances, self.source_clips),
                                  (self.target_utterances, self.target_clips)):
            trims = {c.id: c.trim for c in clips if c.id and c.trim}
            for u in utterances:
                trim = trims.get(u.clip_id or "")
                if trim is not None:
                    u.start = u.start if u.start is not None else trim.start
                    u.end = u.end if u.end is not None else trim.end
                if u.speaker_name is None and u.speaker_id in names:
                    u.speaker_name = names[u.speaker_id]
        return self

    @property
    def state(self) -> JobState:
        return translation_state(self.status)

    @property
    def is_paused(self) -> bool:
        """Waiting at a SuspensionStageList stage for edits and ContinueAITranslationWorkflow."""
        return self.state is JobState.PAUSED

    @property
    def outputs(self) -> list[TranslationOutput]:
        """Every file the project produced (videos, audio stems, subtitles), by kind; absent ones left out."""
        found = []
        for kind, attr in OUTPUT_KINDS.items():
            media: MediaObject | None = getattr(self, attr)
            if media is None or not media.present:
                continue
            found.append(TranslationOutput(
                kind=kind, vid=media.vid or None, file_name=media.file_name, url=media.url or None,
                uri=media.uri or None, is_audio=bool(media.is_audio), duration_second=media.duration_second,
            ))
        return found

    def output(self, kind: str) -> TranslationOutput | None:
        if kind not in OUTPUT_KINDS:
            raise KeyError(f"unknown output kind {kind!r}; known: {', '.join(OUTPUT_KINDS)}")
        return next((o for o in self.outputs if o.kind == kind), None)

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
    def updated_time(self) -> dt.datetime | None:
        """``UpdatedAt`` (unix seconds, sent as a string) as an aware UTC datetime."""
        return unix_time(self.updated_at)

    @property
    def error_meaning(self) -> str | None:
        """``ErrorCode`` in words (``ERROR_CODES``)."""
        return error_meaning(self.error_code)

    @property
    def recognition_type(self) -> str | None:
        """``OperatorConfig.SubtitleRecognitionConfig.RecognitionType``: OCR or ASR."""
        config = self.operator_config.subtitle_recognition_config if self.operator_config else None
        return config.recognition_type if config else None

    @property
    def output_vid(self) -> str | None:
        return self.output_video.vid if self.output_video and self.output_video.vid else None


class ListAITranslationProjectResult(VodResult):
    total_count: LaxInt = None
    projects: LaxList[AITranslationProject] = Field(default_factory=list)
