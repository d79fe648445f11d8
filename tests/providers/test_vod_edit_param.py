"""EditParam: the builder reproduces the vendor's CreateProject example, key order included; every Output and
Canvas leaf is reachable, and a bad value or a contradiction is refused naming its field."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from providers.errors import RequestValidationError
from providers.vod import EditParam, single_clip_edit_param

VENDOR = json.loads((Path(__file__).parent / "wire" / "vod_CreateProject.json").read_text())["request"]["EditParam"]


def test_builder_matches_vendor_example_exactly() -> None:
    param = single_clip_edit_param(
        name="新建项目-test", space_name="test", vid="v0d399g10001csunlgaljhtddi6hgvn0", duration_ms=8000,
        now_ms=1757142958344,
    )
    wire = param.to_wire()
    track = wire.pop("Track")
    # Same keys, values and order as the vendor's example (json.dumps keeps insertion order).
    assert json.dumps(wire, ensure_ascii=False) == json.dumps(VENDOR, ensure_ascii=False)
    assert track == [[{
        "Type": "video",
        "Source": "vid://v0d399g10001csunlgaljhtddi6hgvn0",
        "TargetTime": [0, 8000],
        "Extra": [
            {"Type": "trim", "StartTime": 0, "EndTime": 8000},
            {"Type": "transform", "PosX": 0, "PosY": 0, "Width": 1920, "Height": 1080},
        ],
    }]]


def test_builder_options() -> None:
    before = int(time.time() * 1000)
    param = single_clip_edit_param(
        name="clip_9x16", space_name="shorts", vid="v1", duration_ms=12500, width=1080, height=1920, fps=30,
        video_codec="h265", crf=28, audio_bitrate=96,
    )
    wire = param.to_wire()
    assert wire["Canvas"] == {"Width": 1080, "Height": 1920, "BackgroundColor": "#000000FF"}
    assert wire["Output"]["Fps"] == 30
    assert wire["Output"]["Codec"] == {"VideoCodec": "h265", "Preset": "slow", "Crf": 28, "AudioCodec": "aac",
                                       "AudioBitrate": 96}
    assert wire["Upload"] == {"SpaceName": "shorts", "VideoName": "clip_9x16"}
    assert wire["Project"]["CreateTime"] == wire["Project"]["UpdateTime"] >= before
    element = wire["Track"][0][0]
    assert element["TargetTime"] == [0, 12500]
    assert element["Extra"][1] == {"Type": "transform", "PosX": 0, "PosY": 0, "Width": 1080, "Height": 1920}


def test_vendor_example_round_trips_and_unknown_keys_survive() -> None:
    assert EditParam.model_validate(VENDOR).to_wire() == VENDOR
    custom = {**VENDOR, "Output": {**VENDOR["Output"], "Format": "hls"},
              "Track": [[{"Type": "text", "Text": "Hello", "TargetTime": [0, 1000], "Extra": []}]]}
    wire = EditParam.model_validate(custom).to_wire()
    assert wire["Output"]["Format"] == "hls"
    assert wire["Track"][0][0] == {"Type": "text", "TargetTime": [0, 1000], "Extra": [], "Text": "Hello"}


def test_every_output_and_canvas_leaf_reaches_the_wire() -> None:
    param = single_clip_edit_param(
        name="leaves", space_name="demo", vid="v1", duration_ms=5000, video_codec="h265", preset="veryfast",
        audio_bitrate=192, background_color="#FFFFFF00", cover_time_ms=[0, 2500], alpha=True, disable_audio=True,
    )
    output = param.to_wire()["Output"]
    assert output == {
        "Alpha": True, "Fps": 25,
        "Codec": {"VideoCodec": "h265", "Preset": "veryfast", "Crf": 23, "AudioCodec": "aac", "AudioBitrate": 192},
        "DisableVideo": False, "DisableAudio": True, "Cover": {"DisableCover": False, "CoverTime": [0, 2500]},
    }
    assert param.to_wire()["Canvas"]["BackgroundColor"] == "#FFFFFF00"
    no_cover = single_clip_edit_param(name="n", space_name="demo", vid="v1", duration_ms=5000, disable_cover=True)
    assert no_cover.to_wire()["Output"]["Cover"] == {"DisableCover": True}  # no time for a cover not taken


@pytest.mark.parametrize(("options", "field", "rule"), [
    ({"preset": "placebo"}, "Output.Codec.Preset", "must be one of"),
    ({"video_codec": "vp9"}, "Output.Codec.VideoCodec", "must be one of"),
    ({"audio_codec": "mp3"}, "Output.Codec.AudioCodec", "must be one of aac"),
    ({"audio_bitrate": 16}, "Output.Codec.AudioBitrate", "[32, 320]"),
    ({"audio_bitrate": 321}, "Output.Codec.AudioBitrate", "[32, 320]"),
    ({"background_color": "#000000"}, "Canvas.BackgroundColor", "#RRGGBBAA"),
    ({"cover_time_ms": [-1]}, "Output.Cover.CoverTime", ">= 0"),
    ({"cover_time_ms": [100, 100]}, "Output.Cover.CoverTime", "distinct"),
    ({"cover_time_ms": 5000}, "Output.Cover.CoverTime", "before the end of the video (5000 ms)"),
    ({"disable_video": True, "disable_audio": True}, "Output.DisableAudio", "DisableVideo and DisableAudio"),
    ({"alpha": True}, "Output.Alpha", "h265"),
    ({"alpha": True, "video_codec": "h265", "disable_video": True}, "Output.Alpha", "DisableVideo"),
])
def test_bad_leaves_and_contradictions_are_refused_naming_the_field(options: dict, field: str, rule: str) -> None:
    with pytest.raises(RequestValidationError) as info:
        single_clip_edit_param(name="x", space_name="demo", vid="v1", duration_ms=5000, **options)
    assert info.value.field == field and rule in info.value.rule

