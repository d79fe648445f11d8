"""The edit stage's parameters and result."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from flows.models.rules import StrictModel


class EditSpec(StrictModel):
    width: int = Field(1920, ge=16, le=4096, description="Canvas width in pixels.")
    height: int = Field(1080, ge=16, le=4096, description="Canvas height in pixels.")
    fps: int = Field(25, ge=1, le=120, description="Output frames per second.")
    video_codec: Literal["h264", "h265"] = Field("h264", description="Output video codec.")
    crf: int = Field(23, ge=0, le=51, description="Constant rate factor (quality).")
    render: bool = Field(False, description="Also render the project with the direct-edit API into a new Vid.")


class EditResult(BaseModel):
    project_id: str
    group_id: str | None = None
    rendered_vid: str | None = None

