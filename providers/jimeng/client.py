"""Async client for Jimeng AI video 3.0 Pro (visual OpenAPI, service ``cv``).

Errors: the visual service answers in two shapes. Its own envelope ``{"code", "message", "data", ...}`` carries
the business codes of the vendor page; the OpenAPI gateway in front of it answers authentication, routing and
gateway throttling with the common ``{"ResponseMetadata": {..., "Error": {"Code", "Message"}}}`` envelope
(when ResponseMetadata.Error is present the other fields are to be ignored). Both are mapped here.

Job outcomes vs request errors (get-result). A task's failure is reported through the *outer* code of the
get-result answer ("done: success or failure, see the outer code & message"). So in get-result:
- moderation codes (50411/50412/50413/50511/50512) and the content/parameter codes (50518, 50520-50522)
  describe the task, not the query (a query has no content to moderate): they come back as a FAILED
  ``JimengResult`` carrying the code, never as an exception;
- internal errors (50500/50501/50516/50517/50519) are a task outcome only when ``data.status == "done"``;
  without that they are a failed *query* and raise ServerError (retryable: poll again);
- throttling (50429/50430), auth and malformed answers always raise.
In submit every non-10000 code raises. The vendor's retry table (``models.RETRY_ON_SUBMIT_CODES``) decides what a
server failure means: 50500/50501 *in the service's own envelope* raise ``RetryableRefusalError`` (the page marks
them 可重试: no task was started, send again); any other 5xx, and every answer without that envelope (a proxy's
502/504 page, an empty body, a cut connection, a timeout) raises OutcomeUnknownError (not retryable): the task
may exist. Throttling, auth, moderation and parameter codes also prove that nothing was created.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from providers._http import AsyncApiClient, DEFAULT_TIMEOUT, json_or_none, retry_after_seconds, send, tls_context
from providers.errors import (
    AuthError,
    ContentRejectedError,
    InvalidRequestError,
    NotFoundError,
    ProviderError,
    RequestValidationError,
    RetryableRefusalError,
    ServerError,
    ThrottledError,
    UnexpectedResponseError,
    server_failure,
)
from providers.jimeng.models import (
    PROVIDER,
    REQ_KEY,
    RESULT_ACTION,
    RETRY_ON_SUBMIT_CODES,
    SUBMIT_ACTION,
    THROTTLE_CODES,
    JimengResult,
    JimengVideoRequest,
    validate_request,
)
from providers.signing import VolcengineSigner
from providers.states import JIMENG_OK_CODE

VERSION = "2022-08-31"
SERVICE = "cv"

SERVER_CODES = frozenset({50500, 50501, 50516, 50517, 50519})
# 50511 = post-generation image moderation failed. The page marks it "可重试": the output is random, so a new
# generation may pass. On submit it is mapped to a retryable ServerError (not ContentRejectedError, which is
# never retried); on get-result it is a FAILED job whose ``failure_retryable`` is True.
POST_MODERATION_CODE = 50511
MODERATION_CODES = frozenset({50411, 50412, 50413, 50512})
INVALID_CODES = frozenset({50518, 50520, 50521, 50522})
JOB_OUTCOME_CODES = MODERATION_CODES | INVALID_CODES | {POST_MODERATION_CODE}

# Common OpenAPI gateway codes (BytePlus/Volcengine "common error codes"; api-notes section 2).
AUTH_CODES = frozenset({
    "SignatureDoesNotMatch", "InvalidClientTokenId", "InvalidTimestamp", "RequestForbidden", "InvalidAccessKey",
    "MissingAuthenticationToken", "MissingSignature", "AccessDenied", "LackPolicy", "InvalidSecretToken",
    "InvalidCredential", "InvalidAuthorization", "RequestExpired",
})
THROTTLE_ERROR_CODES = frozenset({"FlowLimitExceeded", "AccountFlowLimitExceeded", "RequestLimitExceeded"})
NOT_FOUND_ERROR_CODES = frozenset({"InvalidActionOrVersion", "ServiceNotFound"})


class JimengClient(AsyncApiClient):
    """One ``httpx.AsyncClient`` per object; close with ``aclose()`` or ``async with``."""

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        *,
        session_token: str | None = None,
        region: str = "cn-north-1",
        endpoint: str = "https://visual.volcengineapi.com",
        timeout: httpx.Timeout | float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.region = region
        self.endpoint = endpoint.rstrip("/")
        signer = VolcengineSigner(access_key, secret_key, region=region, service=SERVICE, session_token=session_token)
        self._http = httpx.AsyncClient(
            auth=signer, timeout=timeout if timeout is not None else DEFAULT_TIMEOUT, transport=transport,
            verify=tls_context(),
        )

    def __repr__(self) -> str:  # never show the keys
        return f"JimengClient(endpoint={self.endpoint!r}, region={self.region!r})"


    # --- API ----------------------------------------------------------------------------------------------

    async def submit_task(self, req: JimengVideoRequest) -> str:
        """Submit a generation (paid, not idempotent) and return its task_id."""
        validate_request(req)
        if req.first_frame_ref:  # never sent: the vendor could not fetch it
            raise RequestValidationError(
                "first_frame_ref", "fetch the image into binary_data_base64 (or give image_urls) before submitting",
                provider=PROVIDER, action=SUBMIT_ACTION,
            )
        body = await self._call(SUBMIT_ACTION, req.to_wire(), idempotent=False)
        data = body.get("data")
        task_id = data.get("task_id") if isinstance(data, dict) else None
        if not isinstance(task_id, (str, int)) or isinstance(task_id, bool) or str(task_id) == "":
            # Code 10000 but no id: the job may exist and cannot be polled. Do not resubmit blindly.
            raise UnexpectedResponseError(
                "submit succeeded without data.task_id", provider=PROVIDER, action=SUBMIT_ACTION,
                code=body.get("code"), request_id=body.get("request_id"), retryable=False,
            )
        return str(task_id)

    async def get_result(self, task_id: str, *, req_json: Mapping[str, Any] | str | None = None) -> JimengResult:
        """Poll a task (idempotent). ``req_json`` (optional output options) is sent as a JSON-encoded string."""
        if not isinstance(task_id, str) or not task_id.strip():
            raise RequestValidationError("task_id", "must be a non-empty string", provider=PROVIDER, action=RESULT_ACTION)
        payload: dict[str, Any] = {"req_key": REQ_KEY, "task_id": task_id}
        if req_json is not None:
            payload["req_json"] = req_json if isinstance(req_json, str) else json.dumps(req_json, ensure_ascii=False)
        body = await self._call(RESULT_ACTION, payload, idempotent=True, task_id=task_id)
        data = body.get("data") if isinstance(body.get("data"), dict) else None
        return JimengResult(
            task_id=task_id,
            status=(data or {}).get("status"),
            video_url=(data or {}).get("video_url") or None,
            code=int(body.get("code", JIMENG_OK_CODE)),
            message=body.get("message"),
            request_id=body.get("request_id"),
            time_elapsed=_str_or_none(body.get("time_elapsed")),
            data=data,
        )

    # --- plumbing -----------------------------------------------------------------------------------------

    async def _call(
        self, action: str, payload: dict[str, Any], *, idempotent: bool, task_id: str | None = None
    ) -> dict[str, Any]:
        """POST ``payload``; return the envelope when code is 10000 (or a get-result job outcome), else raise."""
        content = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        request = self._http.build_request(
            "POST", self.endpoint + "/", params={"Action": action, "Version": VERSION}, content=content,
            headers={"Content-Type": "application/json"},
        )
        response = await send(self._http, request, provider=PROVIDER, action=action, idempotent=idempotent)
        body = json_or_none(response)
        if not isinstance(body, dict):
            raise _no_envelope(response, action, idempotent)
        meta = body.get("ResponseMetadata")
        if isinstance(meta, dict) and isinstance(meta.get("Error"), dict):
            raise _gateway_error(response, meta, action, idempotent)
        code = _int_or_none(body.get("code"))
        if code == JIMENG_OK_CODE and response.is_success:
            return body
        if code is None:
            raise _no_envelope(response, action, idempotent)
        if task_id is not None and _is_job_outcome(code, body):
            return body
        raise _business_error(response, body, code, action, idempotent)


def _is_job_outcome(code: int, body: dict[str, Any]) -> bool:
    if code in JOB_OUTCOME_CODES:
        return True
    data = body.get("data")
    done = isinstance(data, dict) and data.get("status") == "done"
    # An unknown or internal code on a task the service calls "done" is that task's failure.
    return done and code not in THROTTLE_CODES


def _business_error(
    response: httpx.Response, body: dict[str, Any], code: int, action: str, idempotent: bool
) -> ProviderError:
    message = str(body.get("message") or "") or f"code {code}"
    common: dict[str, Any] = {
        "provider": PROVIDER, "action": action, "http_status": response.status_code, "code": code,
        "request_id": body.get("request_id"),
    }
    if code in THROTTLE_CODES:
        # Both are "refused, nothing started"; ``code`` tells QPS (50429) from concurrency (50430).
        return ThrottledError(f"{THROTTLE_CODES[code]}: {message}", retry_after=retry_after_seconds(response), **common)
    if code == POST_MODERATION_CODE:
        return ServerError(f"output failed moderation, a new generation may pass: {message}", retryable=True, **common)
    if code in RETRY_ON_SUBMIT_CODES and not idempotent:
        # The service itself answered, with a code its page marks 可重试: a refusal, no task was started.
        return RetryableRefusalError(f"refused by the service, safe to send again: {message}", **common)
    if code in SERVER_CODES:
        return _server_error(response, message, common, idempotent)
    if code in MODERATION_CODES:
        return ContentRejectedError(f"content rejected by moderation: {message}", **common)
    if code in INVALID_CODES:
        return InvalidRequestError(message, **common)
    return _by_http_status(response, message, common, idempotent)


def _gateway_error(response: httpx.Response, meta: dict[str, Any], action: str, idempotent: bool) -> ProviderError:
    error = meta["Error"]
    code = str(error.get("Code") or "")
    message = str(error.get("Message") or "") or code or "error"
    common: dict[str, Any] = {
        "provider": PROVIDER, "action": action, "http_status": response.status_code, "code": code,
        "request_id": meta.get("RequestId"),
    }
    if code in AUTH_CODES:
        return AuthError(message, **common)
    if code in THROTTLE_ERROR_CODES:
        return ThrottledError(message, retry_after=retry_after_seconds(response), **common)
    if code in NOT_FOUND_ERROR_CODES:
        return InvalidRequestError(message, **common)  # a wrong Action/Version is our bug, not a missing task
    return _by_http_status(response, message, common, idempotent)


def _by_http_status(
    response: httpx.Response, message: str, common: dict[str, Any], idempotent: bool
) -> ProviderError:
    status = response.status_code
    if status in (401, 403):
        return AuthError(message, **common)
    if status == 429:
        return ThrottledError(message, retry_after=retry_after_seconds(response), **common)
    if status == 404:
        return NotFoundError(message, **common)
    if status >= 500:
        return _server_error(response, message, common, idempotent)
    if 400 <= status < 500:
        return InvalidRequestError(message, **common)
    return UnexpectedResponseError(message, retryable=idempotent, **common)


def _server_error(
    response: httpx.Response, message: str, common: dict[str, Any], idempotent: bool
) -> ProviderError:
    # A 5xx the retry table does not cover: the service failed after the request arrived. For the paid submit
    # that says nothing about whether the task was created (and billed): outcome-unknown, never retried blindly.
    return server_failure(message, idempotent=idempotent, **common)


def _no_envelope(response: httpx.Response, action: str, idempotent: bool) -> ProviderError:
    snippet = response.text[:200] if response.content else "empty body"
    common: dict[str, Any] = {"provider": PROVIDER, "action": action, "http_status": response.status_code}
    if response.is_success:
        # 2xx without the envelope: for a submit the job may have been created.
        return UnexpectedResponseError(f"answer is not the visual envelope: {snippet}", retryable=idempotent, **common)
    return _by_http_status(response, snippet, common, idempotent)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
