"""Fault injection: per-action error rate, latency, drop-after-accept, error-after-accept and jobs that end
failed, optionally limited to N calls. ``decide`` runs in both front doors (``volcengine.py`` for every VOD/CV
action, ``gateway.py`` for create and query), so a rule works on any action, read or submit."""

from __future__ import annotations

import random
import threading
from contextvars import ContextVar
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
# ... and after the job was created: what a lost answer looks like, a timeout in front of a backend that went on.
# Never an answer the vendor documents as safe to retry (throttling, saturation, Jimeng 50500/50501), which would
# tell the client (falsely) that nothing was created: Jimeng's is a gateway 504 without the service's envelope.
_DEFAULT_AFTER_ACCEPT_ERRORS = {
    "vod": ("InternalServiceTimeout", 504, "Internal service timeout (injected fault, the job was created)."),
    "cv": ("GatewayTimeout", 504, "504 Gateway Time-out"),
    "gateway": ("upstream_timeout", 504, "upstream request timed out (injected fault, the job was created)"),
}
_DEFAULT_AFTER_ACCEPT_BODY = {"vod": "vendor", "cv": "proxy", "gateway": "vendor"}


@dataclass
class FaultDecision:
    latency: float = 0.0
    error: ApiError | None = None
    drop_after_accept: bool = False
    error_after_accept: bool = False  # answer ``error`` after handling the request instead of before
    fail_job: bool = False  # the job this call creates ends failed


# Set around one handler call by ``answer_with_faults``: a handler that creates a job reads it (``job_must_fail``).
FAIL_JOB: ContextVar[bool] = ContextVar("emulator_fail_job", default=False)


def job_must_fail() -> bool:
    """Whether a fault rule asked that the job the current call creates end failed."""
    return FAIL_JOB.get()


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
                decision = FaultDecision(latency=rule.latency, drop_after_accept=rule.drop_after_accept,
                                         error_after_accept=rule.error_after_accept, fail_job=rule.fail_job)
                if rule.error_rate > 0 and self._rng.random() < rule.error_rate:
                    decision.error = self._error(rule, provider)
                return decision
        return FaultDecision()

    @staticmethod
    def _error(rule: FaultRule, provider: str) -> ApiError:
        defaults = _DEFAULT_AFTER_ACCEPT_ERRORS if rule.error_after_accept else _DEFAULT_ERRORS
        code, status, message = defaults[provider]
        body = _DEFAULT_AFTER_ACCEPT_BODY[provider] if rule.error_after_accept else "vendor"
        if rule.error is not None:
            status = rule.error.status
            code = rule.error.code if rule.error.code is not None else code
            message = rule.error.message or f"injected fault {code}"
            body = rule.error.body
        headers = {"Retry-After": "1"} if status == 429 else None
        return ApiError(code, status, message, headers=headers, body=body)
