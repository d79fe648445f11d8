"""Load blocks once per flow run and hand out provider clients and the bucket.

A batch's items and a production's stages ask for the same few blocks dozens of times; each load is a Prefect
API round trip (bench/vs_plain.py counted 27 per item). Within one flow run the answer is reused (``per_run``),
concurrent asks included (a batch's items run in the batch's run); outside any run, or in another run, blocks
are loaded afresh, so an edited block applies to the next run.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from prefect_aws import S3Bucket

from blocks.credentials import VideoGatewayCredentials, VolcengineCredentials
from flows.models import BlockRefs


T = TypeVar("T")
_RUN_CACHE: OrderedDict[tuple[str, ...], Any] = OrderedDict()
_RUN_CACHE_SIZE = 256  # a few entries per run; bounded for long-lived processes (tests, served flows)


def _current_run() -> str | None:
    from prefect.context import FlowRunContext, TaskRunContext

    if (task := TaskRunContext.get()) is not None:
        return str(task.task_run.flow_run_id)
    if (flow := FlowRunContext.get()) is not None and flow.flow_run is not None:
        return str(flow.flow_run.id)
    return None


@dataclass
class _Loading:
    """A load under way: concurrent callers on its event loop wait for it instead of loading too (a batch
    validates its items concurrently: ten items, one block read)."""

    loop: asyncio.AbstractEventLoop
    done: asyncio.Future[Any]


async def per_run(kind: str, name: str, load: Callable[[], Awaitable[T]]) -> T:
    """``load()`` once per flow run for ``(kind, name)``; every call outside a run loads afresh."""
    run = _current_run()
    if run is None:
        return await load()
    key = (run, kind, name)
    loop = asyncio.get_running_loop()
    entry = _RUN_CACHE.get(key)
    if entry is not None:
        _RUN_CACHE.move_to_end(key)
        if not isinstance(entry, _Loading):
            return entry  # type: ignore[no-any-return]
        if entry.loop is loop:
            return await asyncio.shield(entry.done)  # type: ignore[no-any-return]
    loading = _Loading(loop, loop.create_future())
    _RUN_CACHE[key] = loading
    try:
        value = await load()
    except BaseException as exc:
        if _RUN_CACHE.get(key) is loading:
            del _RUN_CACHE[key]
        loading.done.set_exception(exc if isinstance(exc, Exception) else RuntimeError(f"loading {kind} {name} stopped"))
        loading.done.exception()  # retrieved: no "never retrieved" warning when nobody waited
        raise
    _RUN_CACHE[key] = value
    loading.done.set_result(value)
    while len(_RUN_CACHE) > _RUN_CACHE_SIZE:
        _RUN_CACHE.popitem(last=False)
    return value


async def volcengine(refs: BlockRefs) -> VolcengineCredentials:
    return await per_run("volcengine", refs.volcengine, lambda: VolcengineCredentials.aload(refs.volcengine))  # type: ignore[return-value]


async def gateway(refs: BlockRefs) -> VideoGatewayCredentials:
    return await per_run("gateway", refs.gateway, lambda: VideoGatewayCredentials.aload(refs.gateway))  # type: ignore[return-value]


@dataclass
class Bucket:
    name: str
    client: Any  # boto3 S3 client


async def bucket(refs: BlockRefs) -> Bucket:
    async def load() -> Bucket:
        block: S3Bucket = await S3Bucket.aload(refs.bucket)  # type: ignore[assignment]
        return Bucket(name=block.bucket_name, client=block.credentials.get_s3_client())  # boto3: thread-safe

    return await per_run("bucket", refs.bucket, load)


def account_id(creds: VolcengineCredentials | VideoGatewayCredentials) -> str:
    """A non-secret identity of the paying account for fingerprints: a hash, never the key itself."""
    import hashlib

    if isinstance(creds, VolcengineCredentials):
        raw = creds.access_key_id.get_secret_value() + creds.vod_endpoint + creds.visual_endpoint
    else:
        raw = creds.api_key.get_secret_value() + creds.base_url
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


async def client(provider: str, refs: BlockRefs) -> Any:
    """A new (not yet entered) client for ``provider`` ("vod", "jimeng" or "gateway") from its block."""
    if provider == "vod":
        return (await volcengine(refs)).get_vod_client()
    if provider == "jimeng":
        return (await volcengine(refs)).get_jimeng_client()
    if provider == "gateway":
        return (await gateway(refs)).get_client()
    raise ValueError(f"unknown provider {provider!r}")
