"""The Volcengine OpenAPI front door: ``/`` routed by Action + Version, signed, throttled, fault-injected.

Faults apply to every registered action, reads included (GetWorkflowExecution, QueryUploadTaskInfo,
CVSync2AsyncGetResult...), after signature and quota checks, like a provider failing behind its gateway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from emulator.auth import verify_volcengine
from emulator.errors import ApiError, cv_error, cv_ok, new_request_id, proxy_error, vod_error, vod_ok
from emulator.faults import FAIL_JOB, FaultDecision
from emulator.params import Params, parse_body
from emulator.quota import retry_after_header
from emulator.registry import REGISTRY, Ctx
from emulator.state import EmulatorState

log = logging.getLogger("emulator")

RAW_SEND_KEY = "emulator.raw_send"


class CaptureRawSend:
    """Outermost ASGI layer: remember the server's own ``send`` so a handler can reach the socket."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[RAW_SEND_KEY] = send
        await self.app(scope, receive, send)


class DropConnection(Response):
    """Close the socket without answering: the client sees a transport error, yet the job exists.

    uvicorn's ``send`` is a bound method of the request cycle that owns the transport; closing it before
    ``http.response.start`` means not one byte of answer is written. Elsewhere (other servers, in-process
    ASGI transports) an exception is the closest equivalent.
    """

    def __init__(self) -> None:
        super().__init__(status_code=500)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get(RAW_SEND_KEY)
        transport = getattr(getattr(raw, "__self__", None), "transport", None)
        if transport is None:
            raise ConnectionAbortedError("drop_after_accept: connection cut by fault injection")
        transport.close()
        # Let connection_lost run so the server marks the cycle disconnected and writes no fallback 500.
        await asyncio.sleep(0.05)


async def answer_with_faults(
    decision: FaultDecision,
    name: str,
    handle: Callable[[], Awaitable[tuple[Response, bool]]],
    refuse: Callable[[ApiError], Response],
) -> Response:
    """Apply a fault decision around a handler; shared by the Volcengine and gateway front doors.

    ``handle`` returns (answer, accepted): accepted is False when the handler itself refused the request.
    Order matters: an error before acceptance creates nothing; a drop or an error after it leaves the job
    created and billed while the client never sees the answer.
    """
    if decision.latency:
        await asyncio.sleep(decision.latency)
    if decision.error is not None and decision.error.body != "vendor":
        refuse = proxy_error  # a proxy in front of the provider answers, without the vendor's envelope
    if decision.error is not None and not decision.error_after_accept:
        log.info("fault: %s answered %s %s", name, decision.error.status, decision.error.code)
        return refuse(decision.error)
    token = FAIL_JOB.set(decision.fail_job)
    try:
        response, accepted = await handle()
    finally:
        FAIL_JOB.reset(token)
    if decision.drop_after_accept:
        log.info("fault: %s accepted, dropping the connection before answering", name)
        return DropConnection()
    if decision.error is not None and accepted:
        log.info("fault: %s accepted, answering %s %s anyway", name, decision.error.status, decision.error.code)
        return refuse(decision.error)
    return response


def _throttle_error(service: str, wait: float) -> ApiError:
    headers = retry_after_header(wait)
    if service == "cv":
        return ApiError(50429, 429, "Request Has Reached API Limit, Please Try Later", headers=headers)
    return ApiError("FlowLimitExceeded", 429, "Flow limit exceeded, please retry later.", headers=headers)


async def volcengine_entry(request: Request) -> Response:
    started = time.perf_counter()
    state: EmulatorState = request.app.state.emulator
    request_id = new_request_id()
    query = request.query_params.multi_items()
    action = request.query_params.get("Action", "")
    version = request.query_params.get("Version", "")
    spec = REGISTRY.get(action)
    if spec is None or spec.version != version:
        err = ApiError("InvalidActionOrVersion", 404, f"Could not find operation {action} for version {version}.")
        return vod_error(request_id, action, version, err, service=spec.service if spec else "vod")

    def refuse(err: ApiError) -> Response:
        if spec.service == "cv" and str(err.code).isdigit():
            return cv_error(request_id, err, started)
        # A named (string) code is the OpenAPI gateway's, in ResponseMetadata.Error: rendering it in the
        # service's envelope would turn it into 50500, which the vendor documents as "nothing created, retry".
        return vod_error(request_id, action, version, err, service=spec.service)

    body = await request.body()
    try:
        ak = verify_volcengine(
            config=state.config, service=spec.service, method=request.method, path=request.url.path,
            query_items=query, headers=request.headers, body=body,
        )
    except ApiError as err:
        # Gateway-level refusals carry ResponseMetadata.Error for every service, CV included.
        return vod_error(request_id, action, version, err, service=spec.service)

    state.count_call(action)
    wait = state.quotas.take(ak, action, state.config.qps_for(action))
    if wait is not None:
        return refuse(_throttle_error(spec.service, wait))

    async def handle() -> tuple[Response, bool]:
        try:
            body_params, is_json = parse_body(body, request.headers.get("content-type", ""))
            ctx = Ctx(
                state=state, action=action, version=version, provider=spec.provider, request_id=request_id, ak=ak,
                base_url=str(request.base_url), params=Params(query, body_params, is_json), now=state.now(),
            )
            result = await spec.handler(ctx)
        except ApiError as err:
            return refuse(err), False
        except Exception:  # a bug in the emulator must look like a provider 500, not kill the server
            log.exception("emulator handler %s crashed", action)
            return refuse(ApiError(50500 if spec.service == "cv" else "InternalError", 500, "Internal error.")), False
        if spec.service == "cv":
            return cv_ok(request_id, result, started), True
        return vod_ok(request_id, action, version, result), True

    return await answer_with_faults(state.faults.decide(action, spec.service), action, handle, refuse)
