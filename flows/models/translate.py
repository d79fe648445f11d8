"""The translate stage's parameters and result."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from flows.models.rules import StrictModel, TargetLanguage, TranslationType, _unique_list
from providers.states import JobState


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
    recognition: Literal["OCR", "ASR"] = Field("ASR", description="Read source subtitles by OCR or speech (ASR).")


class LanguageResult(BaseModel):
    language: str
    project_id: str
    status: JobState
    output_vid: str | None = None
    output_url: str | None = None
    srt_key: str | None = None
    vtt_key: str | None = None
    error: str | None = None

