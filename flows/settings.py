"""Run-time knobs read from the environment (``CLIPFLOW_*``), so deployments configure without code."""

from __future__ import annotations

import datetime as dt
import os


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def time_scale() -> float:
    """Multiplier on every wait/retry delay. 1.0 in production; tiny against a time-scaled emulator."""
    return _float("CLIPFLOW_TIME_SCALE", 1.0)


def cache_expiration() -> dt.timedelta:
    """How long a paid submit's cached answer is reused by a re-run (default 7 days)."""
    return dt.timedelta(days=_float("CLIPFLOW_CACHE_DAYS", 7.0))


def lock_directory() -> str:
    """Where cross-process cache locks live (one machine). Several machines need a shared lock manager."""
    return os.environ.get("CLIPFLOW_LOCK_DIR") or os.path.expanduser("~/.clipflow/locks")
