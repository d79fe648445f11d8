"""Typed ``EditParam`` for CreateProject / SubmitDirectEditTaskAsync (vendor doc 4/102412) and a builder.

Field order follows the vendor example so the serialised JSON reads the same way. Every part accepts
unknown keys: the vendor documents many more element types and filters than we model.

The CreateProject page gives ``Output``/``Canvas`` only as an example, without ranges. The rules here are the
narrowest that hold that example and what the codecs themselves allow (docs/vendor-fields.md, CreateProject):
a value outside them is refused before a paid call rather than tried on the vendor.
"""

from __future__ import annotations

import time

import re

from pydantic import Field, field_validator, model_validator

from providers.errors import RequestValidationError
from providers.vod.models_base import PROVIDER, OpenVodParams, rule_error

EDITOR_VERSION = "1.0.0"
EDITOR_TAG = "TrackEditor"

VIDEO_CODECS = ("h264", "h265")
# x264/x265's speed presets (the vendor example's "slow" is one); "placebo" is left out: no quality gain, hours.
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
AUDIO_CODECS = ("aac",)  # the only one any page at hand shows
AUDIO_BITRATE_KBPS = (32, 320)  # AAC-LC stereo, kbps
COVER_TIMES_MAX = 10
BACKGROUND_COLOR = re.compile(r"#[0-9A-Fa-f]{8}")  # #RRGGBBAA, as the vendor example "#000000FF"


class ProjectInfo(OpenVodParams):
    version: str = EDITOR_VERSION
    name: str
    create_time: int  # ms since epoch
    update_time: int
    tag: str = EDITOR_TAG


class UploadInfo(OpenVodParams):
    space_name: str
    video_name: str | None = None
    file_name: str | None = None


def _one_of(value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise rule_error(f"must be one of {', '.join(allowed)} (got {value!r})")
    return value


class Codec(OpenVodParams):
    video_codec: str = "h264"
    preset: str = "slow"
    crf: int = 23
    audio_codec: str = "aac"
    audio_bitrate: int = 128  # kbps

    @field_validator("video_codec")
    @classmethod
    def _video_codec(cls, v: str) -> str:
        return _one_of(v, VIDEO_CODECS)

    @field_validator("preset")
    @classmethod
    def _preset(cls, v: str) -> str:
        return _one_of(v, PRESETS)

    @field_validator("audio_codec")
    @classmethod
    def _audio_codec(cls, v: str) -> str:
        return _one_of(v, AUDIO_CODECS)

    @field_validator("crf")
    @classmethod
    def _crf_range(cls, v: int) -> int:
        if not 0 <= v <= 51:
            raise rule_error("must be in [0, 51]")
        return v

    @field_validator("audio_bitrate")
    @classmethod
    def _bitrate_range(cls, v: int) -> int:
        low, high = AUDIO_BITRATE_KBPS
        if not low <= v <= high:
            raise rule_error(f"must be in [{low}, {high}] kbps")
        return v


class Cover(OpenVodParams):
    disable_cover: bool = False
    cover_time: list[int] | None = None  # ms into the output; none when the cover is disabled

    @field_validator("cover_time")
    @classmethod
    def _times(cls, v: list[int] | None) -> list[int] | None:
        if v is None:
            return v
        if not 1 <= len(v) <= COVER_TIMES_MAX:
            raise rule_error(f"must hold 1-{COVER_TIMES_MAX} times (ms)")
        if any(t < 0 for t in v) or len(set(v)) != len(v):
            raise rule_error("must be distinct times in ms, each >= 0")
        return v

    @model_validator(mode="after")
    def _cover_or_not(self) -> Cover:
        if self.disable_cover and self.cover_time:
            raise rule_error("DisableCover is true: give no CoverTime (there is no cover to take)", "CoverTime")
        return self


class Output(OpenVodParams):
    alpha: bool = False
    fps: int = 25
    codec: Codec = Field(default_factory=Codec)
    disable_video: bool = False
    disable_audio: bool = False
    cover: Cover | None = None

    @field_validator("fps")
    @classmethod
    def _fps_positive(cls, v: int) -> int:
        if not 0 < v <= 120:
            raise rule_error("must be in (0, 120]")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Output:
        """Settings that contradict each other: the output would be empty, or hold what it was told to drop."""
        if self.disable_video and self.disable_audio:
            rule = "DisableVideo and DisableAudio are both true: the output would hold nothing"
            raise rule_error(rule, "DisableAudio")
        if self.alpha and self.disable_video:
            raise rule_error("Alpha needs a video stream, and DisableVideo is true", "Alpha")
        if self.alpha and self.codec.video_codec == "h264":
            raise rule_error("Alpha needs Codec.VideoCodec h265 (H.264 carries no alpha channel)", "Alpha")
        return self


class Canvas(OpenVodParams):
    width: int
    height: int
    background_color: str = "#000000FF"

    @field_validator("width", "height")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v <= 0:
            raise rule_error("must be > 0")
        return v

    @field_validator("background_color")
    @classmethod
    def _rgba(cls, v: str) -> str:
        if not BACKGROUND_COLOR.fullmatch(v):
            raise rule_error(f"must be #RRGGBBAA, 8 hex digits (got {v!r})")
        return v


class ElementExtra(OpenVodParams):
    """One entry of an element's ``Extra`` list: ``trim`` (source range, ms), ``transform`` (top-left box), ..."""

    type: str
    start_time: int | None = None
    end_time: int | None = None
    pos_x: int | None = None
    pos_y: int | None = None
    width: int | None = None
    height: int | None = None


class TrackElement(OpenVodParams):
    """One element on a track. ``Source`` is ``vid://<vid>``, ``directurl://<file>`` or ``tos://bucket/key``."""

    type: str = "video"  # video | image | audio | text | ...
    source: str | None = None
    target_time: tuple[int, int]  # [start, end] on the output timeline, ms
    extra: list[ElementExtra] | None = None

    @field_validator("target_time")
    @classmethod
    def _ordered(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not 0 <= v[0] < v[1]:
            raise rule_error("must be [start, end] in ms with 0 <= start < end")
        return v


class EditParam(OpenVodParams):
    project: ProjectInfo | None = None  # CreateProject only; SubmitDirectEditTaskAsync omits it
    upload: UploadInfo
    output: Output = Field(default_factory=Output)
    canvas: Canvas
    track: list[list[TrackElement]] | None = None  # layers, bottom first


def vid_source(vid: str) -> str:
    return f"vid://{vid}"


def single_clip_edit_param(
    *,
    name: str,
    space_name: str,
    vid: str,
    duration_ms: int,
    width: int = 1920,
    height: int = 1080,
    fps: int = 25,
    video_codec: str = "h264",
    crf: int = 23,
    preset: str = "slow",
    audio_codec: str = "aac",
    audio_bitrate: int = 128,
    background_color: str = "#000000FF",
    cover_time_ms: int | list[int] = 0,
    alpha: bool = False,
    disable_video: bool = False,
    disable_audio: bool = False,
    disable_cover: bool = False,
    now_ms: int | None = None,
) -> EditParam:
    """A track project holding one video, full-canvas, from 0 to ``duration_ms`` of the source. Cover times are
    ms into the output, so each must fall inside it."""
    if duration_ms <= 0:
        raise RequestValidationError("duration_ms", "must be > 0", provider=PROVIDER)
    cover_times = None if disable_cover else (
        [cover_time_ms] if isinstance(cover_time_ms, int) else list(cover_time_ms)
    )
    if cover_times and max(cover_times) >= duration_ms:
        rule = f"each time must be before the end of the video ({duration_ms} ms), got {max(cover_times)}"
        raise RequestValidationError("Output.Cover.CoverTime", rule, provider=PROVIDER)
    stamp = now_ms if now_ms is not None else int(time.time() * 1000)
    element = TrackElement(
        type="video",
        source=vid_source(vid),
        target_time=(0, duration_ms),
        extra=[
            ElementExtra(type="trim", start_time=0, end_time=duration_ms),
            ElementExtra(type="transform", pos_x=0, pos_y=0, width=width, height=height),
        ],
    )
    # Validated as one document, so a refusal names the field by its path in EditParam (Output.Codec.Preset).
    return EditParam.model_validate({
        "project": ProjectInfo(name=name, create_time=stamp, update_time=stamp),
        "upload": UploadInfo(space_name=space_name, video_name=name),
        "output": {
            "alpha": alpha,
            "fps": fps,
            "codec": {
                "video_codec": video_codec, "preset": preset, "crf": crf, "audio_codec": audio_codec,
                "audio_bitrate": audio_bitrate,
            },
            "disable_video": disable_video,
            "disable_audio": disable_audio,
            "cover": {"disable_cover": disable_cover, "cover_time": cover_times},
        },
        "canvas": {"width": width, "height": height, "background_color": background_color},
        "track": [[element]],
    })
