"""Retry policy: only errors the provider layer marks retryable are retried, with exponential backoff + jitter."""

from __future__ import annotations

from typing import Any

from prefect import Task
from prefect.client.schemas.objects import State, TaskRun
from prefect.tasks import exponential_backoff

from flows.runtime.settings import time_scale
from providers.errors import ProviderError


def is_retryable(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect ``retry_condition_fn``: retry typed retryable errors only; auth/invalid/unknown fail at once.

    The engine hands over ``Failed(data=exception)``: read the exception directly (``state.result()`` would be a
    coroutine inside an async task and could touch result storage)."""
    exc = state.data
    return isinstance(exc, ProviderError) and exc.retryable


def retry_options(retries: int = 3, base_delay: float = 10.0) -> dict[str, Any]:
    """Task options shared by every stage task. Delays shrink with CLIPFLOW_TIME_SCALE for emulator runs."""
    return {
        "retries": retries,
        "retry_delay_seconds": exponential_backoff(backoff_factor=max(base_delay * time_scale(), 0.01))(retries),
        "retry_jitter_factor": 0.5,
        "retry_condition_fn": is_retryable,
    }


def backoff_delay(exc: ProviderError, attempt: int) -> float:
    """Seconds before trying a refused or failing call again in place: the provider's Retry-After when it gave
    one (its real clock), else 1, 2, 4 … 30 s following the time scale."""
    retry_after = getattr(exc, "retry_after", None)
    return retry_after if retry_after is not None else min(2.0**attempt, 30.0) * time_scale()
