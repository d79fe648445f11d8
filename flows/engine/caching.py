"""Cache policies: a paid submit is keyed by what it buys, a job's outcome by the job id.

A cached paid task uses Prefect's stock ``CacheKeyFnPolicy`` with its default isolation (READ_COMMITTED, no lock
manager): a re-run finds the stored record and skips the body. Two runs of the same key at the same moment may
both run the body; that costs nothing more, because the journal (``flows.engine.journal``), not a lock, decides
who pays: the second finds the job the first bought and waits on it too (duplicate status polls, paced by the
quotas).

``@task(**cached_task_options(...))`` runs when a stage module is imported, where no setting may be read: the
cache's expiration is resolved from the settings when Prefect stores a result (``RuntimeCacheExpiration``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

from prefect.cache_policies import CacheKeyFnPolicy, CachePolicy
from prefect.context import TaskRunContext

from flows.runtime.settings import cache_expiration

__all__ = ["RuntimeCacheExpiration", "cached_task_options", "keyed_cache", "storage_key"]


def storage_key(raw: str) -> str:
    """The cache key as stored: a hash, because it names the cache record, and ``raw`` may carry user strings
    (a space name, a title) that have no business in a path."""
    return "clipflow-" + hashlib.sha256(raw.encode()).hexdigest()


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

    return CacheKeyFnPolicy(cache_key_fn=key_fn)


def cached_task_options(key: Callable[[dict[str, Any]], str]) -> dict[str, Any]:
    """Options of a cached paid task, for ``@task(**cached_task_options(...))`` at import: reads no setting."""
    return {"cache_policy": keyed_cache(key), "persist_result": True, "cache_expiration": RuntimeCacheExpiration()}
