"""Volcengine OpenAPI signature V4 (``HMAC-SHA256``) as an ``httpx.Auth``.

The algorithm (see shared/api-notes.md section 1) is AWS SigV4 without the ``AWS4`` key prefix and with
``request`` as the scope terminator. The pure functions are exported so the emulator can verify requests
with exactly the code that signs them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

import httpx

ALGORITHM = "HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
DATE_FORMAT = "%Y%m%dT%H%M%SZ"


def _rfc3986(value: str) -> str:
    return quote(value, safe="-_.~")


def canonical_query(items: Iterable[tuple[str, str]]) -> str:
    """Percent-encode every pair and sort by key; a stable sort keeps repeated keys in their sent order."""
    encoded = [(_rfc3986(k), _rfc3986(v)) for k, v in items]
    encoded.sort(key=lambda kv: kv[0])
    return "&".join(f"{k}={v}" for k, v in encoded)


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(secret_key.encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def canonical_request(
    method: str,
    path: str,
    query_items: Iterable[tuple[str, str]],
    signed_headers: Mapping[str, str],
    body_sha256: str,
) -> tuple[str, str]:
    """Return (canonical request, SignedHeaders value). Header names must already be lower-case.

    ``path`` is the decoded path; it is percent-encoded here (``/`` kept), as the vendor SDK does."""
    names = sorted(signed_headers)
    header_block = "".join(f"{n}:{signed_headers[n].strip()}\n" for n in names)
    signed = ";".join(names)
    canonical_path = quote(path or "/", safe="/-_.~")
    text = "\n".join([method.upper(), canonical_path, canonical_query(query_items), header_block, signed, body_sha256])
    return text, signed


def compute_signature(
    *,
    secret_key: str,
    method: str,
    path: str,
    query_items: Iterable[tuple[str, str]],
    signed_headers: Mapping[str, str],
    body_sha256: str,
    x_date: str,
    region: str,
    service: str,
) -> tuple[str, str, str]:
    """Return (signature hex, credential scope, SignedHeaders)."""
    creq, signed = canonical_request(method, path, query_items, signed_headers, body_sha256)
    date = x_date[:8]
    scope = f"{date}/{region}/{service}/request"
    string_to_sign = "\n".join([ALGORITHM, x_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = signing_key(secret_key, date, region, service)
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest(), scope, signed


@dataclass(frozen=True)
class ParsedAuthorization:
    access_key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str) -> ParsedAuthorization | None:
    """Parse ``HMAC-SHA256 Credential=AK/date/region/service/request, SignedHeaders=..., Signature=...``."""
    if not value.startswith(ALGORITHM + " "):
        return None
    fields: dict[str, str] = {}
    for part in value[len(ALGORITHM) + 1 :].split(","):
        name, _, val = part.strip().partition("=")
        fields[name] = val
    try:
        ak, date, region, service, terminator = fields["Credential"].split("/")
        if terminator != "request":
            return None
        return ParsedAuthorization(
            ak, date, region, service, tuple(fields["SignedHeaders"].split(";")), fields["Signature"]
        )
    except (KeyError, ValueError):
        return None


class VolcengineSigner(httpx.Auth):
    """Signs every request with the V4 algorithm. Needs the body, so httpx buffers it first."""

    requires_request_body = True

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        *,
        region: str,
        service: str,
        session_token: str | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self._ak = access_key
        self._sk = secret_key
        self.region = region
        self.service = service
        self._token = session_token
        self._clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))

    def __repr__(self) -> str:  # never show the keys
        return f"VolcengineSigner(region={self.region!r}, service={self.service!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        x_date = self._clock().strftime(DATE_FORMAT)
        body_hash = hashlib.sha256(request.content).hexdigest()
        request.headers["X-Date"] = x_date
        request.headers["X-Content-Sha256"] = body_hash
        if self._token:
            request.headers["X-Security-Token"] = self._token
        to_sign = {
            "host": request.headers.get("host") or request.url.netloc.decode("ascii"),
            "x-date": x_date,
            "x-content-sha256": body_hash,
        }
        if "content-type" in request.headers:
            to_sign["content-type"] = request.headers["content-type"]
        signature, scope, signed = compute_signature(
            secret_key=self._sk,
            method=request.method,
            path=request.url.path,
            query_items=request.url.params.multi_items(),
            signed_headers=to_sign,
            body_sha256=body_hash,
            x_date=x_date,
            region=self.region,
            service=self.service,
        )
        request.headers["Authorization"] = (
            f"{ALGORITHM} Credential={self._ak}/{scope}, SignedHeaders={signed}, Signature={signature}"
        )
        yield request
