"""Every use of a private Prefect API (a ``prefect.…._name`` module or a ``_name`` attribute) in clipflow, in one
place, so a Prefect upgrade breaks here and in ``tests/flows/runtime/test_compat.py``, not silently elsewhere.

What clipflow relies on from Prefect 3.8 and where:

- Private (this module):
  - ``prefect.concurrency._events.emit_concurrency_acquisition_events`` / ``emit_concurrency_release_events``:
    the ``prefect.concurrency-limit.acquired/released`` events Prefect's ``concurrency()`` emits; clipflow's own
    lease holder (``flows.runtime.leases.held_lease``) emits them too so the UI shows the same. Missing → no
    events, nothing else breaks.
  - ``prefect.transactions.Transaction._holder``: the lock holder of the running task's transaction
    (``transaction_lock_holder``), to stop a task whose cache lock was lost while held.
  - ``FileSystemLockManager._lock_path_for_key`` / ``_get_lock_info`` (only to check, in tests, that our lock
    files sit where Prefect's would and that Prefect's own reader parses them, so a stock manager or an older
    clipflow on the same machine honours our expirations).
- Internal (not underscored, not documented): ``prefect.server.api.server.SubprocessASGIServer`` (benchmarks).
- Public, but behaviour we depend on (checked in test_compat): the ``LockManager`` protocol's signatures; that
  ``ResultStore.acquire_lock`` passes no ``hold_timeout`` (hence our own hold + renewal); the client's
  ``increment_concurrency_slots_with_lease`` / ``renew_concurrency_lease`` / ``release_concurrency_slots_with_lease``;
  the server's 60 s minimum lease (422 below), 423 + ``Retry-After`` when a limit is full, 410 when renewing a
  lease that is gone, and the repossessor setting.
- Public, behaviour the review gate depends on (``flows.stages.review``; checked in tests/flows/stages/test_review.py
  and tests/e2e/test_review.py): ``suspend_flow_run``/``pause_flow_run`` with a ``key`` that already fired in this
  run return the stored ``wait_for_input`` answer instead of pausing again (the server rejects the repeated
  pause), which is how a resumed, re-run suspended flow gets its reviewer's answer.

No longer used (replaced by public APIs): ``prefect.concurrency._asyncio.aacquire_concurrency_slots_with_lease``
/ ``arelease_concurrency_slots_with_lease`` (pacing), ``FileSystemLockManager._get_lock_info`` overrides (caching).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SERVER_MIN_LEASE_SECONDS = 60.0  # the API answers 422 to a shorter lease_duration (create and renew)

try:
    from prefect.concurrency._events import (
        emit_concurrency_acquisition_events as _emit_acquired,
    )
    from prefect.concurrency._events import (
        emit_concurrency_release_events as _emit_released,
    )
except ImportError:  # pragma: no cover - a Prefect without them: no events (test_compat fails)
    _emit_acquired = _emit_released = None

EVENTS_AVAILABLE = _emit_acquired is not None and _emit_released is not None


def emit_acquired(limits: list[Any], occupy: int) -> dict[Any, Any] | None:
    """The events of ``concurrency()`` for slots just acquired; returns what ``emit_released`` needs."""
    if not EVENTS_AVAILABLE or not limits:
        return None
    try:
        return _emit_acquired(limits, occupy)
    except Exception:  # noqa: BLE001 - events are informational
        logger.debug("could not emit concurrency acquisition events", exc_info=True)
        return None


def emit_released(limits: list[Any], occupy: int, events: dict[Any, Any] | None) -> None:
    if not EVENTS_AVAILABLE or not limits or events is None:
        return
    try:
        _emit_released(limits, occupy, events)
    except Exception:  # noqa: BLE001
        logger.debug("could not emit concurrency release events", exc_info=True)


def prefect_lock_path(directory: Path, key: str) -> Path:
    """Where Prefect's own ``FileSystemLockManager`` keeps the lock of ``key``."""
    from prefect.locking.filesystem import FileSystemLockManager

    return FileSystemLockManager(directory)._lock_path_for_key(key)


def prefect_read_lock(directory: Path, key: str) -> dict[str, Any] | None:
    """A lock file as Prefect's own ``FileSystemLockManager`` reads it (``holder``, ``expiration`` datetime)."""
    from prefect.locking.filesystem import FileSystemLockManager

    info = FileSystemLockManager(directory)._get_lock_info(key, use_cache=False)
    return dict(info) if info is not None else None


def repossessor_loop_seconds() -> float:
    """How often this process's settings say the server looks for expired leases (``PREFECT_SERVER_SERVICES_
    REPOSSESSOR_LOOP_SECONDS``, default 15; clipflow recommends 5). Only meaningful on the server's machine."""
    from prefect.settings import get_current_settings

    return float(get_current_settings().server.services.repossessor.loop_seconds)


def subprocess_api_server() -> Any:
    """Prefect's own server-in-a-subprocess (``prefect.server.api.server.SubprocessASGIServer``, what
    ``prefect_test_harness`` runs; internal, undocumented): a new instance, with ``start(timeout)``, ``stop()``
    and ``api_url``. Used by the benchmarks to run a Prefect API on another database."""
    from prefect.server.api.server import SubprocessASGIServer

    return SubprocessASGIServer()


def transaction_lock_holder(transaction: Any) -> str | None:
    """The holder name a Prefect transaction takes its cache lock as (``Transaction._holder``, private): how
    ``locks.check_task_lock`` tells the running task's lock from another holder's of the same key."""
    return getattr(transaction, "_holder", None)


def private_apis() -> dict[str, Any]:
    """Every private Prefect callable clipflow touches, by dotted name (for test_compat to check)."""
    from prefect.locking.filesystem import FileSystemLockManager

    return {
        "prefect.concurrency._events.emit_concurrency_acquisition_events": _emit_acquired,
        "prefect.concurrency._events.emit_concurrency_release_events": _emit_released,
        "prefect.locking.filesystem.FileSystemLockManager._lock_path_for_key": getattr(
            FileSystemLockManager, "_lock_path_for_key", None
        ),
        "prefect.locking.filesystem.FileSystemLockManager._get_lock_info": getattr(
            FileSystemLockManager, "_get_lock_info", None
        ),
    }
