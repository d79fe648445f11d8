"""Cache locks against real processes: killed holders, holders on "another machine", renewal, races."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import pytest

from flows.runtime import compat, processes
from flows.coordination import locks, redis_locks
from flows.engine.caching import lock_manager
from flows.coordination.locks import SafeFileSystemLockManager, held_lock_count
from flows.runtime.processes import Liveness, ProcessIdentity, process_state, this_process

REPO = Path(__file__).resolve().parents[3]

HOLDER = """
import json, sys, time
from flows.coordination.locks import SafeFileSystemLockManager
cfg = json.loads(sys.argv[1])
m = SafeFileSystemLockManager(cfg["dir"], **cfg.get("manager", {}))
if not m.acquire_lock(cfg["key"], cfg["holder"], acquire_timeout=30):
    sys.exit("could not lock")
print("locked", flush=True)
time.sleep(cfg.get("hold_for", 3600))
m.release_lock(cfg["key"], cfg["holder"])
print("released", flush=True)
"""

# Each worker adds 1 to a counter file `rounds` times, read-modify-write under the lock.
COUNTER = """
import json, sys, time
from pathlib import Path
from flows.coordination.locks import SafeFileSystemLockManager
cfg = json.loads(sys.argv[1])
m = SafeFileSystemLockManager(cfg["dir"], hold_seconds=5, renew_seconds=1, poll_seconds=0.002)
counter = Path(cfg["counter"])
for i in range(cfg["rounds"]):
    holder = f"{cfg['name']}-{i}"
    assert m.acquire_lock("counter", holder, acquire_timeout=60), "no lock within 60 s"
    value = int(counter.read_text() or 0)
    time.sleep(0.001)
    counter.write_text(str(value + 1))
    m.release_lock("counter", holder)
print("done", flush=True)
"""

CHURN = """
import json, sys, time
from flows.coordination.locks import SafeFileSystemLockManager
cfg = json.loads(sys.argv[1])
m = SafeFileSystemLockManager(cfg["dir"], hold_seconds=5, renew_seconds=1, poll_seconds=0.001)
print("go", flush=True)
sys.stdin.readline()
end = time.monotonic() + cfg["seconds"]
n = 0
while time.monotonic() < end:
    holder = f"{cfg['name']}-{n}"
    if m.acquire_lock("churn", holder, acquire_timeout=5):
        m.release_lock("churn", holder)
        n += 1
print("done", n, flush=True)
"""

TRY_ONCE = """
import json, sys
from flows.coordination.locks import SafeFileSystemLockManager
cfg = json.loads(sys.argv[1])
m = SafeFileSystemLockManager(cfg["dir"])
print("go", flush=True)
sys.stdin.readline()
print("won" if m.acquire_lock(cfg["key"], cfg["name"], acquire_timeout=1.5) else "lost", flush=True)
sys.stdin.readline()  # the winner stays alive (holding) until the test is done
"""


def spawn(snippet: str, **cfg: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", snippet, json.dumps(cfg)], cwd=REPO, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def expect_line(proc: subprocess.Popen[str], wanted: str, timeout: float) -> str:
    """The child's next stdout line, which must start with ``wanted``, within ``timeout`` seconds."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        proc.kill()
        raise AssertionError(f"child printed no {wanted!r} within {timeout} s (stuck); stderr: {proc.communicate()[1]}")
    line = proc.stdout.readline()
    if not line.startswith(wanted):
        proc.kill()
        raise AssertionError(f"child printed {line!r}, not {wanted!r}; stderr: {proc.communicate()[1]}")
    return line


@contextmanager
def holder_process(directory: Path, key: str, **cfg: Any) -> Iterator[subprocess.Popen[str]]:
    proc = spawn(HOLDER, dir=str(directory), key=key, holder=f"child-{key}", **cfg)
    try:
        expect_line(proc, "locked", 30)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def timed_acquire(manager: SafeFileSystemLockManager, key: str, holder: str, timeout: float) -> float:
    started = time.monotonic()
    assert manager.acquire_lock(key, holder, acquire_timeout=timeout), (
        f"the lock of {key!r} was still held {timeout} s later (a dead holder is blocking it)"
    )
    return time.monotonic() - started


# --- figures ------------------------------------------------------------------------------------------------


def test_production_figures_meet_the_60_second_bound() -> None:
    # Another machine: free when the expiration (last renewal + HOLD) passes, noticed at the next poll.
    assert locks.WORST_CASE_REMOTE_SECONDS == locks.HOLD_SECONDS + locks.POLL_SECONDS <= locks.BOUND_SECONDS
    # This machine: the next poll after the death.
    assert locks.WORST_CASE_LOCAL_SECONDS <= 1
    # A living holder has several renewals before its lock could expire.
    assert locks.HOLD_SECONDS / locks.RENEW_SECONDS >= 5
    manager = SafeFileSystemLockManager("/tmp/unused")
    assert (manager.hold_seconds, manager.renew_seconds, manager.poll_seconds) == (
        locks.HOLD_SECONDS, locks.RENEW_SECONDS, locks.POLL_SECONDS)


# --- liveness -----------------------------------------------------------------------------------------------


def test_process_state() -> None:
    me = this_process()
    assert me.pid == os.getpid() and me.host
    assert process_state(me) is Liveness.ALIVE
    assert process_state(ProcessIdentity(me.host, me.pid, "1", me.boot, me.pidns)) is Liveness.DEAD  # pid reused
    assert process_state(ProcessIdentity(me.host, dead_pid(), None, me.boot, me.pidns)) is Liveness.DEAD
    assert process_state(ProcessIdentity("another-host", dead_pid())) is Liveness.UNKNOWN
    assert process_state(ProcessIdentity(me.host, dead_pid(), None, me.boot, "pid:[1]")) is Liveness.UNKNOWN

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stat = processes._proc_stat(child.pid)
        start = stat[1] if stat else None
        assert process_state(ProcessIdentity(me.host, child.pid, start, me.boot, me.pidns)) is Liveness.ALIVE
        child.kill()
        deadline = time.monotonic() + 10
        while (processes._proc_stat(child.pid) or ("?",))[0] != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        # Killed, not yet reaped by us (its parent): a zombie is dead too.
        assert process_state(ProcessIdentity(me.host, child.pid, start, me.boot, me.pidns)) is Liveness.DEAD
    finally:
        child.kill()
        child.wait()


# --- killed holders -----------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("reaped", [True, False], ids=["reaped", "zombie"])
def test_a_holder_killed_on_this_host_frees_its_lock_at_once(tmp_path: Path, reaped: bool) -> None:
    manager = SafeFileSystemLockManager(tmp_path)  # production figures: a 30 s hold
    with holder_process(tmp_path, "paid-submit") as child:
        assert not manager.acquire_lock("paid-submit", "rerun", acquire_timeout=0.5), "a living holder's lock was taken"
        child.send_signal(signal.SIGKILL)
        if reaped:
            child.wait(timeout=10)
        else:
            time.sleep(0.2)  # dead, still a zombie
        took = timed_acquire(manager, "paid-submit", "rerun", timeout=10)
        print(f"lock of a killed local holder free after {took:.2f} s")
        assert took < 2, f"{took:.1f} s to notice a dead holder on this host"
        assert manager.is_lock_holder("paid-submit", "rerun")
        manager.release_lock("paid-submit", "rerun")
    assert not manager.is_locked("paid-submit")


@pytest.mark.timeout(60)
def test_a_holder_killed_on_another_host_frees_its_lock_when_it_expires(tmp_path: Path) -> None:
    hold, renew = 3.0, 0.5
    manager = SafeFileSystemLockManager(tmp_path)
    with holder_process(tmp_path, "k", manager={"hold_seconds": hold, "renew_seconds": renew, "host": "elsewhere"}) as child:
        info = manager.read_lock("k")
        assert info is not None and info.process is not None and info.process.host == "elsewhere"
        time.sleep(hold + 1)  # its renewals keep it: no liveness check is possible across hosts
        assert manager.is_locked("k"), "a living holder on another host lost its lock"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        killed = time.monotonic()
        assert manager.is_locked("k"), "a holder on another host cannot be seen dying: only its expiry frees it"
        timed_acquire(manager, "k", "rerun", timeout=hold + 10)
        took = time.monotonic() - killed
    # Its last renewal was at most `renew` s before the kill, so the lock outlived the kill by hold - renew.
    assert hold - renew - 0.5 <= took <= hold + 1, took


@pytest.mark.timeout(60)
def test_a_healthy_holder_keeps_its_lock_for_three_holds(tmp_path: Path) -> None:
    hold = 1.0
    manager = SafeFileSystemLockManager(tmp_path, hold_seconds=hold, renew_seconds=0.2)
    # "Another host", so only renewals (no liveness check) keep the lock.
    cfg = {"hold_seconds": hold, "renew_seconds": 0.2, "host": "elsewhere"}
    with holder_process(tmp_path, "k", manager=cfg, hold_for=3 * hold + 0.5) as child:
        first = manager.read_lock("k")
        assert first is not None and first.expiration is not None
        assert not manager.acquire_lock("k", "other", acquire_timeout=3 * hold), "took a renewed lock"
        later = manager.read_lock("k")
        assert later is not None and later.expiration is not None and later.expiration > first.expiration + timedelta(seconds=2 * hold)
        expect_line(child, "released", 10)
        assert manager.acquire_lock("k", "other", acquire_timeout=1)


# --- the file itself ----------------------------------------------------------------------------------------


def test_the_lock_file_says_who_holds_it_and_always_expires(tmp_path: Path) -> None:
    manager = SafeFileSystemLockManager(tmp_path)
    before = held_lock_count()
    assert manager.acquire_lock("k", "me")  # as Prefect calls it: no hold_timeout
    data = json.loads(manager.lock_path("k").read_bytes())
    me = this_process()
    assert data["holder"] == "me"
    assert (data["host"], data["pid"], data["pid_start"]) == (me.host, me.pid, me.start)
    expiration = datetime.fromisoformat(data["expiration"])
    assert timedelta(seconds=25) < expiration - datetime.now(timezone.utc) <= timedelta(seconds=30)
    assert held_lock_count() == before + 1
    assert manager.acquire_lock("k", "me", acquire_timeout=0)  # re-entrant for the same holder
    assert not manager.acquire_lock("k", "someone-else", acquire_timeout=0.2)
    manager.release_lock("k", "me")
    assert not manager.lock_path("k").exists()
    assert held_lock_count() == before
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.timeout(30)
def test_hold_timeout_caps_the_hold(tmp_path: Path) -> None:
    manager = SafeFileSystemLockManager(tmp_path, hold_seconds=5, renew_seconds=0.2)
    assert manager.acquire_lock("k", "me", hold_timeout=1)
    other = SafeFileSystemLockManager(tmp_path, host="elsewhere")  # no liveness shortcut: expiry only
    started = time.monotonic()
    assert other.acquire_lock("k", "other", acquire_timeout=5)
    assert 0.7 < time.monotonic() - started < 2.5
    manager.release_lock("k", "me")  # lost meanwhile: logged, not raised
    assert other.is_lock_holder("k", "other")


def test_a_lock_without_expiration_written_by_stock_prefect_expires(tmp_path: Path) -> None:
    from prefect.locking.filesystem import FileSystemLockManager

    FileSystemLockManager(tmp_path).acquire_lock("k", "old-worker")  # "expiration": null, no pid
    manager = SafeFileSystemLockManager(tmp_path, hold_seconds=1, renew_seconds=0.2)
    assert manager.is_locked("k")
    assert manager.acquire_lock("k", "me", acquire_timeout=3)


@pytest.mark.timeout(120)
def test_only_one_waiter_takes_over_a_dead_holders_lock(tmp_path: Path) -> None:
    manager = SafeFileSystemLockManager(tmp_path)
    me = this_process()
    stale = {"holder": "dead", "expiration": (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat(),
             **ProcessIdentity(me.host, dead_pid(), None, me.boot, me.pidns).to_json()}
    manager.lock_path("k").write_text(json.dumps(stale))
    procs = [spawn(TRY_ONCE, dir=str(tmp_path), key="k", name=f"w{i}") for i in range(4)]
    try:
        for proc in procs:
            expect_line(proc, "go", 30)
        for proc in procs:  # start together
            assert proc.stdin is not None
            proc.stdin.write("\n")
            proc.stdin.flush()
        results = [expect_line(proc, "", 30).strip() for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert sorted(results) == ["lost", "lost", "lost", "won"], results


@pytest.mark.timeout(180)
def test_processes_never_hold_the_lock_together(tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    counter.write_text("0")
    procs = [spawn(COUNTER, dir=str(tmp_path / "locks"), counter=str(counter), rounds=40, name=f"p{i}")
             for i in range(3)]
    try:
        for proc in procs:
            expect_line(proc, "done", 150)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert counter.read_text() == "120", "two processes were inside the lock at once"


@pytest.mark.timeout(60)
def test_a_concurrent_reader_never_fails(tmp_path: Path) -> None:
    """Lock files appear with their content (temp file + link): a reader never sees an empty or partial one,
    neither ours nor Prefect's own reader (what an older worker on the same machine would run)."""
    procs = [spawn(CHURN, dir=str(tmp_path), seconds=3, name=f"c{i}") for i in range(2)]
    manager = SafeFileSystemLockManager(tmp_path)
    path = manager.lock_path("churn")
    seen = errors = 0
    problems: list[str] = []
    try:
        for proc in procs:
            expect_line(proc, "go", 30)
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("\n")
            proc.stdin.flush()
        end = time.monotonic() + 3
        while time.monotonic() < end:
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                pass
            else:
                seen += 1
                try:
                    assert json.loads(raw)["holder"]
                except Exception as exc:  # noqa: BLE001
                    errors += 1
                    problems.append(f"{raw!r}: {exc}")
            try:
                manager.is_locked("churn")
                compat.prefect_read_lock(tmp_path, "churn")
            except Exception as exc:  # noqa: BLE001
                errors += 1
                problems.append(repr(exc))
        for proc in procs:
            expect_line(proc, "done", 30)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert seen > 50, f"only {seen} reads found a lock: the test did not exercise the race"
    assert errors == 0, problems[:5]


def test_a_reader_racing_a_non_atomic_writer_waits_instead_of_failing(tmp_path: Path) -> None:
    """Prefect's own manager touches the file, then fills it: an unreadable lock counts as held briefly."""
    manager = SafeFileSystemLockManager(tmp_path)
    lock_file = manager.lock_path("k")
    lock_file.touch()
    writer = threading.Timer(0.1, lambda: lock_file.write_bytes(b'{"holder": "w", "expiration": null}'))
    writer.start()
    assert manager.is_locked("k")
    writer.join()
    assert manager.is_locked("k") and not manager.is_lock_holder("k", "me")


# --- the factory --------------------------------------------------------------------------------------------


def test_lock_manager_factory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLIPFLOW_LOCK_DIR", str(tmp_path))
    monkeypatch.delenv("CLIPFLOW_LOCK_MANAGER", raising=False)
    manager = lock_manager()
    assert isinstance(manager, SafeFileSystemLockManager)
    assert manager.lock_files_directory == tmp_path.resolve()
    monkeypatch.setenv("CLIPFLOW_LOCK_MANAGER", "zookeeper")
    with pytest.raises(ValueError, match="CLIPFLOW_LOCK_MANAGER"):
        lock_manager()
    monkeypatch.setenv("CLIPFLOW_LOCK_MANAGER", "redis")
    with pytest.raises(ValueError, match="CLIPFLOW_LOCK_REDIS_URL"):
        lock_manager()


# --- the Redis lock manager (a real redis-server) -----------------------------------------------------------

REDIS_HOLDER = """
import json, sys, time
from flows.coordination.redis_locks import RedisLeaseLockManager
cfg = json.loads(sys.argv[1])
m = RedisLeaseLockManager(cfg["url"], **cfg.get("manager", {}))
if not m.acquire_lock(cfg["key"], cfg["holder"], acquire_timeout=30):
    sys.exit("could not lock")
print("locked", flush=True)
time.sleep(cfg.get("hold_for", 3600))
m.release_lock(cfg["key"], cfg["holder"])
print("released", flush=True)
"""


def started_redis() -> Iterator[Any]:
    """A throwaway redis-server (no persistence), stopped afterwards; the test skips without the binary."""
    from tests.e2e.services import RedisServer, redis_server_path

    binary = redis_server_path()
    if binary is None:
        pytest.skip("redis-server not found (Debian package redis-server; `make e2e-deps` installs it)")
    server = RedisServer(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    for server in started_redis():
        yield server.url


def redis_manager(url: str, **kw: float) -> redis_locks.RedisLeaseLockManager:
    return redis_locks.RedisLeaseLockManager(url, **kw)


def test_redis_factory_and_url_rules(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> None:
    monkeypatch.setenv("CLIPFLOW_LOCK_MANAGER", "redis")
    monkeypatch.setenv("CLIPFLOW_LOCK_REDIS_URL", redis_url)
    manager = lock_manager()
    assert isinstance(manager, redis_locks.RedisLeaseLockManager)
    assert (manager.hold_seconds, manager.renew_seconds) == (locks.HOLD_SECONDS, locks.RENEW_SECONDS)
    for bad, rule in [("http://h:6379/0", "must start with"), ("h:6379", "no scheme"),
                      ("redis://h:99999/0", "port"), ("redis://h:6379/zero", "database")]:
        monkeypatch.setenv("CLIPFLOW_LOCK_REDIS_URL", bad)
        with pytest.raises(ValueError, match=rf"CLIPFLOW_LOCK_REDIS_URL.*{rule}"):
            lock_manager()
    # a password never shows: not in errors, not in the repr Prefect may log
    with pytest.raises(ValueError) as refused:
        redis_locks.RedisLeaseLockManager("redis://:s3cret@h:notaport/0")
    assert "s3cret" not in str(refused.value)
    assert "s3cret" not in repr(redis_locks.RedisLeaseLockManager("redis://:s3cret@127.0.0.1:1/0"))


def test_redis_lock_is_exclusive_and_always_expires(redis_url: str) -> None:
    manager = redis_manager(redis_url)
    assert manager.acquire_lock("k-basic", "a", acquire_timeout=1)
    try:
        # the same key a stock prefect-redis manager uses, with a TTL although Prefect passed no hold_timeout
        ttl = manager.client.pttl("lock:k-basic")
        assert 0 < ttl <= locks.HOLD_SECONDS * 1000
        assert manager.is_locked("k-basic") and manager.is_lock_holder("k-basic", "a")
        assert not manager.is_lock_holder("k-basic", "b")
        assert not manager.acquire_lock("k-basic", "b", acquire_timeout=0.3)
        assert manager.acquire_lock("k-basic", "a", acquire_timeout=0), "Prefect re-acquires as the same holder"
        assert not manager.wait_for_lock("k-basic", timeout=0.3)
    finally:
        manager.release_lock("k-basic", "a")
    assert not manager.is_locked("k-basic") and manager.wait_for_lock("k-basic", timeout=0)


def test_redis_hold_timeout_caps_the_hold(redis_url: str) -> None:
    manager = redis_manager(redis_url, hold_seconds=5, renew_seconds=0.2)
    assert manager.acquire_lock("k-cap", "a", hold_timeout=1)
    assert manager.acquire_lock("k-cap", "b", acquire_timeout=5), "renewed past its hold_timeout"
    manager.release_lock("k-cap", "b")


@pytest.mark.timeout(60)
def test_redis_async_acquire_sync_release_frees_the_lock(redis_url: str) -> None:
    """Prefect's AsyncTransaction takes the lock with aacquire_lock and gives it back with the sync release_lock.
    The stock RedisLockManager then leaves the key (an asyncio lock's release() is never awaited); ours not."""
    from prefect_redis.locking import RedisLockManager

    manager = redis_manager(redis_url)
    assert anyio.run(manager.aacquire_lock, "k-async", "a")
    manager.release_lock("k-async", "a")
    assert not manager.is_locked("k-async")

    stock = RedisLockManager(connection_url=redis_url)
    assert anyio.run(stock.aacquire_lock, "k-stock", "a")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "coroutine ... was never awaited"
        stock.release_lock("k-stock", "a")
    assert stock.is_locked("k-stock") and manager.client.pttl("lock:k-stock") == -1, "stock manager fixed?"
    manager.client.delete("lock:k-stock")


@pytest.mark.timeout(60)
def test_redis_a_killed_holder_frees_its_lock_when_it_expires(redis_url: str) -> None:
    hold, renew = 3.0, 0.5
    manager = redis_manager(redis_url, hold_seconds=hold, renew_seconds=renew)
    child = spawn(REDIS_HOLDER, url=redis_url, key="k-dead", holder="child",
                  manager={"hold_seconds": hold, "renew_seconds": renew})
    try:
        expect_line(child, "locked", 30)
        time.sleep(hold + 1)  # its renewals keep it past one hold
        assert manager.is_lock_holder("k-dead", "child"), "a living holder lost its lock"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        killed = time.monotonic()
        assert manager.acquire_lock("k-dead", "rerun", acquire_timeout=hold + 10), "a dead holder's lock stayed"
        took = time.monotonic() - killed
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)
    manager.release_lock("k-dead", "rerun")
    assert hold - renew - 0.5 <= took <= hold + 1, took


def test_redis_release_after_takeover_keeps_the_new_holders_lock(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    manager = redis_manager(redis_url, hold_seconds=0.5, renew_seconds=0.1)
    assert manager.acquire_lock("k-lost", "old")
    manager.client.delete("lock:k-lost")  # as if it expired while the holder stalled
    other = redis_manager(redis_url)
    assert other.acquire_lock("k-lost", "new", acquire_timeout=1)
    manager.release_lock("k-lost", "old")
    assert other.is_lock_holder("k-lost", "new"), "the old holder's release dropped the new holder's lock"
    assert "no longer held" in caplog.text
    other.release_lock("k-lost", "new")


def test_redis_manager_survives_pickling(redis_url: str) -> None:
    import pickle

    manager = pickle.loads(pickle.dumps(redis_manager(redis_url, hold_seconds=7, renew_seconds=1)))
    assert (manager.url, manager.hold_seconds, manager.renew_seconds) == (redis_url, 7, 1)
    assert manager.acquire_lock("k-pickle", "a", acquire_timeout=1)
    manager.release_lock("k-pickle", "a")


def test_redis_manager_is_a_prefect_lock_manager_in_real_transactions(redis_url: str, prefect_api: str) -> None:
    """Prefect's own transactions (sync and async, SERIALIZABLE) take and give back our Redis lock."""
    import inspect

    from prefect.locking.protocol import LockManager
    from prefect.results import ResultStore
    from prefect.transactions import IsolationLevel, atransaction, transaction

    manager = redis_manager(redis_url)
    assert isinstance(manager, LockManager)
    for name in ("acquire_lock", "aacquire_lock", "release_lock", "is_locked", "is_lock_holder", "wait_for_lock",
                 "await_for_lock"):
        ours, theirs = getattr(manager, name), getattr(LockManager, name)
        assert list(inspect.signature(ours).parameters) == list(inspect.signature(theirs).parameters)[1:], name
        assert inspect.iscoroutinefunction(ours) == inspect.iscoroutinefunction(theirs), name
    store = ResultStore(lock_manager=manager)
    with transaction(key="k-txn", store=store, isolation_level=IsolationLevel.SERIALIZABLE, write_on_commit=False):
        assert 0 < manager.client.pttl("lock:k-txn") <= locks.HOLD_SECONDS * 1000
    assert not manager.is_locked("k-txn")

    async def in_async_transaction() -> None:
        async with atransaction(key="k-atxn", store=store, isolation_level=IsolationLevel.SERIALIZABLE,
                                write_on_commit=False):
            assert manager.is_locked("k-atxn")

    anyio.run(in_async_transaction)
    assert not manager.is_locked("k-atxn"), "the async transaction's lock stayed after it ended"


@pytest.fixture
def own_redis() -> Iterator[Any]:
    """A redis-server of this test alone, to restart or stop (no persistence: a restart drops every key)."""
    yield from started_redis()


def restart(server: Any, stop: bool = True) -> None:
    if stop:
        server.stop()
    server.root.mkdir(parents=True, exist_ok=True)  # stop() removes its files
    server.start()


@pytest.mark.timeout(90)
def test_redis_restart_loses_the_held_lock_and_the_task_stops_before_paying(own_redis: Any, prefect_api: str) -> None:
    from prefect.results import ResultStore
    from prefect.transactions import IsolationLevel, transaction

    manager = redis_manager(own_redis.url, hold_seconds=3, renew_seconds=0.2)
    store = ResultStore(lock_manager=manager)
    with transaction(key="k-restart", store=store, isolation_level=IsolationLevel.SERIALIZABLE, write_on_commit=False):
        locks.check_task_lock()  # held: nothing to stop
        restart(own_redis)  # every key gone, as after a restart without persistence
        other = redis_manager(own_redis.url)
        assert other.acquire_lock("k-restart", "another-worker", acquire_timeout=5), "the restart kept the lock?"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                locks.check_task_lock()
            except locks.LockLostError as lost:
                assert "lost while held" in str(lost) and lost.retryable
                break
            time.sleep(0.1)
        else:
            pytest.fail("the lost lock was never noticed")
    # Releasing at the transaction's end did not fail it, and left the other worker's lock alone.
    assert other.is_lock_holder("k-restart", "another-worker")
    other.release_lock("k-restart", "another-worker")
    assert manager.acquire_lock("k-restart", "again", acquire_timeout=1)
    locks.check_task_lock()  # taken again: no longer lost
    manager.release_lock("k-restart", "again")


@pytest.mark.timeout(90)
def test_redis_down_at_release_does_not_fail_a_finished_task(
    own_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    manager = redis_manager(own_redis.url, hold_seconds=3, renew_seconds=0.5)
    assert manager.acquire_lock("k-down", "a", acquire_timeout=1)
    own_redis.stop()
    try:
        manager.release_lock("k-down", "a")  # must not raise
    finally:
        restart(own_redis, stop=False)
    assert "not released" in caplog.text and "Redis unreachable" in caplog.text


@pytest.mark.timeout(90)
def test_redis_briefly_down_delays_an_acquire_instead_of_failing_it(own_redis: Any) -> None:
    manager = redis_manager(own_redis.url, hold_seconds=10, renew_seconds=1)
    own_redis.stop()
    back = threading.Timer(2.0, restart, args=(own_redis,), kwargs={"stop": False})
    back.start()
    try:
        assert manager.acquire_lock("k-restarting", "a", acquire_timeout=30), "not taken once Redis was back"
        assert manager.is_lock_holder("k-restarting", "a")
    finally:
        back.join()
    manager.release_lock("k-restarting", "a")


@pytest.mark.timeout(90)
def test_redis_down_for_longer_than_a_hold_fails_the_acquire(own_redis: Any) -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    manager = redis_manager(own_redis.url, hold_seconds=1, renew_seconds=0.2)
    own_redis.stop()
    try:
        with pytest.raises(RedisConnectionError):
            manager.acquire_lock("k-gone", "a", acquire_timeout=30)
    finally:
        restart(own_redis, stop=False)
