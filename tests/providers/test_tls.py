"""Provider clients share one TLS context (building one reads the whole CA bundle: ~35 ms of CPU per client),
and sharing does not weaken it: certificates and host names are still checked."""

from __future__ import annotations

import ssl

from providers._http import tls_context
from providers.gateway.client import GatewayClient
from providers.jimeng.client import JimengClient
from providers.vod.client import VodClient


def context_of(client: object) -> ssl.SSLContext:
    return client._http._transport._pool._ssl_context  # type: ignore[attr-defined]  # httpx -> httpcore pool


async def test_every_provider_client_uses_the_one_shared_context() -> None:
    clients = [
        VodClient("AK", "SK"), VodClient("AK2", "SK2"), JimengClient("AK", "SK"), GatewayClient("key", "https://gw.test"),
    ]
    try:
        assert all(context_of(c) is tls_context() for c in clients)
    finally:
        for client in clients:
            await client.aclose()


def test_the_shared_context_verifies_certificates_and_host_names() -> None:
    context = tls_context()
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # a CA bundle is loaded
