"""Jimeng AI video 3.0 Pro on the visual service (cv, 2022-08-31): submit + get-result, CV envelope."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from emulator.clock import phase
from emulator.errors import ApiError
from emulator.faults import job_must_fail
from emulator.media import MediaItem, variant
from emulator.params import contains_marker
from emulator.registry import Ctx, action

VERSION = "2022-08-31"
ASPECT_RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9")
FRAMES = (121, 241)
MAX_PROMPT = 800


def bad_request(message: str) -> ApiError:
    # 50400 is the visual service's generic "invalid request"; the page's own 504xx codes are moderation only.
    return ApiError(50400, 400, f"Invalid Request: {message}")


@dataclass
class JimengTask:
    task_id: str
    ak: str
    req_key: str
    created: float
    queue_s: float
    generate_s: float
    url_ttl_s: float
    task_ttl_s: float
    fails: bool
    media_key: str

    @property
    def done_at(self) -> float:
        return self.created + self.queue_s + self.generate_s

    def status(self, now: float) -> str:
        name, _ = phase(now - self.created, [("in_queue", self.queue_s), ("generating", self.generate_s)], "done")
        if name == "done" and now > self.done_at + self.task_ttl_s:
            return "expired"
        return name

    def active(self, now: float) -> bool:
        return self.status(now) in ("in_queue", "generating")


def _str_list(ctx: Ctx, key: str) -> list[str]:
    value = ctx.params.raw(key)
    if value in (None, "", []):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise bad_request(f"{key} must be an array of strings") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(f"{key} must be an array of strings")
    return value


def _req_key(ctx: Ctx) -> str:
    req_key = ctx.params.raw("req_key")
    if not req_key:
        raise bad_request("req_key is required")
    if req_key not in ctx.config.jimeng_req_keys:
        raise bad_request(f"unsupported req_key {req_key!r}")
    return str(req_key)


@action("CVSync2AsyncSubmitTask", VERSION, service="cv")
async def submit(ctx: Ctx) -> dict[str, Any]:
    req_key = _req_key(ctx)
    prompt = ctx.params.raw("prompt") or ""
    if not isinstance(prompt, str):
        raise bad_request("prompt must be a string")
    images_b64 = _str_list(ctx, "binary_data_base64")
    image_urls = _str_list(ctx, "image_urls")
    if images_b64 and image_urls:
        raise bad_request("send binary_data_base64 or image_urls, not both")
    if len(images_b64) + len(image_urls) > 1:
        raise bad_request("only one (first-frame) image is supported")
    if not prompt.strip() and not (images_b64 or image_urls):
        raise bad_request("prompt or an image is required")
    if len(prompt) > MAX_PROMPT:
        raise bad_request(f"prompt is longer than {MAX_PROMPT} characters")
    for url in image_urls:
        if not url.startswith(("http://", "https://")):
            raise bad_request("image_urls must be http(s) URLs")
    for item in images_b64:
        try:
            base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError):
            raise bad_request("binary_data_base64 is not valid base64") from None
    seed = ctx.params.raw("seed")
    seed = -1 if seed in (None, "") else seed
    if isinstance(seed, bool) or not isinstance(seed, int | str) or not str(seed).lstrip("-").isdigit():
        raise bad_request("seed must be an integer")
    seed = int(seed)
    frames = ctx.params.raw("frames")
    frames = 121 if frames in (None, "") else frames
    if str(frames) not in {str(f) for f in FRAMES}:
        raise bad_request(f"frames must be one of {list(FRAMES)}")
    aspect = ctx.params.raw("aspect_ratio") or "16:9"
    if aspect not in ASPECT_RATIOS:
        raise bad_request(f"aspect_ratio must be one of {list(ASPECT_RATIOS)}")
    if any(word and word in prompt for word in ctx.config.banned_words):
        raise ApiError(50413, 400, "Post Text Risk Not Pass")

    state = ctx.state
    with state.lock:
        limit = ctx.config.jimeng_concurrency
        if limit:
            running = sum(1 for t in state.jimeng.values() if t.ak == ctx.ak and t.active(ctx.now))
            if running >= limit:
                raise ApiError(
                    50430, 429, "Request Has Reached API Concurrent Limit, Please Try Later",
                    headers={"Retry-After": "1"},
                )
        task_id = str(secrets.randbelow(9 * 10**18) + 10**18)
        task = JimengTask(
            task_id=task_id, ak=ctx.ak, req_key=req_key, created=ctx.now,
            queue_s=ctx.scaled("jimeng_queue"), generate_s=ctx.scaled("jimeng_generate"),
            url_ttl_s=ctx.lifetime("jimeng_url_ttl"), task_ttl_s=ctx.lifetime("jimeng_task_ttl"),
            fails=contains_marker(ctx.params.values, ctx.config.fail_marker) or job_must_fail(),
            media_key=f"jimeng/{task_id}.mp4",
        )
        # Same positive seed + same inputs -> same bytes (the vendor: "very likely the same video").
        inputs = hashlib.sha256(json.dumps([prompt, image_urls, images_b64, aspect, str(frames)]).encode()).hexdigest()
        tag = f"jimeng seed={seed} inputs={inputs}" + ("" if seed >= 0 else f" task={task_id}")
        state.media.put(
            task.media_key,
            MediaItem(variant(tag), available_at=task.done_at, expires_at=task.done_at + task.url_ttl_s, signed=True),
        )
        state.jimeng[task_id] = task
        ctx.bill(task_id)
    return {"task_id": task_id}


@action("CVSync2AsyncGetResult", VERSION, service="cv")
async def get_result(ctx: Ctx) -> dict[str, Any]:
    _req_key(ctx)
    task_id = ctx.params.raw("task_id")
    if not task_id:
        raise bad_request("task_id is required")
    req_json = ctx.params.raw("req_json")
    if req_json not in (None, ""):
        if not isinstance(req_json, str):
            raise bad_request("req_json must be a JSON-encoded string")
        try:
            json.loads(req_json)
        except ValueError:
            raise bad_request("req_json is not valid JSON") from None
    with ctx.state.lock:
        task: JimengTask | None = ctx.state.jimeng.get(str(task_id))
    if task is None or task.ak != ctx.ak:
        return {"status": "not_found", "video_url": ""}
    status = task.status(ctx.now)
    if status != "done":
        return {"status": status, "video_url": ""}
    if task.fails:
        raise ApiError(50511, 400, "Post Img Risk Not Pass", data={"status": "done", "video_url": ""})
    url = ctx.state.media.url(ctx.media_base(), task.media_key, task.done_at + task.url_ttl_s)
    return {"status": "done", "video_url": url}
