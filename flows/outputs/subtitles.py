"""SRT and WebVTT from a VOD AI translation project's target utterances and clips.

GetAITranslationProject returns the translated text (``TargetUtterances[{Id, SpeakerId, ClipId, Text}]``) apart
from its timing (``TargetClips[{Id, Trim{Start, End}}]``, milliseconds); a cue is an utterance joined to its clip.
Inputs may be the wire dicts or parsed objects with snake_case attributes, so this module does not depend on
the VOD client's models.

The vendor's per-line marks (``<v Speaker>``, ``<a MuteSpeech>``, ``<a UseOriginal>`` at the start of a line) pass
through both formats unescaped, so a reviewer's file keeps them; ``parse_subtitles`` reads SRT or WebVTT back
(a corrected file in the bucket) into cues.

Cue text can never change the structure of a file (``cue_text``): control characters are removed, every arrow a
lax parser could take for a timing line (``-->``, ``- >``, ``--->`` …) becomes ``→``, and a line that looks like
an SRT index right before a line that starts like a timestamp gets an invisible word joiner. A reader of either
format gets back exactly the cues that were written (tests/flows/outputs/test_subtitles_hostile.py).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# A vendor mark at the start of a line (api-notes 3b): kept verbatim in WebVTT, where "<" is otherwise escaped.
MARK = re.compile(r"^(?:<v [^<>\r\n]{1,100}>|<a (?:MuteSpeech|UseOriginal)>)")


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    text: str
    speaker: str | None = None
    utterance_id: str | None = field(default=None, compare=False)  # which line it came from (review edits)


def _field(obj: Any, wire: str, snake: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(wire, obj.get(snake))
    return getattr(obj, snake, getattr(obj, wire, None))


def _ms(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return round(float(value))
    except (TypeError, ValueError):
        return None


# Any hyphen, then hyphens or spaces, then ">": the laxest timing arrow of common SRT readers (``-[ -] *>``).
# Matched from its first hyphen, and replaced by a character that is neither, so it cannot re-form.
_ARROW = re.compile(r"-[ -]+>")
ARROW_REPLACEMENT = "\u2192"  # →
# Some SRT readers end a cue at a line that is only an index followed by a line starting with a timestamp.
_INDEX_LINE = re.compile(r"-?[0-9]+\.?[0-9]*")
_TIMESTAMP_START = re.compile(r"[0-9]+[,.:，．。：][0-9]+[,.:，．。：][0-9]+[,.:，．。：]")
WORD_JOINER = "\u2060"  # invisible, not whitespace: the line is no longer "only an index"
_LINE_BREAK = re.compile("\r\n|[\r\u2028\u2029]")


def _keep(char: str) -> bool:
    # Control characters (BEL, ESC, NUL, NEL …) and lone surrogates (not encodable as UTF-8) are removed.
    return char == "\n" or unicodedata.category(char) not in ("Cc", "Cs")


def cue_text(text: str) -> str:
    """The text a cue is written with: one line per line, no blank line (it would end the cue), no control
    character, no arrow and no index-then-timestamp pair. Idempotent; what ``parse_subtitles`` gives back."""
    text = _LINE_BREAK.sub("\n", text).replace("\t", " ")
    text = _ARROW.sub(ARROW_REPLACEMENT, "".join(c for c in text if _keep(c)))
    lines = [line for line in (raw.strip() for raw in text.split("\n")) if line]
    for i in range(len(lines) - 1):
        if _INDEX_LINE.fullmatch(lines[i]) and _TIMESTAMP_START.match(lines[i + 1]):
            lines[i] += WORD_JOINER
    return "\n".join(lines)


_clean_text = cue_text


def cues_from_translation(
    utterances: Iterable[Mapping[str, Any] | object], clips: Iterable[Mapping[str, Any] | object]
) -> list[Cue]:
    """Join ``utterance.ClipId`` to ``clip.Id``; skip utterances with no (timed) clip or no text; sort by time."""
    timing: dict[str, tuple[int, int]] = {}
    for clip in clips:
        clip_id = _field(clip, "Id", "id")
        trim = _field(clip, "Trim", "trim")
        start, end = _ms(_field(trim, "Start", "start")), _ms(_field(trim, "End", "end"))
        if clip_id is not None and start is not None and end is not None and end > start:
            timing[str(clip_id)] = (max(0, start), end)
    cues = []
    for utterance in utterances:
        clip_id = _field(utterance, "ClipId", "clip_id")
        span = timing.get(str(clip_id)) if clip_id is not None else None
        text = _clean_text(str(_field(utterance, "Text", "text") or ""))
        if span is None or not text:
            continue
        speaker = _field(utterance, "SpeakerId", "speaker_id")
        uid = _field(utterance, "Id", "id")
        cues.append(Cue(span[0], span[1], text, str(speaker) if speaker else None, str(uid) if uid else None))
    return sorted(cues, key=lambda cue: (cue.start_ms, cue.end_ms))  # stable: ties keep input order


def _timestamp(ms: int, separator: str) -> str:
    ms = max(0, int(ms))
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def _written(cues: Iterable[Cue]) -> list[tuple[Cue, str]]:
    """Each cue with its text as written; a cue left without text is not written (it would end the file's cue)."""
    return [(cue, text) for cue in cues if (text := cue_text(cue.text))]


def to_srt(cues: Iterable[Cue]) -> str:
    """SubRip: numbered blocks ``n / HH:MM:SS,mmm --> HH:MM:SS,mmm / text`` separated by blank lines."""
    blocks = []
    for number, (cue, text) in enumerate(_written(cues), start=1):
        blocks.append(f"{number}\n{_timestamp(cue.start_ms, ',')} --> {_timestamp(cue.end_ms, ',')}\n{text}\n")
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _vtt_line(line: str) -> str:
    """Escape one cue line, keeping a leading vendor mark as it is."""
    mark = MARK.match(line)
    head = mark.group(0) if mark else ""
    # A voice name is text too: its "&" is escaped, so reading the line back gives the same name.
    return head.replace("&", "&amp;") + _vtt_escape(line[len(head):])


def to_webvtt(cues: Iterable[Cue]) -> str:
    """WebVTT: ``WEBVTT`` header, numbered cues with ``HH:MM:SS.mmm`` times, ``& < >`` escaped."""
    blocks = ["WEBVTT\n"]
    for number, (cue, clean) in enumerate(_written(cues), start=1):
        text = "\n".join(_vtt_line(line) for line in clean.split("\n"))
        blocks.append(f"{number}\n{_timestamp(cue.start_ms, '.')} --> {_timestamp(cue.end_ms, '.')}\n{text}\n")
    return "\n".join(blocks)


_TIMING = re.compile(
    r"^\s*(?P<a>(?:\d+:)?\d{1,2}:\d{2}[,.]\d{1,3})\s*-->\s*(?P<b>(?:\d+:)?\d{1,2}:\d{2}[,.]\d{1,3})"
)


class SubtitleParseError(ValueError):
    """A subtitle file clipflow cannot read; the message names the line."""


def _parse_time(value: str) -> int:
    clock, _, frac = value.replace(",", ".").partition(".")
    parts = [int(p) for p in clock.split(":")]
    hours, minutes, seconds = ([0] * (3 - len(parts)) + parts)[-3:]
    return ((hours * 60 + minutes) * 60 + seconds) * 1000 + int(frac.ljust(3, "0")[:3])


def _vtt_unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def parse_subtitles(text: str) -> list[Cue]:
    """SRT or WebVTT -> cues in file order (marks kept in the text). Raises ``SubtitleParseError``."""
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    vtt = bool(lines) and lines[0].startswith("WEBVTT")
    cues: list[Cue] = []
    i = 0
    while i < len(lines):
        timing = _TIMING.match(lines[i])
        if timing is None:
            i += 1
            continue
        start, end = _parse_time(timing["a"]), _parse_time(timing["b"])
        if end <= start:
            raise SubtitleParseError(f"line {i + 1}: the cue ends before it starts")
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip():
            body.append(_vtt_unescape(lines[i]) if vtt else lines[i])
            i += 1
        cue_text = _clean_text("\n".join(body))
        if not cue_text:
            raise SubtitleParseError(f"line {i}: a cue without text")
        cues.append(Cue(start, end, cue_text))
    if not cues:
        raise SubtitleParseError("no cue found (expected SRT or WebVTT timing lines 'start --> end')")
    return cues
