from __future__ import annotations

from types import SimpleNamespace

from flows.outputs.subtitles import Cue, cues_from_translation, to_srt, to_webvtt

UTTERANCES = [
    {"Id": "u2", "SpeakerId": "s1", "ClipId": "c2", "Text": "How are you?"},
    {"Id": "u1", "SpeakerId": "s1", "ClipId": "c1", "Text": "Hello there."},
    {"Id": "u3", "SpeakerId": "s2", "ClipId": "c3", "Text": "Fine,\nthanks."},
    {"Id": "u4", "SpeakerId": "s2", "ClipId": "missing", "Text": "no clip"},
    {"Id": "u5", "SpeakerId": "s2", "ClipId": "c4", "Text": "   "},
]
CLIPS = [
    {"Id": "c1", "Trim": {"Start": 200, "End": 1100}, "TrackId": "t"},
    {"Id": "c2", "Trim": {"Start": 1200, "End": 2500}},
    {"Id": "c3", "Trim": {"Start": 3_723_004, "End": 3_725_000}},  # 1 h 2 min 3.004 s
    {"Id": "c4", "Trim": {"Start": 5000, "End": 6000}},
]

SRT = """\
1
00:00:00,200 --> 00:00:01,100
Hello there.

2
00:00:01,200 --> 00:00:02,500
How are you?

3
01:02:03,004 --> 01:02:05,000
Fine,
thanks.
"""

VTT = """\
WEBVTT

1
00:00:00.200 --> 00:00:01.100
Hello there.

2
00:00:01.200 --> 00:00:02.500
How are you?

3
01:02:03.004 --> 01:02:05.000
Fine,
thanks.
"""


def test_cues_join_skip_and_sort() -> None:
    assert cues_from_translation(UTTERANCES, CLIPS) == [
        Cue(200, 1100, "Hello there.", "s1"),
        Cue(1200, 2500, "How are you?", "s1"),
        Cue(3_723_004, 3_725_000, "Fine,\nthanks.", "s2"),
    ]


def test_exact_srt_and_webvtt() -> None:
    cues = cues_from_translation(UTTERANCES, CLIPS)
    assert to_srt(cues) == SRT
    assert to_webvtt(cues) == VTT


def test_objects_with_snake_case_attributes() -> None:
    utterances = [SimpleNamespace(id="u1", speaker_id=None, clip_id="c1", text="Hi")]
    clips = [SimpleNamespace(id="c1", trim=SimpleNamespace(start=0, end=999))]
    assert cues_from_translation(utterances, clips) == [Cue(0, 999, "Hi")]
    assert to_srt(cues_from_translation(utterances, clips)) == "1\n00:00:00,000 --> 00:00:00,999\nHi\n"


def test_overlapping_cues_are_kept_in_start_order() -> None:
    clips = [
        {"Id": "a", "Trim": {"Start": 1000, "End": 4000}},
        {"Id": "b", "Trim": {"Start": 500, "End": 2000}},
        {"Id": "c", "Trim": {"Start": 1000, "End": 1500}},
    ]
    utterances = [{"ClipId": cid, "Text": cid.upper()} for cid in ("a", "b", "c")]
    cues = cues_from_translation(utterances, clips)
    assert [c.text for c in cues] == ["B", "C", "A"]  # by start, then end
    assert to_srt(cues).count("-->") == 3


def test_clips_without_usable_timing_are_skipped() -> None:
    clips = [
        {"Id": "no-trim"},
        {"Id": "reversed", "Trim": {"Start": 2000, "End": 1000}},
        {"Id": "strings", "Trim": {"Start": "1500", "End": "2500.4"}},
    ]
    utterances = [{"ClipId": cid, "Text": "x"} for cid in ("no-trim", "reversed", "strings", None)]
    assert cues_from_translation(utterances, clips) == [Cue(1500, 2500, "x")]


def test_empty() -> None:
    assert cues_from_translation([], []) == []
    assert to_srt([]) == ""
    assert to_webvtt([]) == "WEBVTT\n"


def test_webvtt_escapes_and_blank_lines_inside_text() -> None:
    cues = [Cue(0, 1000, "a --> b & <i>c</i>\r\n\r\n second line ")]
    assert to_webvtt(cues) == (
        "WEBVTT\n\n1\n00:00:00.000 --> 00:00:01.000\na \u2192 b &amp; &lt;i&gt;c&lt;/i&gt;\nsecond line\n"
    )
    assert to_srt(cues) == "1\n00:00:00,000 --> 00:00:01,000\na \u2192 b & <i>c</i>\nsecond line\n"


def test_long_hours() -> None:
    cues = [Cue(100 * 3_600_000 + 1, 100 * 3_600_000 + 2, "late")]
    assert "100:00:00,001 --> 100:00:00,002" in to_srt(cues)
    assert "100:00:00.001 --> 100:00:00.002" in to_webvtt(cues)
