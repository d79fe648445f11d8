"""SRT and WebVTT from a VOD AI translation project's target utterances and clips.

GetAITranslationProject returns the translated text (``TargetUtterances[{Id, SpeakerId, ClipId, Text}]``) apart
from its timing (``TargetClips[{Id, Trim{Start, End}}]``, milliseconds); a cue is an utterance joined to its clip.
Inputs may be the wire dicts or parsed objects with snake_case attributes, so this module does not depend on
the VOD client's models.

The vendor's per-line marks (``<v Speaker>``, ``<a MuteSpeech>``, ``<a UseOriginal>`` at the start of a line) pass
through both formats unescaped, so a reviewer's file keeps them; ``parse_subtitles`` reads SRT or WebVTT back
(a corrected file in the bucket) into cues.
"""

from __future__ import annotations

import re
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


def _clean_text(text: str) -> str:
    # A blank line ends a cue in both formats, so blank lines inside the text are dropped.
    lines = (line.strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return "\n".join(line for line in lines if line)


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


def to_srt(cues: Iterable[Cue]) -> str:
    """SubRip: numbered blocks ``n / HH:MM:SS,mmm --> HH:MM:SS,mmm / text`` separated by blank lines."""
    blocks = []
    for number, cue in enumerate(cues, start=1):
        # SRT has no escaping; an arrow in the text could be read as a timing line by lax parsers.
        text = _clean_text(cue.text).replace("-->", "->")
        blocks.append(f"{number}\n{_timestamp(cue.start_ms, ',')} --> {_timestamp(cue.end_ms, ',')}\n{text}\n")
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _vtt_line(line: str) -> str:
    """Escape one cue line, keeping a leading vendor mark as it is."""
    mark = MARK.match(line)
    head = mark.group(0) if mark else ""
    return head + _vtt_escape(line[len(head):])


def to_webvtt(cues: Iterable[Cue]) -> str:
    """WebVTT: ``WEBVTT`` header, numbered cues with ``HH:MM:SS.mmm`` times, ``& < >`` escaped."""
    blocks = ["WEBVTT\n"]
    for number, cue in enumerate(cues, start=1):
        # Escaping ">" also neutralises "-->", which cue text must not contain; a leading mark stays as it is.
        text = "\n".join(_vtt_line(line) for line in _clean_text(cue.text).split("\n"))
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
