"""Load blocks once per flow run and hand out provider clients and the bucket.

A batch's items and a production's stages ask for the same few blocks dozens of times; each load is a Prefect
API round trip (bench/vs_plain.py counted 27 per item). Within one flow run the answer is reused (``per_run``),
and a batch shares its own with the item runs it starts (``shared_with_subflows``: 3 loads per item less);
outside any run, or in another run, blocks are loaded afresh, so an edited block applies to the next run.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from prefect_aws import S3Bucket

from blocks.credentials import VideoGatewayCredentials, VolcengineCredentials
from flows.models import BlockRefs


T = TypeVar("T")
_RUN_CACHE: OrderedDict[tuple[str, ...], Any] = OrderedDict()
_RUN_CACHE_SIZE = 256  # a few entries per run; bounded for long-lived processes (tests, served flows)
_SHARED_BY: ContextVar[str | None] = ContextVar("clipflow_resources_shared_by", default=None)


def _current_run() -> str | None:
    from prefect.context import FlowRunContext, TaskRunContext

    if (task := TaskRunContext.get()) is not None:
        return str(task.task_run.flow_run_id)
    if (flow := FlowRunContext.get()) is not None and flow.flow_run is not None:
        return str(flow.flow_run.id)
    return None


@contextmanager
def shared_with_subflows() -> Iterator[None]:
    """Inside: subflow runs (started from this context) reuse what this run loaded, as if it were theirs."""
    token = _SHARED_BY.set(_current_run())
    try:
        yield
    finally:
        _SHARED_BY.reset(token)


async def per_run(kind: str, name: str, load: Callable[[], Awaitable[T]]) -> T:
    """``load()`` once per flow run for ``(kind, name)``; every call outside a run loads afresh."""
    run = _current_run()
    if run is not None:
        run = _SHARED_BY.get() or run
    if run is None:
        return await load()
    key = (run, kind, name)
    if key in _RUN_CACHE:
        _RUN_CACHE.move_to_end(key)
        return _RUN_CACHE[key]
    value = await load()
    _RUN_CACHE[key] = value
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
