"""VOD error envelope -> typed provider errors (shared/api-notes.md section 2).

The documented ``Error.Code`` decides; the HTTP status is the fallback for codes we have not seen. A server
failure is retryable only when repeating the request is harmless (``providers.vod.paid``): on a paid submit it
means the job may exist, so it becomes an ``OutcomeUnknownError``.
"""

from __future__ import annotations

from typing import Any

import httpx

from providers._http import json_or_none, retry_after_seconds
from providers.errors import (
    AuthError,
    InvalidRequestError,
    NotFoundError,
    ProviderError,
    ServerError,
    ThrottledError,
    UnexpectedResponseError,
    server_failure,
)

PROVIDER = "vod"

CODE_TABLE: dict[str, type[ProviderError]] = {
    # throttling: retry with backoff
    "FlowLimitExceeded": ThrottledError,
    "AccountFlowLimitExceeded": ThrottledError,
    "RequestLimitExceeded": ThrottledError,
    # auth: never retry
    "SignatureDoesNotMatch": AuthError,
    "InvalidClientTokenId": AuthError,
    "InvalidTimestamp": AuthError,
    "RequestForbidden": AuthError,
    "InvalidAccessKey": AuthError,
    "InvalidSecretToken": AuthError,
    "MissingAuthenticationToken": AuthError,
    # request: never retry. InvalidActionOrVersion is our bug, not a missing resource.
    "InvalidParameter": InvalidRequestError,
    "MissingParameter": InvalidRequestError,
    "InvalidActionOrVersion": InvalidRequestError,
    "ResourceInUse": InvalidRequestError,
    "ResourceNotFound": NotFoundError,
    # server: retry
    "InternalError": ServerError,
    "ServiceUnavailable": ServerError,
    "ServiceUnavailableTemp": ServerError,
    "InternalServiceTimeout": ServerError,
}


def class_for(code: str | None, http_status: int) -> type[ProviderError]:
    """``InvalidParameter.InvalidParam`` falls back to ``InvalidParameter``; then the HTTP status decides."""
    if code:
        for candidate in (code, code.split(".", 1)[0]):
            if candidate in CODE_TABLE:
                return CODE_TABLE[candidate]
    if http_status in (401, 403):
        return AuthError
    if http_status == 404:
        return NotFoundError
    if http_status == 429:
        return ThrottledError
    if http_status >= 500:
        return ServerError
    if http_status >= 400:
        return InvalidRequestError
    return UnexpectedResponseError  # an error code on a 2xx/3xx we cannot classify


def unwrap(response: httpx.Response, action: str, *, safe_to_repeat: bool = True) -> tuple[Any, str | None]:
    """Return (``Result``, request id) or raise the typed error the envelope describes.

    ``safe_to_repeat`` is False for a paid submit without an idempotency token: a server failure then raises
    ``OutcomeUnknownError`` (not retryable) instead of a retryable ``ServerError``.
    """
    payload = json_or_none(response)
    meta = payload.get("ResponseMetadata") if isinstance(payload, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    request_id = meta.get("RequestId") or response.headers.get("x-tt-logid")
    error = meta.get("Error") if isinstance(meta.get("Error"), dict) else {}
    code = error.get("Code") or None

    if code or response.status_code >= 400:
        cls = class_for(code, response.status_code)
        message = error.get("Message") or (response.reason_phrase if payload is None else "") or "request failed"
        kwargs: dict[str, Any] = dict(
            provider=PROVIDER,
            action=action,
            http_status=response.status_code,
            code=code,
            request_id=request_id,
        )
        if cls is ThrottledError:
            raise ThrottledError(message, retry_after=retry_after_seconds(response), **kwargs)
        if cls is ServerError:
            raise server_failure(message, idempotent=safe_to_repeat, **kwargs)
        raise cls(message, **kwargs)

    if not isinstance(payload, dict) or "Result" not in payload:
        raise UnexpectedResponseError(
            "answer has no Result", provider=PROVIDER, action=action, http_status=response.status_code,
            request_id=request_id,
        )
    return payload["Result"], request_id
