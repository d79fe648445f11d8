"""The translate stage's parameters, its review form and its result.

Every option of SubmitAITranslationWorkflow is here. An option left at ``None`` (or empty) is not sent, so the
vendor applies its own default; the one default clipflow states itself is ``recognition="OCR"``, the vendor's
(SubmitAITranslationWorkflow and the vendor's own poller read burnt-in subtitles unless told otherwise; clipflow
used to send ASR, which silently re-transcribed videos whose subtitles were already on screen).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from flows.models.rules import StrictModel, TargetLanguage, TranslationType, _unique_list
from providers.states import JobState

ReviewStage = Literal["none", "after_recognition", "after_translation"]
# clipflow's review setting -> the vendor's ProcessConfig.SuspensionStageList entry (api-notes 3b).
SUSPENSION_STAGE: dict[str, str] = {
    "after_recognition": "SubtitleRecognition",
    "after_translation": "SubtitleTranslation",
}
MAX_REVIEW_HOURS = 24 * 30  # a month: longer reviews are forgotten reviews
TERMBASE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"
# A subtitle file in the bucket: a relative key (no leading slash, no spaces) ending in .srt or .vtt.
SUBTITLE_KEY_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,1019}\.(?:srt|vtt)$"
UTTERANCE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class SubtitleStyle(StrictModel):
    """``SubtitleConfig``: how the translated subtitles are drawn. Unset = the vendor's default."""

    hard_subtitle: bool | None = Field(None, description="IsHardSubtitle: burn the subtitles into the video.")
    erase_source: bool | None = Field(None, description="IsEraseSource: erase the source subtitles from the picture.")
    font_size: int | None = Field(None, ge=1, le=500, description="FontSize in pixels, 1-500.")
    margin_l: int | None = Field(None, ge=0, le=10_000, description="MarginL: left margin in pixels.")
    margin_r: int | None = Field(None, ge=0, le=10_000, description="MarginR: right margin in pixels.")
    margin_v: int | None = Field(None, ge=0, le=10_000, description="MarginV: vertical margin in pixels.")
    show_lines: int | None = Field(None, ge=1, le=10, description="ShowLines: lines shown at once, 1-10.")


class TranslateSpec(StrictModel):
    source_language: Literal["zh", "en"] = Field("zh", description="Spoken/subtitle language of the clip.")
    target_languages: _unique_list(
        TargetLanguage, ["en", "ja"], "One project per language, each at most once: "
        "zh en ja ko de fr ru es pt it id vi th ar tr.", max_length=15,
    )
    translation_types: _unique_list(
        TranslationType, ["SubtitleTranslation", "VoiceTranslation"],
        "Subtitle, +Voice, +Facial translation (each at most once).", min_length=1, max_length=3,
    )
    recognition: Literal["OCR", "ASR"] = Field(
        "OCR", description="RecognitionType: read the source subtitles from the picture (OCR, the vendor's "
        "default) or from speech (ASR).",
    )
    is_vision: bool | None = Field(None, description="SubtitleRecognitionConfig.IsVision (unset: vendor default).")
    termbase_ids: _unique_list(
        Annotated[str, Field(pattern=TERMBASE_ID_PATTERN)], [],
        "TermbaseConfig.TranslationTermbaseIds: glossaries to translate with (each at most once).", max_length=20,
    )
    background_volume: int | None = Field(
        None, ge=0, le=100, description="VoiceCloneConfig.BackgroundVolume, 0-100 (needs VoiceTranslation).",
    )
    subtitles: SubtitleStyle = Field(default_factory=SubtitleStyle, description="SubtitleConfig.")
    review: ReviewStage = Field(
        "none", description="Pause for a person: after the source subtitles are recognised, or after they are "
        "translated (before any paid voice or face work).",
    )
    review_timeout_hours: float = Field(
        72.0, gt=0, le=MAX_REVIEW_HOURS, description="How long a review may wait (hours, at most 720).",
    )
    on_review_timeout: Literal["fail", "approve"] = Field(
        "fail", description="When nobody answered in time: fail the language, or approve the draft as it is.",
    )
    export_outputs: bool = Field(
        False, description="Also copy the output videos into the bucket (content-addressed, like clips).",
    )

    @model_validator(mode="after")
    def _voice_options(self) -> TranslateSpec:
        if self.background_volume is not None and "VoiceTranslation" not in self.translation_types:
            raise ValueError("background_volume: needs VoiceTranslation in translation_types")
        return self


# --- the review form ---------------------------------------------------------------------------------------


class UtteranceEdit(StrictModel):
    id: str = Field(pattern=UTTERANCE_ID_PATTERN, description="The utterance id from the review table.")
    text: str = Field(min_length=1, max_length=2000, description="The corrected text (marks such as <v Name> kept).")


class ReviewDecision(StrictModel):
    """What a reviewer answers. Prefect shows it as the Resume form; REST takes it as ``run_input``."""

    action: Literal["approve", "edit", "reject"] = Field(
        "approve", description="approve as it is; edit (utterances and/or a corrected subtitle file); reject.",
    )
    edits: list[UtteranceEdit] = Field(default_factory=list, max_length=2000, description="Edited lines by id.")
    subtitle_key: str | None = Field(
        None, pattern=SUBTITLE_KEY_PATTERN,
        description="Key of a corrected .srt/.vtt in the bucket: its cues replace the texts in order.",
    )
    reason: str = Field("", max_length=500, description="Why (kept with the result; required to reject).")

    @model_validator(mode="after")
    def _consistent(self) -> ReviewDecision:
        if self.action == "edit" and not self.edits and not self.subtitle_key:
            raise ValueError("edits: an edit needs edited utterances or a subtitle_key")
        if self.action != "edit" and (self.edits or self.subtitle_key):
            raise ValueError(f"action: {self.action} takes no edits; choose edit")
        if self.subtitle_key and ".." in self.subtitle_key.split("/"):
            raise ValueError("subtitle_key: must not contain '..' path parts")
        return self


# --- results -----------------------------------------------------------------------------------------------


class TranslationOutput(BaseModel):
    """One file a translation produced, by Vid / file name (never a signed URL: those expire)."""

    kind: str  # output_video, voice_translation_video, facial_translation_video, foreground_audio, ... (provider kinds)
    vid: str | None = None
    file_name: str | None = None
    key: str | None = None  # in the bucket, when exported
    sha256: str | None = None
    size: int | None = None


class ReviewOutcome(BaseModel):
    stage: ReviewStage
    decision: Literal["approved", "edited", "rejected", "timed_out", "awaiting_review"]
    edits: int = 0
    reason: str = ""
    review_run_id: str | None = None
    draft_keys: list[str] = Field(default_factory=list)
    resume: str = ""  # how a person answers, while it waits


class LanguageResult(BaseModel):
    language: str
    project_id: str
    status: JobState
    output_vid: str | None = None
    outputs: list[TranslationOutput] = Field(default_factory=list)
    srt_key: str | None = None
    vtt_key: str | None = None
    source_srt_key: str | None = None
    source_vtt_key: str | None = None
    review: ReviewOutcome | None = None
    error: str | None = None

    @property
    def awaiting_review(self) -> bool:
        return self.review is not None and self.review.decision == "awaiting_review"
