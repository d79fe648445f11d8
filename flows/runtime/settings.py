"""Run-time knobs read from the environment (``CLIPFLOW_*``), so deployments configure without code."""

from __future__ import annotations

import datetime as dt
import math
import os


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def time_scale() -> float:
    """Wall-clock seconds per provider second, from ``CLIPFLOW_TIME_SCALE``: multiplies every wait and retry
    delay. 1 in production; 0.01 against an emulator running 100x faster."""
    value = _float("CLIPFLOW_TIME_SCALE", 1.0)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"CLIPFLOW_TIME_SCALE must be a positive number, got {value!r}")
    return value


def cache_expiration() -> dt.timedelta:
    """How long a paid submit's cached answer is reused by a re-run (default 7 days)."""
    return dt.timedelta(days=_float("CLIPFLOW_CACHE_DAYS", 7.0))


def lock_directory() -> str:
    """Where cross-process cache locks live (one machine). Several machines need a shared lock manager."""
    return os.environ.get("CLIPFLOW_LOCK_DIR") or os.path.expanduser("~/.clipflow/locks")
