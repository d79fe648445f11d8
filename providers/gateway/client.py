"""Async client for OpenAI-style relay gateways' unified video API (``/v1/video/create``, ``/v1/video/query``).

Error mapping (api-notes section 5): 401/403 auth; a missing task is HTTP 400 (NotFoundError when the message
says so, only on query: on create "not found" is about the model or an image); 429 is throttling. The saturation
refusal ("上游负载已饱和", sent as 429, 500 or 503 in the relay's own JSON error body) is the one 5xx the notes
mark "retry with backoff": the relay refused before any upstream had the job, so on create it raises
``RetryableRefusalError`` (``ThrottledError`` when it comes as 429, and on query). Any other 5xx, and every 5xx
without the relay's JSON body (a proxy's HTML page, an empty body), is a server error on query and
outcome-unknown on create: the relay may have failed (or timed out) after an upstream accepted the paid job.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from pydantic import ValidationError

from providers._http import AsyncApiClient, DEFAULT_TIMEOUT, json_or_none, retry_after_seconds, send, tls_context
from providers.errors import (
    AuthError,
    InvalidRequestError,
    NotFoundError,
    ProviderError,
    RequestValidationError,
    RetryableRefusalError,
    ThrottledError,
    UnexpectedResponseError,
    server_failure,
)
from providers.gateway.models import (
    CREATE_ACTION,
    PROVIDER,
    QUERY_ACTION,
    GatewayTask,
    GatewayVideoRequest,
    validate_request,
)

# The vendor's retry table, in one place (api-notes section 5): saturation is the relay's "retry with backoff".
SATURATION_MARKERS = ("上游负载已饱和", "负载已饱和", "saturated")
_NOT_FOUND = re.compile(r"not[\s_-]*(be\s+)?found|not[\s_-]*exist|no such|不存在|未找到|找不到", re.IGNORECASE)


class GatewayClient(AsyncApiClient):
    """Bearer-authenticated; one ``httpx.AsyncClient`` per object; ``aclose()`` or ``async with``."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: httpx.Timeout | float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        base = base_url.strip().rstrip("/")
        # Users paste either the host or the OpenAI-style ".../v1" base: accept both.
        self.base_url = base[: -len("/v1")] if base.endswith("/v1") else base
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=timeout if timeout is not None else DEFAULT_TIMEOUT,
            transport=transport,
            verify=tls_context(),
        )

    def __repr__(self) -> str:  # never show the key
        return f"GatewayClient(base_url={self.base_url!r})"


    async def create_video(self, req: GatewayVideoRequest) -> GatewayTask:
        """Create a generation (paid, not idempotent). Poll with the returned ``id`` as-is (it has a model prefix)."""
        validate_request(req)
        request = self._http.build_request("POST", "/v1/video/create", json=req.to_wire())
        return await self._call(request, CREATE_ACTION, idempotent=False)

    async def query_video(self, task_id: str) -> GatewayTask:
        """Current state of a task (idempotent)."""
        if not isinstance(task_id, str) or not task_id.strip():
            raise RequestValidationError("task_id", "must be a non-empty string", provider=PROVIDER, action=QUERY_ACTION)
        request = self._http.build_request("GET", "/v1/video/query", params={"id": task_id})
        return await self._call(request, QUERY_ACTION, idempotent=True)

    async def _call(self, request: httpx.Request, action: str, *, idempotent: bool) -> GatewayTask:
        response = await send(self._http, request, provider=PROVIDER, action=action, idempotent=idempotent)
        body = json_or_none(response)
        if not response.is_success:
            raise _error(response, body, action, idempotent)
        task = _task_from(body)
        if task is None:
            error = _error_fields(body)
            if error is not None:  # some relays answer 200 with an error body
                raise _error(response, body, action, idempotent)
            raise UnexpectedResponseError(
                f"answer has no task id: {_snippet(response)}", provider=PROVIDER, action=action,
                http_status=response.status_code, retryable=idempotent,
            )
        return task


def _task_from(body: Any) -> GatewayTask | None:
    if isinstance(body, dict) and "id" not in body and isinstance(body.get("data"), dict):
        body = body["data"]  # tolerate the {"code", "message", "data": {...}} wrapping some relays use
    if not isinstance(body, dict) or body.get("id") in (None, ""):
        return None
    try:
        return GatewayTask.model_validate(body)
    except ValidationError:
        return None


def _error_fields(body: Any) -> tuple[str, str | int | None, str | None] | None:
    """(message, code, type) from ``{"error": {...}}`` or ``{"code", "message", "data"}``."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or ""), error.get("code"), error.get("type")
    if isinstance(error, str) and error:
        return error, body.get("code"), None
    if "message" in body or "code" in body:
        return str(body.get("message") or body.get("msg") or ""), body.get("code"), None
    return None


def _error(response: httpx.Response, body: Any, action: str, idempotent: bool) -> ProviderError:
    fields = _error_fields(body)
    message, code, kind = fields if fields else ("", None, None)
    message = message or _snippet(response)
    if kind and kind not in message:
        message = f"{message} ({kind})"
    status = response.status_code
    common: dict[str, Any] = {
        "provider": PROVIDER, "action": action, "http_status": status,
        "code": code if isinstance(code, (str, int)) and not isinstance(code, bool) else None,
        "request_id": response.headers.get("x-request-id") or response.headers.get("x-oneapi-request-id"),
    }
    if status in (401, 403):
        return AuthError(message, **common)
    saturated = fields is not None and any(marker in message for marker in SATURATION_MARKERS)
    if saturated and status >= 500 and not idempotent:
        # The relay's own body says it refused (no upstream took the job): retried in place like throttling,
        # but a 5xx all the same, so ``CLIPFLOW_RETRY_POLICY=strict`` can hand it to an operator instead.
        return RetryableRefusalError(message, **common)
    if status == 429 or saturated:
        return ThrottledError(message, retry_after=retry_after_seconds(response), **common)
    if status >= 500:
        # Not a saturation refusal: the relay or its upstream failed after the request arrived. On create the
        # paid job may exist, so that is outcome-unknown (server_failure), never retried blindly.
        return server_failure(message, idempotent=idempotent, **common)
    if action == QUERY_ACTION and (status == 404 or (status == 400 and _NOT_FOUND.search(message))):
        return NotFoundError(message, **common)
    if 400 <= status < 500:
        return InvalidRequestError(message, **common)
    # 2xx with an error body: the request was refused in some way we cannot classify.
    return UnexpectedResponseError(message, retryable=idempotent, **common)


def _snippet(response: httpx.Response) -> str:
    return response.text[:200] if response.content else "empty body"
