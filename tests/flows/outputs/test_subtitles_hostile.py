"""Cue text cannot forge a cue: whatever a translation or a reviewer's edit says, the SRT and WebVTT files clipflow
writes read back — with maintained third-party parsers (``srt``, ``webvtt-py``) and with clipflow's own reader — as
exactly the cues that were written, text and times."""

from __future__ import annotations

import html
import unicodedata

import srt
import webvtt
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flows.outputs.subtitles import Cue, cue_text, parse_subtitles, to_srt, to_webvtt

# Characters that build arrows, timing lines, indexes, marks, entities and line breaks, plus controls (BEL, ESC,
# NUL, NEL, VT, FF), the separators str.splitlines() breaks on, full-width timestamp separators and a word joiner.
HOSTILE = "-> <v&;:,.0123456789\n\r\t\x07\x1b\x00\x85\x0b\x0c\x1c\u2028\u2029\ufeff，．：\u2060aZ"
texts = st.one_of(
    st.text(alphabet=HOSTILE, max_size=40),
    st.text(max_size=40),  # any code point, surrogates included
    st.lists(st.sampled_from(["-->", "--->", "- ->", "-- >", "->", "<v A-->", "1", "-5", "00:00:01,000", "\n", " ",
                              "\x1b[2J", "\x07", "&amp;", "&lt;", "<a MuteSpeech>", "1：2：3："]), max_size=12)
    .map("".join),
)


@st.composite
def cue_lists(draw: st.DrawFn) -> list[Cue]:
    bodies = draw(st.lists(texts, max_size=6))
    starts = sorted(draw(st.lists(st.integers(0, 360_000_000), min_size=len(bodies), max_size=len(bodies))))
    return [Cue(start, start + draw(st.integers(1, 90_000)), body) for start, body in zip(starts, bodies)]


def written(cues: list[Cue]) -> list[tuple[int, int, str]]:
    return [(c.start_ms, c.end_ms, cue_text(c.text)) for c in cues if cue_text(c.text)]


def _ms(delta: object) -> int:
    return round(delta.total_seconds() * 1000)  # type: ignore[attr-defined]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cue_lists())
@example([Cue(0, 1000, "a --->b"), Cue(1000, 2000, "00:00:05,000 --> 00:00:09,000\nforged")])
@example([Cue(0, 1000, "1\n00:00:05,000 --> 00:00:09,000\nforged")])
@example([Cue(0, 1000, "x\n7\n1:2:3,\ny"), Cue(5, 6, "\x07\x1b[31mred\x1b[0m")])
@example([Cue(0, 1000, "<v a&amp;b>hi"), Cue(10, 20, "-\x07->")])
def test_any_text_reads_back_as_exactly_the_cues_written(cues: list[Cue]) -> None:
    expected = written(cues)
    srt_text, vtt_text = to_srt(cues), to_webvtt(cues)
    # The third-party SubRip reader (lax: it accepts "- >" arrows and blank lines inside cues).
    parsed = list(srt.parse(srt_text))
    assert [(_ms(s.start), _ms(s.end), s.content) for s in parsed] == expected
    # The third-party WebVTT reader; cue text is HTML-escaped in WebVTT.
    captions = webvtt.from_string(vtt_text).captions
    got = [(c.start_time.in_milliseconds(), c.end_time.in_milliseconds(), html.unescape(c.raw_text))
           for c in captions]
    assert got == expected
    # clipflow's own reader (a reviewer's corrected file).
    for text in (srt_text, vtt_text):
        ours = parse_subtitles(text) if expected else []
        assert [(c.start_ms, c.end_ms, c.text) for c in ours] == expected
    assert srt_text.count("-->") == vtt_text.count("-->") == len(expected)


@settings(max_examples=300, deadline=None)
@given(texts)
def test_cue_text_has_no_control_character_no_arrow_and_is_stable(text: str) -> None:
    clean = cue_text(text)
    assert cue_text(clean) == clean
    assert "-->" not in clean and "- >" not in clean
    assert all(c == "\n" or unicodedata.category(c) not in ("Cc", "Cs") for c in clean)
    assert "\n\n" not in clean and clean == clean.strip()
    clean.encode("utf-8")  # always storable


def test_a_longer_arrow_does_not_become_an_arrow() -> None:
    for arrow in ("--->", "---->", "- ->", "-- >", "-  >", "-\x07->", "-\t>", "-- -- >"):
        assert cue_text(f"a {arrow} b") == "a \u2192 b", arrow
    assert cue_text("a -> b") == "a -> b"  # a single hyphen is no timing arrow for any reader
    assert cue_text("ring\x07 \x1b[2Jclear") == "ring [2Jclear"


def test_a_forged_timing_line_stays_text() -> None:
    cues = [Cue(0, 1000, "Hello\n\n2\n00:00:05,000 --> 00:09:00,000\nBuy now")]
    out = to_srt(cues)
    assert out.count("-->") == 1
    assert [s.content for s in srt.parse(out)] == ["Hello\n2\u2060\n00:00:05,000 \u2192 00:09:00,000\nBuy now"]
