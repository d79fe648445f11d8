"""Cache policies: a paid submit is keyed by what it buys, a job's outcome by the job id.

Serializable isolation plus a lock means a second worker computing the same key waits for the first one's
record instead of submitting in parallel. FileSystemLockManager covers workers on one machine; a team on
several machines swaps in a shared lock manager (e.g. prefect-redis) via ``CLIPFLOW_LOCK_DIR``'s successor.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.locking.filesystem import FileSystemLockManager
from prefect.transactions import IsolationLevel

from flows.settings import cache_expiration, lock_directory


def keyed_cache(key: Callable[[dict[str, Any]], str]) -> CachePolicy:
    """A cache policy whose key is ``key(parameters)`` only: not the task source, not the run id, so a new
    flow run (or a new code version) reuses what was already paid for."""

    def key_fn(context: TaskRunContext, parameters: dict[str, Any]) -> str:
        return key(parameters)

    return CachePolicy.from_cache_key_fn(key_fn).configure(
        isolation_level=IsolationLevel.SERIALIZABLE,
        lock_manager=FileSystemLockManager(Path(lock_directory())),
    )


def cached_task_options(key: Callable[[dict[str, Any]], str]) -> dict[str, Any]:
    return {"cache_policy": keyed_cache(key), "persist_result": True, "cache_expiration": cache_expiration()}
