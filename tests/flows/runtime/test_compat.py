"""What clipflow relies on from Prefect (flows.runtime.compat): fails when a Prefect upgrade changes it."""

from __future__ import annotations

import asyncio
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

from flows.runtime import compat
from flows.coordination import leases
from flows.coordination.locks import SafeFileSystemLockManager


def params(fn: Any) -> list[str]:
    return [p for p in inspect.signature(fn).parameters if p != "self"]


# --- private names ------------------------------------------------------------------------------------------


def test_every_private_api_we_use_exists_with_the_signature_we_call() -> None:
    apis = compat.private_apis()
    missing = [name for name, fn in apis.items() if fn is None]
    assert not missing, f"Prefect no longer has {missing}: update flows/runtime/compat.py"
    assert compat.events_available()
    expected = {
        "prefect.concurrency._events.emit_concurrency_acquisition_events": ["limits", "occupy"],
        "prefect.concurrency._events.emit_concurrency_release_events": ["limits", "occupy", "events"],
        "prefect_redis.locking.RedisLockManager._lock_name_for_key": ["key"],
        "prefect.locking.filesystem.FileSystemLockManager._lock_path_for_key": ["key"],
        "prefect.locking.filesystem.FileSystemLockManager._get_lock_info": ["key", "use_cache"],
    }
    assert {name: params(fn) for name, fn in apis.items()} == expected


def test_a_transaction_names_its_lock_holder(prefect_api: str) -> None:  # a transaction reads the server's storage
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


def test_a_serializable_transaction_locks_without_a_hold_timeout(tmp_path: Path, prefect_api: str) -> None:
    """Why the lock manager imposes its own hold: Prefect's transaction never passes one. If this changes,
    revisit flows/coordination/locks.py (a hold_timeout is honoured as a cap on top of the renewed hold)."""
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
        emit_acquired, emit_released = compat.concurrency_event_emitters()
        events = emit_acquired(granted.limits, 1)
        assert set(events) == {limit.id for limit in granted.limits}
        emit_released(granted.limits, 1, events)


def test_the_subprocess_api_server_the_benchmarks_start_has_what_they_call() -> None:
    server = compat.subprocess_api_server()
    assert callable(server.start) and "timeout" in params(server.start) and callable(server.stop)
    assert hasattr(type(server), "api_url")


def test_the_benchmarks_count_what_prefects_client_sends() -> None:
    """bench/ counts the requests whose httpx client is one of these classes: Prefect's API client must send
    through them (the async one for PrefectClient, the sync one for SyncPrefectClient)."""
    async_type, sync_type = compat.prefect_http_client_types()
    seen: list[type] = []
    send_async, send_sync = httpx.AsyncClient.send, httpx.Client.send

    def note(client: Any, request: httpx.Request) -> None:
        if request.url.port == 9:  # this test's client, not another test's leftovers in the background
            seen.append(type(client))

    async def spy_async(self: httpx.AsyncClient, request: httpx.Request, *a: Any, **kw: Any) -> httpx.Response:
        note(self, request)
        return await send_async(self, request, *a, **kw)

    def spy_sync(self: httpx.Client, request: httpx.Request, *a: Any, **kw: Any) -> httpx.Response:
        note(self, request)
        return send_sync(self, request, *a, **kw)

    answer = httpx.MockTransport(lambda request: httpx.Response(200, json="👋"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx.AsyncClient, "send", spy_async)
        patch.setattr(httpx.Client, "send", spy_sync)
        with SyncPrefectClient("http://127.0.0.1:9/api", httpx_settings={"transport": answer}) as client:
            client.hello()

        async def hello() -> None:
            async with PrefectClient("http://127.0.0.1:9/api", httpx_settings={"transport": answer}) as client:
                await client.hello()

        asyncio.run(hello())
    assert seen and all(issubclass(t, (async_type, sync_type)) for t in seen), seen
    assert any(issubclass(t, async_type) for t in seen) and any(issubclass(t, sync_type) for t in seen), seen


async def test_storage_paths_stay_synchronous_inside_an_async_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``_sync=True`` a storage block's read_path/write_path hand back a coroutine here (async_dispatch
    sees the running loop); shared_files calls them for storages that are neither local nor S3."""
    from prefect.filesystems import RemoteFileSystem

    from flows.runtime import shared_files

    monkeypatch.chdir(tmp_path)
    base = f"memory://clipflow-compat-{uuid.uuid4().hex}"
    storage = RemoteFileSystem(basepath=base)
    assert compat.storage_write_path(storage, "a/b.json", b'{"x": 1}') is None
    assert compat.storage_read_path(storage, "a/b.json") == b'{"x": 1}'
    shared_files.write_bytes(storage, "c.json", b"[]")
    assert shared_files.read_bytes(storage, "c.json") == b"[]"
    assert compat.storage_read_path(storage, "c.json") == b"[]"  # in the block's storage, not a local "memory:" dir
    assert not list(tmp_path.iterdir())


def test_the_redis_lock_name_is_the_one_the_stock_manager_locks(monkeypatch: pytest.MonkeyPatch) -> None:
    import prefect_redis.locking as stock_locking

    names: list[str] = []

    class RecordingLock:
        def __init__(self, client: Any, name: str, **kwargs: Any) -> None:
            names.append(name)

        def acquire(self, **kwargs: Any) -> bool:
            return True

    monkeypatch.setattr(stock_locking, "Lock", RecordingLock)
    stock = stock_locking.RedisLockManager(connection_url="redis://127.0.0.1:9/0")  # connects on first use only
    assert stock.acquire_lock("clipflow-abc", holder="me")
    assert names == [compat.redis_lock_name(stock, "clipflow-abc")]


def test_a_run_input_description_is_what_save_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Resume form's text reaches the UI only through RunInput._description, which save() stores."""
    import prefect.input.run_input as run_input
    from prefect.input.run_input import RunInput, keyset_from_base_key

    class Form(RunInput):
        note: str = ""

    stored: dict[str, Any] = {}
    monkeypatch.setattr(run_input, "create_flow_run_input",
                        lambda key, value, flow_run_id=None: stored.update({key: value}))
    compat.set_run_input_description(Form, "Check the lines, then resume.")
    keyset = keyset_from_base_key("review")
    Form.save(keyset, flow_run_id=uuid.uuid4(), _sync=True)
    assert stored[keyset["description"]] == "Check the lines, then resume."
