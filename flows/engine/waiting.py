"""When to ask a provider whether a job is done.

Guarantees, for any job finishing at T ≤ 30 min after the wait starts (``MAX_CALLS``/``HORIZON``):

- at most 12 status calls in total;
- the first status call after T happens by T + max(T/2, 30 s) (``notice_bound``).

The second rule fixes the shape: with consecutive polls at p < q, a job finishing just after p is noticed at q,
so q - p ≤ max(p/2, 30): additive steps of 30 s up to a minute, then growth of at most 1.5x. Growing as fast as
the rule allows (with a 5 % safety margin for timer jitter) reaches 30 min in 11 calls, which leaves one call to
spend on shaping: the schedule is anchored so that one poll lands exactly at the provider's typical duration,
with the polls before it as sparse as the rule allows. Past 30 min, gaps stop growing at ``cap``.

``wait_for`` keeps to the schedule in absolute time (sleeping until start + offset), so slow status calls do
not push later polls back. All times are multiplied by ``time_scale()`` (env ``CLIPFLOW_TIME_SCALE``) so flows
can run against an emulator whose clock runs faster than the wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, TypeVar

from flows.engine.callback_events import CallbackEvent, callback_for, listen
from flows.runtime.settings import settings, time_scale
from providers.errors import ProviderError, ThrottledError, TransportError

T = TypeVar("T")

NOTICE_FLOOR = 30.0  # seconds: a job is always noticed within this long...
NOTICE_FRACTION = 0.5  # ...or within this fraction of its elapsed time, whichever is larger
SAFETY = 0.95  # schedule gaps use 95 % of the allowed latency
MAX_CALLS = 12
HORIZON = 1800.0  # the guarantees cover jobs up to 30 min
DEFAULT_CAP = 600.0  # with 300 s, reaching 30 min takes 12 calls from the earliest start: no room to shape
MIN_FIRST = 5.0  # an anchored lead-in never polls before this (unless the typical duration is shorter)

logger = logging.getLogger(__name__)


def notice_bound(finished_at: float) -> float:
    """How long after a job finishing at ``finished_at`` (seconds into the wait) it may go unnoticed."""
    return max(NOTICE_FRACTION * finished_at, NOTICE_FLOOR)


def _next(t: float, cap: float) -> float:
    """Latest poll allowed after a poll at ``t`` (with the safety margin)."""
    return t + min(cap, SAFETY * notice_bound(t))


def _prev(t: float, cap: float) -> float:
    """Earliest poll p with _next(p) ≥ t: the sparsest lead-in towards an anchor."""
    step = SAFETY * NOTICE_FLOOR
    knee = NOTICE_FLOOR / NOTICE_FRACTION  # below this the 30 s floor dominates
    p = t - step if t - step <= knee else t / (1 + SAFETY * NOTICE_FRACTION)
    return max(p, t - cap)


def _calls_to_horizon(offsets: list[float]) -> int:
    # Strictly after: a job finishing at the very instant of a poll is counted as seen by the next one.
    return next(i for i, t in enumerate(offsets, start=1) if t > HORIZON)


def _lead_in(anchor: float, cap: float) -> list[float]:
    offsets = [anchor]
    while (p := _prev(offsets[0], cap)) > 0:
        offsets.insert(0, p)
    if len(offsets) > 1:
        # Any first poll in [p, second) keeps the rules; prefer one that is not absurdly early.
        offsets[0] = max(offsets[0], min(MIN_FIRST, offsets[1] / 2))
    return offsets


def poll_offsets(typical_seconds: float, *, first: float | None = None, cap: float = DEFAULT_CAP) -> Iterator[float]:
    """Poll times in provider seconds since the wait started (infinite, increasing).

    Without ``first`` one poll lands at ``typical_seconds``. With ``first`` the schedule starts there and grows
    as fast as allowed (``first`` is clamped so a job finishing at once is still noticed in 30 s). Raises
    ``ValueError`` when ``cap``/``first`` cannot meet the 12-call budget.
    """
    if not typical_seconds > 0:
        raise ValueError("typical_seconds must be positive")
    if not cap >= SAFETY * NOTICE_FLOOR:
        raise ValueError(f"cap must be at least {SAFETY * NOTICE_FLOOR} s")
    greedy_start = SAFETY * NOTICE_FLOOR
    if first is not None:
        if not first > 0:
            raise ValueError("first must be positive")
        offsets = [min(first, greedy_start)]
    else:
        offsets = _lead_in(typical_seconds, cap)
    while offsets[-1] <= HORIZON:
        offsets.append(_next(offsets[-1], cap))
    if first is None and _calls_to_horizon(offsets) > MAX_CALLS:
        offsets = [greedy_start]  # anchoring cost the spare call this cap does not leave: plain fast growth
        while offsets[-1] <= HORIZON:
            offsets.append(_next(offsets[-1], cap))
    if _calls_to_horizon(offsets) > MAX_CALLS:
        raise ValueError(
            f"schedule (first={first}, cap={cap}) needs {_calls_to_horizon(offsets)} calls to cover"
            f" {HORIZON:.0f} s; the budget is {MAX_CALLS}"
        )
    yield from offsets
    t = offsets[-1]
    while True:
        t = _next(t, cap)
        yield t


def poll_delays(
    typical_seconds: float,
    *,
    first: float | None = None,
    cap: float = DEFAULT_CAP,
    time_scale: float | None = None,
) -> Iterator[float]:
    """Sleeps between polls in wall-clock seconds: the first is the wait before the first poll.

    ``time_scale`` None reads ``CLIPFLOW_TIME_SCALE``. Validation happens at once (not on first ``next``).
    """
    scale = _resolve_scale(time_scale)
    offsets = poll_offsets(typical_seconds, first=first, cap=cap)
    head = next(offsets)  # runs the checks now
    return _deltas(head, offsets, scale)


def _deltas(head: float, offsets: Iterator[float], scale: float) -> Iterator[float]:
    yield head * scale
    previous = head
    for t in offsets:
        yield (t - previous) * scale
        previous = t


def _resolve_scale(value: float | None) -> float:
    if value is None:
        return time_scale()
    if not value > 0:
        raise ValueError("time_scale must be positive")
    return value


def scaled(seconds: float, scale: float | None = None) -> float:
    """Provider seconds → wall-clock seconds (for deadlines passed to ``wait_for``)."""
    return seconds * _resolve_scale(scale)


class WaitTimeoutError(TimeoutError):
    """The job was not done by the deadline (the job itself may still finish: it was not cancelled)."""

    def __init__(self, describe: str, elapsed_seconds: float, polls: int) -> None:
        super().__init__(f"{describe}: not done after {elapsed_seconds:.1f} s ({polls} status calls)")
        self.describe = describe
        self.elapsed_seconds = elapsed_seconds
        self.polls = polls

    def __reduce__(self) -> tuple[Any, ...]:  # Prefect pickles exceptions into failed states
        return (type(self), (self.describe, self.elapsed_seconds, self.polls))


def _tolerable(exc: ProviderError) -> bool:
    # A status call is a read: even an "outcome unknown" transport failure is safe to repeat.
    return exc.retryable or isinstance(exc, TransportError)


def job_schedule(
    provider: str, status_action: str, job_id: str, typical_seconds: float, *, pausable: bool = False
) -> dict[str, Any]:
    """``wait_for`` keywords for waiting on one provider job: ``delays``, ``callback``, ``fallback_delays``.

    With callbacks on (``CLIPFLOW_CALLBACKS``) and a job VOD announces, the wait listens for its callback event
    and polls only every ``CLIPFLOW_CALLBACK_POLL_SECONDS``; the normal schedule is the fallback. A wait that may
    end at a pause keeps the normal schedule (VOD announces the end of a job, not a pause)."""
    normal = poll_delays(typical_seconds)
    current = settings()
    callback = callback_for(provider, status_action, job_id) if current.callbacks else None
    if callback is None:
        return {"delays": normal, "callback": None, "fallback_delays": None}
    delays = normal if pausable else itertools.repeat(current.callback_poll_seconds * time_scale())
    return {"delays": delays, "callback": callback, "fallback_delays": poll_delays(typical_seconds)}


class _Schedule:
    """Offsets (wall-clock seconds since the start) of a delays iterable, walked forward past a given time."""

    def __init__(self, delays: Iterable[float]) -> None:
        self._delays = iter(delays)
        self._slot = 0.0
        self._last: float | None = None

    def after(self, t: float) -> float:
        """Next offset later than ``t`` (slots that passed are skipped, not polled in a burst)."""
        while True:
            try:
                self._last = max(0.0, float(next(self._delays)))
            except StopIteration:
                if self._last is None:
                    raise ValueError("delays must not be empty") from None
            self._slot += self._last
            if self._slot > t or self._last <= 0:
                return self._slot


async def wait_for(
    poll: Callable[[], Awaitable[T]],
    is_done: Callable[[T], bool],
    *,
    delays: Iterable[float],
    deadline_seconds: float,
    describe: str,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    max_failures: int = 3,
    retry_delay: float | None = None,
    callback: CallbackEvent | None = None,
    fallback_delays: Iterable[float] | None = None,
) -> T:
    """Poll on the ``delays`` schedule until ``is_done(result)``; return that result.

    All times are wall-clock seconds (scale deadlines with ``scaled``). The last poll happens at the deadline,
    then ``WaitTimeoutError``. Non-retryable ``ProviderError``s propagate at once; retryable ones (and transport
    failures) are retried after ``retry_delay`` (default 5 s scaled, doubling; at least ``retry_after`` when
    throttled), and re-raised after ``max_failures`` consecutive failures. A retry does not consume a
    schedule slot; slots that passed during a retry are skipped rather than polled in a burst.

    With ``callback``, the wait also listens for that Prefect event and polls at once when it arrives (one
    status call reads the final state), and once when the subscription is up (the job may have ended before).
    If the subscription fails, polling continues on ``fallback_delays`` (the normal schedule, counted from the
    start) instead of ``delays``.
    """
    start = clock()
    schedule = _Schedule(delays)
    base_retry = retry_delay if retry_delay is not None else 5.0 * time_scale()
    arrived, failed, ready = asyncio.Event(), asyncio.Event(), asyncio.Event()
    listener = asyncio.ensure_future(listen(callback, arrived, failed, ready)) if callback is not None else None
    checked_when_ready = False  # one status call once subscribed: the job may have ended before that

    async def nap(seconds: float) -> None:
        """Sleep, but wake when the callback arrives, the subscription is up (once) or it breaks."""
        if arrived.is_set() or (failed.is_set() and not on_fallback) or (ready.is_set() and not checked_when_ready):
            return
        if listener is None or listener.done():
            await sleep(seconds)
            return
        wakers = [asyncio.ensure_future(sleep(seconds)), asyncio.ensure_future(arrived.wait())]
        if not checked_when_ready:
            wakers.append(asyncio.ensure_future(ready.wait()))
        try:
            await asyncio.wait([*wakers, listener], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waker in wakers:
                waker.cancel()

    try:
        due = schedule.after(-1.0)
        polls = failures = 0
        on_fallback = False
        while True:
            at = min(due, deadline_seconds)
            wait = at - (clock() - start)
            if wait > 0:
                await nap(wait)
            if failed.is_set() and not on_fallback:
                on_fallback = True  # the normal schedule from here on, as if callbacks were off
                schedule = _Schedule(fallback_delays if fallback_delays is not None else [base_retry])
                due = schedule.after(clock() - start)
                continue
            called_back = arrived.is_set()
            if called_back:
                arrived.clear()
                checked_when_ready = True  # this read serves both
                logger.info("%s: completion callback arrived; reading the final state", describe)
            elif ready.is_set() and not checked_when_ready:
                checked_when_ready = True
                logger.debug("%s: listening for the callback; reading the state once", describe)
            elif clock() - start < at:
                continue  # woke a little early: sleep the rest
            at = min(at, clock() - start)
            polls += 1
            try:
                result = await poll()
            except ProviderError as exc:
                if not _tolerable(exc):
                    raise
                failures += 1
                if failures > max_failures:
                    raise
                backoff = base_retry * 2 ** (failures - 1)
                if isinstance(exc, ThrottledError) and exc.retry_after:
                    backoff = max(backoff, exc.retry_after)
                elapsed = clock() - start
                if at >= deadline_seconds or elapsed >= deadline_seconds:
                    raise WaitTimeoutError(describe, elapsed, polls) from exc
                logger.warning("%s: status call failed (%s); retrying in %.1f s", describe, exc, backoff)
                due = elapsed + backoff
                continue
            failures = 0
            if is_done(result):
                return result
            elapsed = clock() - start
            if at >= deadline_seconds or elapsed >= deadline_seconds:
                raise WaitTimeoutError(describe, elapsed, polls)
            if due <= elapsed:  # an early read (callback, subscribed) keeps the slot it came before
                due = schedule.after(elapsed)
            if called_back:  # the callback is ahead of the status read: read again soon, once
                due = min(due, elapsed + base_retry)
    finally:
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener


__all__ = [
    "CallbackEvent",
    "WaitTimeoutError",
    "callback_for",
    "job_schedule",
    "notice_bound",
    "poll_delays",
    "poll_offsets",
    "scaled",
    "time_scale",
    "wait_for",
]
