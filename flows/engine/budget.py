"""A budget of paid submissions for one batch run, checked right before money is spent.

The budget travels in a context variable: tasks awaited inside the batch flow share it, and submits that are
answered from the cache or the journal never reach the check, so a re-run spends nothing from it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextvars import ContextVar

from flows.engine import incidents
from providers.errors import ProviderError


class BudgetExceededError(ProviderError):
    """The batch has spent its allowance of paid submissions; nothing more is submitted."""


class Budget:
    def __init__(self, max_paid_submissions: int) -> None:
        if max_paid_submissions < 0:
            raise ValueError("max_paid_submissions: must be >= 0")
        self.limit = max_paid_submissions
        self.spent = 0
        self._lock = threading.Lock()

    def spend(self, provider: str, action: str) -> None:
        with self._lock:
            if self.spent >= self.limit:
                incidents.budget_exhausted(self.limit, self.spent, provider=provider, action=action)
                raise BudgetExceededError(
                    f"budget of {self.limit} paid submissions for this batch is used up; not submitting {action}",
                    provider=provider, action=action, retryable=False,
                )
            self.spent += 1

    def refund(self) -> None:
        """A unit spent on a send that did not happen (another process won it) or was refused (nothing billed)."""
        with self._lock:
            self.spent = max(0, self.spent - 1)


_current: ContextVar[Budget | None] = ContextVar("clipflow_budget", default=None)


@contextlib.contextmanager
def budget(max_paid_submissions: int | None) -> Iterator[Budget | None]:
    """Within the block every paid submit spends one unit; ``None`` means no limit."""
    guard = Budget(max_paid_submissions) if max_paid_submissions is not None else None
    token = _current.set(guard)
    try:
        yield guard
    finally:
        _current.reset(token)


def spend(provider: str, action: str) -> None:
    guard = _current.get()
    if guard is not None:
        guard.spend(provider, action)


def refund(provider: str, action: str) -> None:
    guard = _current.get()
    if guard is not None:
        guard.refund()
