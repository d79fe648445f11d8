"""``clipflow callbacks serve``: receive VOD's event callbacks and emit each as a Prefect event.

VOD POSTs a JSON body per event (``{RequestId, Version, EventType, EventTime, Data}``) and retries when the answer
is not 200 (3 more times, 5/10/30 s later: volcengine.com/docs/4/4656). Every callback is authenticated with the
vendor's HTTP callback signature (volcengine.com/docs/4/116752): ``X-VOD-TIMESTAMP`` (Unix seconds) and
``X-VOD-SIGNATURE`` = md5(``URL|timestamp|key|base64(body)``), the key being the one set in the VOD console
(``CLIPFLOW_CALLBACK_KEY``). A callback without them is refused with 401, a wrong or stale one with 403, and
nothing is emitted for either. An accepted one becomes ``clipflow.callback.<EventType>`` about its job
(``flows/engine/callback_events.py``); if Prefect cannot take the event the answer is 503, so VOD sends it again.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from flows.engine.callback_events import CallbackError, event_for

MAX_AGE_SECONDS = 300  # the vendor leaves the window to the receiver; its example uses 5 minutes
MAX_BODY_BYTES = 1 << 20
REQUEST_IDS = uuid.UUID("5d0c2b1e-6f4e-4f57-9b1c-7a3e2f1d0c11")  # namespace: one event id per VOD RequestId

logger = logging.getLogger("clipflow.callbacks")

Emit = Callable[[Any], Awaitable[None]]


def signature(url: str, timestamp: str, key: str, body: bytes) -> str:
    """X-VOD-SIGNATURE of a callback (the vendor's algorithm; also used by the emulator to sign)."""
    content = f"{url}|{timestamp}|{key}|{base64.b64encode(body).decode()}"
    return hashlib.md5(content.encode()).hexdigest()  # noqa: S324 - the vendor's algorithm, not our choice


class PrefectEmitter:
    """One events connection to Prefect, opened on first use and kept (a callback should not wait for a
    handshake); a failed emit drops it so the next callback reconnects."""

    def __init__(self) -> None:
        self._client: Any = None
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        from prefect.events.clients import get_events_client

        if self._client is None:
            client = get_events_client(reconnection_attempts=2)
            await client.__aenter__()
            self._client = client

    async def __call__(self, event: Any) -> None:
        async with self._lock:
            try:
                await self.connect()
                await self._client.emit(event)
            except BaseException:
                await self.aclose()
                raise

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)


def _refuse(status: int, reason: str) -> JSONResponse:
    logger.warning("callback refused (%s): %s", status, reason)  # the reason never quotes a header's value
    return JSONResponse({"error": reason}, status_code=status)


def create_app(
    key: str, *, public_url: str = "", emit: Emit | None = None, clock: Callable[[], float] = time.time
) -> Starlette:
    """The receiver. ``public_url``: the callback URL as set in VOD (empty: the URL the request came in on);
    ``emit``: where events go (default: the Prefect API of ``PREFECT_API_URL``, one kept connection)."""
    if not key:
        raise ValueError("the callback key must not be empty")
    emitter = PrefectEmitter() if emit is None else None
    send: Emit = emit or emitter  # type: ignore[assignment]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if emitter is not None:
            try:
                await emitter.connect()  # ready before the first callback; if Prefect is down, the callback retries
            except Exception as exc:  # noqa: BLE001
                logger.warning("Prefect events not reachable yet (%s: %s)", type(exc).__name__, exc)
        yield
        if emitter is not None:
            await emitter.aclose()

    async def receive(request: Request) -> JSONResponse:
        stamp = request.headers.get("x-vod-timestamp", "")
        claimed = request.headers.get("x-vod-signature", "")
        if not stamp or not claimed:
            return _refuse(401, "X-VOD-TIMESTAMP and X-VOD-SIGNATURE are required (VOD callback authentication)")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _refuse(413, f"the body is over {MAX_BODY_BYTES} bytes")
        if not stamp.isdigit() or abs(clock() - int(stamp)) > MAX_AGE_SECONDS:
            return _refuse(403, f"X-VOD-TIMESTAMP must be Unix seconds within {MAX_AGE_SECONDS} s of now")
        url = public_url or str(request.url)
        if not hmac.compare_digest(claimed.lower().encode(), signature(url, stamp, key, body).encode()):
            return _refuse(403, "X-VOD-SIGNATURE does not match (see CLIPFLOW_CALLBACK_KEY and CLIPFLOW_CALLBACK_URL)")
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise CallbackError("the body must be a JSON object")
            target = event_for(payload)
        except (ValueError, CallbackError) as exc:
            return _refuse(400, f"callback body: {exc}")
        event = _event(payload, target.name, target.resource_id)
        try:
            await send(event)
        except Exception as exc:  # noqa: BLE001 - VOD retries a non-200 answer
            logger.error("callback %s for %s not emitted: %s: %s", target.name, target.resource_id,
                         type(exc).__name__, exc)
            return JSONResponse({"error": "the event could not be recorded; send it again"}, status_code=503)
        logger.info("callback %s for %s emitted", target.name, target.resource_id)
        return JSONResponse({"ok": True, "event": target.name, "resource": target.resource_id})

    async def health(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(lifespan=lifespan, routes=[
        Route("/health", health, methods=["GET"]),
        Route("/{path:path}", receive, methods=["POST"]),
    ])


def _event(payload: dict[str, Any], name: str, resource_id: str) -> Any:
    from prefect.events import Event

    data = payload.get("Data") or {}
    resource = {"prefect.resource.id": resource_id}
    if isinstance(data.get("SpaceName"), str):
        resource["vod.space"] = data["SpaceName"]
    # VOD's RequestId names the callback: a retry of one it already sent becomes the same event (deduplicated).
    request_id = payload.get("RequestId")
    extra = {"id": uuid.uuid5(REQUEST_IDS, f"{request_id}/{name}")} if isinstance(request_id, str) else {}
    return Event(event=name, resource=resource, payload=payload, **extra)


@contextlib.contextmanager
def serving(app: Starlette, host: str = "127.0.0.1") -> Iterator[str]:
    """Run ``app`` on a free port in a background thread (tests, benches); yields its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="clipflow callbacks", description="Receive VOD event callbacks and emit them as Prefect events."
    )
    sub = parser.add_subparsers(dest="action", required=True)
    serve = sub.add_parser("serve", help="serve the receiver (key: CLIPFLOW_CALLBACK_KEY; Prefect: PREFECT_API_URL)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: put a proxy in front)")
    serve.add_argument("--port", type=int, default=8766, help="port (default 8766)")
    serve.add_argument("--log-level", default="info", help="uvicorn log level")
    args = parser.parse_args(argv)

    from prefect.settings import PREFECT_API_URL

    from flows.runtime.settings import SettingsError, settings

    try:
        current = settings()
    except SettingsError as exc:
        print(f"clipflow callbacks: {exc}")
        return 2
    key = current.callback_key.get_secret_value() if current.callback_key else ""
    if not key:
        print("clipflow callbacks: CLIPFLOW_CALLBACK_KEY is required: the authentication key set for callbacks in "
              "the VOD console (without it anyone could end a wait)")
        return 2
    if not PREFECT_API_URL.value():
        print("clipflow callbacks: PREFECT_API_URL is required: the Prefect API the events go to")
        return 2
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = create_app(key, public_url=current.callback_url)
    # access_log off: a proxy's URL path could carry a secret; our own lines name only the event and the job.
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
