"""The FastAPI app: one port for VOD + visual (``/``), the gateway (``/v1/video/*``), media and admin."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

import emulator.jimeng  # noqa: F401 - registers the CV actions
import emulator.vod  # noqa: F401 - registers the VOD actions
from emulator import admin, gateway
from emulator.callbacks import run_ticker
from emulator.config import EmulatorConfig
from emulator.state import EmulatorState
from emulator.volcengine import RAW_SEND_KEY, volcengine_entry


class EmulatorApp(FastAPI):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Outermost layer: keep the server's own send so DropConnection can reach the socket.
        if scope["type"] == "http":
            scope[RAW_SEND_KEY] = send
            send = _count_throttled(self.state.emulator, send)
        await super().__call__(scope, receive, send)


def _count_throttled(state: EmulatorState, send: Send) -> Send:
    """Count every 429 answered, whatever produced it (quota bucket, Jimeng concurrency, a fault)."""

    async def counting_send(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 429:
            state.count_throttled()
        await send(message)

    return counting_send


def create_app(config: EmulatorConfig | None = None) -> EmulatorApp:
    state = EmulatorState(config or EmulatorConfig())

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        ticker = asyncio.create_task(run_ticker(state))
        try:
            yield
        finally:
            ticker.cancel()
            for task in list(state.tasks):
                task.cancel()

    app = EmulatorApp(title="clipflow emulator", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.emulator = state
    app.include_router(admin.router)
    app.include_router(gateway.router)
    app.add_api_route("/", volcengine_entry, methods=["GET", "POST"], include_in_schema=False)
    return app
