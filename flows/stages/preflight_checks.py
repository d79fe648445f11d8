"""The checks preflight runs before the first paid call, each a free read (see ``flows.stages.preflight`` for
the list and the rules): blocks, bucket, result storage, VOD space and template, Jimeng, gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import httpx

from flows.models import BlockRefs
from flows.engine.journal import Journal, UnconditionalJournalError, verify_conditional_writes
from flows.engine.retry import backoff_delay
from providers.errors import (
    AuthError,
    InvalidRequestError,
    NotFoundError,
    ProviderError,
    RequestValidationError,
    ServerError,
    TransportError,
)

log = logging.getLogger(__name__)

ACTION = "preflight"
PROBE_PREFIX = "clipflow-preflight/"
MADE_UP_ID = "clipflow-preflight-00000000"  # a task id no provider ever issued
MADE_UP_SPACE = "clipflow-preflight-no-such-space"  # a space name used only to prove a signature
WORKFLOW_TEMPLATE_ACTION = "GetWorkflowTemplate"
WORKFLOW_TEMPLATE_VERSION = "2023-07-01"
ATTEMPTS = 5  # a throttled or failing read is tried again with backoff, then the run stops as unavailable

VOLC_BLOCK = "volcengine-credentials"
GATEWAY_BLOCK = "video-gateway-credentials"
BUCKET_BLOCK = "s3-bucket"


class PreflightError(RequestValidationError):
    """A production cannot run as configured; nothing was paid. ``field`` names what to fix."""

    def __init__(self, field: str, rule: str, *, provider: str) -> None:
        super().__init__(field, rule, provider=provider, action=ACTION)


class PreflightUnavailableError(ServerError):
    """A check could not be made: the provider kept failing. Not a verdict on any value, so no item is refused;
    nothing was paid, and running again later is safe."""

    def __init__(self, what: str, why: str, *, provider: str) -> None:
        self.what, self.why = what, why
        super().__init__(
            f"preflight could not check {what}: {why}; nothing was paid, run again later",
            provider=provider, action=ACTION, code="PreflightUnavailable",
        )


# --- memo ----------------------------------------------------------------------------------------------------


@dataclass
class PreflightMemo:
    """Outcomes of the checks of one run (a flow run, or a whole batch), by (what, value).

    Concurrent callers of the same check share one request. ``performed`` counts the checks actually run."""

    results: dict[tuple[str, str], asyncio.Future[Any]] = field(default_factory=dict)
    performed: Counter[str] = field(default_factory=Counter)

    async def once(self, what: str, value: str, check: Callable[[], Awaitable[Any]]) -> Any:
        key = (what, value)
        loop = asyncio.get_running_loop()
        fut = self.results.get(key)
        if fut is None or fut.get_loop() is not loop:
            fut = loop.create_future()
            self.results[key] = fut
            self.performed[what] += 1
            try:
                fut.set_result(await check())
            except asyncio.CancelledError:
                del self.results[key]  # not an outcome: the next caller checks again
                fut.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - kept for every caller of this (what, value)
                fut.set_exception(exc)
                fut.exception()  # retrieved: no "never retrieved" warning when nobody else waits
        return await asyncio.shield(fut)

    def size(self, what: str | None = None) -> int:
        return sum(1 for key in self.results if what is None or key[0] == what)


_MEMO: ContextVar[PreflightMemo | None] = ContextVar("clipflow_preflight_memo", default=None)


@contextlib.contextmanager
def preflight_scope(memo: PreflightMemo | None = None) -> Iterator[PreflightMemo]:
    """Share one memo with everything run in this context (a batch's items inherit it)."""
    memo = memo or PreflightMemo()
    token = _MEMO.set(memo)
    try:
        yield memo
    finally:
        _MEMO.reset(token)


def current_memo() -> PreflightMemo | None:
    return _MEMO.get()


# --- the checks ----------------------------------------------------------------------------------------------


def block_label(slug: str, name: str) -> str:
    return f"block {slug}/{name}"


async def _load(cls: Any, slug: str, name: str, ref_field: str) -> Any:
    try:
        return await cls.aload(name)
    except Exception as exc:  # noqa: BLE001 - Prefect raises ValueError / ObjectNotFound; either way: missing
        if _server_trouble(exc):  # the Prefect client already retried these: the block may well exist
            raise PreflightUnavailableError(block_label(slug, name), f"the Prefect API failed ({type(exc).__name__})",
                                            provider="prefect") from None
        text = str(exc)
        missing = "Unable to find" in text or "not found" in text.lower() or type(exc).__name__ == "ObjectNotFound"
        why = "does not exist" if missing else f"cannot be loaded ({type(exc).__name__})"
        raise PreflightError(
            f"blocks.{ref_field}",
            f"{block_label(slug, name)} {why}: create it with `clipflow setup --name {name}` or name an existing "
            f"{slug} block in blocks.{ref_field}",
            provider="prefect",
        ) from None


def _server_trouble(exc: Exception) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, httpx.TransportError)


async def volcengine_block(refs: BlockRefs, memo: PreflightMemo) -> Any:
    from blocks.credentials import VolcengineCredentials

    return await memo.once("block", f"{VOLC_BLOCK}/{refs.volcengine}",
                           lambda: _load(VolcengineCredentials, VOLC_BLOCK, refs.volcengine, "volcengine"))


async def gateway_block(refs: BlockRefs, memo: PreflightMemo) -> Any:
    from blocks.credentials import VideoGatewayCredentials

    return await memo.once("block", f"{GATEWAY_BLOCK}/{refs.gateway}",
                           lambda: _load(VideoGatewayCredentials, GATEWAY_BLOCK, refs.gateway, "gateway"))


async def _retrying(call: Callable[[], Awaitable[Any]], what: str, provider: str) -> Any:
    """``call`` (a free read), tried again while the provider answers 5xx / throttling. If it never stops, that
    is ``PreflightUnavailableError``: a failing provider says nothing about the value being checked."""
    for attempt in range(ATTEMPTS):
        try:
            return await call()
        except ProviderError as exc:
            if isinstance(exc, TransportError) or not exc.retryable:
                raise  # refused, or unreachable: the caller names the field
            if attempt == ATTEMPTS - 1:
                raise PreflightUnavailableError(what, f"{_refused(exc)}, {ATTEMPTS} times", provider=provider) from None
            await asyncio.sleep(backoff_delay(exc, attempt))
    raise AssertionError("unreachable")


def _refused(exc: ProviderError) -> str:
    """What the provider said, without its free-text message (it may quote an access key id)."""
    parts = [f"HTTP {exc.http_status}" if exc.http_status else "", str(exc.code or type(exc).__name__)]
    return " ".join(p for p in parts if p)


def _transport(exc: TransportError, block: str, endpoint_field: str, endpoint: str, provider: str) -> PreflightError:
    return PreflightError(
        f"{block} field {endpoint_field}",
        f"{endpoint} is unreachable ({exc.message}): check {endpoint_field} and that the service is up",
        provider=provider,
    )


async def bucket_block(refs: BlockRefs, memo: PreflightMemo) -> Any:
    from prefect_aws import S3Bucket

    return await memo.once("block", f"{BUCKET_BLOCK}/{refs.bucket}",
                           lambda: _load(S3Bucket, BUCKET_BLOCK, refs.bucket, "bucket"))


async def check_bucket(refs: BlockRefs, memo: PreflightMemo) -> str:
    """The bucket block loads, the bucket exists, and a probe object can be written and deleted. Returns its name."""

    async def run() -> str:
        block = await bucket_block(refs, memo)
        where = block_label(BUCKET_BLOCK, refs.bucket)
        name = block.bucket_name
        key = f"{PROBE_PREFIX}{uuid.uuid4().hex}.probe"

        def probe() -> None:
            client = block.credentials.get_s3_client()
            client.put_object(Bucket=name, Key=key, Body=b"clipflow preflight probe; safe to delete\n")
            client.delete_object(Bucket=name, Key=key)

        try:
            await asyncio.to_thread(probe)
        except Exception as exc:  # noqa: BLE001 - botocore's error types vary by endpoint
            raise _bucket_error(exc, where, name, block) from None
        return name

    return await memo.once("bucket", refs.bucket, run)


# S3 answers that say the service is failing or busy, not that anything is wrong with the bucket or keys.
S3_UNAVAILABLE = ("InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "Throttling", "500", "503")


def _bucket_error(exc: Exception, where: str, name: str, block: Any) -> ProviderError:
    code, status = "", 0
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in S3_UNAVAILABLE or status >= 500:  # botocore has retried these already
        return PreflightUnavailableError(f"bucket {name!r} (probe object)", f"S3 answered {code or status}",
                                         provider="s3")
    if code in ("NoSuchBucket", "404"):
        return PreflightError(
            f"{where} field bucket_name",
            f"bucket {name!r} does not exist: create it, or set bucket_name to an existing bucket", provider="s3",
        )
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"):
        return PreflightError(
            f"{where} field credentials.aws_access_key_id / aws_secret_access_key",
            f"the bucket endpoint refused the keys ({code})", provider="s3",
        )
    if code in ("AccessDenied", "403", "AllAccessDisabled", "AccountProblem"):
        return PreflightError(
            f"{where} field bucket_name",
            f"bucket {name!r} is not writable with these credentials ({code}): the probe object "
            f"{PROBE_PREFIX}… could not be written and deleted", provider="s3",
        )
    if type(exc).__name__ in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
        params = getattr(block.credentials, "aws_client_parameters", None)
        endpoint = getattr(params, "endpoint_url", None) or "the default AWS endpoint"
        return PreflightError(
            f"{where} field credentials.aws_client_parameters.endpoint_url",
            f"{endpoint} is unreachable ({type(exc).__name__})", provider="s3",
        )
    return PreflightError(
        f"{where} field bucket_name",
        f"bucket {name!r}: the probe object could not be written and deleted ({code or type(exc).__name__})",
        provider="s3",
    )


async def _vod_read(
    refs: BlockRefs, memo: PreflightMemo, read: Callable[[Any], Awaitable[Any]], what: str
) -> Any:
    creds = await volcengine_block(refs, memo)
    async with creds.get_vod_client() as vod:
        return await _retrying(lambda: read(vod), what, "vod")


def _vod_auth_error(exc: AuthError, refs: BlockRefs) -> PreflightError:
    return PreflightError(
        f"{block_label(VOLC_BLOCK, refs.volcengine)} field access_key_id / secret_access_key",
        f"VOD refused the signature ({_refused(exc)}): check the keys (and session_token, region)",
        provider="vod",
    )


async def check_vod(refs: BlockRefs, memo: PreflightMemo, space_name: str | None = None) -> None:
    """VOD accepts the signature and, when ``space_name`` is given, the space exists (GetMediaList, 1 item)."""

    async def run() -> None:
        creds = await volcengine_block(refs, memo)
        block = block_label(VOLC_BLOCK, refs.volcengine)
        try:
            await _vod_read(refs, memo, lambda vod: vod.get_media_list(space_name or MADE_UP_SPACE, page_size=1),
                            f"VOD space {space_name!r} (GetMediaList)" if space_name else "the VOD keys (GetMediaList)")
        except AuthError as exc:
            raise _vod_auth_error(exc, refs) from None
        except NotFoundError as exc:
            if space_name is None:
                return  # the made-up space is unknown, but the signature was accepted
            raise PreflightError(
                "space_name",
                f"VOD space {space_name!r} does not exist for the account of {block} ({_refused(exc)}): "
                "create it in the VOD console or fix space_name", provider="vod",
            ) from None
        except TransportError as exc:
            raise _transport(exc, block, "vod_endpoint", creds.vod_endpoint, "vod") from None
        except PreflightUnavailableError:
            raise
        except ProviderError as exc:
            raise PreflightError(
                "space_name" if space_name else f"{block} field vod_endpoint",
                f"GetMediaList in space {space_name or MADE_UP_SPACE!r} failed ({_refused(exc)})", provider="vod",
            ) from None

    await memo.once("vod-space", f"{refs.volcengine}\n{space_name or ''}", run)


async def check_template(refs: BlockRefs, memo: PreflightMemo, template_id: str) -> bool:
    """The transcode template exists (GetWorkflowTemplate). False when the endpoint cannot tell (unverified)."""

    async def read(vod: Any) -> Any:
        return await vod.get_workflow_template(template_id)

    async def run() -> bool:
        creds = await volcengine_block(refs, memo)
        block = block_label(VOLC_BLOCK, refs.volcengine)
        try:
            await _vod_read(refs, memo, read, f"transcode template {template_id!r} ({WORKFLOW_TEMPLATE_ACTION})")
        except AuthError as exc:
            raise _vod_auth_error(exc, refs) from None
        except TransportError as exc:
            raise _transport(exc, block, "vod_endpoint", creds.vod_endpoint, "vod") from None
        except (NotFoundError, InvalidRequestError) as exc:
            if exc.code == "InvalidActionOrVersion":
                log.warning(
                    "transcode.template_id %r not verified: %s does not offer %s (%s)",
                    template_id, creds.vod_endpoint, WORKFLOW_TEMPLATE_ACTION, WORKFLOW_TEMPLATE_VERSION,
                )
                return False
            raise PreflightError(
                "transcode.template_id",
                f"workflow template {template_id!r} does not exist for the account of {block} ({_refused(exc)}): "
                "fix transcode.template_id", provider="vod",
            ) from None
        except PreflightUnavailableError:
            raise
        except ProviderError as exc:
            raise PreflightError(
                "transcode.template_id", f"GetWorkflowTemplate {template_id!r} failed ({_refused(exc)})",
                provider="vod",
            ) from None
        return True

    return await memo.once("template", f"{refs.volcengine}\n{template_id}", run)


async def check_jimeng(refs: BlockRefs, memo: PreflightMemo) -> None:
    """The visual (Jimeng) service accepts the signature: the result of a made-up task is ``not_found``."""

    async def run() -> None:
        creds = await volcengine_block(refs, memo)
        block = block_label(VOLC_BLOCK, refs.volcengine)
        try:
            async with creds.get_jimeng_client() as jimeng:
                await _retrying(lambda: jimeng.get_result(MADE_UP_ID), "the Jimeng keys (CVSync2AsyncGetResult)",
                                "jimeng")
        except AuthError as exc:
            raise PreflightError(
                f"{block} field access_key_id / secret_access_key",
                f"Jimeng (visual) refused the signature ({_refused(exc)}): check the keys", provider="jimeng",
            ) from None
        except TransportError as exc:
            raise _transport(exc, block, "visual_endpoint", creds.visual_endpoint, "jimeng") from None
        except NotFoundError:
            return
        except PreflightUnavailableError:
            raise
        except ProviderError as exc:
            raise PreflightError(
                f"{block} field visual_endpoint", f"CVSync2AsyncGetResult failed ({_refused(exc)})",
                provider="jimeng",
            ) from None

    await memo.once("jimeng", refs.volcengine, run)


async def check_gateway(refs: BlockRefs, memo: PreflightMemo, model: str | None = None) -> None:
    """The gateway accepts the key (query of a made-up id answers task-not-found, not 401) and serves ``model``."""

    async def run() -> None:
        creds = await gateway_block(refs, memo)
        block = block_label(GATEWAY_BLOCK, refs.gateway)
        try:
            async with creds.get_client() as gateway:
                await _retrying(lambda: gateway.query_video(MADE_UP_ID), "the gateway key (/v1/video/query)",
                                "gateway")
        except AuthError as exc:
            raise PreflightError(
                f"{block} field api_key", f"the gateway refused the key ({_refused(exc)})", provider="gateway",
            ) from None
        except TransportError as exc:
            raise _transport(exc, block, "base_url", creds.base_url, "gateway") from None
        except (NotFoundError, InvalidRequestError):
            return  # 400 task-not-found: the key was accepted
        except PreflightUnavailableError:
            raise
        except ProviderError as exc:
            raise PreflightError(
                f"{block} field base_url", f"/v1/video/query failed ({_refused(exc)})", provider="gateway",
            ) from None

    await memo.once("gateway", refs.gateway, run)
    if model is not None:
        await memo.once("gateway-model", f"{refs.gateway}\n{model}", lambda: _check_model(refs, memo, model))


async def _check_model(refs: BlockRefs, memo: PreflightMemo, model: str) -> None:
    creds = await gateway_block(refs, memo)
    served = list(getattr(creds, "models", None) or [])
    if model not in served:
        raise PreflightError(
            "clip.model",
            f"model {model!r} is not one the gateway of {block_label(GATEWAY_BLOCK, refs.gateway)} serves "
            f"(field models: {served}): pick one of those, or add it to the block's models list",
            provider="gateway",
        )


async def check_journal(memo: PreflightMemo) -> None:
    """The result storage holding the journal makes writes only one process can win (see ``journal``): on one
    that cannot, or silently ignores If-None-Match/If-Match, two workers could pay for one request."""

    async def run() -> None:
        storage = (await Journal.default()).storage
        try:
            await verify_conditional_writes(storage)
        except UnconditionalJournalError as exc:
            raise PreflightError("result storage (PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK)", str(exc), provider="storage") from None
        except Exception as exc:  # noqa: BLE001 - a storage failing now says nothing about its conditional writes
            raise PreflightUnavailableError("the result storage's conditional writes", type(exc).__name__, provider="storage") from None

    await memo.once("journal", "", run)
