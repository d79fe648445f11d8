"""The one fetcher of user URLs (flows/runtime/fetch.py).

Addresses other than loopback are only ever given to the pure checks (``address_refusal``, ``check_url``), never
connected to. Downloads go to a local server on loopback (tests/flows/runtime/hostile_server.py), allowed
through ``CLIPFLOW_FETCH_ALLOW_HOSTS`` where a test needs it; a host name's answers come from a stand-in for
``socket.getaddrinfo`` that only ever names loopback addresses."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from flows.runtime.fetch import (
    AllowList, FetchFailed, FetchNotAllowed, FetchTooLarge, address_refusal, allow_list, check_url, fetch,
    literal_address,
)
from flows.runtime.settings import SettingsError
from tests.flows.runtime.hostile_server import HostileServer, gzip_bomb, hostile_server, self_signed

NOTHING = AllowList()


@pytest.fixture
def allow(monkeypatch: pytest.MonkeyPatch) -> Any:
    def set_(value: str, **more: str) -> None:
        monkeypatch.setenv("CLIPFLOW_FETCH_ALLOW_HOSTS", value)
        for name, v in more.items():
            monkeypatch.setenv(f"CLIPFLOW_FETCH_{name.upper()}", v)

    set_("127.0.0.1")
    return set_


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with hostile_server("127.0.0.1") as s:
        yield s


@pytest.fixture(scope="module")
def admin() -> Iterator[HostileServer]:
    """Stands for a loopback-only admin service: on 127.0.0.2, which no test allows."""
    with hostile_server("127.0.0.2") as s:
        yield s


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[list[str]]]:
    """Host name -> successive answers (each a list of loopback addresses); every lookup is counted by popping."""
    answers: dict[str, list[list[str]]] = {}
    real = socket.getaddrinfo

    def lookup(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name in answers:
            addresses = answers[name].pop(0)
            for address in addresses:
                assert ipaddress.ip_address(address).is_loopback  # never anything but this machine
            return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, int(port or 0)))
                    for a in addresses]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    return answers


# --- addresses: the pure check --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"), ("127.255.255.254", "loopback"), ("::1", "loopback"),
        ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("fd00::1", "private"),
        ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"), ("::", "unspecified"),
        ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"),
        ("100.64.0.1", "shared"), ("198.18.0.1", "private"), ("192.0.2.10", "private"),
        ("::ffff:127.0.0.1", "IPv4-mapped"), ("::ffff:8.8.8.8", "IPv4-mapped"),
        ("2002:7f00:1::", "embeds a non-public"), ("64:ff9b::a00:1", "embeds a non-public"),
        ("fec0::1", "site-local"), ("2001:db8::1", "private"),
    ],
)
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    why = address_refusal(ipaddress.ip_address(address), NOTHING)
    assert why is not None and kind in why, why


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "2a00:1450:4001::200e"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address), NOTHING) is None


def test_listed_networks_allow_their_addresses_only() -> None:
    allow = AllowList.parse(" 10.20.0.0/16 , 127.0.0.1,images.internal., [::1]")
    assert address_refusal(ipaddress.ip_address("10.20.3.4"), allow) is None
    assert address_refusal(ipaddress.ip_address("10.21.0.1"), allow) is not None
    assert address_refusal(ipaddress.ip_address("127.0.0.1"), allow) is None
    assert address_refusal(ipaddress.ip_address("127.0.0.2"), allow) is not None
    assert address_refusal(ipaddress.ip_address("::1"), allow) is None
    assert allow.has_name("Images.Internal") and not allow.has_name("internal")


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "exa mple.com", "http://x", "1.2.3.4.5", "0x7f.1"])
def test_a_bad_allow_list_names_the_variable(bad: str) -> None:
    with pytest.raises(SettingsError, match="CLIPFLOW_FETCH_ALLOW_HOSTS"):
        allow_list(f"127.0.0.1,{bad}")


@pytest.mark.parametrize(
    ("host", "address"),
    [("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("127.1", "127.0.0.1"),
     ("0x7f.1", "127.0.0.1"), ("[::1]", "::1"), ("[::ffff:7f00:1]", "::ffff:7f00:1"), ("10.0.0.1.", "10.0.0.1"),
     ("3232235777", "192.168.1.1"), ("fe80::1%eth0", "fe80::1"), ("example.com", None), ("1.example", None)],
)
def test_numeric_hosts_are_the_addresses_they_name(host: str, address: str | None) -> None:
    got = literal_address(host)
    assert (str(got) if got else None) == address


# --- URLs: the pure check -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://example.com/a.png", "only https://"),
        ("ftp://example.com/a.png", "only https://"),
        ("file:///etc/passwd", "only https://"),
        ("gopher://127.0.0.1:6379/_INFO", "only https://"),
        ("https:///a.png", "only https://"),
        ("https://user:pw@example.com/a.png", "user info"),
        ("https://@example.com/a.png", "user info"),
        ("https://example.com@127.0.0.1/a.png", "user info"),
        ("https://127.0.0.1/a.png", "loopback"),
        ("https://2130706433/a.png", "loopback"),
        ("https://0x7f.1/a.png", "loopback"),
        ("https://[::1]:8443/a.png", "loopback"),
        ("https://[::ffff:169.254.169.254]/latest", "IPv4-mapped"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://10.0.0.5/a.png", "private"),
        ("https://0.0.0.0/a.png", "unspecified"),
        ("https://localhost/a.png", "localhost"),
        ("https://LOCALHOST./a.png", "localhost"),
        ("https://admin.localhost/a.png", "localhost"),
        ("not a url", "only https://"),
    ],
)
def test_urls_refused_without_any_lookup(url: str, rule: str) -> None:
    with pytest.raises(FetchNotAllowed) as refused:
        check_url(url, NOTHING)
    assert str(refused.value).startswith("not allowed: ") and rule in str(refused.value), str(refused.value)


def test_http_only_for_listed_hosts() -> None:
    allow = AllowList.parse("images.internal,10.20.0.0/16")
    assert check_url("http://images.internal:8080/a.png", allow).host == "images.internal"
    assert check_url("http://10.20.1.1/a.png", allow)
    with pytest.raises(FetchNotAllowed, match="only https"):
        check_url("http://cdn.example.com/a.png", allow)
    assert check_url("https://cdn.example.com/a.png", NOTHING).host == "cdn.example.com"


# --- downloads ------------------------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 4000


async def test_an_allowed_download_is_unencoded_and_names_its_host(allow: Any, server: HostileServer) -> None:
    url = server.body(PNG)
    assert await fetch(url, max_bytes=10_000) == PNG
    hit = server.hits[-1]
    assert hit.accept_encoding == "identity" and hit.host == f"127.0.0.1:{server.port}"


async def test_nothing_is_sent_without_the_allow_list(allow: Any, server: HostileServer) -> None:
    allow("")
    url = server.body(PNG)
    with pytest.raises(FetchNotAllowed):
        await fetch(url, max_bytes=10_000)
    assert server.asked(url) == 0


async def test_redirects_are_followed_by_hand_at_most_three(allow: Any, server: HostileServer) -> None:
    url = server.body(PNG)
    for _ in range(3):
        url = server.redirect(url)
    assert await fetch(url, max_bytes=10_000) == PNG
    with pytest.raises(FetchFailed) as failed:
        await fetch(server.redirect(url), max_bytes=10_000)
    assert "redirects" in failed.value.detail and "redirect" not in str(failed.value)


@pytest.mark.parametrize(
    "target",
    ["http://127.0.0.2:{admin}/admin/reset", "http://localhost:{admin}/admin/reset", "http://[::1]:{admin}/admin",
     "http://2130706434:{admin}/admin", "https://user:pw@example.com/a.png", "file:///etc/passwd",
     "http://example.com/a.png"],
)
async def test_each_redirect_hop_is_checked(
    allow: Any, server: HostileServer, admin: HostileServer, target: str
) -> None:
    location = target.format(admin=admin.port)
    url = server.redirect(server.redirect(location, status=307))
    with pytest.raises(FetchNotAllowed):
        await fetch(url, max_bytes=10_000)
    assert admin.hits == []


async def test_every_address_of_a_name_is_checked(allow: Any, dns: dict[str, list[list[str]]]) -> None:
    dns["mixed.test"] = [["127.0.0.1", "127.0.0.2"]]  # the first allowed, the second not
    with pytest.raises(FetchNotAllowed, match="resolves to a loopback"):
        await fetch("https://mixed.test/a.png", max_bytes=10_000)
    dns["inside.test"] = [["::1"]]
    with pytest.raises(FetchNotAllowed, match="resolves to a loopback"):
        await fetch("https://inside.test/a.png", max_bytes=10_000)


async def test_the_connection_goes_to_the_checked_address(
    allow: Any, server: HostileServer, dns: dict[str, list[list[str]]]
) -> None:
    allow("rebind.test")
    # A second lookup would get 127.0.0.2, where nothing listens on this port: the download would fail.
    dns["rebind.test"] = [["127.0.0.1"], ["127.0.0.2"], ["127.0.0.2"]]
    path = server.body(PNG).removeprefix(server.base_url)
    assert await fetch(f"http://rebind.test:{server.port}{path}", max_bytes=10_000) == PNG
    assert len(dns["rebind.test"]) == 2  # looked up once
    assert server.hits[-1].host == f"rebind.test:{server.port}"


async def test_https_to_a_pinned_address_still_checks_the_certificate_name(
    allow: Any, dns: dict[str, list[list[str]]]
) -> None:
    allow("127.0.0.1")
    good = self_signed("images.test")
    with hostile_server("127.0.0.1", tls=good.server) as tls:
        path = tls.body(PNG).removeprefix(tls.base_url)
        dns["images.test"] = [["127.0.0.1"]]
        assert await fetch(f"https://images.test:{tls.port}{path}", max_bytes=10_000, verify=good.client) == PNG
        assert tls.hits[-1].host == f"images.test:{tls.port}"
        dns["other.test"] = [["127.0.0.1"]]  # the same address, a name the certificate does not cover
        with pytest.raises(FetchFailed):
            await fetch(f"https://other.test:{tls.port}{path}", max_bytes=10_000, verify=good.client)


async def test_one_deadline_for_the_whole_download(allow: Any, server: HostileServer) -> None:
    allow("127.0.0.1", deadline_seconds="1.5")
    url = server.drip(PNG[:100], every=0.4)  # each read is quick; the whole would take 40 s
    started = time.monotonic()
    with pytest.raises(FetchFailed) as failed:
        await fetch(url, max_bytes=10_000)
    assert time.monotonic() - started < 3.0
    assert str(failed.value).startswith("failed: ") and "within 1.5 s" in str(failed.value)


async def test_the_deadline_covers_redirect_hops(allow: Any, server: HostileServer) -> None:
    allow("127.0.0.1", deadline_seconds="1.0")
    slow = server.hold(0.6, PNG)
    assert await fetch(server.redirect(slow), max_bytes=10_000) == PNG  # 0.6 s in all: within the deadline

    def hold_then_redirect(req: Any) -> None:
        time.sleep(0.6)
        req.send_response(302)
        req.send_header("Location", slow)
        req.send_header("Content-Length", "0")
        req.end_headers()

    started = time.monotonic()
    with pytest.raises(FetchFailed):  # each hop 0.6 s, the whole 1.2 s
        await fetch(server.route(hold_then_redirect), max_bytes=10_000)
    assert time.monotonic() - started < 1.5


async def test_an_encoded_body_is_never_inflated(allow: Any, server: HostileServer) -> None:
    bomb = gzip_bomb()  # 200 MiB of zeros in about 200 KB
    encoded = server.body(bomb, headers={"Content-Type": "image/png", "Content-Encoding": "gzip"})
    plain = server.body(bomb, headers={"Content-Type": "application/octet-stream"})
    tracemalloc.start()
    try:
        with pytest.raises(FetchFailed) as failed:
            await fetch(encoded, max_bytes=5 * 1024 * 1024)
        assert "encoded" in failed.value.detail
        assert await fetch(plain, max_bytes=5 * 1024 * 1024) == bomb  # the bytes as sent, never inflated
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(bomb) + 2 * 1024 * 1024, peak


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
async def test_bytes_beyond_the_cap_are_not_read(allow: Any, server: HostileServer, declared: bool) -> None:
    url = server.body(b"\x89PNG" + bytes(3 * 1024 * 1024), length=declared)
    tracemalloc.start()
    try:
        with pytest.raises(FetchTooLarge) as too_large:
            await fetch(url, max_bytes=256 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert too_large.value.size == (3 * 1024 * 1024 + 4 if declared else None)
    assert peak < 2 * 1024 * 1024, peak


@pytest.mark.parametrize("status", [404, 500, 401, 204, 302])
async def test_any_other_answer_is_failed_without_saying_what(allow: Any, server: HostileServer, status: int) -> None:
    def answer(req: Any) -> None:
        req.send_response(status)
        req.send_header("Content-Length", "0")
        req.end_headers()

    with pytest.raises(FetchFailed) as failed:
        await fetch(server.route(answer), max_bytes=10_000)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(FetchFailed) as refused:
        await fetch(f"http://127.0.0.1:{port}/a.png", max_bytes=10_000)
    assert str(failed.value) == str(refused.value)  # an open port and a closed one read the same
    assert str(status) not in str(failed.value)


async def test_at_most_the_configured_downloads_at_once(allow: Any, server: HostileServer) -> None:
    allow("127.0.0.1", concurrency="2")
    url = server.hold(0.3, PNG)
    started = time.monotonic()
    await asyncio.gather(*(fetch(url, max_bytes=10_000) for _ in range(6)))
    assert server.most_active[url] == 2
    assert time.monotonic() - started >= 0.85  # three rounds of two
