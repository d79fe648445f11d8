"""Retry policy: only errors the provider layer marks retryable are retried, with exponential backoff + jitter."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from prefect import Task
from prefect.client.schemas.objects import State, TaskRun
from prefect.tasks import exponential_backoff

from flows.runtime.settings import time_scale
from providers.errors import ProviderError, RequestNotSentError, ThrottledError

T = TypeVar("T")


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


async def call_rejected_safe(call: Callable[[], Awaitable[T]], *, attempts: int = 5) -> T:
    """Repeat a call that the provider *refused* (throttled or never sent): nothing was done or billed, so an
    in-place retry is always safe, even for paid submits. Honours Retry-After."""
    for attempt in range(attempts):
        try:
            return await call()
        except (ThrottledError, RequestNotSentError) as exc:
            if attempt == attempts - 1:
                raise
            retry_after = getattr(exc, "retry_after", None)
            # Retry-After is the provider's real clock; our own backoff follows the time scale.
            await asyncio.sleep(retry_after if retry_after is not None else min(2.0**attempt, 30.0) * time_scale())
    raise AssertionError("unreachable")
