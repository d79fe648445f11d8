"""The translate stage's parameters, its review form and its result.

Every option of SubmitAITranslationWorkflow is here. An option left at ``None`` (or empty) is not sent, so the
vendor applies its own default; the one default clipflow states itself is ``recognition="OCR"``, the vendor's
(SubmitAITranslationWorkflow and the vendor's own poller read burnt-in subtitles unless told otherwise; clipflow
used to send ASR, which silently re-transcribed videos whose subtitles were already on screen).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from flows.costs.model import RunCost
from flows.models.rules import StrictModel, TargetLanguage, TranslationType, _unique_list
from flows.models.translation_record import ProjectRecord
from providers.states import JobState
from providers.vod.models_translation import ALLOWED_TYPE_LISTS, MAX_VOLUME, TRANSLATION_TYPES

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
MAX_CLIP_MS = 24 * 3600 * 1000  # a timing past a day is a typo, whatever the clip


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
    take: int = Field(
        0, ge=0, le=1000, description="Raise it to deliberately pay for new translations of the same video and "
        "options (every target language). 0 = the first take. A failed translation is not bought again by itself: "
        "VOD documents none of its translation failures as transient.",
    )
    review_again: bool = Field(
        False, description="With review set: buy a new translation and review it, instead of reusing the one an "
        "earlier run of the same video and options already reviewed (a new paid translation project per language; "
        "re-runs of this request reuse that new one).",
    )

    @model_validator(mode="after")
    def _not_into_the_source_language(self) -> TranslateSpec:
        if self.source_language in self.target_languages:
            raise ValueError(
                f"target_languages: must not include the source language ({self.source_language}): VOD translates "
                "into another language"
            )
        return self

    @model_validator(mode="after")
    def _type_combination(self) -> TranslateSpec:
        # Voice needs subtitles, facial needs voice (in any order: sent in the vendor's order).
        if [t for t in TRANSLATION_TYPES if t in self.translation_types] not in [list(c) for c in ALLOWED_TYPE_LISTS]:
            raise ValueError(
                "translation_types: must be SubtitleTranslation, +VoiceTranslation, +FacialTranslation (voice needs "
                f"subtitles, facial needs voice), got {list(self.translation_types)}"
            )
        return self

    @model_validator(mode="after")
    def _voice_options(self) -> TranslateSpec:
        if self.background_volume is not None and "VoiceTranslation" not in self.translation_types:
            raise ValueError("background_volume: needs VoiceTranslation in translation_types")
        if self.review_again and self.review == "none":
            raise ValueError("review_again: needs review (after_recognition or after_translation)")
        return self


# --- the review form ---------------------------------------------------------------------------------------


class UtteranceEdit(StrictModel):
    """One line by id. In an answer only the fields given change; in a result every field is the line's own."""

    id: str = Field(pattern=UTTERANCE_ID_PATTERN, description="The utterance id from the review table.")
    text: str | None = Field(
        None, min_length=1, max_length=2000, description="The corrected text (marks such as <v Name> kept).",
    )
    speaker_id: str | None = Field(
        None, min_length=1, max_length=128, description="A speaker id of the project (listed with the lines).",
    )
    start_ms: int | None = Field(None, ge=0, le=MAX_CLIP_MS, description="Start in the video, ms.")
    end_ms: int | None = Field(None, ge=1, le=MAX_CLIP_MS, description="End in the video, ms (after start_ms).")
    volume: int | None = Field(None, ge=0, le=MAX_VOLUME, description="The dubbed line's volume, 0-100.")

    @model_validator(mode="after")
    def _changes_something(self) -> UtteranceEdit:
        if self.start_ms is not None and self.end_ms is not None and self.end_ms <= self.start_ms:
            raise ValueError(f"end_ms: must be after start_ms ({self.end_ms} <= {self.start_ms})")
        if all(v is None for v in (self.text, self.speaker_id, self.start_ms, self.end_ms, self.volume)):
            raise ValueError("text: an edit changes at least one of text, speaker_id, start_ms, end_ms, volume")
        return self


# The answer's consistency rules in its JSON schema: Prefect's server checks a resume's run_input against the
# stored schema only (pydantic validators run later, in the flow), so a rule that is not here would be accepted
# and the run resumed with an answer it cannot apply. Each rule names the field it is about.
_NOT_EDIT = {"properties": {"action": {"enum": ["approve", "reject"]}}}  # an absent action is approve
_EDIT_WITHOUT_FILE = {
    "required": ["action"],
    "properties": {"action": {"const": "edit"}, "subtitle_key": {"not": {"type": "string"}}},
}
_REJECT = {"required": ["action"], "properties": {"action": {"const": "reject"}}}
DECISION_RULES: list[dict[str, object]] = [
    # approve / reject: no edits and no file (an approve that carries edits would drop them)
    {"if": _NOT_EDIT, "then": {"properties": {"edits": {"maxItems": 0}, "subtitle_key": {"type": "null"}}}},
    # edit: edited lines, or a corrected file
    {"if": _EDIT_WITHOUT_FILE, "then": {"required": ["edits"], "properties": {"edits": {"minItems": 1}}}},
    # reject: a reason (kept with the result)
    {"if": _REJECT, "then": {"required": ["reason"], "properties": {"reason": {"pattern": r"\S"}}}},
    # a corrected file is a key in the bucket, never a walk out of a folder
    {"properties": {"subtitle_key": {"not": {"type": "string", "pattern": r"(^|/)\.\.(/|$)"}}}},
]


class ReviewDecision(StrictModel, json_schema_extra={"allOf": DECISION_RULES}):
    """What a reviewer answers. Prefect shows it as the Resume form; REST takes it as ``run_input``.

    A contradictory answer (approve or reject with edits or a file, edit with neither, reject without a reason)
    is refused by Prefect when it is sent: the resume answers ``REJECT`` naming the field and the run stays
    paused for a consistent one."""

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
        # The same rules as DECISION_RULES, for answers that do not pass through Prefect's resume.
        if self.action == "edit" and not self.edits and not self.subtitle_key:
            raise ValueError("edits: an edit needs edited utterances or a subtitle_key")
        if self.action != "edit" and self.edits:
            raise ValueError(f"edits: {self.action} takes no edits; choose edit")
        if self.action != "edit" and self.subtitle_key:
            raise ValueError(f"subtitle_key: {self.action} takes no subtitle file; choose edit")
        if self.action == "reject" and not self.reason.strip():
            raise ValueError("reason: a reject needs a reason")
        if self.subtitle_key and ".." in self.subtitle_key.split("/"):
            raise ValueError("subtitle_key: must not contain '..' path parts")
        return self


# --- results -----------------------------------------------------------------------------------------------


class TranslationOutput(BaseModel):
    """One file a translation produced, by Vid / file name (never a signed URL: those expire)."""

    kind: str  # output_video, voice_translation_video, facial_translation_video, foreground_audio, ... (provider kinds)
    vid: str | None = None
    file_name: str | None = None
    duration_seconds: float | None = None  # DurationSecond as the provider reports it
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
    reused: str = ""  # set when an earlier run's review was reused instead of asking again: when, and how not to


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
    # The target lines by utterance id (text, speaker, timing, volume): what revise-translation edits by id.
    lines: list[UtteranceEdit] = Field(default_factory=list)
    error: str | None = None
    project: ProjectRecord | None = None  # the project's own fields (version, speakers, tracks, error code...)
    takes: int = 1  # translation projects this language cost (VOD marks no failure transient: never re-bought)

    @property
    def awaiting_review(self) -> bool:
        return self.review is not None and self.review.decision == "awaiting_review"


class TranslateVideoResult(BaseModel):
    """translate-video's result: one entry per language, and what the run cost (``None`` inside a production,
    whose own result carries the cost)."""

    languages: list[LanguageResult]
    cost: RunCost | None = Field(None, description="Estimate before paying and what this run bought (flows.costs).")
