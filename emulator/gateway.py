"""OpenAI-style relay gateway (new-api): POST /v1/video/create, GET /v1/video/query?id=."""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from emulator.auth import mask_key, verify_bearer
from emulator.clock import phase
from emulator.errors import ApiError, gateway_error, new_request_id
from emulator.faults import SATURATED, job_must_fail
from emulator.media import MediaItem, variant
from emulator.params import Params, contains_marker, fingerprint
from emulator.pricing import priced
from emulator.quota import retry_after_header
from emulator.registry import Ctx
from emulator.state import EmulatorState
from emulator.volcengine import answer_with_faults

log = logging.getLogger("emulator")
router = APIRouter()

GROK_ASPECTS = ("2:3", "3:2", "1:1")


def bad(message: str, code: str = "invalid_request") -> ApiError:
    return ApiError(code, 400, message)


@dataclass
class GatewayTask:
    id: str
    model: str
    key: str
    prompt: str
    created: float
    pending_s: float
    processing_s: float
    fails: bool
    media_key: str
    millis: bool  # status_update_time unit: seconds for grok, milliseconds for the veo family

    def status(self, now: float) -> tuple[str, float]:
        """(status, emulated time of the last status change)."""
        name, _ = phase(now - self.created, [("pending", self.pending_s), ("processing", self.processing_s)], "end")
        if name == "pending":
            return name, self.created
        if name == "processing":
            return name, self.created + self.pending_s
        return ("failed" if self.fails else "completed"), self.created + self.pending_s + self.processing_s

    def stamp(self, at: float) -> int:
        return int(at * 1000) if self.millis else int(at)


def _task_id(model: str, now: float) -> str:
    if model.startswith("grok"):
        return f"grok:{uuid.uuid4()}"
    if model.startswith("veo"):
        return f"{model}:{int(now)}-{secrets.token_urlsafe(8)[:10]}"
    return f"{model}:{uuid.uuid4()}"


async def _front_door(request: Request, name: str, handler: Callable[[Ctx], Awaitable[Any]]) -> Response:
    state: EmulatorState = request.app.state.emulator
    try:
        key = verify_bearer(state.config, request.headers.get("authorization"))
    except ApiError as err:
        return gateway_error(err)
    wait = state.quotas.take(key, name, state.config.qps_for(name))
    if wait is not None:
        return gateway_error(ApiError("upstream_saturated", 429, SATURATED, headers=retry_after_header(wait)))
    async def handle() -> tuple[Response, bool]:
        try:
            body: dict[str, Any] = {}
            if request.method == "POST":
                raw = await request.body()
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    raise bad("request body is not valid JSON") from None
                if not isinstance(body, dict):
                    raise bad("request body must be a JSON object")
            ctx = Ctx(
                state=state, action=name, version="", provider="gateway", request_id=new_request_id(), ak=key,
                base_url=str(request.base_url), params=Params(request.query_params.multi_items(), body, True),
                now=state.now(),
            )
            return JSONResponse(await handler(ctx)), True
        except ApiError as err:
            return gateway_error(err), False
        except Exception:
            log.exception("gateway handler %s crashed", name)
            return gateway_error(ApiError("internal_error", 500, "internal error")), False

    return await answer_with_faults(state.faults.decide(name, "gateway"), name, handle, gateway_error)


async def _create(ctx: Ctx) -> dict[str, Any]:
    body = ctx.params.values
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad("model is required")
    if model not in ctx.config.gateway_models:
        raise bad(f"model {model} is not available on this gateway", "model_not_found")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise bad("prompt is required")
    images = body.get("images") or []
    if not isinstance(images, list) or not all(isinstance(i, str) and i.startswith(("http://", "https://", "data:"))
                                               for i in images):
        raise bad("images must be an array of image URLs")
    if model.startswith("grok"):
        if body.get("aspect_ratio", "3:2") not in GROK_ASPECTS:
            raise bad(f"aspect_ratio must be one of {list(GROK_ASPECTS)}")
        if str(body.get("size", "720P")).upper() != "720P":
            raise bad("size: 暂只支持720P (only 720P is supported)")
    # images is one list of links (the page); what a position means is the model's: references for the
    # components model, [first frame, last frame] for the frames models (api-notes section 5).
    if model.startswith("veo3.1-components") and len(images) > 3:
        raise bad("veo3.1-components accepts at most 3 reference images")
    if model.startswith(("veo3-frames", "veo3.1-frames")) and not 1 <= len(images) <= 2:
        raise bad(f"{model} needs a first frame and optionally a last frame (1 or 2 images)")

    task = GatewayTask(
        id=_task_id(model, ctx.now), model=model, key=ctx.ak, prompt=prompt, created=ctx.now,
        pending_s=ctx.scaled("gateway_pending"), processing_s=ctx.scaled("gateway_processing"),
        fails=contains_marker(body, ctx.config.fail_marker) or job_must_fail(), media_key="",
        millis=not model.startswith("grok"),
    )
    task.media_key = "gateway/" + task.id.replace(":", "-") + ".mp4"
    done_at = task.created + task.pending_s + task.processing_s
    with ctx.state.lock:
        ctx.state.media.put(task.media_key, MediaItem(variant(f"gateway {task.id} {prompt}"), available_at=done_at))
        ctx.state.gateway[task.id] = task
        ctx.state.ledger.record(
            provider="gateway", action="create", fingerprint=fingerprint(body), job_id=task.id,
            ak=mask_key(ctx.ak), request_id=ctx.request_id, emulated_time=ctx.now,
            priced=priced(ctx.state, "gateway", "create", body),
        )
    status, at = task.status(ctx.now)
    return {"id": task.id, "status": status, "status_update_time": task.stamp(at)}


async def _query(ctx: Ctx) -> dict[str, Any]:
    task_id = ctx.params.raw("id")
    if not task_id:
        raise bad("id is required")
    with ctx.state.lock:
        task: GatewayTask | None = ctx.state.gateway.get(task_id)
    if task is None or task.key != ctx.ak:
        raise bad(f"task_not_exist: {task_id}", "task_not_exist")
    status, at = task.status(ctx.now)
    url = ctx.state.media.url(ctx.media_base(), task.media_key) if status == "completed" else None
    detail: dict[str, Any] = {"id": task.id, "model": task.model, "status": status, "video_url": url,
                              "prompt": task.prompt}
    if status == "failed":
        detail["error_message"] = "generation failed (emulated failure)"
    return {
        "id": task.id,
        "status": status,
        "video_url": url,
        "enhanced_prompt": f"{task.prompt} (enhanced)" if status == "completed" else None,
        "status_update_time": task.stamp(at),
        "detail": detail,
    }


@router.post("/v1/video/create")
async def video_create(request: Request) -> Response:
    return await _front_door(request, "gateway.create", _create)


@router.get("/v1/video/query")
async def video_query(request: Request) -> Response:
    return await _front_door(request, "gateway.query", _query)
