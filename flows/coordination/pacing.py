"""This process's side of a quota: when a call may go out, and the local queue for a concurrency slot.

Every rate quota has a one-slot Prefect global concurrency limit, shared by every worker of the account
(``flows.coordination.quotas``): the *turn*, held with a lease by the process whose calls are going out. Within its
turn a process paces its calls itself, so no Prefect round trip sits in front of a call:

- ``qps <= SERIAL_MAX_QPS`` (SubmitAITranslationWorkflow's 1 QPS sets the pace of a whole batch): one call at a
  time, each ``1/qps`` after the previous call's *answer*: the provider saw that call no later than its answer
  left, so no two calls reach the provider closer than ``1/qps`` whatever the network does in between.
- faster quotas (polls, uploads): calls *start* ``1/qps`` apart and may be in flight together.

A process hands the turn back once nobody of its own is waiting or calling for ``LINGER_SECONDS`` (a batch's
polls come every few seconds; taking the turn again costs two Prefect calls), or after holding it for
``HOLD_SECONDS`` (serial) / ``FAST_HOLD_SECONDS`` (fast) so other processes get a go (Prefect cannot tell
whether anyone is waiting, and each hand-back costs about one interval) — and only once its last call's
interval has run out, so the next owner may call at once. The turn is a lease of ``LEASE_SECONDS`` (60 s, the
server's minimum) renewed in the background while held (``flows.coordination.leases``): a crashed owner's turn is
released by the next process of its machine that asks for it, and otherwise runs out 60 s after its last
renewal.

(Prefect's *rate* limits, one slot per call, were the first design: a server round trip per provider call, 13
of the 37 Prefect API calls a batch item cost, and a rate limit punishes asking early — a denied request
rewrites the row, so a 1-QPS limit with waiters granted about one slot per 1.5 s.)

All state is guarded by thread-safe primitives (``aiologic``): Prefect may run tasks on other threads and
event loops, and an asyncio lock would be bound to the first loop that used it.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiologic
from flows.coordination.leases import Lease, acquire_lease

logger = logging.getLogger(__name__)

SERIAL_MAX_QPS = 2.0
HOLD_SECONDS = 60.0  # longest a process keeps a serial quota's turn while it has calls queued
FAST_HOLD_SECONDS = 10.0  # the same for a fast quota: its hand-back costs a tenth of a second, not a second
LINGER_SECONDS = 2.0  # an idle turn is kept this long for the next call of this process


async def _sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


class Pacer:
    """The calls of this process under one rate quota (``limit_name`` is its one-slot Prefect limit)."""

    def __init__(self, limit_name: str, qps: float) -> None:
        if not qps > 0:
            raise ValueError(f"{limit_name}: qps must be positive")
        self.limit_name = limit_name
        self.qps = qps
        self.interval = 1.0 / qps
        self.serial = qps <= SERIAL_MAX_QPS
        self.hold_seconds = HOLD_SECONDS if self.serial else FAST_HOLD_SECONDS
        self._in_flight = 0  # fast: calls sent and not yet answered
        self.turns_taken = 0  # how often this process took the turn (bench figures)
        self._turn = aiologic.Lock()  # FIFO, usable from any thread or event loop
        self._guard = threading.Lock()
        self._send_at = 0.0  # time.monotonic() before which this process sends no call
        self._lease: Lease | None = None  # the turn's lease while this process holds it
        self._held_since = 0.0
        self._pending: threading.Timer | None = None  # a hand-back waiting for the linger and interval to pass

    @asynccontextmanager
    async def turn(self, *, strict: bool) -> AsyncIterator[None]:
        """Wait until this call may go out (the turn included); the body is the call."""
        if self.serial:
            async with self._turn:
                await self._own_turn(strict)
                await _sleep_until(self._send_at)
                try:
                    yield
                finally:  # answered, failed or cancelled: the next call waits a full interval from now
                    self._send_at = time.monotonic() + self.interval
                    if self._turn.waiting == 0:  # (this call still holds the admission lock)
                        self._hand_back_later()
            return
        async with self._turn:  # admission one at a time; the calls themselves overlap
            await self._own_turn(strict)
            await _sleep_until(self._send_at)
            with self._guard:
                self._send_at = time.monotonic() + self.interval
                self._in_flight += 1
        try:
            yield
        finally:
            with self._guard:
                self._in_flight -= 1
                idle = self._in_flight == 0 and not self._turn.locked()
            if idle:
                self._hand_back_later()

    async def _own_turn(self, strict: bool) -> None:
        with self._guard:  # a hand-back still pending: keep the turn instead
            if self._pending is not None:
                self._pending.cancel()
                self._pending = None
        if self._lease is not None and not self._lease.held:  # lost (renewals refused): take it again
            logger.warning("the turn of %s was lost; asking for it again", self.limit_name)
            self._take_lease()
        if self._lease is not None and time.monotonic() - self._held_since > self.hold_seconds:
            await _sleep_until(self._send_at)
            await self._release(self._take_lease())
            await asyncio.sleep(self.interval)  # a window for another process's retry to land in
        if self._lease is None:
            # lenient and no limit: a Lease that holds nothing
            self._lease = await acquire_lease([self.limit_name], 1, strict=strict)
            self._held_since = time.monotonic()
            self.turns_taken += 1

    def _hand_back_later(self) -> None:
        """Release the turn once it has been idle for ``LINGER_SECONDS`` and the last call's interval has run
        out, on a timer thread so the caller goes on at once (a timer outlives the caller's event loop). The
        timer is a daemon: a process that is done (finished, or suspended for a review) exits at once and hands
        every pending turn back on its way out (``hand_back_all``), rather than lingering while its worker
        may already be handing it the resumed run (a process worker with ``--limit`` crashes on that race)."""
        with self._guard:
            if self._pending is not None or self._lease is None:
                return
            delay = max(LINGER_SECONDS, self._send_at - time.monotonic())
            timer = threading.Timer(delay, self._hand_back_now)
            timer.daemon = True
            self._pending = timer
            timer.start()

    def _hand_back_now(self) -> None:
        with self._guard:
            if self._pending is not threading.current_thread():  # a new call kept the turn meanwhile
                return
            if self._in_flight:  # a fast call started as the timer fired: its end schedules the hand-back again
                self._pending = None
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

    def hand_back_pending(self) -> None:
        """At exit: a turn kept for a next call that will not come is released now. Not on Prefect's ephemeral
        server: it has stopped by now, and a client asking for it would start a new one that outlives us."""
        with self._guard:
            pending, self._pending = self._pending, None
            if pending is None:
                return
            pending.cancel()
            lease = self._take_lease()
        if lease is not None and not lease.on_own_server:
            time.sleep(max(0.0, self._send_at - time.monotonic()))  # the next owner may call at once
            lease.release()  # logs a failure: the lease then runs out by itself


_pacers: dict[str, Pacer] = {}
_local_slots: dict[str, aiologic.Semaphore] = {}
_registry_guard = threading.Lock()


@atexit.register
def hand_back_all() -> None:
    """Every turn this process keeps for a next call is released now (at exit, or before its server stops)."""
    for pacer in list(_pacers.values()):
        pacer.hand_back_pending()


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
