"""Fixtures of the VOD client tests: the client's default endpoint mocked by respx, and one client per module."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import respx

from providers.vod import VodClient

VOD_ENDPOINT = "https://vod.volcengineapi.com"


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    """The VOD endpoint, mocked; a module that needs other routes by default overrides this fixture."""
    with respx.mock(base_url=VOD_ENDPOINT, assert_all_called=False) as router:
        yield router


@pytest.fixture(scope="module")
async def vod() -> AsyncIterator[VodClient]:
    # One client per module: building an AsyncClient (TLS context) costs ~80 ms; respx mocks the transport.
    async with VodClient("AKLTclipflowtests", "c2VjcmV0") as client:
        yield client
