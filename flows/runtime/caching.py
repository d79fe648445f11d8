"""Cache policies: a paid submit is keyed by what it buys, a job's outcome by the job id.

Serializable isolation plus a lock means a second worker computing the same key waits for the first one's
record instead of submitting in parallel. The lock manager comes from ``lock_manager()`` (below):
by default ``SafeFileSystemLockManager``, lock files in ``CLIPFLOW_LOCK_DIR`` that expire 30 s after their
holder stops renewing them and free at once when the holder's process on this machine is dead (so a worker
killed mid-task never blocks a re-run); workers on several machines swap in a shared manager there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.transactions import IsolationLevel

from flows.runtime.locks import SafeFileSystemLockManager
from flows.runtime.redis_locks import RedisLeaseLockManager
from flows.runtime.settings import cache_expiration, lock_directory, settings

__all__ = ["SafeFileSystemLockManager", "cached_task_options", "keyed_cache", "lock_manager"]


def storage_key(raw: str) -> str:
    """The cache key as stored: a hash, because it names the cache record and the lock file, and ``raw`` may
    carry user strings (a space name, a title) that have no business in a path."""
    return "clipflow-" + hashlib.sha256(raw.encode()).hexdigest()


def keyed_cache(key: Callable[[dict[str, Any]], str]) -> CachePolicy:
    """A cache policy whose key is ``key(parameters)`` only: not the task source, not the run id, so a new
    flow run (or a new code version) reuses what was already paid for."""

    def key_fn(context: TaskRunContext, parameters: dict[str, Any]) -> str:
        return storage_key(key(parameters))

    return CachePolicy.from_cache_key_fn(key_fn).configure(
        isolation_level=IsolationLevel.SERIALIZABLE,
        lock_manager=lock_manager(),
    )


def cached_task_options(key: Callable[[dict[str, Any]], str]) -> dict[str, Any]:
    return {"cache_policy": keyed_cache(key), "persist_result": True, "cache_expiration": cache_expiration()}


def lock_manager() -> SafeFileSystemLockManager | RedisLeaseLockManager:
    """The lock manager of cached paid tasks, chosen by ``CLIPFLOW_LOCK_MANAGER``: ``file`` (default,
    ``SafeFileSystemLockManager`` in ``CLIPFLOW_LOCK_DIR``, one machine) or ``redis``
    (``RedisLeaseLockManager`` on ``CLIPFLOW_LOCK_REDIS_URL``, workers on several machines)."""
    chosen = settings()
    if chosen.lock_manager == "redis":
        return RedisLeaseLockManager(chosen.lock_redis_url)
    return SafeFileSystemLockManager(Path(lock_directory()))
