"""This process's side of a quota: when a call may go out, and the local queue for a concurrency slot.

Every rate quota has a Prefect global concurrency limit, shared by every worker of the account (``flows.runtime.quotas``).
How it is used depends on how slow the quota is:

- ``qps > SERIAL_MAX_QPS``: a Prefect *rate* limit (``ceil(qps)`` slots decaying at ``qps``/s), one slot per
  call. The process reserves start times ``1/qps`` apart before it asks, because Prefect's rate limit punishes
  asking early: it decays ``floor(qps x seconds since the row was last written)`` and a denied request writes
  the row too, so waiters that ask early keep resetting the clock (a 1-QPS limit with waiters grants about one
  slot per 1.5 s).
- ``qps <= SERIAL_MAX_QPS`` (SubmitAITranslationWorkflow's 1 QPS sets the pace of a whole batch): a one-slot
  *turn*, held with a lease by the process whose calls are going out. Within its turn a process sends one call
  at a time, each ``1/qps`` after the previous call's *answer*: the provider saw that call no later than its
  answer left, so no two calls reach the provider closer than ``1/qps`` whatever the network does in between,
  and no Prefect round trip sits between two calls. A process hands the turn back when nobody of its own is
  waiting, or after ``HOLD_SECONDS`` so other processes get a go (Prefect cannot tell whether anyone is
  waiting, and each hand-back costs about one interval), and only once its last call's interval has
  run out, so the next owner may call at once. The turn is a lease of ``LEASE_SECONDS`` (60 s, the server's
  minimum) renewed in the background while held (``flows.runtime.leases``): a crashed owner's turn is released
  by the next process of its machine that asks for it, and otherwise runs out 60 s after its last renewal.

All state is guarded by thread-safe primitives (``aiologic``): Prefect may run tasks on other threads and
event loops, and an asyncio lock would be bound to the first loop that used it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiologic
from prefect.concurrency.asyncio import rate_limit

from flows.runtime.leases import LEASE_SECONDS, Lease, acquire_lease  # noqa: F401 - LEASE_SECONDS re-exported

logger = logging.getLogger(__name__)

SERIAL_MAX_QPS = 2.0
HOLD_SECONDS = 60.0  # longest a process keeps a serial quota's turn while it has calls queued


async def _sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


class Pacer:
    """The calls of this process under one rate quota (``limit_name`` is its Prefect rate limit)."""

    def __init__(self, limit_name: str, qps: float) -> None:
        if not qps > 0:
            raise ValueError(f"{limit_name}: qps must be positive")
        self.limit_name = limit_name
        self.qps = qps
        self.interval = 1.0 / qps
        self.serial = qps <= SERIAL_MAX_QPS
        self.turns_taken = 0  # serial: how often this process took the turn (bench figures)
        self._turn = aiologic.Lock()  # FIFO, usable from any thread or event loop
        self._guard = threading.Lock()
        self._send_at = 0.0  # time.monotonic() before which this process sends no call
        self._lease: Lease | None = None  # serial: the turn's lease while this process holds it
        self._held_since = 0.0
        self._pending: threading.Timer | None = None  # serial: a hand-back waiting for the interval to pass

    @asynccontextmanager
    async def turn(self, *, strict: bool) -> AsyncIterator[None]:
        """Wait until this call may go out (Prefect's slot included); the body is the call."""
        if not self.serial:
            with self._guard:  # reserve a start: calls go out one interval apart, never in a burst
                start = max(time.monotonic(), self._send_at)
                self._send_at = start + self.interval
            await _sleep_until(start)
            await rate_limit(self.limit_name, occupy=1, strict=strict)
            yield
            return
        async with self._turn:
            await self._own_turn(strict)
            await _sleep_until(self._send_at)
            try:
                yield
            finally:  # answered, failed or cancelled: the next call waits a full interval from now
                self._send_at = time.monotonic() + self.interval
                if self._turn.waiting == 0:
                    self._hand_back_later()

    async def _own_turn(self, strict: bool) -> None:
        with self._guard:  # a hand-back still pending: keep the turn instead
            if self._pending is not None:
                self._pending.cancel()
                self._pending = None
        if self._lease is not None and not self._lease.held:  # lost (renewals refused): take it again
            logger.warning("the turn of %s was lost; asking for it again", self.limit_name)
            self._take_lease()
        if self._lease is not None and time.monotonic() - self._held_since > HOLD_SECONDS:
            await _sleep_until(self._send_at)
            await self._release(self._take_lease())
            await asyncio.sleep(self.interval)  # a window for another process's retry to land in
        if self._lease is None:
            # lenient and no limit: a Lease that holds nothing
            self._lease = await acquire_lease([self.limit_name], 1, strict=strict)
            self._held_since = time.monotonic()
            self.turns_taken += 1

    def _hand_back_later(self) -> None:
        """Release the turn once the last call's interval has run out, on a timer thread so the caller goes
        on at once (a timer outlives the caller's event loop; the process waits for it at exit)."""
        with self._guard:
            timer = threading.Timer(max(0.0, self._send_at - time.monotonic()), self._hand_back_now)
            timer.daemon = False
            self._pending = timer
            timer.start()

    def _hand_back_now(self) -> None:
        with self._guard:
            if self._pending is not threading.current_thread():  # a new call kept the turn meanwhile
                return
            self._pending = None
            lease = self._take_lease()
        if lease is not None:
            lease.release()  # logs a failure: the lease then runs out by itself

    def _take_lease(self) -> Lease | None:
        lease, self._lease = self._lease, None
        return lease

    async def _release(self, lease: Lease | None) -> None:
        if lease is not None:
            await lease.arelease()


_pacers: dict[str, Pacer] = {}
_local_slots: dict[str, aiologic.Semaphore] = {}
_registry_guard = threading.Lock()


def pacer_for(limit_name: str, qps: float) -> Pacer:
    """This process's pacer for one rate limit (a new one when the quota's qps changed)."""
    with _registry_guard:
        pacer = _pacers.get(limit_name)
        if pacer is None or pacer.qps != qps:
            pacer = _pacers[limit_name] = Pacer(limit_name, qps)
        return pacer


def local_slots_for(limit_name: str, concurrency: int) -> aiologic.Semaphore:
    """This process's queue for a concurrency quota: callers wait here, one per slot asks Prefect, instead of
    all polling Prefect (whose 423 + Retry-After hands a freed slot over late)."""
    with _registry_guard:
        slots = _local_slots.get(limit_name)
        if slots is None or slots.initial_value != concurrency:
            slots = _local_slots[limit_name] = aiologic.Semaphore(concurrency)
        return slots
