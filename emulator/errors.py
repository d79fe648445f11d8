"""Errors raised by handlers and the three wire envelopes they are rendered into."""

from __future__ import annotations

import secrets
import time
from typing import Any

from fastapi.responses import HTMLResponse, JSONResponse, Response

from emulator.config import REGION


class ApiError(Exception):
    """A refusal: ``code`` is a VOD string code, a CV int code or a gateway code string."""

    def __init__(
        self, code: str | int, status: int, message: str, *, headers: dict[str, str] | None = None,
        data: Any = None, body: str = "vendor",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.data = data
        self.body = body  # vendor | proxy | empty (see config.FaultError)


def invalid(message: str, code: str = "InvalidParameter") -> ApiError:
    return ApiError(code, 400, message)


def missing(name: str) -> ApiError:
    return ApiError("MissingParameter", 400, f"The request is missing {name} parameter.")


def not_found(message: str) -> ApiError:
    return ApiError("ResourceNotFound", 404, message)


def new_request_id() -> str:
    """Volcengine style: timestamp + 20 upper-case hex characters."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(10).upper()


def response_metadata(request_id: str, action: str, version: str, service: str) -> dict[str, Any]:
    return {"RequestId": request_id, "Action": action, "Version": version, "Service": service, "Region": REGION}


def vod_ok(request_id: str, action: str, version: str, result: Any, service: str = "vod") -> JSONResponse:
    return JSONResponse({"ResponseMetadata": response_metadata(request_id, action, version, service), "Result": result})


def vod_error(request_id: str, action: str, version: str, err: ApiError, service: str = "vod") -> JSONResponse:
    meta = response_metadata(request_id, action, version, service)
    meta["Error"] = {"Code": str(err.code), "Message": err.message}
    return JSONResponse({"ResponseMetadata": meta}, status_code=err.status, headers=err.headers)


def _elapsed(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.6f}ms"


def cv_ok(request_id: str, data: Any, started: float) -> JSONResponse:
    return JSONResponse(
        {"code": 10000, "data": data, "message": "Success", "request_id": request_id, "status": 10000,
         "time_elapsed": _elapsed(started)}
    )


def cv_error(request_id: str, err: ApiError, started: float) -> JSONResponse:
    code = int(err.code) if str(err.code).isdigit() else 50500
    return JSONResponse(
        {"code": code, "data": err.data, "message": err.message, "request_id": request_id, "status": code,
         "time_elapsed": _elapsed(started)},
        status_code=err.status, headers=err.headers,
    )


def proxy_error(err: ApiError) -> Response:
    """What a proxy or load balancer in front of the provider answers: no vendor envelope (``body`` proxy: a
    small HTML page, as nginx writes one; empty: nothing)."""
    if err.body == "empty":
        return Response(status_code=err.status, headers=err.headers)
    title = f"{err.status} {err.message}"
    page = f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1></center></body></html>"
    return HTMLResponse(page, status_code=err.status, headers=err.headers)


def gateway_error(err: ApiError) -> JSONResponse:
    """new-api style error body."""
    kind = "invalid_request_error" if 400 <= err.status < 500 and err.status != 429 else "new_api_error"
    return JSONResponse(
        {"error": {"message": err.message, "type": kind, "code": str(err.code)}},
        status_code=err.status, headers=err.headers,
    )
