"""Token buckets per (access key, action): the documented per-user QPS limits."""

from __future__ import annotations

import math
import threading
import time


class QuotaBook:
    def __init__(self) -> None:
        # (key, action) -> (tokens, last refill, qps the bucket was filled for)
        self._buckets: dict[tuple[str, str], tuple[float, float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, action: str, qps: float | None) -> float | None:
        """Consume one token; return None when allowed, else seconds until a token is available.

        Capacity is max(1, qps) so a 1-QPS action allows exactly one call per second. Real (monotonic) time,
        not the scaled clock: QPS is about how fast clients call, not how long jobs take.
        """
        if not qps or qps <= 0:
            return None
        capacity = max(1.0, qps)
        now = time.monotonic()
        with self._lock:
            tokens, last, filled_for = self._buckets.get((key, action), (capacity, now, qps))
            if filled_for != qps:  # the limit was reconfigured: start from a full bucket at the new rate
                tokens = capacity
            tokens = min(capacity, tokens + (now - last) * qps)
            if tokens >= 1.0:
                self._buckets[(key, action)] = (tokens - 1.0, now, qps)
                return None
            self._buckets[(key, action)] = (tokens, now, qps)
            return (1.0 - tokens) / qps

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


def retry_after_header(wait: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(wait)))}
