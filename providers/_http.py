"""Shared HTTP plumbing: one place where httpx exceptions become typed provider errors."""

from __future__ import annotations

import email.utils
import functools
import ssl
import time
from typing import Any, Self

import httpx

from providers.errors import OutcomeUnknownError, RequestNotSentError

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS settings (certifi's CA bundle, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``), built once per
    process and shared by every provider client. httpx builds one per client otherwise, reading the whole CA
    bundle each time: 35 ms of CPU, and a batch opens a client per paid call or wait (bench/vs_plain.py: 16
    per item, more than all of clipflow's own work per item)."""
    return httpx.create_ssl_context()

# Raised before a single byte reached the provider: retrying cannot double-submit.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


async def send(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    provider: str,
    action: str,
    idempotent: bool,
) -> httpx.Response:
    """Send ``request``; map transport failures to RequestNotSentError / OutcomeUnknownError.

    ``idempotent`` says whether repeating the request is harmless (reads, submits with an idempotency token):
    only then is an outcome-unknown failure marked retryable.
    """
    try:
        return await client.send(request)
    except _NOT_SENT as exc:
        raise RequestNotSentError(
            f"request not sent: {type(exc).__name__}", provider=provider, action=action
        ) from None
    except httpx.TransportError as exc:
        raise OutcomeUnknownError(
            f"no answer, the provider may have accepted the request: {type(exc).__name__}",
            provider=provider,
            action=action,
            retryable=idempotent,
        ) from None


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class AsyncApiClient:
    """Lifecycle shared by the provider clients: one ``httpx.AsyncClient`` (``self._http``) per object, closed by
    ``aclose()`` or ``async with``."""

    _http: httpx.AsyncClient

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
