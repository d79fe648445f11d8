"""The emulated clock: wall time plus an offset tests can advance (to reach expiry without waiting)."""

from __future__ import annotations

import datetime as dt
import threading
import time


class Clock:
    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._offset += max(0.0, seconds)
            return self._offset

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0

    @property
    def offset(self) -> float:
        return self._offset


def iso(ts: float | None) -> str:
    """RFC 3339 UTC the way VOD prints times; empty string for 'not yet'."""
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def phase(elapsed: float, phases: list[tuple[str, float]], final: str) -> tuple[str, float]:
    """Which named phase ``elapsed`` seconds falls in, and the fraction of that phase done (1.0 for final)."""
    start = 0.0
    for name, duration in phases:
        if elapsed < start + duration:
            return name, (elapsed - start) / duration if duration > 0 else 1.0
        start += duration
    return final, 1.0
