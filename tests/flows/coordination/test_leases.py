"""Prefect slots held by processes that get killed, against the session's real Prefect API."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import select
import signal
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

from flows.runtime.settings import SettingsError
from prefect.client.orchestration import get_client

from prefect.filesystems import LocalFileSystem
from prefect.results import aget_default_result_storage
from prefect_aws import AwsClientParameters, AwsCredentials, S3Bucket

from flows.runtime import compat, shared_files
from flows.coordination import leases
from flows.coordination.lease_heartbeats import (
    dead_leases, reap_stale_leases, registered_leases, shared_heartbeats, stale_heartbeats,
)
from flows.coordination.leases import acquire_lease, held_leases
from flows.runtime.processes import this_process
from flows.coordination.quotas import ensure_limits, hold_slot, rate_slot
from providers.quotas import Quota

REPO = Path(__file__).resolve().parents[3]

# Holds a quota's slot (kind "hold": the Jimeng jobs slot) or turn (kind "turn": a slow rate quota) forever.
HOLDER = """
import asyncio, json, sys
from providers.quotas import Quota
from flows.coordination.quotas import hold_slot, rate_slot
cfg = json.loads(sys.argv[1])
quota = Quota(cfg["provider"], cfg["action"], **cfg["quota"])

async def main():
    async with (hold_slot(quota) if cfg["kind"] == "hold" else rate_slot(quota)):
        print("holding", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""

# The same, as if it ran on another machine: another host name (so no waiter here can check its pid) and its
# own local lock directory (so no local registry entry is shared); only the shared storage is common.
REMOTE_HOLDER = """
import dataclasses
from flows.runtime import processes
processes._me = dataclasses.replace(processes.this_process(), host="another-machine")
""" + HOLDER


def unique(**kwargs: Any) -> Quota:
    return Quota(f"test{uuid.uuid4().hex[:10]}", "Job", **kwargs)


async def active_slots(name: str) -> int:
    async with get_client() as client:
        return (await client.read_global_concurrency_limit_by_name(name)).active_slots


@contextmanager
def holder_process(
    prefect_api: str, quota: Quota, kind: str, log: Path, script: str = HOLDER, **extra_env: str
) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PREFECT_API_URL": prefect_api, **extra_env}
    env.pop("CLIPFLOW_QUOTA_LIMITS", None)
    cfg = {"provider": quota.provider, "action": quota.action, "kind": kind,
           "quota": {"qps": quota.qps, "concurrency": quota.concurrency}}
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", script, json.dumps(cfg)], cwd=REPO, env=env, text=True,
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
    # Another machine: its last heartbeat is stale STALE s after its death, our next 423 comes within POLL s,
    # then one listing and one release request.
    assert leases.WORST_CASE_REMOTE_SECONDS == leases.time_to_recover(remote=True) == (
        leases.STALE_SECONDS + leases.POLL_SECONDS + 1)
    assert leases.WORST_CASE_REMOTE_SECONDS <= leases.BOUND_SECONDS == 60
    assert leases.BOUND_SECONDS - leases.WORST_CASE_REMOTE_SECONDS >= 25  # room for clock skew, a slow bucket
    # A live holder survives 3 missed heartbeats (and that much skew) before a waiter may call it dead.
    assert leases.STALE_SECONDS - leases.HEARTBEAT_SECONDS >= 3 * leases.HEARTBEAT_SECONDS
    assert leases.STALE_SECONDS < leases.LEASE_SECONDS - leases.RENEW_SECONDS  # faster than expiry could be
    # Fallback, shared storage unreachable: lease expiry + the repossessor's pass (5 s loop) + our next attempt.
    assert leases.WORST_CASE_REMOTE_FALLBACK_SECONDS == leases.time_to_recover(remote=True, shared_storage=False)
    assert leases.WORST_CASE_REMOTE_FALLBACK_SECONDS == (
        leases.LEASE_SECONDS + leases.RECOMMENDED_REPOSSESSOR_LOOP_SECONDS + leases.POLL_SECONDS)
    assert leases.time_to_recover(remote=True, repossessor_loop_seconds=15, shared_storage=False) == 80


def test_heartbeat_figures_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(leases.HEARTBEAT_ENV, raising=False)
    monkeypatch.delenv(leases.STALE_ENV, raising=False)
    assert (leases.heartbeat_seconds(), leases.stale_seconds()) == (5, 25)
    monkeypatch.setenv(leases.HEARTBEAT_ENV, "1")
    monkeypatch.setenv(leases.STALE_ENV, "4")
    assert (leases.heartbeat_seconds(), leases.stale_seconds()) == (1, 4)
    monkeypatch.setenv(leases.STALE_ENV, "2")  # under three heartbeats: raised
    assert leases.stale_seconds() == 3
    monkeypatch.setenv(leases.HEARTBEAT_ENV, "nonsense")
    with pytest.raises(SettingsError, match="CLIPFLOW_LEASE_HEARTBEAT_SECONDS='nonsense'"):
        leases.heartbeat_seconds()


def s3_bucket_block(s3: Any, folder: str = "") -> S3Bucket:
    server = s3.server
    creds = AwsCredentials(
        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key, region_name=server.region,
        aws_client_parameters=AwsClientParameters(endpoint_url=server.endpoint_url),
    )
    return S3Bucket(bucket_name=s3.bucket, credentials=creds, bucket_folder=folder)


@pytest.mark.parametrize("kind", ["local", "s3", "s3-folder"])
def test_shared_files_list_read_write_delete(kind: str, tmp_path: Path, s3: Any) -> None:
    storage = {"local": lambda: LocalFileSystem(basepath=str(tmp_path)), "s3": lambda: s3_bucket_block(s3),
               "s3-folder": lambda: s3_bucket_block(s3, "some/folder")}[kind]()
    assert list(shared_files.scan(storage, "clipflow-leases")) == []
    assert shared_files.read_json(storage, "clipflow-leases/a.json") is None
    shared_files.write_json(storage, "clipflow-leases/a.json", {"n": 1})
    shared_files.write_json(storage, "clipflow-leases/sub/b.json", {"n": 2})
    shared_files.write_json(storage, "clipflow-leasesX/c.json", {"n": 3})  # another prefix
    shared_files.write_bytes(storage, "clipflow-leases/d.txt", b"not json")
    found = {path: json.loads(raw) for path, raw in shared_files.scan(storage, "clipflow-leases")}
    assert found == {"clipflow-leases/a.json": {"n": 1}, "clipflow-leases/sub/b.json": {"n": 2}}
    assert storage.read_path("clipflow-leases/a.json", _sync=True) == b'{"n": 1}'  # where Prefect reads it
    shared_files.write_json(storage, "clipflow-leases/a.json", {"n": 4})
    assert shared_files.read_json(storage, "clipflow-leases/a.json") == {"n": 4}
    shared_files.delete(storage, "clipflow-leases/a.json")
    shared_files.delete(storage, "clipflow-leases/a.json")  # already gone: fine
    assert [path for path, _ in shared_files.scan(storage, "clipflow-leases")] == ["clipflow-leases/sub/b.json"]
    if kind == "s3-folder":
        keys = [o["Key"] for o in s3.client.list_objects_v2(Bucket=s3.bucket)["Contents"]]
        assert all(key.startswith("some/folder/") for key in keys), keys


def test_only_dead_or_stale_heartbeats_of_the_limit_are_stale() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    me = this_process().to_json()
    now = dt.datetime.now(dt.timezone.utc)

    def beat(name: str, age: float, **who: Any) -> dict[str, Any]:
        return {"lease_id": str(uuid.uuid4()), "names": [name], **me, "heartbeat_seconds": 5,
                "renewed_at": (now - dt.timedelta(seconds=age)).isoformat(), **who}

    entries = [
        beat("alive-here-stale", 600),  # this very process: alive, whatever its heartbeat says
        beat("dead-here-fresh", 0, pid=gone.pid, pid_start=None),  # a dead local pid: at once
        beat("remote-fresh", 20, host="another-machine"),
        beat("remote-stale", 26, host="another-machine"),
        beat("remote-slow-beat", 40, host="another-machine", heartbeat_seconds=20),  # 3 × its 20 s: fresh
        beat("remote-future", -30, host="another-machine"),  # its clock runs ahead: fresh
        beat("remote-garbage", 0, host="another-machine", renewed_at="yesterday"),
        beat("other-limit", 600, host="another-machine"),
    ]
    names = [e["names"][0] for e in entries if e["names"][0] != "other-limit"]
    stale = stale_heartbeats(entries, names, stale=25, now=now)
    assert [e["names"] for e in stale] == [["dead-here-fresh"], ["remote-stale"]]


# --- the shared heartbeat: holders on other machines --------------------------------------------------------


async def beats_of(storage: Any, pid: int) -> list[dict[str, Any]]:
    return [e for e in await asyncio.to_thread(shared_heartbeats, storage) if e["pid"] == pid]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("heartbeat, stale", [
    (1.0, 6.0),
    pytest.param(leases.HEARTBEAT_SECONDS, leases.STALE_SECONDS, marks=pytest.mark.slow, id="production"),
])
async def test_a_killed_holder_on_another_machine_frees_the_jobs_slot_by_its_stale_heartbeat(
    heartbeat: float, stale: float, prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The holder's host is not ours and its lease runs 60 s past its last renewal (the session server's repossessor
    would revoke it only then), so a slot free well before that was freed by the stale heartbeat."""
    monkeypatch.setenv(leases.HEARTBEAT_ENV, str(heartbeat))
    monkeypatch.setenv(leases.STALE_ENV, str(stale))
    storage = await aget_default_result_storage()
    quota = unique(concurrency=1)
    await ensure_limits(quotas=[quota])
    with holder_process(prefect_api, quota, "hold", tmp_path / "child.log", REMOTE_HOLDER,
                        CLIPFLOW_LOCK_DIR=str(tmp_path / "other-machine-locks")) as child:
        assert not [e for e in registered_leases() if e["pid"] == child.pid]  # nothing in our local registry
        [beat] = await beats_of(storage, child.pid)
        assert beat["host"] == "another-machine" and beat["names"] == [quota.limit_name]
        assert beat["pid_start"] and beat["boot_id"] and beat["heartbeat_seconds"] == heartbeat
        first = beat["renewed_at"]
        await cannot_get(hold_slot(quota), max(3, heartbeat + 1.5))  # alive, fresh heartbeat: not released
        [beat] = await beats_of(storage, child.pid)
        assert beat["renewed_at"] > first, "the holder's heartbeat was not rewritten"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        killed = time.monotonic()
        async with within(60, f"{quota.limit_name} is still held by the killed remote process"):
            async with hold_slot(quota):
                took = time.monotonic() - killed
                assert await active_slots(quota.limit_name) == 1
    print(f"jobs slot of a killed remote holder free after {took:.2f} s (stale after {stale:.0f} s)")
    assert took < 45, took
    assert stale - heartbeat - 1 <= took <= stale + leases.POLL_SECONDS + 3, took  # by its heartbeat going stale
    assert not await beats_of(storage, child.pid), "the dead holder's heartbeat stayed"
    assert await active_slots(quota.limit_name) == 0


@pytest.mark.timeout(240)
async def test_a_live_holder_on_another_machine_keeps_its_slot_beyond_the_stale_time(
    prefect_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    heartbeat, stale = 1.0, 3.0
    monkeypatch.setenv(leases.HEARTBEAT_ENV, str(heartbeat))
    monkeypatch.setenv(leases.STALE_ENV, str(stale))
    monkeypatch.setattr(leases, "RENEW_SECONDS", 2.0)  # our own leases: renewed too, during the wait
    storage = await aget_default_result_storage()
    quota = unique(concurrency=1)
    await ensure_limits(quotas=[quota])
    with holder_process(prefect_api, quota, "hold", tmp_path / "child.log", REMOTE_HOLDER,
                        CLIPFLOW_LOCK_DIR=str(tmp_path / "other-machine-locks"),
                        **{leases.HEARTBEAT_ENV: str(heartbeat), leases.STALE_ENV: str(stale)}) as child:
        started = time.monotonic()
        await cannot_get(hold_slot(quota), 4 * stale)  # a waiter looking at its heartbeat all along
        async with get_client() as client:  # and a reaper that is told the limit is full
            assert await reap_stale_leases(client, [quota.limit_name], storage, stale) == []
        assert time.monotonic() - started > 3 * stale
        assert child.poll() is None and await active_slots(quota.limit_name) == 1
        [beat] = await beats_of(storage, child.pid)
        age = dt.datetime.now(dt.timezone.utc) - dt.datetime.fromisoformat(beat["renewed_at"])
        assert age.total_seconds() < stale, age
    assert "lost" not in (tmp_path / "child.log").read_text()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["local", "s3"])
async def test_a_held_lease_keeps_a_heartbeat_in_the_shared_storage(
    kind: str, prefect_api: str, tmp_path: Path, s3: Any
) -> None:
    """Heartbeat written, rewritten, removed on release; and a holder that stopped beating (as a killed one on
    another machine) is released by a waiter reading the bucket, its heartbeat removed."""
    storage = LocalFileSystem(basepath=str(tmp_path)) if kind == "local" else s3_bucket_block(s3, "prod")
    quota = unique(concurrency=1)
    await ensure_limits(quotas=[quota])
    lease = await acquire_lease([quota.limit_name], storage=storage, heartbeat=0.3)
    try:
        assert lease.beating
        beat = await asyncio.to_thread(shared_files.read_json, storage, lease.shared_path)
        assert beat["lease_id"] == str(lease.lease_id) and beat["names"] == [quota.limit_name]
        await asyncio.sleep(1)
        again = await asyncio.to_thread(shared_files.read_json, storage, lease.shared_path)
        assert again["renewed_at"] > beat["renewed_at"]
    finally:
        await lease.arelease()
    assert not lease.beating
    assert await asyncio.to_thread(shared_files.read_json, storage, lease.shared_path) is None

    dying = await acquire_lease([quota.limit_name], storage=storage, heartbeat=0.3)
    leases._shared_beats.remove(dying.lease_id)  # it stops beating (and renewing): as if killed
    leases._lease_beats.remove(dying.lease_id)
    beat = await asyncio.to_thread(shared_files.read_json, storage, dying.shared_path)
    await asyncio.to_thread(shared_files.write_json, storage, dying.shared_path, {**beat, "host": "another-machine"})
    started = time.monotonic()
    waiter = await acquire_lease([quota.limit_name], storage=storage, stale=2, poll_seconds=0.5)
    try:
        assert 1 <= time.monotonic() - started < 2 + 0.5 + 3
        assert await asyncio.to_thread(shared_files.read_json, storage, dying.shared_path) is None
        async with get_client() as client:  # released on the server: a renewal of the dead one is refused
            with pytest.raises(httpx.HTTPStatusError):
                await client.renew_concurrency_lease(dying.lease_id, lease_duration=60)
    finally:
        await waiter.arelease()
        dying._released = True
        dying.path.unlink(missing_ok=True)


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
    quota = unique(qps=1)  # a one-slot turn (flows.coordination.pacing)
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


@pytest.mark.slow
@pytest.mark.timeout(420)
async def test_over_a_lease_period_a_live_holder_keeps_its_slot_and_a_dead_remote_one_loses_it(
    prefect_api: str, tmp_path: Path
) -> None:
    """Across machines without a readable heartbeat only the lease can tell: a holder killed on "another
    machine" (its registry entry says so, its heartbeat is not in our storage) frees its slot once its lease runs
    out and the server's repossessor revokes it (within the documented 60 + 5 + 5 s fallback), while this
    process's own slot, held all along, is renewed past the lease duration. The session's server runs the
    repossessor as clipflow recommends (tests.harness ``SESSION_SERVER_SERVICES``), so this also proves that an
    orphaned slot cannot hang the rest of the suite."""
    mine, theirs = unique(concurrency=1), unique(concurrency=1)
    await ensure_limits(quotas=[mine, theirs])
    async with hold_slot(mine):
        held_since = time.monotonic()
        with holder_process(prefect_api, theirs, "hold", tmp_path / "child.log") as child:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
            killed = time.monotonic()
            for entry in registered_leases():  # as if it had run on another machine
                if entry["pid"] == child.pid:
                    path = entry.pop("path")
                    Path(path).write_text(json.dumps({**entry, "host": "another-machine"}))
            storage = await aget_default_result_storage()  # whose heartbeat we cannot read (the fallback)
            for beat in await beats_of(storage, child.pid):
                await asyncio.to_thread(shared_files.delete, storage, beat["path"])
        bound = leases.WORST_CASE_REMOTE_FALLBACK_SECONDS
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
