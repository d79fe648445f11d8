"""Event callbacks (WorkflowComplete, AITranslationComplete): best effort, logged, never fatal."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time

import httpx

from emulator.state import CallbackRecord, EmulatorState, PendingCallback

log = logging.getLogger("emulator")
TICK_SECONDS = 0.02


def take_due(state: EmulatorState) -> list[PendingCallback]:
    with state.lock:
        now = state.now()
        due = [cb for cb in state.pending_callbacks if cb.due <= now]
        state.pending_callbacks = [cb for cb in state.pending_callbacks if cb.due > now]
    return due


def signed_headers(url: str, key: str | None, body: bytes) -> dict[str, str]:
    """VOD's callback authentication (volcengine.com/docs/4/116752): md5 of ``URL|timestamp|key|base64(body)``."""
    headers = {"Content-Type": "application/json"}
    if key:
        stamp = str(int(time.time()))  # wall-clock, whatever the emulator's time scale: the receiver checks it
        content = f"{url}|{stamp}|{key}|{base64.b64encode(body).decode()}"
        headers.update({"X-VOD-TIMESTAMP": stamp, "X-VOD-SIGNATURE": hashlib.md5(content.encode()).hexdigest()})
    return headers


async def deliver(state: EmulatorState, client: httpx.AsyncClient, callback: PendingCallback) -> None:
    url = state.config.callback_url
    if not url:
        return
    record = CallbackRecord(callback.event, callback.job_id, url, ok=False, status=None, error=None)
    try:
        record.payload = callback.build()
        body = json.dumps(record.payload).encode()
        response = await client.post(url, content=body, headers=signed_headers(url, state.config.callback_key, body))
        record.status = response.status_code
        record.ok = response.is_success
        log.info("callback %s %s -> %s %s", callback.event, callback.job_id, url, response.status_code)
    except Exception as exc:  # the receiver being down must never hurt the emulator
        record.error = f"{type(exc).__name__}: {exc}"
        log.warning("callback %s %s -> %s failed: %s", callback.event, callback.job_id, url, record.error)
    with state.lock:
        state.callback_log.append(record)


async def run_ticker(state: EmulatorState) -> None:
    """Job states are computed lazily; this loop is the only thing that notices a job ending unasked."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                for callback in take_due(state):
                    state.spawn(deliver(state, client, callback))
            except Exception:
                log.exception("callback ticker error")
