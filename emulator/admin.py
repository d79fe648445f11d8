"""Unsigned admin routes under /_emulator/ and the media files under /_media/."""

from __future__ import annotations

import hmac
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from emulator.config import PATCHABLE_FIELDS, EmulatorConfig, FaultRule, normalize_fault_input
from emulator.faults import FaultBook
from emulator.state import EmulatorState

router = APIRouter()


def _state(request: Request) -> EmulatorState:
    return request.app.state.emulator


def _masked_config(config: EmulatorConfig) -> dict[str, Any]:
    data = config.model_dump(mode="json")
    data["secret_key"] = "***"
    data["extra_credentials"] = {ak: "***" for ak in config.extra_credentials}
    data["gateway_key"] = "***"
    data["extra_gateway_keys"] = ["***" for _ in config.extra_gateway_keys]
    return data


@router.get("/_emulator/health")
async def health(request: Request) -> dict[str, Any]:
    state = _state(request)
    with state.lock:
        jobs = {
            "jimeng": len(state.jimeng), "gateway": len(state.gateway), "uploads": len(state.uploads),
            "workflows": len(state.workflows), "direct_edits": len(state.direct_edits),
            "edit_projects": len(state.edit_projects), "translations": len(state.translations),
        }
    return {
        "status": "ok", "time_scale": state.config.time_scale, "clock_offset": state.clock.offset, "jobs": jobs,
        "throttled_answers": state.throttled_answers,
    }


@router.get("/_emulator/ledger")
async def ledger(request: Request) -> list[dict[str, Any]]:
    return _state(request).ledger.entries()


@router.post("/_emulator/reset")
async def reset(request: Request) -> dict[str, str]:
    _state(request).reset()
    return {"status": "reset"}


@router.get("/_emulator/faults")
async def get_faults(request: Request) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json") for r in _state(request).faults.rules()]


@router.put("/_emulator/faults")
async def put_faults(request: Request) -> Response:
    state = _state(request)
    try:
        raw = await request.json()
        rules = [FaultRule.model_validate(r) for r in normalize_fault_input(raw) or []]
    except (ValueError, ValidationError, TypeError) as exc:
        return JSONResponse({"error": f"invalid fault rules: {exc}"}, status_code=400)
    with state.lock:
        state.faults = FaultBook(rules, state.config.fault_seed)
    return JSONResponse([r.model_dump(mode="json") for r in rules])


@router.get("/_emulator/config")
async def get_config(request: Request) -> dict[str, Any]:
    return _masked_config(_state(request).config)


@router.patch("/_emulator/config")
async def patch_config(request: Request) -> Response:
    state = _state(request)
    try:
        patch = await request.json()
        if not isinstance(patch, dict):
            raise TypeError("expected a JSON object")
        refused = sorted(set(patch) - PATCHABLE_FIELDS)
        if refused:
            return JSONResponse({"error": f"not patchable at run time: {refused}"}, status_code=400)
        with state.lock:
            merged = {**state.config.model_dump(), **patch}
            state.config = EmulatorConfig.model_validate(merged)
    except (ValueError, ValidationError, TypeError) as exc:
        return JSONResponse({"error": f"invalid config: {exc}"}, status_code=400)
    return JSONResponse(_masked_config(state.config))


@router.post("/_emulator/clock/advance")
async def advance_clock(request: Request) -> dict[str, float]:
    """Body ``{"seconds": N}`` advances N *nominal* seconds (scaled), ``{"real_seconds": N}`` N real ones."""
    state = _state(request)
    body = await request.json()
    real = float(body.get("real_seconds", 0.0)) + float(body.get("seconds", 0.0)) * state.config.time_scale
    return {"offset": state.clock.advance(real)}


@router.post("/_emulator/expire")
async def expire(request: Request) -> Response:
    """Body ``{"job_id": ID}``: that Jimeng or gateway task's result URL answers 403 from now on (every URL already
    handed out, and the ones get-result signs later); ``{}``: every such task's. Lifetimes are wall-clock, so a
    test reaches the end of one with this instead of waiting an hour."""
    state = _state(request)
    try:
        body = await request.json() if await request.body() else {}
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return JSONResponse({"error": 'expected a JSON object: {"job_id": ID} or {}'}, status_code=400)
    job_id = body.get("job_id")
    now = state.now()
    with state.lock:
        jimeng = [t for t in state.jimeng.values() if job_id in (None, t.task_id)]
        gateway = [t for t in state.gateway.values() if job_id in (None, t.id)]
        if job_id is not None and not (jimeng or gateway):
            return JSONResponse({"error": f"job_id: no Jimeng or gateway task {job_id!r}"}, status_code=404)
        for task in jimeng:
            task.url_ttl_s = min(task.url_ttl_s, now - task.done_at)  # get-result signs already-expired URLs
        for key in [t.media_key for t in jimeng] + [t.media_key for t in gateway]:
            item = state.media.get(key)
            if item is not None:
                item.expires_at = now if item.expires_at is None else min(item.expires_at, now)
    return JSONResponse({"expired": [t.task_id for t in jimeng] + [t.id for t in gateway]})


@router.get("/_emulator/callbacks")
async def callbacks(request: Request) -> list[dict[str, Any]]:
    state = _state(request)
    with state.lock:
        return [asdict(r) for r in state.callback_log]


@router.get("/_emulator/calls")
async def calls(request: Request) -> dict[str, int]:
    """Authenticated Volcengine calls by action since start/reset (free status calls are not in the ledger)."""
    state = _state(request)
    with state.lock:
        return dict(state.calls)


@router.api_route("/_media/{key:path}", methods=["GET", "HEAD"])
async def media(key: str, request: Request) -> Response:
    state = _state(request)
    item = state.media.get(key)
    now = state.now()
    if item is None or now < item.available_at:
        return Response(b"NoSuchKey", status_code=404, media_type="text/plain")
    if item.signed:
        expires = request.query_params.get("X-Expires", "")
        signature = request.query_params.get("X-Signature", "")
        if not expires.isdigit() or not hmac.compare_digest(signature, state.media.sign(key, int(expires))):
            return Response(b"AccessDenied: signature mismatch", status_code=403, media_type="text/plain")
        if now > int(expires):
            return Response(b"AccessDenied: Request has expired", status_code=403, media_type="text/plain")
    if item.expires_at is not None and now >= item.expires_at:
        return Response(b"AccessDenied: Request has expired", status_code=403, media_type="text/plain")
    data = item.data
    headers = {"Accept-Ranges": "bytes"}
    range_header = request.headers.get("range", "")
    if range_header.startswith("bytes=") and "," not in range_header:
        first, _, last = range_header[6:].partition("-")
        try:
            start = int(first) if first else max(0, len(data) - int(last))
            end = min(int(last), len(data) - 1) if first and last else len(data) - 1
        except ValueError:
            start, end = 0, len(data) - 1
        if start > end or start >= len(data):
            return Response(status_code=416, headers={"Content-Range": f"bytes */{len(data)}"})
        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        body = data[start : end + 1] if request.method == "GET" else b""
        return Response(body, status_code=206, media_type=item.content_type, headers=headers)
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(data))
        return Response(b"", media_type=item.content_type, headers=headers)
    return Response(data, media_type=item.content_type, headers=headers)
