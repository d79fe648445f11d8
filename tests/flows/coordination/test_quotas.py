"""Quota limits against a real Prefect API (the session's ``prefect_api`` server)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
import uuid
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError

from emulator.config import DEMO_SPACE, DEMO_VID
from emulator.testing import EmulatorHandle
from flows.coordination.quotas import (
    ensure_limits,
    hold_slot,
    limit_settings,
    quota_slot,
    quotas_for,
    rate_slot,
)
from flows.models import TranslateSpec
from flows.coordination.pacing import pacer_for
from flows.stages.translate import build_translation_request
from providers.quotas import Quota, all_quotas
from providers.vod import VodClient


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
    # Every rate quota: a one-slot turn that the calling process holds and paces itself.
    assert limit_settings(Quota("p", "a", qps=1000)) == (1, 0.0)
    assert limit_settings(Quota("p", "a", qps=2.5)) == (1, 0.0)
    assert limit_settings(Quota("p", "a", qps=0.5)) == (1, 0.0)
    assert limit_settings(Quota("p", "a", qps=2)) == (1, 0.0)
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
        if quota.qps is not None:  # a turn
            assert (limit.limit, limit.slot_decay_per_second) == (1, 0)
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
    assert (limit.limit, limit.slot_decay_per_second) == (1, 0.0)


async def test_a_former_rate_limit_becomes_a_free_turn(prefect_api: str) -> None:
    """A server set up by an older clipflow has rate limits whose slots were taken and would only decay: as
    a one-slot limit without decay they would never free up, so the update clears them."""
    quota = unique("Call", qps=10)
    async with get_client() as client:
        await client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=quota.limit_name, limit=10, slot_decay_per_second=10, active_slots=7)
        )
    await ensure_limits(quotas=[quota])
    assert (await read(quota.limit_name)).active_slots == 0
    async with rate_slot(quota):
        pass


async def test_rate_limit_spaces_calls(prefect_api: str) -> None:
    quota = unique("Call", qps=4)
    await ensure_limits(quotas=[quota])
    started = time.monotonic()
    for _ in range(9):
        async with rate_slot(quota):
            pass
    took = time.monotonic() - started
    # One slot every 0.25 s: the 9th call cannot start before 2 s.
    assert 1.95 <= took < 20, took


async def test_a_fast_quota_costs_one_turn_for_many_overlapping_calls(prefect_api: str) -> None:
    """Twenty calls at 20 QPS, ten in flight at once: they start 1/20 s apart, and Prefect is asked once (the
    turn), not once per call."""
    quota = unique("Call", qps=20)
    await ensure_limits(quotas=[quota])
    started: list[float] = []
    inside: list[int] = []
    peak: list[int] = []

    async def call() -> None:
        async with rate_slot(quota):
            started.append(time.monotonic())
            inside.append(1)
            peak.append(len(inside))
            await asyncio.sleep(0.3)
            inside.pop()

    await asyncio.gather(*(call() for _ in range(20)))
    gaps = [b - a for a, b in zip(started, started[1:])]
    # The pacer spaces the grants 1/20 s apart; each call notes its start a task switch later, so one gap may
    # look shorter by that switch (10 ms on a busy machine) while the run as a whole keeps the rate.
    assert min(gaps) >= 0.04, gaps
    assert started[-1] - started[0] >= 19 / 20 - 0.01, gaps
    assert max(peak) >= 5  # overlapping: not one call at a time
    assert pacer_for(quota.limit_name, 20.0).turns_taken == 1
    assert (await read(quota.limit_name)).active_slots == 1  # kept a moment for this process's next call
    for _ in range(100):
        await asyncio.sleep(0.1)
        if (await read(quota.limit_name)).active_slots == 0:
            break
    assert (await read(quota.limit_name)).active_slots == 0


CALLS_IN_A_PROCESS = """
import asyncio, json, sys, time
from flows.coordination.quotas import rate_slot
from providers.quotas import Quota

async def main() -> None:
    quota = Quota(sys.argv[1], "Call", qps=float(sys.argv[2]))
    starts = []
    for _ in range(int(sys.argv[3])):
        async with rate_slot(quota):
            starts.append(time.time())
    print(json.dumps(starts))

asyncio.run(main())
"""


LONG_LINGER = 120.0


async def test_a_process_that_is_done_hands_its_turn_back_as_it_exits(prefect_api: str) -> None:
    """The turn is kept a moment for a next call (a timer), but a process that is done does not wait for that:
    it exits at once (a suspended run's process must be gone before its worker is handed the resumed run)
    and releases the turn on its way out, so the next process need not wait for the lease to run out."""
    for qps in ("1", "50"):  # a serial and a fast quota
        quota = unique("Call", qps=float(qps))
        await ensure_limits(quotas=[quota])
        env = {**os.environ, "PREFECT_API_URL": prefect_api}
        # A linger far longer than any exit, however busy the machine: waiting for it would show.
        script = f"import flows.coordination.pacing as _p; _p.LINGER_SECONDS = {LONG_LINGER}\n" + CALLS_IN_A_PROCESS
        argv = [sys.executable, "-c", script, quota.provider, qps, "1"]
        proc = await asyncio.create_subprocess_exec(*argv, env=env, stdout=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
        exited = time.time()
        assert proc.returncode == 0
        [called] = json.loads(out)
        assert exited - called < LONG_LINGER / 2, "the process waited for the turn's linger"
        assert (await read(quota.limit_name)).active_slots == 0


async def test_a_fast_quota_is_shared_by_processes(prefect_api: str) -> None:
    """Two processes calling under one 10-QPS quota at the same time: between them, no two calls start closer
    than 1/10 s (the turn passes between them only after the last call's interval)."""
    quota = unique("Call", qps=10)
    await ensure_limits(quotas=[quota])
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    argv = [sys.executable, "-c", CALLS_IN_A_PROCESS, quota.provider, "10", "15"]
    procs = [
        await asyncio.create_subprocess_exec(*argv, env=env, stdout=asyncio.subprocess.PIPE) for _ in range(2)
    ]
    outs = [await asyncio.wait_for(p.communicate(), timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    starts = sorted(s for out, _ in outs for s in json.loads(out))
    assert len(starts) == 30
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= 0.095, gaps


async def test_serial_quota_spaces_calls_from_the_answers(prefect_api: str) -> None:
    quota = unique("Call", qps=2)
    await ensure_limits(quotas=[quota])
    answered: list[float] = []
    sent: list[float] = []

    async def call(hold: float) -> None:
        async with rate_slot(quota):
            sent.append(time.monotonic())
            await asyncio.sleep(hold)  # the provider takes this long to answer
            answered.append(time.monotonic())

    await asyncio.gather(*(call(0.2) for _ in range(4)))
    assert all(nxt - prev >= 0.5 for prev, nxt in zip(answered, sent[1:])), (sent, answered)
    # The turn is handed back once nobody is waiting and the last interval has run out (on a timer thread).
    assert (await read(quota.limit_name)).active_slots == 1
    for _ in range(50):
        await asyncio.sleep(0.1)
        if (await read(quota.limit_name)).active_slots == 0:
            break
    assert (await read(quota.limit_name)).active_slots == 0


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
    for quota in (unique("Call", qps=1), unique("Call", qps=10)):  # never ensured; a serial and a fast turn
        monkeypatch.delenv("CLIPFLOW_QUOTA_LIMITS", raising=False)
        with pytest.raises(ConcurrencySlotAcquisitionError):
            async with rate_slot(quota):
                pass
        monkeypatch.setenv("CLIPFLOW_QUOTA_LIMITS", "lenient")
        async with rate_slot(quota):  # warns, does not limit
            pass


async def test_quota_slot_holds_the_jimeng_jobs_slot(prefect_api: str) -> None:
    await ensure_limits()
    async with quota_slot("jimeng", "jobs"):
        jobs = await read("clipflow-jimeng-jobs")
        assert jobs.active_slots == 1
    assert (await read("clipflow-jimeng-jobs")).active_slots == 0


class SlowFirstRequest(httpx.AsyncBaseTransport):
    """A network whose first request takes ``delay`` s to reach the server (the answer comes back at once)."""

    def __init__(self, delay: float) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._delay: float | None = delay

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        delay, self._delay = self._delay, None
        if delay:
            await asyncio.sleep(delay)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def submit_translations(
    emu: EmulatorHandle, languages: list[str], first_delay: float, errors: list[BaseException]
) -> None:
    """Paid 1-QPS submits, one after another through quota_slot, on this thread's own event loop."""

    async def run() -> None:
        transport = SlowFirstRequest(first_delay)
        async with VodClient(emu.access_key, emu.secret_key, endpoint=emu.vod_endpoint, transport=transport) as vod:
            for language in languages:
                spec = TranslateSpec(target_languages=[language])
                request = build_translation_request(DEMO_VID, DEMO_SPACE, language, spec)
                async with quota_slot("vod", "SubmitAITranslationWorkflow"):
                    await vod.submit_ai_translation_workflow(request)

    try:
        asyncio.run(run())
    except BaseException as exc:  # reported by the test, not lost in a thread
        errors.append(exc)


async def test_one_qps_calls_never_reach_the_provider_too_close(prefect_api: str, emu: EmulatorHandle) -> None:
    """Two event loops of one process share SubmitAITranslationWorkflow's 1 QPS. The first call crawls through
    the network for 0.9 s: spacing calls by when they were *sent* would land the next one about 0.1 s after it
    at the provider. The next call is spaced from the slow one's *answer*, so the provider never answers 429."""
    quota = quotas_for("vod", "SubmitAITranslationWorkflow")[0]
    await ensure_limits(quotas=[quota])
    errors: list[BaseException] = []
    slow = threading.Thread(target=submit_translations, args=(emu, ["en", "ja"], 0.9, errors))
    fast = threading.Thread(target=submit_translations, args=(emu, ["ko", "fr"], 0.0, errors))
    try:
        slow.start()
        await asyncio.sleep(0.3)  # the slow call is under way first
        fast.start()
        for thread in (slow, fast):
            await asyncio.to_thread(thread.join)
    finally:
        await ensure_limits(quotas=[quota])
    assert errors == []
    assert emu.health()["throttled_answers"] == 0
    assert len([e for e in emu.ledger() if e["action"] == "SubmitAITranslationWorkflow"]) == 4


async def test_jobs_slot_is_shared_by_event_loops_of_one_process(prefect_api: str) -> None:
    """The local queue in front of Prefect's concurrency slot works from several event loops (an asyncio
    primitive would be bound to the first loop that used it) and never lets two bodies in at once."""
    quota = unique("Job", concurrency=1)
    await ensure_limits(quotas=[quota])
    inside: list[int] = []
    peak: list[int] = []

    def worker() -> None:
        async def run() -> None:
            for _ in range(3):
                async with hold_slot(quota):
                    inside.append(1)
                    peak.append(len(inside))
                    await asyncio.sleep(0.05)
                    inside.pop()

        asyncio.run(run())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        await asyncio.to_thread(thread.join)
    assert len(peak) == 9 and max(peak) == 1
