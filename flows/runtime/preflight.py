"""Preflight: everything a production needs that only the outside world can confirm, checked before the first
paid call, with free reads only.

What is checked (each at most once per run, per distinct value: see ``PreflightMemo``):

- the blocks load (``volcengine-credentials``, ``s3-bucket``, and ``video-gateway-credentials`` for gateway clips);
- the bucket exists and is writable: a probe object under ``clipflow-preflight/`` is written and deleted;
- the result storage (the journal's) honours conditional writes: a probe record is created twice and swapped
  with a stale version, and must be refused both times;
- VOD: ``GetMediaList`` (page size 1) in the space: proves the signature is accepted *and* the space exists;
- the transcode template exists: ``GetWorkflowTemplate`` (2023-07-01, vendor doc 4/1108513). A VOD endpoint
  that does not offer that action (answers ``InvalidActionOrVersion``) leaves the template unverified (logged);
- Jimeng: ``CVSync2AsyncGetResult`` of a made-up task id (``not_found`` when the signature is accepted);
- gateway: ``/v1/video/query`` of a made-up id (400 task-not-found when the key is accepted, 401 when not), and
  the model is one listed in the gateway block's ``models`` field;
- a first-frame image given by reference (``clip.image_url``: an http(s) URL, ``s3://bucket/key`` or a key in the
  production's bucket) is fetched (a URL through ``flows.runtime.fetch``: https to public hosts only; a bucket
  image with the bucket block's S3 client) and checked against the provider's rules:
  reachable, format by magic bytes, size, dimensions (``check_image``). A bucket image is read only from the
  production's bucket or one in ``CLIPFLOW_IMAGE_BUCKETS``, decided by name before S3 is asked anything.

A refusal raises ``PreflightError`` (a ``RequestValidationError``: a ``ValueError``, never retried) whose message
names the block, field and value to fix, and never a secret. Nothing is billed: every call above is a read.

A provider that is failing (5xx, throttling) refuses nothing: the read is tried again with backoff, and if it
keeps failing the run stops with ``PreflightUnavailableError`` (retryable) instead of calling good values bad.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import httpx

from flows.models import BlockRefs
from flows.models.rules import bucket_image
from flows.runtime.journal import Journal, UnconditionalJournalError, verify_conditional_writes
from flows.runtime.retry import backoff_delay
from providers.errors import (
    AuthError,
    InvalidRequestError,
    NotFoundError,
    ProviderError,
    RequestValidationError,
    ServerError,
    TransportError,
)
from providers.jimeng.models import IMAGE_MAX_BYTES, image_kind, image_problem

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


def _block(slug: str, name: str) -> str:
    return f"block {slug}/{name}"


async def _load(cls: Any, slug: str, name: str, ref_field: str) -> Any:
    try:
        return await cls.aload(name)
    except Exception as exc:  # noqa: BLE001 - Prefect raises ValueError / ObjectNotFound; either way: missing
        if _server_trouble(exc):  # the Prefect client already retried these: the block may well exist
            raise PreflightUnavailableError(_block(slug, name), f"the Prefect API failed ({type(exc).__name__})",
                                            provider="prefect") from None
        text = str(exc)
        missing = "Unable to find" in text or "not found" in text.lower() or type(exc).__name__ == "ObjectNotFound"
        why = "does not exist" if missing else f"cannot be loaded ({type(exc).__name__})"
        raise PreflightError(
            f"blocks.{ref_field}",
            f"{_block(slug, name)} {why}: create it with `clipflow setup --name {name}` or name an existing "
            f"{slug} block in blocks.{ref_field}",
            provider="prefect",
        ) from None


def _server_trouble(exc: Exception) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, httpx.TransportError)


async def _volcengine(refs: BlockRefs, memo: PreflightMemo) -> Any:
    from blocks.credentials import VolcengineCredentials

    return await memo.once("block", f"{VOLC_BLOCK}/{refs.volcengine}",
                           lambda: _load(VolcengineCredentials, VOLC_BLOCK, refs.volcengine, "volcengine"))


async def _gateway(refs: BlockRefs, memo: PreflightMemo) -> Any:
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


async def _bucket_block(refs: BlockRefs, memo: PreflightMemo) -> Any:
    from prefect_aws import S3Bucket

    return await memo.once("block", f"{BUCKET_BLOCK}/{refs.bucket}",
                           lambda: _load(S3Bucket, BUCKET_BLOCK, refs.bucket, "bucket"))


async def check_bucket(refs: BlockRefs, memo: PreflightMemo) -> str:
    """The bucket block loads, the bucket exists, and a probe object can be written and deleted. Returns its name."""

    async def run() -> str:
        block = await _bucket_block(refs, memo)
        where = _block(BUCKET_BLOCK, refs.bucket)
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
    creds = await _volcengine(refs, memo)
    async with creds.get_vod_client() as vod:
        return await _retrying(lambda: read(vod), what, "vod")


def _vod_auth_error(exc: AuthError, refs: BlockRefs) -> PreflightError:
    return PreflightError(
        f"{_block(VOLC_BLOCK, refs.volcengine)} field access_key_id / secret_access_key",
        f"VOD refused the signature ({_refused(exc)}): check the keys (and session_token, region)",
        provider="vod",
    )


async def check_vod(refs: BlockRefs, memo: PreflightMemo, space_name: str | None = None) -> None:
    """VOD accepts the signature and, when ``space_name`` is given, the space exists (GetMediaList, 1 item)."""

    async def run() -> None:
        creds = await _volcengine(refs, memo)
        block = _block(VOLC_BLOCK, refs.volcengine)
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
        creds = await _volcengine(refs, memo)
        block = _block(VOLC_BLOCK, refs.volcengine)
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
        creds = await _volcengine(refs, memo)
        block = _block(VOLC_BLOCK, refs.volcengine)
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
        creds = await _gateway(refs, memo)
        block = _block(GATEWAY_BLOCK, refs.gateway)
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
    creds = await _gateway(refs, memo)
    served = list(getattr(creds, "models", None) or [])
    if model not in served:
        raise PreflightError(
            "clip.model",
            f"model {model!r} is not one the gateway of {_block(GATEWAY_BLOCK, refs.gateway)} serves "
            f"(field models: {served}): pick one of those, or add it to the block's models list",
            provider="gateway",
        )


IMAGE_FIELD = "clip.image_url"
# The gateway page states no image limit: clipflow's own cap, so a check never downloads without bound.
GATEWAY_IMAGE_MAX_BYTES = 20 * 1024 * 1024


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.2f} MB"


def _image_limit(provider: str) -> int:
    return IMAGE_MAX_BYTES if provider == "jimeng" else GATEWAY_IMAGE_MAX_BYTES


def _too_large(shown: str, size: int | None, provider: str) -> PreflightError:
    limit = _image_limit(provider)
    rule = f"{limit / 1024 / 1024:.1f} MB" + ("" if provider == "jimeng" else " (clipflow's limit for gateway images)")
    got = _mb(size) if size is not None else f"more than {_mb(limit)}"
    return PreflightError(IMAGE_FIELD, f"{shown}: image must be at most {rule}, got {got}", provider=provider)


def _gateway_image_problem(data: bytes) -> str | None:
    webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    return None if image_kind(data) or webp else "image must be JPEG, PNG or WebP"


async def _fetch_url(url: str, shown: str, provider: str) -> bytes:
    """GET the image as the provider will, without credentials, through the one fetcher of user URLs
    (flows/runtime/fetch.py): https to public hosts only, one deadline, at most the provider's limit."""
    from flows.runtime.fetch import FetchFailed, FetchNotAllowed, FetchTooLarge, fetch

    try:
        return await fetch(url, max_bytes=_image_limit(provider))
    except FetchTooLarge as exc:
        raise _too_large(shown, exc.size, provider) from None
    except FetchNotAllowed as exc:
        raise PreflightError(IMAGE_FIELD, f"{shown}: {exc}", provider=provider) from None
    except FetchFailed as exc:
        # Never what answered (a status, refused, a timeout): a message must not map hosts and ports.
        raise PreflightError(
            IMAGE_FIELD, f"{shown}: download {exc}; the provider downloads it from this URL too", provider=provider,
        ) from None


def _allowed_image_bucket(bucket: str, key: str, own: str, shown: str, provider: str) -> None:
    """A bucket image comes from the production's own bucket or one the operator listed, decided by name before
    S3 is asked anything: the answer is the same whether the bucket exists or not."""
    from flows.outputs.storage import key_under
    from flows.runtime.settings import image_buckets

    if not key_under(key, ""):
        raise PreflightError(
            IMAGE_FIELD, f"{shown} is not allowed: a key must not have empty, '.' or '..' parts, backslashes or "
            "control characters", provider=provider,
        )
    if bucket != own and bucket not in image_buckets():
        raise PreflightError(
            IMAGE_FIELD,
            f"{shown} is not allowed: a first frame in a bucket must be in the production's bucket (a key, or "
            "s3:// with the bucket of blocks.bucket) or in a bucket the operator lists in CLIPFLOW_IMAGE_BUCKETS",
            provider=provider,
        )


async def _read_bucket(block: Any, refs: BlockRefs, bucket: str, key: str, shown: str, provider: str) -> bytes:
    from flows.outputs.storage import ObjectTooLargeError, read_small_object

    where = _block(BUCKET_BLOCK, refs.bucket)
    try:
        return await read_small_object(
            block.credentials.get_s3_client(), bucket, key, max_bytes=_image_limit(provider)
        )
    except ObjectTooLargeError as exc:
        raise _too_large(shown, exc.size, provider) from None
    except Exception as exc:  # noqa: BLE001 - botocore's error types vary by endpoint
        response = getattr(exc, "response", None)
        code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
        if code in ("NoSuchKey", "404", "NotFound"):
            why = f"does not exist (read with the credentials of {where}): upload it first or fix the key"
        elif code == "NoSuchBucket":
            why = f"bucket {bucket!r} does not exist for the credentials of {where}"
        elif code in ("AccessDenied", "403"):
            why = f"cannot be read with the credentials of {where} ({code})"
        else:
            why = f"could not be read with the credentials of {where} ({code or type(exc).__name__})"
        raise PreflightError(IMAGE_FIELD, f"{shown} {why}", provider=provider) from None


async def fetch_image(refs: BlockRefs, ref: str, provider: str = "jimeng", memo: PreflightMemo | None = None) -> bytes:
    """The bytes of the first frame ``ref`` (``clip.image_url``), checked against ``provider``'s rules; raises
    ``PreflightError`` naming the field, the value (a URL without its query) and the rule."""
    memo = memo or current_memo() or PreflightMemo()
    where = bucket_image(ref)
    if where is None:
        from flows.outputs.storage import redact_url

        shown = redact_url(ref)
        data = await _fetch_url(ref, shown, provider)
    else:
        block = await _bucket_block(refs, memo)
        bucket = where[0] or block.bucket_name
        shown = f"s3://{bucket}/{where[1]}"
        _allowed_image_bucket(bucket, where[1], block.bucket_name, shown, provider)
        data = await _read_bucket(block, refs, bucket, where[1], shown, provider)
    problem = image_problem(data) if provider == "jimeng" else _gateway_image_problem(data)
    if problem:
        raise PreflightError(IMAGE_FIELD, f"{shown}: {problem}", provider=provider)
    return data


async def check_image(refs: BlockRefs, memo: PreflightMemo, clip: Any) -> None:
    """The clip's first frame by reference is reachable and within the provider's rules (once per image)."""
    ref = getattr(clip, "image_url", None)
    if not ref:
        return
    provider = getattr(clip, "provider", "jimeng")

    async def run() -> None:
        await fetch_image(refs, ref, provider, memo)  # the bytes are not kept: a batch may name many images

    await memo.once("image", f"{provider}\n{refs.bucket}\n{ref}", run)


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


# --- entry points --------------------------------------------------------------------------------------------


async def preflight(
    refs: BlockRefs,
    *,
    space_name: str | None = None,
    template_id: str | None = None,
    clip: Any = None,
    providers: Sequence[str] | None = None,
    memo: PreflightMemo | None = None,
) -> PreflightMemo:
    """Check what a production (or one clip) needs before its first paid call; raise ``PreflightError``.

    ``clip`` (a ClipSpec) decides the generation provider and the gateway model; ``providers`` ("jimeng",
    "gateway") adds credential checks when there is no clip (``clipflow setup``). ``memo`` defaults to the one
    of the current scope (``preflight_scope``), else a new one: each (what, value) is checked once per memo."""
    memo = memo or current_memo() or PreflightMemo()
    wanted = set(providers or ())
    model = None
    if clip is not None:
        provider = getattr(clip, "provider", "jimeng")
        wanted.add(provider)
        model = getattr(clip, "model", None) if provider == "gateway" else None
    # Cheap and local first: blocks, then the bucket, then one read per provider and per value.
    await check_blocks(refs, gateway="gateway" in wanted, memo=memo)
    await check_bucket(refs, memo)
    await check_journal(memo)
    if clip is not None:
        await check_image(refs, memo, clip)
    await check_vod(refs, memo, space_name)
    if template_id:
        await check_template(refs, memo, template_id)
    if "jimeng" in wanted:
        await check_jimeng(refs, memo)
    if "gateway" in wanted:
        await check_gateway(refs, memo, model)
    return memo


async def check_blocks(refs: BlockRefs, *, gateway: bool, memo: PreflightMemo | None = None) -> PreflightMemo:
    """Only the blocks load (the Volcengine and bucket blocks; the gateway block when ``gateway``)."""
    memo = memo or current_memo() or PreflightMemo()
    await _volcengine(refs, memo)
    if gateway:
        await _gateway(refs, memo)
    await _bucket_block(refs, memo)
    return memo


async def preflight_blocks(request: Any, memo: PreflightMemo | None = None) -> PreflightMemo:
    """``check_blocks`` for a ProductionRequest: run before anything else loads a block, so a missing one is
    named (block type, name and the ``blocks.*`` field) instead of failing deep inside a stage."""
    return await check_blocks(
        request.blocks, gateway=getattr(request.clip, "provider", "jimeng") == "gateway", memo=memo
    )


async def preflight_production(request: Any, memo: PreflightMemo | None = None) -> PreflightMemo:
    """``preflight`` for a ProductionRequest: its blocks, space, transcode template and clip."""
    return await preflight(
        request.blocks, space_name=request.space_name, template_id=request.transcode.template_id,
        clip=request.clip, memo=memo,
    )


async def preflight_many(
    checks: Sequence[tuple[int, Callable[[PreflightMemo], Awaitable[Any]]]], memo: PreflightMemo | None = None
) -> dict[int, PreflightError]:
    """Run each item's preflight (sharing ``memo``, so each distinct value is read once); the refusals by item.

    A check that could not be made (``PreflightUnavailableError``) refuses no item: it is raised once every check
    has ended, so the whole run stops before anything is paid and can simply be run again."""
    memo = memo or current_memo() or PreflightMemo()
    failed: dict[int, PreflightError] = {}
    unavailable: list[PreflightUnavailableError] = []

    async def one(item: int, check: Callable[[PreflightMemo], Awaitable[Any]]) -> None:
        try:
            await check(memo)
        except PreflightError as exc:
            failed[item] = exc
        except PreflightUnavailableError as exc:
            unavailable.append(exc)

    await asyncio.gather(*(one(item, check) for item, check in checks))
    if unavailable:
        raise unavailable[0]
    return failed


async def verify_setup(name: str, *, gateway: bool) -> list[PreflightError]:
    """What ``clipflow setup`` checks after saving the blocks under ``name``: every problem, not just the first."""
    refs = BlockRefs(volcengine=name, gateway=name, bucket=name)
    memo = PreflightMemo()
    checks: list[Callable[[], Awaitable[Any]]] = [
        lambda: check_bucket(refs, memo),
        lambda: check_journal(memo),
        lambda: check_vod(refs, memo),
        lambda: check_jimeng(refs, memo),
    ]
    if gateway:
        checks.append(lambda: check_gateway(refs, memo))
    problems: list[PreflightError] = []
    for check in checks:
        try:
            await check()
        except PreflightError as exc:
            if not any(str(exc) == str(p) for p in problems):
                problems.append(exc)
        except PreflightUnavailableError as exc:  # not a verdict on the settings, but setup cannot vouch for them
            problems.append(PreflightError(exc.what, f"not verified: {exc.why}; run setup again later",
                                           provider=exc.provider or "unknown"))
    return problems
