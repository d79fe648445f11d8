"""Every billed submission, in order: what a real account would be charged for."""

from __future__ import annotations

import threading
import time
from typing import Any


class Ledger:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []

    def record(
        self, *, provider: str, action: str, fingerprint: str, job_id: str, ak: str, request_id: str,
        emulated_time: float, priced: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            entry = {
                "seq": len(self._entries) + 1,
                "provider": provider,
                "action": action,
                "fingerprint": fingerprint,
                "job_id": job_id,
                "time": time.time(),
                "emulated_time": emulated_time,
                "ak": ak,
                "request_id": request_id,
                **(priced or {}),  # currency, billed items, amount (emulator.pricing)
            }
            self._entries.append(entry)
            return entry

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
