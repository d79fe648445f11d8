"""SRT / WebVTT for the emulated AI translation: parse a subtitle file a user put in the space, render a project's
subtitles. Text lines are kept verbatim, so the ``<v Speaker>`` / ``<a MuteSpeech>`` / ``<a UseOriginal>`` marks at
the start of a line pass through both ways."""

from __future__ import annotations

import re
from dataclasses import dataclass

from emulator.errors import ApiError, invalid

_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{3})"
_RANGE = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}")
SPEAKER_MARK = re.compile(r"<v ([^<>]+)>")


@dataclass
class Cue:
    start: int  # ms
    end: int  # ms
    lines: list[str]


def _ms(h: str | None, m: str, s: str, ms: str) -> int:
    return ((int(h or 0) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms)


def parse(text: str, file_name: str) -> list[Cue]:
    """Cues of an SRT or WebVTT file; ApiError (InvalidParameter) naming the file when it holds none."""
    cues: list[Cue] = []
    blocks = re.split(r"\r?\n\s*\r?\n", text.replace("\ufeff", "").strip())
    for block in blocks:
        lines = block.splitlines()
        at = next((i for i, line in enumerate(lines) if _RANGE.match(line)), None)
        if at is None:
            continue  # WEBVTT header, NOTE, STYLE
        match = _RANGE.match(lines[at])
        assert match is not None
        g = match.groups()
        start, end = _ms(*g[:4]), _ms(*g[4:])
        body = [line for line in lines[at + 1:] if line.strip()]
        if end <= start or not body:
            raise invalid(f"{file_name}: the cue at {lines[at].strip()} needs an end after its start and a text.")
        cues.append(Cue(start, end, body))
    if not cues:
        raise invalid(f"{file_name} is not an SRT or WebVTT file with at least one cue.")
    return cues


def decode(data: bytes, file_name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError("InvalidParameter", 400, f"{file_name} is not UTF-8 text.") from None


def speaker_of(text: str) -> str | None:
    """The name of a leading ``<v Name>`` mark (marks may be stacked: ``<v A><a MuteSpeech>text``)."""
    for match in SPEAKER_MARK.finditer(text):
        prefix = text[: match.start()]
        if re.fullmatch(r"(?:<[va] [^<>]+>)*", prefix):
            return match.group(1).strip() or None
    return None


def _stamp(ms: int, sep: str) -> str:
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def render_vtt(cues: list[Cue]) -> str:
    blocks = [f"{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}\n" + "\n".join(c.lines) for c in cues]
    return "WEBVTT\n\n" + "\n\n".join(blocks) + "\n"


def render_srt(cues: list[Cue]) -> str:
    blocks = [f"{i}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n" + "\n".join(c.lines)
              for i, c in enumerate(cues, 1)]
    return "\n\n".join(blocks) + "\n"
