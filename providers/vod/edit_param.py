"""Typed ``EditParam`` for CreateProject / SubmitDirectEditTaskAsync (vendor doc 4/102412) and a builder.

Field order follows the vendor example so the serialised JSON reads the same way. Every part accepts
unknown keys: the vendor documents many more element types and filters than we model.
"""

from __future__ import annotations

import time

from pydantic import Field, field_validator

from providers.errors import RequestValidationError
from providers.vod.models_base import PROVIDER, OpenVodParams, rule_error

EDITOR_VERSION = "1.0.0"
EDITOR_TAG = "TrackEditor"


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


class Codec(OpenVodParams):
    video_codec: str = "h264"
    preset: str = "slow"
    crf: int = 23
    audio_codec: str = "aac"
    audio_bitrate: int = 128  # kbps

    @field_validator("crf")
    @classmethod
    def _crf_range(cls, v: int) -> int:
        if not 0 <= v <= 51:
            raise rule_error("must be in [0, 51]")
        return v


class Cover(OpenVodParams):
    disable_cover: bool = False
    cover_time: list[int] = Field(default_factory=lambda: [0])  # ms


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
    cover_time_ms: int = 0,
    now_ms: int | None = None,
) -> EditParam:
    """A track project holding one video, full-canvas, from 0 to ``duration_ms`` of the source."""
    if duration_ms <= 0:
        raise RequestValidationError("duration_ms", "must be > 0", provider=PROVIDER)
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
    return EditParam(
        project=ProjectInfo(name=name, create_time=stamp, update_time=stamp),
        upload=UploadInfo(space_name=space_name, video_name=name),
        output=Output(
            fps=fps,
            codec=Codec(
                video_codec=video_codec, preset=preset, crf=crf, audio_codec=audio_codec, audio_bitrate=audio_bitrate
            ),
            cover=Cover(cover_time=[cover_time_ms]),
        ),
        canvas=Canvas(width=width, height=height, background_color=background_color),
        track=[[element]],
    )
