"""Fault injection: per-action error rate, latency and drop-after-accept, optionally limited to N calls."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from emulator.config import FaultRule
from emulator.errors import ApiError

SATURATED = "当前分组上游负载已饱和，请稍后再试 (upstream load saturated)"

# What a fault answers when the rule names no error: the provider's generic retryable server error.
_DEFAULT_ERRORS = {
    "vod": ("InternalError", 500, "Internal error (injected fault)."),
    "cv": (50500, 500, "Internal Error"),
    "gateway": ("upstream_saturated", 503, SATURATED),
}


@dataclass
class FaultDecision:
    latency: float = 0.0
    error: ApiError | None = None
    drop_after_accept: bool = False


class FaultBook:
    def __init__(self, rules: list[FaultRule] | None = None, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._rules: list[FaultRule] = [r.model_copy() for r in rules or []]

    def set(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self._rules = [r.model_copy() for r in rules]

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return [r.model_copy() for r in self._rules]

    def decide(self, action: str, provider: str) -> FaultDecision:
        with self._lock:
            for rule in self._rules:
                if rule.action not in (action, "*"):
                    continue
                if rule.count is not None:
                    if rule.count <= 0:
                        continue
                    rule.count -= 1
                decision = FaultDecision(latency=rule.latency, drop_after_accept=rule.drop_after_accept)
                if rule.error_rate > 0 and self._rng.random() < rule.error_rate:
                    decision.error = self._error(rule, provider)
                return decision
        return FaultDecision()

    @staticmethod
    def _error(rule: FaultRule, provider: str) -> ApiError:
        code, status, message = _DEFAULT_ERRORS[provider]
        if rule.error is not None:
            status = rule.error.status
            code = rule.error.code if rule.error.code is not None else code
            message = rule.error.message or f"injected fault {code}"
        headers = {"Retry-After": "1"} if status == 429 else None
        return ApiError(code, status, message, headers=headers)
