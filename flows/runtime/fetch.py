"""The one way clipflow downloads a URL that a user named (a first-frame image in ``clip.image_url``, and any
future one): nothing a form field says can make a worker reach what it should not, or hold it without bound.

- ``https`` only; ``http`` only for a host listed in ``CLIPFLOW_FETCH_ALLOW_HOSTS`` (by name, or an address
  inside a listed network). No user info (``user:pw@``) in the URL.
- The host name is resolved once and every address checked (``address_refusal``): loopback, private, link-local,
  multicast, unspecified, reserved, shared (CGNAT), site-local, IPv4-mapped and -embedding forms are refused
  unless listed. Numeric forms (``2130706433``, ``0x7f.1``, ``127.1``) are read as the addresses they are, and
  ``localhost`` by name. The connection goes to the address that was checked (the URL's host is kept for the
  ``Host`` header and TLS: SNI and certificate), so a second lookup cannot answer differently; proxy variables
  are ignored for the same reason.
- Redirects are followed by hand, at most ``MAX_REDIRECTS``, each hop checked the same way.
- One deadline for the whole download (``CLIPFLOW_FETCH_DEADLINE_SECONDS``), a cap on the bytes received counted
  before any decoding (``Accept-Encoding: identity``; a body that is encoded anyway is refused unread), and at
  most ``CLIPFLOW_FETCH_CONCURRENCY`` downloads at once in a process (the others wait their turn first).
- Errors say "not allowed" (a rule refused the URL, before any connection) or "failed" (anything else), never
  what answered or how: a refusal must not tell a caller which hosts or ports exist behind the worker.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Union

import aiologic
import httpx

from flows.runtime.settings import SettingsError, settings, variable

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

MAX_REDIRECTS = 3
REDIRECTS = (301, 302, 303, 307, 308)
ALLOW_VARIABLE = variable("fetch_allow_hosts")
# A host name (IDNA already applied by httpx), or an address / network in CIDR form.
_HOST_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*$")
# inet_aton's numeric forms (decimal, octal, hex, 1 to 4 parts): glibc resolves them without DNS.
_NUMERIC_HOST = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)
# NAT64's well-known prefix and 6to4 / Teredo carry an IPv4 address that the packet ends up at.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")


class FetchError(Exception):
    """A user URL was not downloaded. ``detail`` says why, for tests and code only: it is never in the message."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail or message


class FetchNotAllowed(FetchError):
    """A rule refused the URL (scheme, user info, host or one of its addresses, a redirect hop); nothing was sent
    to the host that was refused."""

    def __init__(self, rule: str) -> None:
        super().__init__(f"not allowed: {rule}", rule)
        self.rule = rule


class FetchFailed(FetchError):
    """The download did not give a complete 200 answer within the rules; deliberately vague (see module doc)."""

    def __init__(self, detail: str, deadline: float | None = None) -> None:
        self.deadline = deadline
        within = f" within {deadline:g} s" if deadline else ""
        super().__init__(
            f"failed: it must answer 200 with the file itself{within}, unencoded and without credentials", detail,
        )


class FetchTooLarge(FetchError):
    """The body is larger than the cap (``size`` when the answer declared it)."""

    def __init__(self, limit: int, size: int | None) -> None:
        got = f"{size} bytes" if size is not None else f"more than {limit} bytes"
        super().__init__(f"failed: larger than {limit} bytes ({got})", "too large")
        self.limit, self.size = limit, size


# --- the rules, pure ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowList:
    """``CLIPFLOW_FETCH_ALLOW_HOSTS``: host names (exact, case-insensitive) and networks whose addresses, and
    plain http, are allowed."""

    names: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str) -> AllowList:
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in text.split(","):
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if not _HOST_NAME.match(entry) or entry.rsplit(".", 1)[-1].isdigit() or _NUMERIC_HOST.match(entry):
                raise ValueError(f"{raw.strip()!r} is neither a host name nor an address or CIDR network")
            names.add(entry)
        return cls(frozenset(names), tuple(networks))

    def has_name(self, host: str) -> bool:
        return _normal_host(host) in self.names

    def has_address(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.networks)


def allow_list(text: str | None = None) -> AllowList:
    """The allow list of this moment's environment (or of ``text``); a bad entry names the variable."""
    text = settings().fetch_allow_hosts if text is None else text
    try:
        return AllowList.parse(text)
    except ValueError as exc:
        raise SettingsError(f"{ALLOW_VARIABLE}={text!r}: {exc}") from None


def _normal_host(host: str) -> str:
    return host.strip().lower().strip("[]").rstrip(".")


def literal_address(host: str) -> IPAddress | None:
    """The address a host names without DNS: an IP literal (``[::1]``, ``10.0.0.1``) or one of inet_aton's
    numeric forms (``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``); None for a host name."""
    name = _normal_host(host)
    try:
        return ipaddress.ip_address(name.split("%", 1)[0])  # a zone (fe80::1%eth0) does not change the class
    except ValueError:
        pass
    if _NUMERIC_HOST.match(name):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(name.rstrip(".")))
        except OSError:
            return None
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: IPAddress, allow: AllowList) -> str | None:
    """Why a connection to ``address`` is refused, or None when it is allowed (public, or listed)."""
    if allow.has_address(address):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped address"
        inner = _embedded_ipv4(address)
        if inner is not None and address_refusal(inner, allow) is not None:
            return "an address that embeds a non-public IPv4 address"
    for kind, flag in (
        ("a loopback", address.is_loopback), ("an unspecified", address.is_unspecified),
        ("a link-local", address.is_link_local), ("a multicast", address.is_multicast),
        ("a reserved", address.is_reserved), ("a site-local", getattr(address, "is_site_local", False)),
        ("a private", address.is_private),
        ("a shared (carrier-grade NAT)", isinstance(address, ipaddress.IPv4Address) and address in _CGNAT),
    ):
        if flag:
            return f"{kind} address"
    if not address.is_global:
        return "a non-public address"
    return None


def _hint() -> str:
    return f"use a public host, or list this one in {ALLOW_VARIABLE}"


def check_url(url: str | httpx.URL, allow: AllowList | None = None) -> httpx.URL:
    """The rules that need no network: scheme, user info, a host, and the host when it is an address or a name
    for this machine. Returns the parsed URL; raises ``FetchNotAllowed``."""
    allow = allow if allow is not None else allow_list()
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise FetchNotAllowed("not a valid URL") from None
    host = _normal_host(parsed.host)
    if parsed.scheme not in ("https", "http") or not host:
        raise FetchNotAllowed("only https:// URLs with a host")
    raw = str(url) if not isinstance(url, httpx.URL) else ""
    authority = raw.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if parsed.userinfo or "@" in authority:
        raise FetchNotAllowed("a URL with user info (user:password@) is not fetched")
    address = literal_address(host)
    listed = allow.has_name(host) or (address is not None and allow.has_address(address))
    if parsed.scheme == "http" and not listed:
        raise FetchNotAllowed(f"only https:// URLs (http:// only for hosts listed in {ALLOW_VARIABLE})")
    if address is not None:
        why = address_refusal(address, allow)
        if why:
            raise FetchNotAllowed(f"the host is {why}: {_hint()}")
    elif not listed and (host == "localhost" or host.endswith(".localhost")):
        raise FetchNotAllowed(f"the host is this machine (localhost): {_hint()}")
    return parsed


def check_addresses(host: str, addresses: Iterable[IPAddress], allow: AllowList) -> None:
    """Every address a host resolved to must be allowed (a host name listed by name is trusted as it resolves)."""
    if allow.has_name(host):
        return
    for address in addresses:
        why = address_refusal(address, allow)
        if why:
            raise FetchNotAllowed(f"the host resolves to {why}: {_hint()}")


# --- the download ---------------------------------------------------------------------------------------------


_slots: tuple[int, aiologic.Semaphore] | None = None


def _semaphore(size: int) -> aiologic.Semaphore:
    """This process's download slots (any thread, any event loop); a new size takes effect for new callers."""
    global _slots
    if _slots is None or _slots[0] != size:
        _slots = (size, aiologic.Semaphore(size))
    return _slots[1]


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses of ``host`` (one lookup); an address literal is itself."""
    address = literal_address(host)
    if address is not None:
        return [address]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            _normal_host(host), port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (OSError, UnicodeError):
        raise FetchFailed("the host name does not resolve") from None
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise FetchFailed("the host name has no address")
    return found


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


async def fetch(
    url: str, *, max_bytes: int, deadline: float | None = None, verify: ssl.SSLContext | bool = True
) -> bytes:
    """The body of ``url`` (a 200 answer, at most ``max_bytes``) under the rules of this module.

    Raises ``FetchNotAllowed``, ``FetchTooLarge`` or ``FetchFailed`` (all ``FetchError``). ``verify`` is the TLS
    trust (a context with a private CA, say); certificates are always checked against the URL's host name."""
    config = settings()
    allow = allow_list(config.fetch_allow_hosts)
    seconds = deadline if deadline is not None else config.fetch_deadline_seconds
    target = check_url(url, allow)  # refused before waiting for a slot
    async with _semaphore(config.fetch_concurrency):
        try:
            async with asyncio.timeout(seconds):
                return await _follow(target, allow, max_bytes, verify, seconds)
        except TimeoutError:
            raise FetchFailed("the deadline passed", seconds) from None
        except FetchFailed as exc:
            if exc.deadline is None:  # every failure reads the same, whichever step it was
                raise FetchFailed(exc.detail, seconds) from None
            raise


async def _follow(
    target: httpx.URL, allow: AllowList, max_bytes: int, verify: ssl.SSLContext | bool, seconds: float
) -> bytes:
    for hop in range(MAX_REDIRECTS + 1):
        # The name as it goes on the wire (IDNA applied by httpx), so the lookup is of the host the URL names.
        addresses = await resolve(target.raw_host.decode("ascii"), _port(target))
        check_addresses(target.host, addresses, allow)
        location, body = await _get(target, addresses, max_bytes, verify, seconds)
        if location is None:
            return body
        if hop == MAX_REDIRECTS:
            raise FetchFailed(f"more than {MAX_REDIRECTS} redirects", seconds)
        try:
            following = target.join(location)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise FetchFailed("a redirect to an invalid URL", seconds) from None
        target = check_url(following, allow)
    raise AssertionError("unreachable")


async def _get(
    target: httpx.URL, addresses: list[IPAddress], max_bytes: int, verify: ssl.SSLContext | bool, seconds: float
) -> tuple[str | None, bytes]:
    """One request to the first address that connects: (redirect location, b"") or (None, body)."""
    headers = {"Host": target.netloc.decode("ascii"), "Accept-Encoding": "identity", "Accept": "*/*"}
    extensions = {"sni_hostname": target.raw_host.decode("ascii")} if target.scheme == "https" else {}
    # A fresh client per hop and no proxies: every connection is to the address checked for this hop.
    async with httpx.AsyncClient(
        trust_env=False, follow_redirects=False, verify=verify, timeout=httpx.Timeout(seconds),
        limits=httpx.Limits(max_keepalive_connections=0),
    ) as http:
        for index, address in enumerate(addresses):
            request = http.build_request(
                "GET", target.copy_with(host=str(address)), headers=headers, extensions=extensions
            )
            try:
                response = await http.send(request, stream=True)
            except httpx.ConnectError:
                if index == len(addresses) - 1:
                    raise FetchFailed("no address accepted the connection", seconds) from None
                continue
            except httpx.HTTPError:
                raise FetchFailed("the request failed", seconds) from None
            try:
                return await _read(response, max_bytes, seconds)
            except httpx.HTTPError:
                raise FetchFailed("the answer broke off", seconds) from None
            finally:
                await response.aclose()
    raise FetchFailed("the host has no address", seconds)


async def _read(response: httpx.Response, max_bytes: int, seconds: float) -> tuple[str | None, bytes]:
    if response.status_code in REDIRECTS and response.headers.get("location"):
        return response.headers["location"], b""
    if response.status_code != 200:
        raise FetchFailed(f"HTTP {response.status_code}", seconds)
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise FetchFailed(f"an encoded body ({encoding[:20]})", seconds)  # never inflated: no decompression bomb
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchTooLarge(max_bytes, int(declared))
    body = bytearray()
    async for chunk in response.aiter_raw():  # the bytes as received: nothing decodes them
        body += chunk
        if len(body) > max_bytes:
            raise FetchTooLarge(max_bytes, None)
    return None, bytes(body)
