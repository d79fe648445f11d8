"""What clipflow relies on from Prefect (flows.runtime.compat): fails when a Prefect upgrade changes it."""

from __future__ import annotations

import inspect
import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import PrefectClient, SyncPrefectClient, get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.responses import ConcurrencyLimitWithLeaseResponse
from prefect.locking.filesystem import FileSystemLockManager
from prefect.locking.protocol import LockManager
from prefect.results import ResultStore
from prefect.transactions import IsolationLevel, transaction

from flows.runtime import compat, leases
from flows.runtime.locks import SafeFileSystemLockManager


def params(fn: Any) -> list[str]:
    return [p for p in inspect.signature(fn).parameters if p != "self"]


# --- private names ------------------------------------------------------------------------------------------


def test_every_private_api_we_use_exists_with_the_signature_we_call() -> None:
    apis = compat.private_apis()
    missing = [name for name, fn in apis.items() if fn is None]
    assert not missing, f"Prefect no longer has {missing}: update flows/runtime/compat.py"
    assert compat.EVENTS_AVAILABLE
    expected = {
        "prefect.concurrency._events.emit_concurrency_acquisition_events": ["limits", "occupy"],
        "prefect.concurrency._events.emit_concurrency_release_events": ["limits", "occupy", "events"],
        "prefect.locking.filesystem.FileSystemLockManager._lock_path_for_key": ["key"],
        "prefect.locking.filesystem.FileSystemLockManager._get_lock_info": ["key", "use_cache"],
    }
    assert {name: params(fn) for name, fn in apis.items()} == expected


def test_a_transaction_names_its_lock_holder() -> None:
    from prefect.transactions import transaction

    with transaction(key="compat-holder", write_on_commit=False) as tx:
        holder = compat.transaction_lock_holder(tx)
    assert isinstance(holder, str) and holder, "Prefect's Transaction no longer has _holder: update compat.py"


@pytest.mark.parametrize("key", ["abc", "a.b", "0f" * 32, "nested/dir/key"])
def test_our_lock_files_are_where_prefect_puts_them(tmp_path: Path, key: str) -> None:
    assert SafeFileSystemLockManager(tmp_path).lock_path(key) == compat.prefect_lock_path(tmp_path, key)


def test_prefect_lock_file_shape(tmp_path: Path) -> None:
    """Prefect's own manager writes {"holder", "expiration"}: null without a hold timeout, else a time string
    that our reader parses."""
    stock = FileSystemLockManager(tmp_path)
    stock.acquire_lock("forever", "old-worker")
    assert json.loads((tmp_path / "forever.lock").read_bytes()) == {"holder": "old-worker", "expiration": None}
    stock.acquire_lock("timed", "old-worker", hold_timeout=60)
    data = json.loads((tmp_path / "timed.lock").read_bytes())
    assert set(data) == {"holder", "expiration"}
    ours = SafeFileSystemLockManager(tmp_path).read_lock("timed")
    assert ours is not None and ours.holder == "old-worker" and ours.expiration is not None
    assert timedelta(seconds=50) < ours.expiration - datetime.now(timezone.utc) <= timedelta(seconds=60)


def test_prefect_reads_our_lock_files(tmp_path: Path) -> None:
    """A stock FileSystemLockManager (an older worker on the machine) sees our lock and its expiration."""
    ours = SafeFileSystemLockManager(tmp_path)
    assert ours.acquire_lock("k", "me")
    try:
        info = compat.prefect_read_lock(tmp_path, "k")
        assert info is not None and info["holder"] == "me"
        written = ours.read_lock("k")
        assert written is not None and info["expiration"] == written.expiration
        assert FileSystemLockManager(tmp_path).is_locked("k")
        assert not FileSystemLockManager(tmp_path).is_lock_holder("k", "someone-else")
    finally:
        ours.release_lock("k", "me")


def test_our_manager_is_a_prefect_lock_manager(tmp_path: Path) -> None:
    manager = SafeFileSystemLockManager(tmp_path)
    assert isinstance(manager, LockManager)
    for name in ("acquire_lock", "aacquire_lock", "release_lock", "is_locked", "is_lock_holder", "wait_for_lock",
                 "await_for_lock"):
        assert params(getattr(manager, name)) == params(getattr(LockManager, name)), name
        assert inspect.iscoroutinefunction(getattr(manager, name)) == inspect.iscoroutinefunction(
            getattr(LockManager, name)
        ), name


class Recording(SafeFileSystemLockManager):
    """Our manager, noting how Prefect calls it."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.calls: list[tuple[Any, ...]] = []

    def acquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None,
                     hold_timeout: float | None = None) -> bool:
        self.calls.append(("acquire", key, acquire_timeout, hold_timeout))
        return super().acquire_lock(key, holder, acquire_timeout, hold_timeout)

    def release_lock(self, key: str, holder: str) -> None:
        self.calls.append(("release", key))
        super().release_lock(key, holder)


def test_a_serializable_transaction_locks_without_a_hold_timeout(tmp_path: Path) -> None:
    """Why the lock manager imposes its own hold: Prefect's transaction never passes one. If this changes,
    revisit flows/runtime/locks.py (a hold_timeout is honoured as a cap on top of the renewed hold)."""
    manager = Recording(tmp_path)
    store = ResultStore(lock_manager=manager)
    with transaction(key="k", store=store, isolation_level=IsolationLevel.SERIALIZABLE, write_on_commit=False):
        assert manager.is_locked("k")
    assert manager.calls == [("acquire", "k", None, None), ("release", "k")]
    assert not manager.is_locked("k")


# --- the concurrency-lease API (public, behaviour we depend on) ---------------------------------------------


def test_client_lease_methods_take_what_we_pass() -> None:
    for client in (PrefectClient, SyncPrefectClient):
        assert params(client.increment_concurrency_slots_with_lease)[:4] == ["names", "slots", "mode", "lease_duration"]
        assert params(client.renew_concurrency_lease) == ["lease_id", "lease_duration"]
        assert params(client.release_concurrency_slots_with_lease) == ["lease_id"]
    assert set(ConcurrencyLimitWithLeaseResponse.model_fields) >= {"lease_id", "limits"}


def test_repossessor_setting_exists() -> None:
    assert compat.repossessor_loop_seconds() > 0


async def test_server_lease_behaviour(prefect_api: str) -> None:
    name = f"test-compat-{uuid.uuid4().hex[:10]}"
    async with get_client() as client:
        await client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))

        with pytest.raises(httpx.HTTPStatusError) as short:  # below the server's minimum
            await client.increment_concurrency_slots_with_lease([name], 1, "concurrency", compat.SERVER_MIN_LEASE_SECONDS - 1)
        assert short.value.response.status_code == 422

        response = await client.increment_concurrency_slots_with_lease(
            names=[name], slots=1, mode="concurrency", lease_duration=leases.LEASE_SECONDS
        )
        granted = ConcurrencyLimitWithLeaseResponse.model_validate(response.json())
        assert [limit.name for limit in granted.limits] == [name]

        with pytest.raises(httpx.HTTPStatusError) as full:  # full: 423 and when to ask again
            await client.increment_concurrency_slots_with_lease([name], 1, "concurrency", leases.LEASE_SECONDS)
        assert full.value.response.status_code == 423
        assert float(full.value.response.headers["Retry-After"]) >= 0

        await client.renew_concurrency_lease(granted.lease_id, lease_duration=leases.LEASE_SECONDS)
        with pytest.raises(httpx.HTTPStatusError) as short_renewal:
            await client.renew_concurrency_lease(granted.lease_id, lease_duration=compat.SERVER_MIN_LEASE_SECONDS - 1)
        assert short_renewal.value.response.status_code == 422

        await client.release_concurrency_slots_with_lease(granted.lease_id)
        await client.release_concurrency_slots_with_lease(granted.lease_id)  # again, or a dead holder's: no error
        with pytest.raises(httpx.HTTPStatusError) as gone:  # what a renewal of a lost lease answers
            await client.renew_concurrency_lease(granted.lease_id, lease_duration=leases.LEASE_SECONDS)
        assert gone.value.response.status_code in (404, 410)
        assert (await client.read_global_concurrency_limit_by_name(name)).active_slots == 0

        # The events Prefect's concurrency() emits, which held_lease emits through compat.
        events = compat._emit_acquired(granted.limits, 1)
        assert set(events) == {limit.id for limit in granted.limits}
        compat._emit_released(granted.limits, 1, events)


def test_the_subprocess_api_server_the_benchmarks_start_has_what_they_call() -> None:
    server = compat.subprocess_api_server()
    assert callable(server.start) and "timeout" in params(server.start) and callable(server.stop)
    assert hasattr(type(server), "api_url")
