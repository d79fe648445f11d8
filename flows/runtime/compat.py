"""Every use of a private Prefect API (a ``…._name`` module, a ``_name`` attribute or keyword, an
internal module) in clipflow, in one place, so an upgrade breaks here and in ``tests/flows/runtime/test_compat.py``,
not silently elsewhere. Importing this module imports no Prefect: each name is looked up when it is used.

What clipflow relies on from Prefect 3.8 and where:

- Private (this module):
  - ``prefect.concurrency._events.emit_concurrency_acquisition_events`` / ``emit_concurrency_release_events``:
    the ``prefect.concurrency-limit.acquired/released`` events Prefect's ``concurrency()`` emits; clipflow's own
    lease holder (``flows.coordination.leases.held_lease``) emits them too so the UI shows the same. Missing → no
    events, nothing else breaks.
  - The ``_sync=True`` keyword of Prefect's ``async_dispatch`` (``storage_read_path`` / ``storage_write_path``):
    a storage block's ``read_path``/``write_path`` run synchronously even in a thread that carries an async
    flow's run context (``flows.runtime.shared_files``, for storages that are neither local nor S3).
  - ``prefect.input.run_input.RunInput._description`` (``set_run_input_description``): the text the UI shows
    above a pause's Resume form (``flows.stages.review_form``).
- Internal (not underscored, not documented): ``prefect.server.api.server.SubprocessASGIServer`` and
  ``prefect.client.base.PrefectHttpxAsyncClient`` / ``PrefectHttpxSyncClient`` (benchmarks).
- Public, but behaviour we depend on (checked in test_compat): the client's
  ``increment_concurrency_slots_with_lease`` / ``renew_concurrency_lease`` / ``release_concurrency_slots_with_lease``;
  the server's 60 s minimum lease (422 below), 423 + ``Retry-After`` when a limit is full, 410 when renewing a
  lease that is gone, and the repossessor setting. Also that a task keeps a list ``retry_delay_seconds`` and
  indexes it on a retry, and adds ``cache_expiration`` to a datetime when it stores a result:
  ``flows.engine.retry`` / ``caching`` resolve settings there, never at import (checked in
  tests/flows/engine/test_retry.py and test_caching.py).
- Public, behaviour the review gate depends on (``flows.stages.review``; checked in tests/flows/stages/test_review.py
  and tests/e2e/test_review.py): ``suspend_flow_run``/``pause_flow_run`` with a ``key`` that already fired in this
  run return the stored ``wait_for_input`` answer instead of pausing again (the server rejects the repeated
  pause), which is how a resumed, re-run suspended flow gets its reviewer's answer.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

logger = logging.getLogger(__name__)

SERVER_MIN_LEASE_SECONDS = 60.0  # the API answers 422 to a shorter lease_duration (create and renew)


@functools.cache
def concurrency_event_emitters() -> tuple[Any, Any]:
    """``(emit_concurrency_acquisition_events, emit_concurrency_release_events)``, or Nones in a Prefect
    without them (no events; test_compat fails)."""
    try:
        from prefect.concurrency._events import (
            emit_concurrency_acquisition_events,
            emit_concurrency_release_events,
        )
    except ImportError:  # pragma: no cover
        return None, None
    return emit_concurrency_acquisition_events, emit_concurrency_release_events


def events_available() -> bool:
    return None not in concurrency_event_emitters()


def emit_acquired(limits: list[Any], occupy: int) -> dict[Any, Any] | None:
    """The events of ``concurrency()`` for slots just acquired; returns what ``emit_released`` needs."""
    if not events_available() or not limits:
        return None
    try:
        return concurrency_event_emitters()[0](limits, occupy)
    except Exception:  # noqa: BLE001 - events are informational
        logger.debug("could not emit concurrency acquisition events", exc_info=True)
        return None


def emit_released(limits: list[Any], occupy: int, events: dict[Any, Any] | None) -> None:
    if not events_available() or not limits or events is None:
        return
    try:
        concurrency_event_emitters()[1](limits, occupy, events)
    except Exception:  # noqa: BLE001
        logger.debug("could not emit concurrency release events", exc_info=True)


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


def storage_read_path(storage: Any, path: str) -> bytes:
    """``storage.read_path(path)`` run synchronously in any context: ``_sync=True`` is the private switch of
    Prefect's ``async_dispatch`` (without it a thread that carries an async flow's run context gets a coroutine)."""
    return storage.read_path(path, _sync=True)


def storage_write_path(storage: Any, path: str, content: bytes) -> None:
    """``storage.write_path(path, content)`` run synchronously in any context (see ``storage_read_path``)."""
    storage.write_path(path, content, _sync=True)


def set_run_input_description(form: Any, description: str) -> None:
    """The text the Prefect UI shows above a Resume form: ``RunInput._description`` (private), which
    ``RunInput.save`` stores beside the schema. ``with_initial_data(description=…)`` sets it too, but a subclass
    made afterwards (to add a schema) starts again from the default."""
    form._description = description


def prefect_http_client_types() -> tuple[type, type]:
    """The httpx client classes Prefect's API clients send through (async, sync), from the internal
    ``prefect.client.base``: the benchmarks count the requests those send."""
    from prefect.client.base import PrefectHttpxAsyncClient, PrefectHttpxSyncClient

    return PrefectHttpxAsyncClient, PrefectHttpxSyncClient


def private_apis() -> dict[str, Any]:
    """Every private Prefect callable clipflow touches, by dotted name (for test_compat)."""
    acquired, released = concurrency_event_emitters()
    return {
        "prefect.concurrency._events.emit_concurrency_acquisition_events": acquired,
        "prefect.concurrency._events.emit_concurrency_release_events": released,
    }
