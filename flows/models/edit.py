"""The edit stage's parameters and result.

Every ``EditParam.Output``/``Canvas`` leaf of the CreateProject page is a field here; the enums and ranges are
the provider model's (``providers.vod.edit_param``), in the schema so Prefect refuses a bad value at Submit.
Settings that contradict each other are refused by the validator, naming the fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from flows.models.rules import StrictModel
from providers.vod.edit_param import AUDIO_BITRATE_KBPS, COVER_TIMES_MAX

Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"]
COVER_TIME_MAX_MS = 86_400_000


class EditSpec(StrictModel):
    width: int = Field(1920, ge=16, le=4096, description="Canvas width in pixels.")
    height: int = Field(1080, ge=16, le=4096, description="Canvas height in pixels.")
    background_color: str = Field(
        "#000000FF", pattern=r"^#[0-9A-Fa-f]{8}$",
        description="Canvas.BackgroundColor: #RRGGBBAA (8 hex digits), shown where the clip leaves the canvas bare.",
    )
    fps: int = Field(25, ge=1, le=120, description="Output frames per second.")
    video_codec: Literal["h264", "h265"] = Field("h264", description="Output video codec.")
    preset: Preset = Field(
        "slow", description="Codec.Preset: encoder speed; slower presets give a smaller file at the same quality.",
    )
    crf: int = Field(23, ge=0, le=51, description="Constant rate factor (quality).")
    audio_codec: Literal["aac"] = Field("aac", description="Codec.AudioCodec (AAC is the one the vendor shows).")
    audio_bitrate: int = Field(
        128, ge=AUDIO_BITRATE_KBPS[0], le=AUDIO_BITRATE_KBPS[1], description="Codec.AudioBitrate in kbps (32-320).",
    )
    alpha: bool = Field(False, description="Output.Alpha: keep transparency (needs video_codec h265).")
    disable_video: bool = Field(False, description="Output.DisableVideo: render audio only.")
    disable_audio: bool = Field(False, description="Output.DisableAudio: render a silent video.")
    disable_cover: bool = Field(False, description="Output.Cover.DisableCover: make no cover image.")
    cover_times_ms: list[Annotated[int, Field(ge=0, le=COVER_TIME_MAX_MS)]] = Field(
        [0], min_length=1, max_length=COVER_TIMES_MAX, json_schema_extra={"uniqueItems": True},
        description="Output.Cover.CoverTime: when to take the cover, ms into the video (each before its end). "
        "Leave [0] with disable_cover.",
    )
    render: bool = Field(
        False, description="Also render the project with the direct-edit API into a new Vid (paid, per started "
        "minute). Transcode and translations then start from it unless sources say 'clip'.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> EditSpec:
        if self.disable_video and self.disable_audio:
            raise ValueError("disable_audio: disable_video and disable_audio are both true: the rendered video "
                             "would hold nothing")
        if self.alpha and self.disable_video:
            raise ValueError("alpha: needs a video stream, and disable_video is true")
        if self.alpha and self.video_codec == "h264":
            raise ValueError("alpha: needs video_codec h265 (H.264 carries no alpha channel)")
        if len(set(self.cover_times_ms)) != len(self.cover_times_ms):
            raise ValueError(f"cover_times_ms: must not repeat a time (got {self.cover_times_ms})")
        if self.disable_cover and self.cover_times_ms != [0]:
            raise ValueError("cover_times_ms: is set while disable_cover is true: there is no cover to take")
        return self


class EditResult(BaseModel):
    project_id: str
    group_id: str | None = None
    rendered_vid: str | None = None
    source_vid: str | None = Field(None, description="The Vid the project was built on (the imported clip).")
    output: dict[str, Any] | None = Field(None, description="EditParam.Output as sent (codec, cover, streams).")
    canvas: dict[str, Any] | None = Field(None, description="EditParam.Canvas as sent.")
