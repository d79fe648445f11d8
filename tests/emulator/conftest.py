"""Local HTTP helpers for emulator tests: a file server (upload sources) and a callback receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from emulator.testing import EmulatorHandle
from tests.emulator.helpers import signed_client


class LocalServer:
    """Serves ``files`` on GET and records JSON POST bodies in ``received``."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.received: list[dict[str, Any]] = []
        self.posted = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                data = outer.files.get(self.path)
                self.send_response(200 if data is not None else 404)
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                self.wfile.write(data or b"")

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.received.append(json.loads(body))
                outer.posted.set()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> LocalServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    server = LocalServer().start()
    yield server
    server.stop()


@pytest.fixture
def vod(emu: EmulatorHandle) -> Iterator[httpx.Client]:
    with signed_client(emu, "vod") as client:
        yield client


@pytest.fixture
def cv(emu: EmulatorHandle) -> Iterator[httpx.Client]:
    with signed_client(emu, "cv") as client:
        yield client


@pytest.fixture
def gw(emu: EmulatorHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {emu.gateway_key}"},
                      timeout=10.0) as client:
        yield client
