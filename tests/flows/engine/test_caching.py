"""Cache locks of paid tasks: a reader never trips over a lock file being written, and a run killed in the
middle of a paid task does not block the re-run (the problem: Prefect holds the lock with no expiration)."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from prefect import flow, task

from flows.engine import caching
from flows.runtime import compat, processes
from flows.coordination import locks
from flows.engine.caching import SafeFileSystemLockManager, cached_task_options, keyed_cache, storage_key
from flows.runtime.settings import lock_directory

REPO = Path(__file__).resolve().parents[3]


def test_a_lock_file_still_being_written_is_waited_for(tmp_path: Path) -> None:
    manager = SafeFileSystemLockManager(tmp_path)
    lock_file = tmp_path / "key.lock"
    lock_file.touch()  # what Prefect's acquire_lock does first, before writing the holder

    def finish_writing() -> None:
        time.sleep(0.1)
        lock_file.write_bytes(b'{"holder": "other-worker", "expiration": null}')

    writer = threading.Thread(target=finish_writing)
    writer.start()
    assert manager.is_locked("key")  # Prefect's own manager raises ValueError here
    assert not manager.is_lock_holder("key", "me")
    writer.join()


def test_an_abandoned_empty_lock_file_expires(tmp_path: Path) -> None:
    manager = SafeFileSystemLockManager(tmp_path)
    (tmp_path / "key.lock").touch()  # its writer died between touch and write
    assert manager.is_locked("key")
    assert manager.wait_for_lock("key", timeout=5)
    assert manager.acquire_lock("key", holder="me", acquire_timeout=5)
    assert manager.is_lock_holder("key", holder="me")
    manager.release_lock("key", holder="me")


def test_user_strings_never_reach_lock_or_record_paths() -> None:
    policy = keyed_cache(lambda p: f"clipflow-import-{p['space']}-abc")
    key = policy.compute_key(task_ctx=None, inputs={"space": "../other-space"}, flow_parameters={})  # type: ignore[arg-type]
    assert key == storage_key("clipflow-import-../other-space-abc")
    assert "other-space" not in key and "/" not in key and ".." not in key
    directory = policy.lock_manager.lock_files_directory
    assert compat.prefect_lock_path(directory, key).parent == directory


def test_the_cache_policy_uses_the_renewing_lock_manager() -> None:
    policy = keyed_cache(lambda p: "k")
    assert isinstance(policy.lock_manager, SafeFileSystemLockManager)
    assert policy.lock_manager.lock_files_directory == Path(lock_directory()).resolve()
    assert policy.lock_manager.hold_seconds == locks.HOLD_SECONDS


@pytest.mark.timeout(120)
def test_a_cached_task_holds_an_expiring_lock_while_it_runs(prefect_api: str) -> None:
    key = f"test-{uuid.uuid4().hex}"
    seen: list[Any] = []

    @task(**cached_task_options(lambda p: p["key"]))
    def paid(key: str) -> str:
        seen.append(caching.lock_manager().read_lock(storage_key(key)))
        return "paid once"

    @flow
    def run(key: str) -> str:
        return paid(key)

    assert run(key) == "paid once"
    assert run(key) == "paid once"  # the cache: the body ran once
    assert len(seen) == 1
    info = seen[0]
    assert info is not None and info.process is not None, "the task body ran without its lock"
    assert (info.process.host, info.process.pid) == (processes.this_process().host, os.getpid())
    assert info.expiration is not None, "Prefect's hold_timeout=None must not make the lock eternal"
    assert not caching.lock_manager().is_locked(storage_key(key))


PAID_FOREVER = """
import sys, time
from prefect import flow, task
from flows.engine.caching import cached_task_options

@task(**cached_task_options(lambda p: p["key"]))
def paid(key: str) -> str:
    print("paying", flush=True)
    time.sleep(3600)  # a long wait on a provider job
    return "child"

@flow
def run(key: str) -> str:
    return paid(key)

run(sys.argv[1])
"""


@pytest.mark.timeout(240)
def test_a_rerun_is_not_blocked_by_a_killed_run(prefect_api: str, tmp_path: Path) -> None:
    key = f"test-{uuid.uuid4().hex}"
    log = tmp_path / "child.log"
    with open(log, "w") as err:
        child = subprocess.Popen([sys.executable, "-c", PAID_FOREVER, key], cwd=REPO, text=True,
                                 env={**os.environ, "PREFECT_API_URL": prefect_api},
                                 stdout=subprocess.PIPE, stderr=err)
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 120
        line = ""
        while not line.startswith("paying") and time.monotonic() < deadline:
            ready, _, _ = select.select([child.stdout], [], [], max(0.0, deadline - time.monotonic()))
            line = child.stdout.readline() if ready else ""
            if ready and not line:
                break  # the child ended
        assert line.startswith("paying"), f"the first run never reached its paid task: {log.read_text()[-2000:]}"
        assert caching.lock_manager().is_locked(storage_key(key))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    @task(**cached_task_options(lambda p: p["key"]))
    def paid(key: str) -> str:
        return "rerun"

    @flow
    def run(key: str) -> str:
        return paid(key)

    pool = concurrent.futures.ThreadPoolExecutor(1)
    started = time.monotonic()
    try:
        result = pool.submit(run, key).result(timeout=60)
    except concurrent.futures.TimeoutError:
        raise AssertionError("the re-run is still waiting for the killed run's cache lock after 60 s") from None
    finally:
        pool.shutdown(wait=False)
    took = time.monotonic() - started
    print(f"re-run of a killed run's cached task done in {took:.1f} s")
    assert result == "rerun"
    assert took < 30, f"the re-run took {took:.1f} s"


def test_cached_task_options_read_no_setting_until_a_run_uses_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("CLIPFLOW_LOCK_MANAGER", "CLIPFLOW_CACHE_DAYS", "CLIPFLOW_LOCK_DIR"):
        monkeypatch.setenv(name, "not a value")  # what an import sees must not matter

    @task(**cached_task_options(lambda p: "k"))
    def paid() -> None: ...

    monkeypatch.setenv("CLIPFLOW_LOCK_MANAGER", "file")
    monkeypatch.setenv("CLIPFLOW_CACHE_DAYS", "3")
    monkeypatch.setenv("CLIPFLOW_LOCK_DIR", str(tmp_path / "first"))
    policy = paid.cache_policy
    assert isinstance(policy, caching.RuntimeLockPolicy)
    first = policy.lock_manager
    assert first.lock_files_directory == (tmp_path / "first").resolve()
    assert policy.lock_manager is first  # one manager while the settings stay the same (its holds live there)
    now = dt.datetime.now(dt.timezone.utc)
    assert now + paid.cache_expiration == now + dt.timedelta(days=3)

    monkeypatch.setenv("CLIPFLOW_LOCK_DIR", str(tmp_path / "second"))
    monkeypatch.setenv("CLIPFLOW_CACHE_DAYS", "0.5")
    assert policy.lock_manager.lock_files_directory == (tmp_path / "second").resolve()
    assert now + paid.cache_expiration == now + dt.timedelta(hours=12)
    monkeypatch.setenv("CLIPFLOW_LOCK_MANAGER", "zookeeper")
    with pytest.raises(ValueError, match="CLIPFLOW_LOCK_MANAGER"):
        policy.lock_manager  # noqa: B018 - the property is the code under test
    copy = policy.configure(key_storage=str(tmp_path / "keys"))  # Prefect's own copy of a policy
    monkeypatch.setenv("CLIPFLOW_LOCK_MANAGER", "file")
    assert isinstance(copy, caching.RuntimeLockPolicy) and copy.lock_manager is not first


@pytest.mark.timeout(120)
def test_a_cached_result_expires_after_the_cache_days_of_its_run(
    prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"test-{uuid.uuid4().hex}"

    @task(**cached_task_options(lambda p: p["key"]))
    def paid(key: str) -> str:
        return "paid"

    @flow
    def run(key: str) -> Any:
        return paid(key, return_state=True)

    monkeypatch.setenv("CLIPFLOW_CACHE_DAYS", "0.25")  # set after the task was decorated
    before = dt.datetime.now(dt.timezone.utc)
    state = run(key)
    expiration = state.data.metadata.expiration
    assert expiration is not None
    assert dt.timedelta(hours=5.9) < expiration - before < dt.timedelta(hours=6.1)
