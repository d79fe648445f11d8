"""Cache policies: a paid submit is keyed by what it buys, a job's outcome by the job id.

Serializable isolation plus a lock means a second worker computing the same key waits for the first one's
record instead of submitting in parallel. The lock manager comes from ``lock_manager()`` (below):
by default ``SafeFileSystemLockManager``, lock files in ``CLIPFLOW_LOCK_DIR`` that expire 30 s after their
holder stops renewing them and free at once when the holder's process on this machine is dead (so a worker
killed mid-task never blocks a re-run); workers on several machines swap in a shared manager there.

``@task(**cached_task_options(...))`` runs when a stage module is imported, where no setting may be read: the
policy's lock manager and the cache's expiration are resolved from the settings when Prefect first uses them in
a task run (``RuntimeLockPolicy.lock_manager``, ``RuntimeCacheExpiration``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect.cache_policies import CacheKeyFnPolicy, CachePolicy
from prefect.context import TaskRunContext
from prefect.transactions import IsolationLevel

from flows.coordination.locks import SafeFileSystemLockManager
from flows.coordination.redis_locks import RedisLeaseLockManager
from flows.runtime.settings import cache_expiration, lock_directory, settings

__all__ = [
    "RuntimeCacheExpiration", "RuntimeLockPolicy", "SafeFileSystemLockManager", "cached_task_options", "keyed_cache",
    "lock_manager",
]

LockManagers = SafeFileSystemLockManager | RedisLeaseLockManager


def storage_key(raw: str) -> str:
    """The cache key as stored: a hash, because it names the cache record and the lock file, and ``raw`` may
    carry user strings (a space name, a title) that have no business in a path."""
    return "clipflow-" + hashlib.sha256(raw.encode()).hexdigest()


_resolving = threading.Lock()


class RuntimeLockPolicy(CacheKeyFnPolicy):
    """A cache-key-function policy whose lock manager is ``lock_manager()`` of the settings in force when Prefect
    asks for it (each task run builds its result store from ``cache_policy.lock_manager``), kept while those
    settings stay the same. One given explicitly (``configure(lock_manager=...)``) is used as it is."""

    @property  # type: ignore[override]  # a dataclass field on CachePolicy
    def lock_manager(self) -> Any:
        given = self.__dict__.get("_given_lock_manager")
        if given is not None:
            return given
        chosen = settings()
        wanted = (chosen.lock_manager, chosen.lock_redis_url, lock_directory())
        with _resolving:
            resolved = self.__dict__.get("_resolved_lock_manager")
            if resolved is None or resolved[0] != wanted:
                resolved = (wanted, lock_manager())
                self.__dict__["_resolved_lock_manager"] = resolved
        return resolved[1]

    @lock_manager.setter
    def lock_manager(self, value: Any) -> None:
        self.__dict__["_given_lock_manager"] = value

    def __getstate__(self) -> dict[str, Any]:
        # a copy (Prefect's configure() deep-copies) resolves its own manager: threads and sockets do not copy
        return {k: v for k, v in self.__dict__.items() if k != "_resolved_lock_manager"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class RuntimeCacheExpiration:
    """``cache_expiration`` of a cached task: ``CLIPFLOW_CACHE_DAYS`` read when a result is stored. Prefect 3.8
    only computes ``now + task.cache_expiration``; a datetime refuses anything but a timedelta, so Python asks
    ``__radd__`` here, at run time."""

    def __radd__(self, moment: dt.datetime) -> dt.datetime:
        return moment + cache_expiration()

    def __repr__(self) -> str:
        return "RuntimeCacheExpiration(cache_days)"


def keyed_cache(key: Callable[[dict[str, Any]], str]) -> CachePolicy:
    """A cache policy whose key is ``key(parameters)`` only: not the task source, not the run id, so a new
    flow run (or a new code version) reuses what was already paid for. Reads no setting."""

    def key_fn(context: TaskRunContext, parameters: dict[str, Any]) -> str:
        return storage_key(key(parameters))

    return RuntimeLockPolicy(cache_key_fn=key_fn, isolation_level=IsolationLevel.SERIALIZABLE)


def cached_task_options(key: Callable[[dict[str, Any]], str]) -> dict[str, Any]:
    """Options of a cached paid task, for ``@task(**cached_task_options(...))`` at import: reads no setting."""
    return {"cache_policy": keyed_cache(key), "persist_result": True, "cache_expiration": RuntimeCacheExpiration()}


def lock_manager() -> LockManagers:
    """The lock manager of cached paid tasks, chosen by ``CLIPFLOW_LOCK_MANAGER``: ``file`` (default,
    ``SafeFileSystemLockManager`` in ``CLIPFLOW_LOCK_DIR``, one machine) or ``redis``
    (``RedisLeaseLockManager`` on ``CLIPFLOW_LOCK_REDIS_URL``, workers on several machines)."""
    chosen = settings()
    if chosen.lock_manager == "redis":
        return RedisLeaseLockManager(chosen.lock_redis_url)
    return SafeFileSystemLockManager(Path(lock_directory()))
