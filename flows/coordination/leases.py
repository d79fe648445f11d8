"""Prefect concurrency leases that a dead process cannot hold for long.

Every slot clipflow takes from a Prefect global concurrency limit (the jobs-in-flight slot in
``flows.coordination.quotas.hold_slot``, the slow-quota turn in ``flows.coordination.pacing``) is a lease taken here.
Prefect's own ``concurrency()`` is not used because it hides the lease id (needed to release a dead holder's
slot), gives up renewing after three failures, and cancels the body when a lease is lost, which would abandon a
wait on a job already paid for.

- A lease lasts ``LEASE_SECONDS`` (60, the server's minimum); a daemon thread renews it every ``RENEW_SECONDS``.
- Each holder registers its lease on this machine (``lease_heartbeats.registry_directory``) and writes a shared
  heartbeat every ``HEARTBEAT_SECONDS`` to the result storage (the journal's bucket in production).
- A waiter answered 423 (limit full) releases the leases of dead holders first: a gone pid of this machine at
  once, elsewhere a heartbeat older than ``STALE_SECONDS`` (``flows.coordination.lease_heartbeats``).

Bounds (``BOUND_SECONDS`` = 60 is the promise): a dead holder on this machine frees its slot within
``WORST_CASE_LOCAL_SECONDS`` (5 s); on another machine within ``WORST_CASE_REMOTE_SECONDS`` (stale + poll +
one listing = 31 s, plus clock skew); with the shared storage unreachable the lease expires and the server's
repossessor revokes it (``WORST_CASE_REMOTE_FALLBACK_SECONDS`` = 70 s with a 5 s repossessor loop). A lease
whose renewal is refused is *lost*: logged, ``Lease.held`` turns False, and the body goes on.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import json
import logging
import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.responses import ConcurrencyLimitWithLeaseResponse, MinimalConcurrencyLimitResponse
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.results import aget_default_result_storage

from flows.runtime import compat, shared_files
from flows.coordination.lease_heartbeats import (
    _GONE, reap_dead_leases, reap_stale_leases, registry_directory, shared_path,
)
from flows.runtime.processes import Heartbeat, ProcessIdentity, this_process
from flows.runtime.settings import settings, variable

logger = logging.getLogger(__name__)

LEASE_SECONDS = compat.SERVER_MIN_LEASE_SECONDS  # 60
RENEW_SECONDS = 15.0
RETRY_SECONDS = 3.0
POLL_SECONDS = 5.0
RECOMMENDED_REPOSSESSOR_LOOP_SECONDS = 5.0
HEARTBEAT_SECONDS = 5.0  # a holder rewrites its shared heartbeat this often
STALE_SECONDS = 25.0  # a heartbeat older than this (by the waiter's clock) belongs to a dead holder
STORAGE_SLACK_SECONDS = 1.0  # the waiter's listing of the heartbeats plus the release request
HEARTBEAT_ENV = variable("lease_heartbeat_seconds")
STALE_ENV = variable("lease_stale_seconds")
BOUND_SECONDS = 60.0  # the requirement: no slot of a dead process blocks a re-run longer than this
WORST_CASE_LOCAL_SECONDS = POLL_SECONDS
WORST_CASE_REMOTE_SECONDS = STALE_SECONDS + POLL_SECONDS + STORAGE_SLACK_SECONDS  # 31
WORST_CASE_REMOTE_FALLBACK_SECONDS = LEASE_SECONDS + RECOMMENDED_REPOSSESSOR_LOOP_SECONDS + POLL_SECONDS  # 70

_LOCKED = 423

_lease_beats = Heartbeat("clipflow-lease-renewal")
_shared_beats = Heartbeat("clipflow-lease-heartbeat")  # its own thread: a slow bucket never delays a renewal
_NO_STORAGE = object()


def heartbeat_seconds() -> float:
    """``HEARTBEAT_SECONDS``, or ``$CLIPFLOW_LEASE_HEARTBEAT_SECONDS``."""
    return settings().lease_heartbeat_seconds


def stale_seconds() -> float:
    """``STALE_SECONDS``, or ``$CLIPFLOW_LEASE_STALE_SECONDS``; never less than three heartbeats."""
    return max(settings().lease_stale_seconds, 3 * heartbeat_seconds())


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


@dataclass(eq=False)
class Lease:
    """Slots held on Prefect limits ``names`` (``lease_id`` None: the limits do not exist and the mode is lenient,
    so nothing is held). Release with ``arelease()`` or, from any thread, ``release()``; both are idempotent."""

    lease_id: UUID | None
    names: tuple[str, ...]
    occupy: int
    limits: list[MinimalConcurrencyLimitResponse]
    duration: float
    api_url: str
    registry: Path = field(default_factory=registry_directory, repr=False)  # where its entry lives
    storage: Any = field(default=None, repr=False)  # shared storage of its heartbeat (None: none kept)
    heartbeat: float = field(default_factory=heartbeat_seconds)
    _context: contextvars.Context = field(default_factory=contextvars.copy_context, repr=False)
    _released: bool = False
    _lost: bool = False
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _shared_guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def on_own_server(self) -> bool:
        """Taken on Prefect's ephemeral server (no ``PREFECT_API_URL``), which ends with this process."""
        from prefect.settings import PREFECT_API_URL

        return not self._context.run(PREFECT_API_URL.value)

    @property
    def held(self) -> bool:
        """Still ours: not released, and not lost (renewals refused: expired, revoked, server restarted)."""
        return not self._released and not self._lost

    @property
    def renewing(self) -> bool:
        """The background thread renews it."""
        return self.lease_id is not None and self.lease_id in _lease_beats

    @property
    def path(self) -> Path:
        return self.registry / f"{self.lease_id}.json"

    @property
    def shared_path(self) -> str:
        return shared_path(self.lease_id)

    @property
    def beating(self) -> bool:
        """The heartbeat thread keeps its shared heartbeat fresh."""
        return self.lease_id is not None and self.lease_id in _shared_beats

    def _mark_released(self) -> bool:
        with self._guard:
            if self._released:
                return False
            self._released = True
        if self.lease_id is not None:
            _lease_beats.remove(self.lease_id)
            _shared_beats.remove(self.lease_id)
        return self.lease_id is not None

    def _forget(self) -> None:
        """The slot is free on the server: drop the local registry entry and the shared heartbeat. Kept while
        the release has not succeeded, so a waiting process can still find the lease and release it (at once
        when this process is dead, else once its heartbeat is stale)."""
        self.path.unlink(missing_ok=True)
        self._forget_shared()

    # --- the shared heartbeat (blocking storage calls: heartbeat thread, release thread, asyncio.to_thread) ---

    def _beat_shared(self) -> bool:
        """The beat (heartbeat thread): rewrite the heartbeat with a fresh ``renewed_at``."""
        if not self.held:
            self._forget_shared()
            return False
        with self._shared_guard:
            if not self.held:  # released meanwhile: its file is (being) removed
                return False
            entry = {"lease_id": str(self.lease_id), "names": list(self.names), "api_url": self.api_url,
                     "occupy": self.occupy, **this_process().to_json(), "heartbeat_seconds": self.heartbeat,
                     "renewed_at": _now_iso()}
            shared_files.write_json(self.storage, self.shared_path, entry)
        return True

    def _forget_shared(self) -> None:
        if self.storage is None or self.lease_id is None:
            return
        with self._shared_guard:
            try:
                shared_files.delete(self.storage, self.shared_path)
            except Exception as exc:  # noqa: BLE001 - a stale heartbeat of a released lease is harmless
                logger.debug("could not remove the heartbeat of lease %s (%s)", self.lease_id, type(exc).__name__)

    async def arelease(self) -> None:
        if not self._mark_released():
            return
        try:
            async with get_client() as client:
                await client.release_concurrency_slots_with_lease(self.lease_id)
        except BaseException as exc:  # cancelled or failed: hand the release to a thread, never leak the slot
            threading.Thread(target=self._release_on_server, name="clipflow-lease-release", daemon=True).start()
            if not isinstance(exc, Exception):
                raise
            logger.debug("releasing lease %s from a thread (%s)", self.lease_id, type(exc).__name__)
            return
        await asyncio.to_thread(self._forget)

    def release(self) -> None:
        if self._mark_released():
            self._release_on_server()

    def _release_on_server(self) -> None:
        def release() -> None:
            with thread_client() as client:
                client.release_concurrency_slots_with_lease(self.lease_id)

        try:
            self._context.copy().run(release)
        except Exception as exc:  # noqa: BLE001 - a waiting process releases it, or it runs out by itself
            logger.warning("could not release the slot of %s (%s); a process waiting for it releases it, or it "
                           "frees itself within %.0f s", ", ".join(self.names), type(exc).__name__, LEASE_SECONDS)
            return
        self._forget()

    def _renew(self) -> bool:
        """The beat (lease renewal thread)."""
        if not self.held:
            return False

        def renew() -> None:
            with thread_client() as client:
                client.renew_concurrency_lease(self.lease_id, lease_duration=self.duration)

        try:
            self._context.copy().run(renew)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code not in _GONE:
                raise
            if not self._released:
                self._lost = True
                self.path.unlink(missing_ok=True)
                _shared_beats.remove(self.lease_id)
                self._forget_shared()
                logger.warning("the slot of %s was lost (lease %s expired or was revoked); the holder goes on "
                               "without it", ", ".join(self.names), self.lease_id)
            return False
        _write_entry(self)
        return True


# --- the registry of leases held by processes of this machine -----------------------------------------------


def _write_entry(lease: Lease) -> None:
    directory = lease.registry
    directory.mkdir(parents=True, exist_ok=True)
    with lease._guard:
        if lease._released:
            return
        me: ProcessIdentity = this_process()
        entry = {"lease_id": str(lease.lease_id), "api_url": lease.api_url, "names": list(lease.names),
                 "occupy": lease.occupy, "lease_duration": lease.duration, **me.to_json(),
                 "renewed_at": _now_iso()}
        tmp = directory / f".{lease.lease_id}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(entry))
        os.replace(tmp, lease.path)


async def _default_storage() -> Any:
    from flows.runtime.resources import per_run

    try:
        return await per_run("result-storage", "", aget_default_result_storage)  # once per flow run
    except Exception as exc:  # noqa: BLE001 - the lease expiry still frees a dead holder's slot
        logger.warning("no shared storage for lease heartbeats (%s: %s)", type(exc).__name__, exc)
        return None


# --- taking slots -------------------------------------------------------------------------------------------


_thread_clients: dict[str, Any] = {}
_thread_clients_guard = threading.Lock()


@contextmanager
def thread_client() -> Iterator[Any]:
    """The sync Prefect client of the renewal and release threads: one per API URL for the process. A new client
    per call would open a connection and probe ``/csrf-token`` every time (a Prefect API call per renewal and
    per hand-back, bench/vs_plain.py). httpx's client is thread-safe; it is closed at exit."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:  # an ephemeral API: nothing to share
        with get_client(sync_client=True) as client:
            yield client
        return
    with _thread_clients_guard:
        client = _thread_clients.get(url)
        if client is None:
            client = get_client(sync_client=True)
            client.__enter__()
            _thread_clients[url] = client
    yield client


@atexit.register
def _close_thread_clients() -> None:
    with _thread_clients_guard:
        clients = list(_thread_clients.values())
        _thread_clients.clear()
    for client in clients:
        try:
            client.__exit__(None, None, None)
        except Exception:  # noqa: BLE001 - exiting anyway
            pass


async def acquire_lease(
    names: Sequence[str],
    occupy: int = 1,
    *,
    strict: bool = True,
    lease_duration: float = LEASE_SECONDS,
    poll_seconds: float = POLL_SECONDS,
    storage: Any = _NO_STORAGE,
    heartbeat: float | None = None,
    stale: float | None = None,
) -> Lease:
    """Wait for ``occupy`` slots of every limit in ``names`` and hold them with a renewed lease.

    ``strict``: a missing limit raises ``ConcurrencySlotAcquisitionError``; otherwise it is logged and nothing
    is held (Prefect's ``strict=False``). ``storage``: where heartbeats are shared (Prefect's default result
    storage unless given; None: no heartbeat, no stale reaping); ``heartbeat``/``stale``: seconds
    (``heartbeat_seconds()``/``stale_seconds()`` unless given)."""
    names = tuple(names)
    if storage is _NO_STORAGE:
        storage = await _default_storage()
    heartbeat = heartbeat_seconds() if heartbeat is None else heartbeat
    stale = stale_seconds() if stale is None else stale
    async with get_client() as client:
        api_url = str(client.api_url)
        while True:
            await reap_dead_leases(client)
            try:
                response = await client.increment_concurrency_slots_with_lease(
                    names=list(names), slots=occupy, mode="concurrency", lease_duration=lease_duration
                )
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != _LOCKED:
                    raise ConcurrencySlotAcquisitionError(
                        f"Unable to acquire concurrency slots on {list(names)!r}: {exc.response.status_code} "
                        f"{exc.response.text[:200]}"
                    ) from exc
                if await reap_stale_leases(client, names, storage, stale):  # the limit is full: dead holders?
                    continue  # try again at once
                try:
                    retry_after = float(exc.response.headers.get("Retry-After", poll_seconds))
                except ValueError:
                    retry_after = poll_seconds
                await asyncio.sleep(min(max(retry_after, 0.05), poll_seconds))
                continue
            except Exception as exc:
                raise ConcurrencySlotAcquisitionError(f"Unable to acquire concurrency slots on {list(names)!r}") from exc
            granted = ConcurrencyLimitWithLeaseResponse.model_validate(response.json())
            break
    if not granted.limits:
        if strict:
            raise ConcurrencySlotAcquisitionError(f"Concurrency limits {list(names)!r} must be created before acquiring slots")
        logger.warning("Concurrency limits %r do not exist - skipping acquisition.", list(names))
        return Lease(None, names, occupy, [], lease_duration, api_url)
    lease = Lease(granted.lease_id, names, occupy, granted.limits, lease_duration, api_url, storage=storage,
                  heartbeat=heartbeat)
    _write_entry(lease)
    _lease_beats.add(lease.lease_id, min(RENEW_SECONDS, lease_duration / 4), lease._renew, retry=RETRY_SECONDS)
    if storage is not None:
        try:
            await asyncio.to_thread(lease._beat_shared)
        except Exception as exc:  # noqa: BLE001 - the heartbeat thread tries again
            logger.warning("could not write the heartbeat of lease %s (%s)", lease.lease_id, type(exc).__name__)
        _shared_beats.add(lease.lease_id, heartbeat, lease._beat_shared, retry=min(RETRY_SECONDS, heartbeat))
    return lease


@asynccontextmanager
async def held_lease(
    names: Sequence[str], occupy: int = 1, *, strict: bool = True, lease_duration: float = LEASE_SECONDS
) -> AsyncIterator[Lease]:
    """``acquire_lease`` for the body, with Prefect's concurrency events; released however the body ends."""
    lease = await acquire_lease(names, occupy, strict=strict, lease_duration=lease_duration)
    events = compat.emit_acquired(lease.limits, occupy)
    try:
        yield lease
    finally:
        await lease.arelease()
        compat.emit_released(lease.limits, occupy, events)


def held_leases() -> int:
    """How many leases this process is renewing (diagnostics, tests)."""
    return len(_lease_beats)


def time_to_recover(
    remote: bool,
    repossessor_loop_seconds: float = RECOMMENDED_REPOSSESSOR_LOOP_SECONDS,
    *,
    shared_storage: bool = True,
    stale: float = STALE_SECONDS,
) -> float:
    """Worst-case seconds before a slot of a dead holder is free for a waiter (module docstring), not counting
    clock skew between the machines (``shared_storage``: the heartbeats can be read; otherwise lease expiry)."""
    if not remote:
        return WORST_CASE_LOCAL_SECONDS
    if shared_storage:
        return stale + POLL_SECONDS + STORAGE_SLACK_SECONDS
    return LEASE_SECONDS + repossessor_loop_seconds + POLL_SECONDS

