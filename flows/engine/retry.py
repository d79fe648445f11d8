"""Retry policy: only errors the provider layer marks retryable are retried, with exponential backoff + jitter."""

from __future__ import annotations

from typing import Any, SupportsIndex, overload

from prefect import Task
from prefect.client.schemas.objects import State, TaskRun

from flows.runtime.settings import time_scale
from providers.errors import ProviderError


def is_retryable(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect ``retry_condition_fn``: retry typed retryable errors only; auth/invalid/unknown fail at once.

    The engine hands over ``Failed(data=exception)``: read the exception directly (``state.result()`` would be a
    coroutine inside an async task and could touch result storage)."""
    exc = state.data
    return isinstance(exc, ProviderError) and exc.retryable


MIN_RETRY_DELAY = 0.01


class ScaledDelays(list[float]):
    """Retry delays in provider seconds, read by the task engine as wall-clock seconds scaled by the time scale
    of the moment it retries: ``@task(**retry_options())`` runs at import, where no setting may be read.

    Prefect 3.8 keeps a list ``retry_delay_seconds`` as it is and indexes it when a run fails (a callable would
    be called at decoration). The list itself holds the unscaled delays (what the API's task-run policy shows)."""

    @overload
    def __getitem__(self, index: SupportsIndex) -> float: ...
    @overload
    def __getitem__(self, index: slice) -> list[float]: ...

    def __getitem__(self, index: SupportsIndex | slice) -> float | list[float]:
        scale = time_scale()
        if isinstance(index, slice):
            return [max(d * scale, MIN_RETRY_DELAY) for d in super().__getitem__(index)]
        return max(super().__getitem__(index) * scale, MIN_RETRY_DELAY)


def retry_options(retries: int = 3, base_delay: float = 10.0) -> dict[str, Any]:
    """Task options shared by every stage task: exponential backoff from ``base_delay`` (10, 20, 40 s …), each
    delay multiplied by CLIPFLOW_TIME_SCALE when the retry happens. Reads no setting."""
    return {
        "retries": retries,
        "retry_delay_seconds": ScaledDelays(base_delay * 2**attempt for attempt in range(min(retries, 50))),
        "retry_jitter_factor": 0.5,
        "retry_condition_fn": is_retryable,
    }


def backoff_delay(exc: ProviderError, attempt: int) -> float:
    """Seconds before trying a refused or failing call again in place: the provider's Retry-After when it gave
    one (its real clock), else 1, 2, 4 … 30 s following the time scale."""
    retry_after = getattr(exc, "retry_after", None)
    return retry_after if retry_after is not None else min(2.0**attempt, 30.0) * time_scale()
