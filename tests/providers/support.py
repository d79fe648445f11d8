"""Helpers shared by the provider tests."""

from __future__ import annotations

import httpx


class NoNetwork(httpx.AsyncBaseTransport):
    """A transport that fails the test if anything is sent: validation must refuse before the network."""

    def __init__(self) -> None:
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        raise AssertionError("a request was sent")
