from __future__ import annotations

import asyncio
import bisect
import pickle
import time
from itertools import accumulate, islice
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.engine.waiting import (
    HORIZON,
    MAX_CALLS,
    WaitTimeoutError,
    notice_bound,
    poll_delays,
    poll_offsets,
    scaled,
    time_scale,
    wait_for,
)
from providers.errors import (
    AuthError,
    NotFoundError,
    OutcomeUnknownError,
    ServerError,
    ThrottledError,
)

TYPICALS = [1, 5, 10, 20, 30, 45, 60, 90, 100, 120, 180, 300, 450, 600, 900, 1200, 1800, 2700, 3600]


def offsets_for(typical: float, **kwargs: Any) -> list[float]:
    return list(islice(poll_offsets(typical, **kwargs), 40))


def check(offsets: list[float], finished_at: float) -> tuple[int, float]:
    """(status calls until noticed, notice latency) for a job finishing at ``finished_at``; asserts both rules."""
    index = bisect.bisect_right(offsets, finished_at)  # first poll strictly after the finish
    calls, latency = index + 1, offsets[index] - finished_at
    assert calls <= MAX_CALLS, (finished_at, calls)
    assert latency <= notice_bound(finished_at) + 1e-9, (finished_at, latency)
    return calls, latency


@pytest.mark.parametrize("typical", TYPICALS)
def test_rules_hold_for_every_job_duration(typical: float) -> None:
    offsets = offsets_for(typical)
    assert all(b > a for a, b in zip(offsets, offsets[1:]))
    worst = 0
    for tenth in range(1, int(HORIZON * 10) + 1):  # every 0.1 s from 0.1 s to 30 min
        calls, _ = check(offsets, tenth / 10)
        worst = max(worst, calls)
    assert worst <= MAX_CALLS
    if typical <= HORIZON:
        assert typical in offsets  # anchored: a poll lands at the typical duration


@settings(max_examples=300, deadline=None)
@given(
    typical=st.floats(min_value=0.5, max_value=10_000),
    finished_at=st.floats(min_value=0.001, max_value=HORIZON),
    cap=st.floats(min_value=450, max_value=5000),
)
def test_rules_property(typical: float, finished_at: float, cap: float) -> None:
    check(offsets_for(typical, cap=cap), finished_at)


@pytest.mark.parametrize("first", [1.0, 10.0, 28.5, 100.0])
def test_explicit_first_poll(first: float) -> None:
    offsets = offsets_for(60, first=first)
    assert offsets[0] == min(first, 28.5)  # clamped: an instant job must still be noticed within 30 s
    for second in range(1, int(HORIZON) + 1):
        check(offsets, second)


def test_impossible_settings_fail_loudly() -> None:
    with pytest.raises(ValueError, match="13 calls"):
        poll_delays(60, cap=300)  # 300 s gaps cannot reach 30 min in 12 calls
    with pytest.raises(ValueError):
        poll_delays(0)
    with pytest.raises(ValueError):
        poll_delays(60, time_scale=0)


def test_delays_are_gaps_between_offsets_and_scaled() -> None:
    offsets = offsets_for(120)
    delays = list(islice(poll_delays(120, time_scale=1.0), 40))
    assert list(accumulate(delays)) == pytest.approx(offsets)
    fast = list(islice(poll_delays(120, time_scale=0.01), 40))
    assert fast == pytest.approx([d * 0.01 for d in delays])


def test_time_scale_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLIPFLOW_TIME_SCALE", raising=False)
    assert time_scale() == 1.0
    monkeypatch.setenv("CLIPFLOW_TIME_SCALE", "0.05")
    assert time_scale() == 0.05
    assert next(poll_delays(10)) == pytest.approx(0.5)
    assert scaled(600) == pytest.approx(30)
    monkeypatch.setenv("CLIPFLOW_TIME_SCALE", "-1")
    with pytest.raises(ValueError):
        time_scale()


# --- wait_for with a fake clock and a fake job --------------------------------------------------------------


class FakeJob:
    """A job finishing at ``done_at``; ``script`` lists exceptions to raise on given calls (1-based)."""

    def __init__(self, done_at: float, script: dict[int, Exception] | None = None, latency: float = 0.0) -> None:
        self.now = 0.0
        self.done_at = done_at
        self.script = script or {}
        self.latency = latency
        self.poll_times: list[float] = []
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds

    async def poll(self) -> str:
        self.poll_times.append(self.now)
        self.now += self.latency  # a slow status call
        error = self.script.get(len(self.poll_times))
        if error is not None:
            raise error
        return "done" if self.poll_times[-1] >= self.done_at else "running"

    async def wait(self, delays: Any, deadline: float = 3600, **kwargs: Any) -> str:
        return await wait_for(
            self.poll,
            lambda state: state == "done",
            delays=delays,
            deadline_seconds=deadline,
            describe="fake job",
            sleep=self.sleep,
            clock=self.clock,
            **kwargs,
        )


async def test_polls_follow_the_schedule_in_absolute_time() -> None:
    job = FakeJob(done_at=130, latency=2.0)  # each status call takes 2 s: must not delay later polls
    assert await job.wait(poll_delays(120, time_scale=1.0)) == "done"
    expected = [t for t in offsets_for(120) if t <= 177.01]
    assert job.poll_times == pytest.approx(expected)
    assert job.poll_times[-1] - 130 <= notice_bound(130)


async def test_deadline_raises_after_a_last_poll_at_the_deadline() -> None:
    job = FakeJob(done_at=10_000)
    with pytest.raises(WaitTimeoutError) as caught:
        await job.wait(poll_delays(60, time_scale=1.0), deadline=100)
    assert job.poll_times[-1] == pytest.approx(100)
    assert all(t <= 100 for t in job.poll_times)
    err = caught.value
    assert err.polls == len(job.poll_times) and err.elapsed_seconds == pytest.approx(100)
    assert "fake job" in str(err) and isinstance(err, TimeoutError)
    again = pickle.loads(pickle.dumps(err))
    assert isinstance(again, WaitTimeoutError) and again.polls == err.polls


async def test_non_retryable_errors_propagate_at_once() -> None:
    for error in (AuthError("bad key", provider="vod"), NotFoundError("gone", provider="jimeng")):
        job = FakeJob(done_at=0, script={1: error})
        with pytest.raises(type(error)):
            await job.wait([5, 5, 5])
        assert len(job.poll_times) == 1


async def test_throttling_waits_at_least_retry_after() -> None:
    job = FakeJob(done_at=0, script={1: ThrottledError("slow down", retry_after=7, provider="vod")})
    assert await job.wait([5, 100], retry_delay=1) == "done"
    assert job.poll_times == [5, 12]  # retried after retry_after, not at the next slot (105)


async def test_transient_failures_are_tolerated_up_to_the_limit() -> None:
    script = {i: ServerError("503", provider="vod") for i in (1, 2, 3)}
    script[4] = OutcomeUnknownError("read timeout", provider="vod")  # a status read is safe to repeat
    job = FakeJob(done_at=0, script=script)
    with pytest.raises(OutcomeUnknownError):
        await job.wait([5], retry_delay=1, max_failures=3)
    assert job.poll_times == [5, 6, 8, 12]  # backoff 1, 2, 4

    job = FakeJob(done_at=0, script={i: ServerError("503", provider="vod") for i in (1, 2, 3)})
    assert await job.wait([5], retry_delay=1, max_failures=3) == "done"


async def test_failures_reset_after_a_good_answer() -> None:
    script = {1: ServerError("x", provider="vod"), 3: ServerError("x", provider="vod")}
    job = FakeJob(done_at=50, script=script)
    assert await job.wait([10], retry_delay=1, max_failures=1) == "done"


async def test_slots_missed_while_throttled_are_skipped_not_burst() -> None:
    job = FakeJob(done_at=1000, script={2: ThrottledError("x", retry_after=45, provider="vod")})
    with pytest.raises(WaitTimeoutError):
        await job.wait([10], deadline=100, retry_delay=1)
    # 10, 20 (throttled) → 65, then the next slot after 65 is 70, not 30, 40, 50, 60 in a burst
    assert job.poll_times[:4] == [10, 20, 65, 70]


async def test_retry_at_deadline_times_out() -> None:
    job = FakeJob(done_at=0, script={1: ServerError("x", provider="vod")})
    with pytest.raises(WaitTimeoutError) as caught:
        await job.wait([50], deadline=20)
    assert isinstance(caught.value.__cause__, ServerError)


async def test_other_exceptions_propagate() -> None:
    job = FakeJob(done_at=0, script={1: RuntimeError("bug")})
    with pytest.raises(RuntimeError):
        await job.wait([1])


async def test_real_clock_with_scaled_schedule() -> None:
    started = time.monotonic()
    finish = started + 0.2  # a "60 s" job at scale 0.003 (finishes at 0.18 s)

    async def poll() -> bool:
        return time.monotonic() >= finish

    result = await wait_for(
        poll, bool, delays=poll_delays(60, time_scale=0.003), deadline_seconds=scaled(600, 0.003), describe="x"
    )
    took = time.monotonic() - started
    assert result is True
    assert 0.2 <= took <= 0.2 + 0.003 * notice_bound(60) + 0.1
    await asyncio.sleep(0)
