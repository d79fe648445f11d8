"""Real, playable MP4s: one tiny sample shipped in the package, made unique per job with a trailing box.

A top-level ``free`` box appended after ``mdat`` is ignored by every player and shifts no sample offsets, so
each prompt/seed/job gets distinct bytes (and MD5) that still decode. ``probe`` reads duration and size from
``mvhd``/``tkhd`` so uploads report what was really downloaded.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

SAMPLE_PATH = Path(__file__).with_name("assets") / "sample.mp4"


@lru_cache(maxsize=1)
def sample_bytes() -> bytes:
    return SAMPLE_PATH.read_bytes()


def variant(tag: str, base: bytes | None = None) -> bytes:
    """``base`` (default: the sample) plus a ``free`` box carrying ``tag``: same video, different bytes."""
    payload = ("clipflow-emulator:" + tag).encode("utf-8")
    return (base if base is not None else sample_bytes()) + struct.pack(">I4s", 8 + len(payload), b"free") + payload


@dataclass(frozen=True)
class MediaInfo:
    format: str
    duration: float
    width: int
    height: int


_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"udta"}


def _boxes(data: bytes, start: int, end: int):
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1 and pos + 16 <= end:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


def probe(data: bytes) -> MediaInfo | None:
    """Duration (s) and video size of an ISO-BMFF file, or None if it is not one."""
    if len(data) < 12 or data[4:8] != b"ftyp":
        return None
    duration = 0.0
    width = height = 0

    def walk(start: int, end: int, in_video_trak: bool = False) -> None:
        nonlocal duration, width, height
        for kind, body, stop in _boxes(data, start, end):
            if kind == b"mvhd" and stop - body >= 20:
                version = data[body]
                if version == 1 and stop - body >= 32:
                    timescale, dur = struct.unpack(">IQ", data[body + 20 : body + 32])
                else:
                    timescale, dur = struct.unpack(">II", data[body + 12 : body + 20])
                if timescale:
                    duration = dur / timescale
            elif kind == b"trak":
                walk(body, stop, _is_video_trak(body, stop))
            elif kind == b"tkhd" and in_video_trak:
                w, h = struct.unpack(">II", data[stop - 8 : stop])
                width, height = w >> 16, h >> 16
            elif kind in _CONTAINERS:
                walk(body, stop, in_video_trak)

    def _is_video_trak(start: int, end: int) -> bool:
        for kind, body, stop in _boxes(data, start, end):
            if kind == b"mdia":
                for k2, b2, _s2 in _boxes(data, body, stop):
                    if k2 == b"hdlr" and data[b2 + 8 : b2 + 12] == b"vide":
                        return True
        return False

    walk(0, len(data))
    return MediaInfo("mp4", round(duration, 3), width, height)


@dataclass
class MediaItem:
    data: bytes
    content_type: str = "video/mp4"
    available_at: float = 0.0  # emulated time before which the URL answers 404
    expires_at: float | None = None  # emulated time after which every URL of it answers 403
    signed: bool = False  # a URL must carry a valid X-Expires/X-Signature pair (and expires with it)


class MediaStore:
    """Bytes served under ``/_media/<key>``. Expiring URLs carry an HMAC so they cannot be extended by hand."""

    def __init__(self, secret: bytes) -> None:
        self._items: dict[str, MediaItem] = {}
        self._lock = threading.Lock()
        self._secret = secret

    def put(self, key: str, item: MediaItem) -> None:
        with self._lock:
            self._items[key] = item

    def get(self, key: str) -> MediaItem | None:
        with self._lock:
            return self._items.get(key)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def sign(self, key: str, expires: int) -> str:
        return hmac.new(self._secret, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def url(self, base_url: str, key: str, expires_at: float | None = None) -> str:
        url = f"{base_url.rstrip('/')}/_media/{key}"
        if expires_at is not None:
            expires = int(expires_at)
            url += f"?X-Expires={expires}&X-Signature={self.sign(key, expires)}"
        return url
