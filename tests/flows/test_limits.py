"""Quota limits against a real Prefect API (the session's ``prefect_api`` server)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError

from flows.limits import (
    acquire_rate,
    ensure_limits,
    hold_slot,
    limit_settings,
    quota_slot,
    quotas_for,
)
from providers.quotas import Quota, all_quotas


def unique(action: str, **kwargs: Any) -> Quota:
    """A quota whose limit name no other test (or ensure_limits() default run) touches."""
    return Quota(f"test{uuid.uuid4().hex[:10]}", action, **kwargs)


class CountingClient:
    def __init__(self, client: Any) -> None:
        self._client = client
        self.writes: list[str] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith(("create_", "update_")):
            self.writes.append(name)
        return getattr(self._client, name)


# --- no server needed ---------------------------------------------------------------------------------------


def test_limit_settings() -> None:
    assert limit_settings(Quota("p", "a", qps=10)) == (10, 10.0)
    assert limit_settings(Quota("p", "a", qps=0.5)) == (1, 0.5)
    assert limit_settings(Quota("p", "a", qps=2.5)) == (3, 2.5)
    assert limit_settings(Quota("p", "a", concurrency=2)) == (2, 0.0)
    with pytest.raises(ValueError):
        limit_settings(Quota("p", "a"))


def test_quotas_for() -> None:
    assert {q.limit_name for q in quotas_for("Jimeng", "cvsync2asyncsubmittask")} == {
        "clipflow-jimeng-cvsync2asyncsubmittask-rate"
    }
    # The jobs-in-flight quota is its own "action", held from submit until the clip is collected.
    assert {q.limit_name for q in quotas_for("jimeng", "jobs")} == {"clipflow-jimeng-jobs"}
    with pytest.raises(KeyError):
        quotas_for("vod", "NoSuchAction")


async def test_off_mode_makes_no_prefect_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPFLOW_QUOTA_LIMITS", "off")
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # nothing listens there
    async with quota_slot("jimeng", "CVSync2AsyncSubmitTask"):
        pass


# --- against the Prefect API --------------------------------------------------------------------------------


async def read(name: str) -> Any:
    async with get_client() as client:
        return await client.read_global_concurrency_limit_by_name(name)


async def test_ensure_limits_creates_every_quota(prefect_api: str) -> None:
    names = await ensure_limits()
    assert names == [q.limit_name for q in all_quotas()]
    for quota in all_quotas():
        limit = await read(quota.limit_name)
        if quota.qps is not None:
            assert limit.limit == max(1, round(quota.qps + 0.4999))
            assert limit.slot_decay_per_second == pytest.approx(quota.qps)
        else:
            assert limit.limit == quota.concurrency
            assert limit.slot_decay_per_second == 0
        assert limit.active


async def test_ensure_limits_is_idempotent(prefect_api: str) -> None:
    quotas = [unique("Call", qps=3), unique("Job", concurrency=2)]
    await ensure_limits(quotas=quotas)
    before = [await read(q.limit_name) for q in quotas]
    async with get_client() as client:
        counting = CountingClient(client)
        assert await ensure_limits(counting, quotas) == [q.limit_name for q in quotas]  # type: ignore[arg-type]
    assert counting.writes == []
    after = [await read(q.limit_name) for q in quotas]
    assert [(a.id, a.limit, a.slot_decay_per_second, a.updated) for a in after] == [
        (b.id, b.limit, b.slot_decay_per_second, b.updated) for b in before
    ]


async def test_ensure_limits_corrects_drifted_settings(prefect_api: str) -> None:
    quota = unique("Call", qps=4)
    async with get_client() as client:
        await client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=quota.limit_name, limit=50, slot_decay_per_second=1)
        )
        counting = CountingClient(client)
        await ensure_limits(counting, [quota])  # type: ignore[arg-type]
    assert counting.writes == ["update_global_concurrency_limit"]
    limit = await read(quota.limit_name)
    assert (limit.limit, limit.slot_decay_per_second) == (4, 4.0)


async def test_rate_limit_spaces_calls(prefect_api: str) -> None:
    quota = unique("Call", qps=2)
    await ensure_limits(quotas=[quota])
    started = time.monotonic()
    for _ in range(5):
        await acquire_rate(quota)
    took = time.monotonic() - started
    # Burst of 2, then one slot every 0.5 s: the 5th call cannot start before ~1.5 s.
    assert 1.4 <= took < 10, took


async def test_concurrency_slot_is_held_for_the_body(prefect_api: str) -> None:
    quota = unique("Job", concurrency=1)
    await ensure_limits(quotas=[quota])
    order: list[str] = []

    async def job(name: str, hold: float) -> None:
        async with hold_slot(quota):
            order.append(f"{name} in")
            await asyncio.sleep(hold)
            order.append(f"{name} out")

    first = asyncio.create_task(job("a", 1.5))
    await asyncio.sleep(0.5)
    await job("b", 0)
    await first
    assert order == ["a in", "a out", "b in", "b out"]


async def test_missing_limit_fails_loudly(prefect_api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    quota = unique("Call", qps=1)  # never ensured
    with pytest.raises(ConcurrencySlotAcquisitionError):
        await acquire_rate(quota)
    monkeypatch.setenv("CLIPFLOW_QUOTA_LIMITS", "lenient")
    await acquire_rate(quota)  # warns, does not limit


async def test_quota_slot_holds_the_jimeng_jobs_slot(prefect_api: str) -> None:
    await ensure_limits()
    async with quota_slot("jimeng", "jobs"):
        jobs = await read("clipflow-jimeng-jobs")
        assert jobs.active_slots == 1
    assert (await read("clipflow-jimeng-jobs")).active_slots == 0
