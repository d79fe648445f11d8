"""Retry options: decided when the task is decorated (at import) without reading a setting; the delays follow the
time scale of the moment a run retries."""

from __future__ import annotations

import time

import pytest
from prefect import flow, task

from flows.engine.retry import ScaledDelays, retry_options
from providers.errors import ServerError


def test_delays_follow_the_time_scale_when_read_not_when_decorated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPFLOW_TIME_SCALE", "not a number")  # decorating must not read it

    @task(**retry_options(retries=3, base_delay=10.0))
    def paid() -> None: ...

    delays = paid.retry_delay_seconds
    assert isinstance(delays, ScaledDelays), "Prefect replaced the lazy delays: it would freeze them at import"
    monkeypatch.setenv("CLIPFLOW_TIME_SCALE", "0.5")
    assert [delays[i] for i in range(len(delays))] == [5.0, 10.0, 20.0]
    assert delays[-1] == 20.0 and delays[1:] == [10.0, 20.0]
    monkeypatch.setenv("CLIPFLOW_TIME_SCALE", "0.000001")
    assert delays[0] == 0.01  # a floor, so a retry is never scheduled in the past


@pytest.mark.timeout(180)
def test_a_retry_waits_the_delay_scaled_at_run_time(prefect_api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """10 000 s unscaled: the retry comes back within seconds only if the engine scales the delay when it retries."""
    attempts: list[float] = []

    @task(**retry_options(retries=1, base_delay=10_000.0))
    def flaky() -> str:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            raise ServerError("busy", provider="test", action="submit")
        return "done"

    @flow
    def run() -> str:
        return flaky()

    monkeypatch.setenv("CLIPFLOW_TIME_SCALE", "0.0002")  # 10 000 s x 0.0002 = 2 s
    assert run() == "done"
    assert len(attempts) == 2
    waited = attempts[1] - attempts[0]
    assert 0.5 < waited < 30, f"the retry came {waited:.1f} s after the failure (2 s expected, jitter ±50 %)"
