"""Cache policies: a paid submit is keyed by what it buys, a job's outcome by the job id.

Serializable isolation plus a lock means a second worker computing the same key waits for the first one's
record instead of submitting in parallel. FileSystemLockManager covers workers on one machine; a team on
several machines swaps in a shared lock manager (e.g. prefect-redis) via ``CLIPFLOW_LOCK_DIR``'s successor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.locking.filesystem import FileSystemLockManager
from prefect.transactions import IsolationLevel

from flows.runtime.settings import cache_expiration, lock_directory


class SafeFileSystemLockManager(FileSystemLockManager):
    """Prefect's FileSystemLockManager creates a lock file empty and fills it a moment later; a second process
    reading in between fails its task with "EOF while parsing" (seen with two workers). Here a file that is still
    being written is re-read briefly, then treated as held until two seconds after it was created."""

    _SETTLE_SECONDS = 0.5

    def _read_settled(self, key: str, read: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + self._SETTLE_SECONDS
        while True:
            try:
                return read()
            except ValueError:
                if time.monotonic() >= deadline:
                    # Not cached, so the next look reads the file again. Counted from the file's creation, an
                    # empty file whose writer died expires instead of blocking the key forever.
                    path = self._lock_path_for_key(key)
                    try:
                        created = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
                    except FileNotFoundError:  # released meanwhile
                        return None
                    return {"holder": "(lock being written)", "path": path, "expiration": created + timedelta(seconds=2)}
                time.sleep(0.01)

    def _get_lock_info(self, key: str, use_cache: bool = True) -> Any:
        return self._read_settled(key, lambda: super(SafeFileSystemLockManager, self)._get_lock_info(key, use_cache))

    async def _aget_lock_info(self, key: str, use_cache: bool = True) -> Any:
        # The sync read is a few bytes from local disk; reusing it keeps one settling path.
        return self._get_lock_info(key, use_cache)


def keyed_cache(key: Callable[[dict[str, Any]], str]) -> CachePolicy:
    """A cache policy whose key is ``key(parameters)`` only: not the task source, not the run id, so a new
    flow run (or a new code version) reuses what was already paid for."""

    def key_fn(context: TaskRunContext, parameters: dict[str, Any]) -> str:
        return key(parameters)

    return CachePolicy.from_cache_key_fn(key_fn).configure(
        isolation_level=IsolationLevel.SERIALIZABLE,
        lock_manager=SafeFileSystemLockManager(Path(lock_directory())),
    )


def cached_task_options(key: Callable[[dict[str, Any]], str]) -> dict[str, Any]:
    return {"cache_policy": keyed_cache(key), "persist_result": True, "cache_expiration": cache_expiration()}
