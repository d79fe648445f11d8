"""SRT and WebVTT from a VOD AI translation project's target utterances and clips.

GetAITranslationProject returns the translated text (``TargetUtterances[{Id, SpeakerId, ClipId, Text}]``) apart
from its timing (``TargetClips[{Id, Trim{Start, End}}]``, milliseconds); a cue is an utterance joined to its clip.
Inputs may be the wire dicts or parsed objects with snake_case attributes, so this module does not depend on
the VOD client's models.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    text: str
    speaker: str | None = None


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
        cues.append(Cue(span[0], span[1], text, str(speaker) if speaker else None))
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


def to_webvtt(cues: Iterable[Cue]) -> str:
    """WebVTT: ``WEBVTT`` header, numbered cues with ``HH:MM:SS.mmm`` times, ``& < >`` escaped."""
    blocks = ["WEBVTT\n"]
    for number, cue in enumerate(cues, start=1):
        # Escaping ">" also neutralises "-->", which cue text must not contain.
        text = _vtt_escape(_clean_text(cue.text))
        blocks.append(f"{number}\n{_timestamp(cue.start_ms, '.')} --> {_timestamp(cue.end_ms, '.')}\n{text}\n")
    return "\n".join(blocks)
