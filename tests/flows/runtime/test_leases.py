"""Prefect slots held by processes that get killed, against the session's real Prefect API."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.runtime import compat, leases
from flows.runtime.leases import acquire_lease, dead_leases, held_leases, registered_leases
from flows.runtime.locks import this_process
from flows.runtime.quotas import ensure_limits, hold_slot, rate_slot
from providers.quotas import Quota

REPO = Path(__file__).resolve().parents[3]

# Holds a quota's slot (kind "hold": the Jimeng jobs slot) or turn (kind "turn": a slow rate quota) forever.
HOLDER = """
import asyncio, json, sys
from providers.quotas import Quota
from flows.runtime.quotas import hold_slot, rate_slot
cfg = json.loads(sys.argv[1])
quota = Quota(cfg["provider"], cfg["action"], **cfg["quota"])

async def main():
    async with (hold_slot(quota) if cfg["kind"] == "hold" else rate_slot(quota)):
        print("holding", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


def unique(**kwargs: Any) -> Quota:
    return Quota(f"test{uuid.uuid4().hex[:10]}", "Job", **kwargs)


async def active_slots(name: str) -> int:
    async with get_client() as client:
        return (await client.read_global_concurrency_limit_by_name(name)).active_slots


@contextmanager
def holder_process(prefect_api: str, quota: Quota, kind: str, log: Path) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    env.pop("CLIPFLOW_QUOTA_LIMITS", None)
    cfg = {"provider": quota.provider, "action": quota.action, "kind": kind,
           "quota": {"qps": quota.qps, "concurrency": quota.concurrency}}
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, json.dumps(cfg)], cwd=REPO, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=err)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 90)
        line = proc.stdout.readline() if ready else ""
        assert line.startswith("holding"), f"the child never got the slot of {quota.limit_name}: {log.read_text()[-2000:]}"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


@asynccontextmanager
async def within(seconds: float, what: str) -> AsyncIterator[None]:
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise AssertionError(f"still waiting after {seconds} s: {what}") from None


async def cannot_get(slot: Any, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            async with slot:
                raise AssertionError("got a slot that a living process holds")
    except TimeoutError:
        pass


# --- figures ------------------------------------------------------------------------------------------------


def test_lease_figures() -> None:
    assert leases.LEASE_SECONDS == compat.SERVER_MIN_LEASE_SECONDS == 60
    assert leases.RENEW_SECONDS * 3 < leases.LEASE_SECONDS  # three renewals could fail before a lease runs out
    assert leases.RETRY_SECONDS < leases.RENEW_SECONDS
    assert leases.time_to_recover(remote=False) == leases.POLL_SECONDS <= 60
    # Another machine: lease expiry + the repossessor's pass (server run with a 5 s loop) + our next attempt.
    assert leases.WORST_CASE_REMOTE_SECONDS == leases.time_to_recover(remote=True) == 60 + 5 + 5
    assert leases.time_to_recover(remote=True, repossessor_loop_seconds=15) == 80  # the server default


def test_only_dead_local_holders_on_the_same_server_are_reaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPFLOW_LOCK_DIR", str(tmp_path))
    gone = subprocess.Popen(["true"])
    gone.wait()
    me = this_process()
    registry = tmp_path / "leases"
    registry.mkdir()

    def entry(name: str, **who: Any) -> None:
        data = {"lease_id": str(uuid.uuid4()), "api_url": "http://api/", "names": [name], **me.to_json(), **who}
        (registry / f"{data['lease_id']}.json").write_text(json.dumps(data))

    entry("dead", pid=gone.pid, pid_start=None)
    entry("alive")
    entry("elsewhere", host="another-machine", pid=gone.pid)
    entry("other-server", pid=gone.pid, api_url="http://other/")
    (registry / "garbage.json").write_text("{")
    assert len(registered_leases()) == 4
    assert [e["names"] for e in dead_leases("http://api/")] == [["dead"]]


# --- killed holders -----------------------------------------------------------------------------------------


@pytest.mark.timeout(240)
async def test_a_killed_process_frees_the_jimeng_jobs_slot_for_a_rerun(prefect_api: str, tmp_path: Path) -> None:
    quota = unique(concurrency=1)
    await ensure_limits(quotas=[quota])
    with holder_process(prefect_api, quota, "hold", tmp_path / "child.log") as child:
        assert await active_slots(quota.limit_name) == 1
        entries = [e for e in registered_leases() if e["pid"] == child.pid]
        assert [e["names"] for e in entries] == [[quota.limit_name]]
        await cannot_get(hold_slot(quota), 3)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        killed = time.monotonic()
        async with within(60, f"{quota.limit_name} is still held by the killed process"):
            async with hold_slot(quota):
                took = time.monotonic() - killed
                assert await active_slots(quota.limit_name) == 1
    print(f"jobs slot of a killed local holder free after {took:.2f} s")
    assert took < 60, took
    assert took < leases.WORST_CASE_LOCAL_SECONDS + 5, f"{took:.1f} s: the dead holder was not reaped at once"
    assert not [e for e in registered_leases() if e["pid"] == child.pid], "the dead holder's entry stayed"
    assert await active_slots(quota.limit_name) == 0


@pytest.mark.timeout(240)
async def test_a_killed_process_frees_the_slow_quota_turn(prefect_api: str, tmp_path: Path) -> None:
    quota = unique(qps=1)  # a one-slot turn (flows.runtime.pacing)
    await ensure_limits(quotas=[quota])
    with holder_process(prefect_api, quota, "turn", tmp_path / "child.log") as child:
        assert await active_slots(quota.limit_name) == 1
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        killed = time.monotonic()
        async with within(60, f"the turn of {quota.limit_name} is still held by the killed process"):
            async with rate_slot(quota):
                took = time.monotonic() - killed
    print(f"turn of a killed local holder free after {took:.2f} s")
    assert took < leases.WORST_CASE_LOCAL_SECONDS + 5, f"{took:.1f} s: the dead turn holder was not reaped at once"


@pytest.mark.timeout(60)
async def test_a_held_lease_is_registered_renewed_and_released(prefect_api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    quota = unique(concurrency=1)
    await ensure_limits(quotas=[quota])
    monkeypatch.setattr(leases, "RENEW_SECONDS", 0.5)  # see a few renewals without waiting 15 s each
    lease = await acquire_lease([quota.limit_name])
    try:
        assert lease.held and lease.renewing and held_leases() >= 1
        entry = json.loads(lease.path.read_text())
        me = this_process()
        assert (entry["host"], entry["pid"], entry["pid_start"]) == (me.host, me.pid, me.start)
        first = entry["renewed_at"]
        await asyncio.sleep(1.6)
        assert json.loads(lease.path.read_text())["renewed_at"] > first, "the lease was not renewed"
        assert lease.held
    finally:
        await lease.arelease()
    assert not lease.held and not lease.renewing and not lease.path.exists()
    assert await active_slots(quota.limit_name) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def repossessing_api(tmp_path: Path) -> Iterator[str]:
    """A Prefect server with its loop services (the session's test server is "ephemeral" and runs no
    repossessor: expired leases are never revoked there), set up as clipflow recommends: the repossessor every
    5 s. Started like Prefect's own test server (uvicorn on create_app), stopped by its pid."""
    import prefect

    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "server-home"),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{tmp_path / 'server.db'}",
        "PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS": str(leases.RECOMMENDED_REPOSSESSOR_LOOP_SECONDS),
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "0",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent), "--factory",
             "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port), "--log-level",
             "error", "--lifespan", "on"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 150
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (
                f"the Prefect server did not start: {log.read_text()[-2000:]}"
            )
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.slow
@pytest.mark.timeout(420)
async def test_over_a_lease_period_a_live_holder_keeps_its_slot_and_a_dead_remote_one_loses_it(
    repossessing_api: str, tmp_path: Path
) -> None:
    """Across machines only the lease can tell: a holder killed on "another machine" (its registry entry says
    so) frees its slot once its lease runs out and the server's repossessor revokes it (within the documented
    60 + 5 + 5 s), while this process's own slot, held all along, is renewed past the lease duration."""
    with temporary_settings({PREFECT_API_URL: repossessing_api}):
        mine, theirs = unique(concurrency=1), unique(concurrency=1)
        await ensure_limits(quotas=[mine, theirs])
        async with hold_slot(mine):
            held_since = time.monotonic()
            with holder_process(repossessing_api, theirs, "hold", tmp_path / "child.log") as child:
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=10)
                killed = time.monotonic()
                for entry in registered_leases():  # as if it had run on another machine
                    if entry["pid"] == child.pid:
                        path = entry.pop("path")
                        Path(path).write_text(json.dumps({**entry, "host": "another-machine"}))
            bound = leases.WORST_CASE_REMOTE_SECONDS
            async with within(bound + 20, f"{theirs.limit_name}: a dead remote holder's lease was never revoked"):
                async with hold_slot(theirs):
                    took = time.monotonic() - killed
            print(f"slot of a killed remote holder free after {took:.1f} s (bound {bound:.0f} s)")
            # Its last renewal came at most RENEW_SECONDS before the kill, so its lease outlived the kill by at
            # least LEASE - RENEW (no local shortcut was taken), and it was revoked within the bound.
            assert leases.LEASE_SECONDS - leases.RENEW_SECONDS - 1 <= took <= bound + 5, (took, bound)
            if time.monotonic() - held_since < leases.LEASE_SECONDS + 10:
                await asyncio.sleep(leases.LEASE_SECONDS + 10 - (time.monotonic() - held_since))
            assert await active_slots(mine.limit_name) == 1, "this process lost its own slot while alive"
            async with get_client() as client:  # another process could not get it either
                with pytest.raises(httpx.HTTPStatusError) as full:
                    await client.increment_concurrency_slots_with_lease([mine.limit_name], 1, "concurrency", 60)
                assert full.value.response.status_code == 423
        assert await active_slots(mine.limit_name) == 0
