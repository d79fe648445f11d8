"""The callback receiver over real HTTP, emitting into a real Prefect server: forged callbacks emit nothing."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest

from flows.app.callbacks_server import create_app, serving, signature

pytestmark = pytest.mark.slow

KEY = "Receiver-Test-Key-1"


def _body(run_id: str) -> bytes:
    return json.dumps({
        "RequestId": uuid.uuid4().hex, "Version": "1.0", "EventType": "WorkflowComplete",
        "EventTime": "2026-01-01T00:00:00Z", "Data": {"Code": "Success", "RunId": run_id, "SpaceName": "demo"},
    }).encode()


def _post(url: str, body: bytes, *, key: str | None = KEY, stamp: int | None = None, as_url: str = "") -> Any:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        ts = str(int(time.time()) if stamp is None else stamp)
        headers |= {"X-VOD-TIMESTAMP": ts, "X-VOD-SIGNATURE": signature(as_url or url, ts, key, body)}
    return httpx.post(url, content=body, headers=headers)


async def _events(prefix: str, since: Any) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventOccurredFilter, EventResourceFilter

    wanted = EventFilter(occurred=EventOccurredFilter(since=since), resource=EventResourceFilter(id_prefix=[prefix]))
    async with get_client() as client:
        return list((await client.read_events(filter=wanted, limit=50)).events)


async def test_only_signed_callbacks_become_events(prefect_api: str) -> None:
    from prefect.types._datetime import now

    since = now("UTC")
    tag = uuid.uuid4().hex[:8]
    with serving(create_app(KEY)) as base:
        url = f"{base}/vod/callbacks"
        refused = {
            "unsigned": _post(url, _body(f"{tag}-unsigned"), key=None).status_code,
            "wrong key": _post(url, _body(f"{tag}-forged"), key="Not-The-Key-2").status_code,
            "stale": _post(url, _body(f"{tag}-stale"), stamp=int(time.time()) - 3600).status_code,
            "other url": _post(url, _body(f"{tag}-moved"), as_url=f"{base}/elsewhere").status_code,
        }
        tampered = _body(f"{tag}-tampered")
        ts = str(int(time.time()))
        forged = httpx.post(url, content=tampered, headers={
            "X-VOD-TIMESTAMP": ts, "X-VOD-SIGNATURE": signature(url, ts, KEY, _body(f"{tag}-original"))})
        accepted = _post(url, _body(f"{tag}-good"))
    assert refused == {"unsigned": 401, "wrong key": 403, "stale": 403, "other url": 403}
    assert forged.status_code == 403
    assert accepted.status_code == 200, accepted.text

    seen: list[Any] = []
    deadline = time.monotonic() + 20
    while not seen and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        seen = await _events(f"vod.workflow.{tag}", since)
    await asyncio.sleep(1.0)  # a refused callback's event, had one been sent, would be written by now too
    seen = await _events(f"vod.workflow.{tag}", since)
    good = ("clipflow.callback.WorkflowComplete", f"vod.workflow.{tag}-good")
    assert [(e.event, e.resource.id) for e in seen] == [good]
    assert seen[0].payload["Data"]["RunId"] == f"{tag}-good"
