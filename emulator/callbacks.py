"""Event callbacks (WorkflowComplete, AITranslationComplete): best effort, logged, never fatal."""

from __future__ import annotations

import asyncio
import logging

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


async def deliver(state: EmulatorState, client: httpx.AsyncClient, callback: PendingCallback) -> None:
    url = state.config.callback_url
    if not url:
        return
    record = CallbackRecord(callback.event, callback.job_id, url, ok=False, status=None, error=None)
    try:
        record.payload = callback.build()
        response = await client.post(url, json=record.payload)
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
