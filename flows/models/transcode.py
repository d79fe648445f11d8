"""The transcode stage's parameters and result."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from flows.models.rules import TEMPLATE_ID_PATTERN, StrictModel
from providers.states import JobState


class TranscodeSpec(StrictModel):
    template_id: str = Field(
        "demo-transcode-template", pattern=TEMPLATE_ID_PATTERN, description="VOD workflow (transcode template) id."
    )
    watermark_text: str | None = Field(
        None, max_length=200, description="Text for the template's text watermark variable."
    )
    clip_start_ms: int | None = Field(None, ge=0, le=86_400_000, description="Clip the output from this time (ms).")
    clip_end_ms: int | None = Field(None, ge=0, le=86_400_000, description="Clip the output up to this time (ms).")
    priority: int = Field(0, ge=-5, le=5, description="Workflow priority, -5..5.")
    low_priority: bool = Field(False, description="Use idle-time (cheaper, slower) transcoding.")

    @model_validator(mode="after")
    def _clip_order(self) -> TranscodeSpec:
        start, end = self.clip_start_ms, self.clip_end_ms
        if start is not None and end is not None and end <= start:
            raise ValueError(f"clip_end_ms: must be after clip_start_ms ({start}), got {end}")
        return self


class TranscodeOutput(BaseModel):
    file_id: str | None = None
    store_uri: str | None = None
    format: str | None = None
    duration: float | None = None
    size: int | None = None


class TranscodeResult(BaseModel):
    run_id: str
    status: JobState
    outputs: list[TranscodeOutput] = []

