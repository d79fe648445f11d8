"""What clipflow relies on from Prefect (flows.runtime.compat): fails when a Prefect upgrade changes it."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import PrefectClient, SyncPrefectClient, get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.responses import ConcurrencyLimitWithLeaseResponse

from flows.runtime import compat
from flows.coordination import leases


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
    }
    assert {name: params(fn) for name, fn in apis.items()} == expected


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
