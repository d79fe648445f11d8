"""Differential test: providers.signing against the vendor SDK (PyPI ``volcengine``, ``volcengine.auth.SignerV4``).

Several hundred deterministic requests (GET with awkward query values, POST JSON, POST form, PUT/DELETE) are
signed by ``VolcengineSigner`` on a real ``httpx.Request`` and by ``SignerV4.sign`` with the same date, host,
query, headers and body; the whole Authorization header must be identical.

Where the SDK canonicalises differently from shared/api-notes.md, both sides are made to sign the same input,
and the difference is pinned by its own test below:
- Signed headers: the SDK signs Host, Content-Type, Content-Md5 and *every* ``X-*`` header; we sign host,
  x-date, x-content-sha256 and content-type (the notes' set). So the SDK side gets no other X-* header, and
  with STS credentials it also signs X-Security-Token while we do not (test_session_token_header_set).
- Content-Type: ``SignerV4.sign`` adds ``application/x-www-form-urlencoded; charset=utf-8`` to a non-GET
  request that has none (and signs it); we sign no content-type when none is sent. Every generated non-GET
  request carries an explicit Content-Type, on both sides.
- Host: the SDK drops ``:80``/``:443`` from the Host it signs; httpx never sends a default port, so both agree
  (hosts with explicit default and non-default ports are generated).
- Query key order: this SDK sorts *raw* keys, then encodes; we encode, then sort (as volcengine-python-sdk's
  ``volcenginesdkcore/signv4.py`` does). They differ only for keys holding characters that percent-encode
  yet sort after an unreserved one ('/', ':', '=', '@', '[', non-ASCII...). Generated keys avoid those
  characters; test_key_order_divergence pins the difference.
- Path: both sides percent-encode the decoded path (``quote(path)``, ``/`` kept); every Volcengine OpenAPI is at
  "/", and test_non_root_path_is_encoded_like_the_sdk covers the rest.
- Header values: we strip surrounding whitespace, the SDK does not; generated values have none.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import string
from collections import OrderedDict
from dataclasses import dataclass, field
from unittest import mock
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from volcengine.auth.SignerV4 import SignerV4
from volcengine.base.Request import Request
from volcengine.Credentials import Credentials
from volcengine.util.Util import Util

from providers.signing import VolcengineSigner, canonical_query, compute_signature, parse_authorization

SEED = 20250329
CASES_PER_KIND = 120

HOSTS = [
    "visual.volcengineapi.com", "vod.volcengineapi.com", "open.volcengineapi.com", "iam.volcengineapi.com",
    "127.0.0.1:8443", "localhost:9000", "example.com:443",
]
REGIONS = ["cn-north-1", "cn-beijing", "cn-shanghai", "ap-southeast-1"]
SERVICES = ["cv", "vod", "iam", "billing"]
# Keys: unreserved characters plus reserved ones that sort below '-' both raw and encoded (see module doc).
KEY_ALPHABET = string.ascii_letters + string.digits + "-_.~" + " !'()*+,&$"
VALUE_PIECES = [
    " ", "~", "*", "/", "=", "&", "+", "%", "?", "#", "%20", "é", "中文", "😀", "a b", "x=y&z", "-_.", "\t", "'", '"',
    "Action", "2020-08-01", "0", "",
]
PATHS = ["/", "/", "/", "/api/v1", "/a-b_c.d~e/f"]
CONTENT_TYPES_JSON = ["application/json", "application/json; charset=utf-8"]


@dataclass
class Case:
    method: str
    host: str
    path: str
    query: list[tuple[str, str]]
    content_type: str | None
    body: bytes
    x_date: str
    region: str
    service: str
    ak: str
    sk: str
    extra: dict[str, str] = field(default_factory=dict)


def _text(rng: random.Random, pieces: list[str], max_parts: int = 4) -> str:
    return "".join(rng.choice(pieces) for _ in range(rng.randint(0, max_parts)))


def _key(rng: random.Random) -> str:
    return "".join(rng.choice(KEY_ALPHABET) for _ in range(rng.randint(1, 8)))


def _query(rng: random.Random) -> list[tuple[str, str]]:
    items = [("Action", rng.choice(["ListUsers", "CVSync2AsyncSubmitTask", "GetWorkflowExecution"])),
             ("Version", rng.choice(["2018-01-01", "2020-08-01", "2022-08-31"]))]
    keys = [_key(rng) for _ in range(rng.randint(0, 5))]
    for key in keys:
        items.append((key, _text(rng, VALUE_PIECES)))
        if rng.random() < 0.3:  # repeated key, values kept in their sent order
            items.append((key, _text(rng, VALUE_PIECES)))
    return items


def _common(rng: random.Random) -> dict[str, object]:
    moment = dt.datetime(2015, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=rng.randrange(20 * 365 * 86400))
    return {
        "host": rng.choice(HOSTS),
        "path": rng.choice(PATHS),
        "x_date": moment.strftime("%Y%m%dT%H%M%SZ"),
        "region": rng.choice(REGIONS),
        "service": rng.choice(SERVICES),
        "ak": "AKLT" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(32)),
        "sk": "".join(rng.choice(string.ascii_letters + string.digits + "+/=") for _ in range(rng.randint(1, 60))),
    }


def _json_value(rng: random.Random, depth: int = 0) -> object:
    roll = rng.random()
    if depth > 2 or roll < 0.4:
        return rng.choice([_text(rng, VALUE_PIECES), rng.randint(-10**6, 10**6), rng.random(), True, None])
    if roll < 0.7:
        return [_json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {_text(rng, VALUE_PIECES, 2) or "k": _json_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def generate_cases() -> list[Case]:
    rng = random.Random(SEED)
    cases: list[Case] = []
    for _ in range(CASES_PER_KIND):
        cases.append(Case("GET", query=_query(rng), content_type=None, body=b"", **_common(rng)))  # type: ignore[arg-type]
    for _ in range(CASES_PER_KIND):
        body = json.dumps(_json_value(rng), ensure_ascii=rng.random() < 0.5).encode()
        query = _query(rng)[: rng.randint(0, 3)]
        cases.append(Case("POST", query=query, content_type=rng.choice(CONTENT_TYPES_JSON), body=body, **_common(rng)))  # type: ignore[arg-type]
    for _ in range(CASES_PER_KIND):
        form = [(_key(rng), _text(rng, VALUE_PIECES)) for _ in range(rng.randint(0, 6))]
        body = urlencode(form).encode()  # what the SDK's Service.post sends
        cases.append(Case(
            "POST", query=_query(rng), content_type="application/x-www-form-urlencoded", body=body, **_common(rng)  # type: ignore[arg-type]
        ))
    for _ in range(CASES_PER_KIND // 4):
        method = rng.choice(["PUT", "DELETE", "PATCH"])
        body = json.dumps(_json_value(rng)).encode() if rng.random() < 0.7 else b""
        cases.append(Case(method, query=_query(rng), content_type="application/json", body=body, **_common(rng)))  # type: ignore[arg-type]
    return cases


CASES = generate_cases()


def sign_ours(case: Case, session_token: str | None = None) -> httpx.Request:
    fixed = dt.datetime.strptime(case.x_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    signer = VolcengineSigner(
        case.ak, case.sk, region=case.region, service=case.service, session_token=session_token, clock=lambda: fixed
    )
    headers = {"Content-Type": case.content_type} if case.content_type else {}
    request = httpx.Request(
        case.method, f"https://{case.host}{case.path}", params=case.query, headers=headers, content=case.body
    )
    return next(signer.auth_flow(request))


def sign_sdk(case: Case, session_token: str = "") -> OrderedDict[str, str]:
    query: OrderedDict[str, str | list[str]] = OrderedDict()
    for key, value in case.query:  # the SDK's way of sending a repeated key: a list value
        if key in query:
            previous = query[key]
            query[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            query[key] = value
    request = Request()
    request.method = case.method
    request.path = case.path
    request.query = query
    request.headers = OrderedDict([("Host", case.host), ("User-Agent", "volc-sdk-python")])
    if case.content_type:
        request.headers["Content-Type"] = case.content_type
    request.body = case.body
    credentials = Credentials(case.ak, case.sk, case.service, case.region, session_token)
    with mock.patch.object(SignerV4, "get_current_format_date", return_value=case.x_date):
        SignerV4.sign(request, credentials)
    return request.headers


def _describe(case: Case) -> str:
    return f"{case.method} {case.host}{case.path} query={case.query!r} ct={case.content_type!r} body={case.body[:80]!r}"


@pytest.mark.parametrize("kind", ["GET", "POST JSON", "POST form", "other methods"])
def test_signatures_match_the_sdk(kind: str) -> None:
    selected = {
        "GET": CASES[:CASES_PER_KIND],
        "POST JSON": CASES[CASES_PER_KIND : 2 * CASES_PER_KIND],
        "POST form": CASES[2 * CASES_PER_KIND : 3 * CASES_PER_KIND],
        "other methods": CASES[3 * CASES_PER_KIND :],
    }[kind]
    mismatches = []
    for case in selected:
        ours = sign_ours(case)
        sdk = sign_sdk(case)
        assert ours.headers["X-Date"] == sdk["X-Date"] == case.x_date
        assert ours.headers["X-Content-Sha256"] == sdk["X-Content-Sha256"]
        if ours.headers["Authorization"] != sdk["Authorization"]:
            mismatches.append(f"{_describe(case)}\n  ours {ours.headers['Authorization']}\n  sdk  {sdk['Authorization']}")
    assert not mismatches, f"{len(mismatches)} of {len(selected)} differ:\n" + "\n".join(mismatches[:5])


def test_generated_corpus_covers_the_awkward_cases() -> None:
    """Guard the generator: the corpus really holds what the comparison is meant to exercise."""
    values = [v for case in CASES for _, v in case.query]
    assert len(CASES) >= 300
    for piece in (" ", "~", "*", "/", "=", "&", "+", "é", "😀"):
        assert any(piece in v for v in values), piece
    assert "" in values
    assert any(len({k for k, _ in c.query}) < len(c.query) for c in CASES)  # repeated keys
    assert any(c.host.endswith(":443") for c in CASES) and any(c.host.endswith(":8443") for c in CASES)
    assert any(b"\\u" in c.body for c in CASES) and any("é".encode() in c.body for c in CASES)


KEYS = st.text(alphabet=KEY_ALPHABET, min_size=1, max_size=6)
VALUES = st.text(max_size=12)  # any unicode, including controls, surrogates excluded by default


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.lists(st.tuples(KEYS, VALUES), max_size=6), st.binary(max_size=64))
def test_property_query_and_body(query: list[tuple[str, str]], body: bytes) -> None:
    case = Case(
        "POST", "visual.volcengineapi.com", "/", query, "application/json", body, "20250329T180937Z",
        "cn-north-1", "cv", "AKLTexample", "c2VjcmV0",
    )
    assert sign_ours(case).headers["Authorization"] == sign_sdk(case)["Authorization"]


# --- documented differences ----------------------------------------------------------------------------------


def test_session_token_header_set() -> None:
    """With STS credentials the SDK also signs X-Security-Token; we sign the notes' set without it.

    Both are valid requests (the server recomputes over the SignedHeaders that the request names). The
    algorithm itself agrees: over the SDK's header set our compute_signature yields the SDK's signature.
    """
    case = CASES[CASES_PER_KIND]  # a POST JSON case
    ours = sign_ours(case, session_token="sts-token")
    sdk = sign_sdk(case, session_token="sts-token")
    assert ours.headers["X-Security-Token"] == sdk["X-Security-Token"] == "sts-token"
    ours_auth = parse_authorization(ours.headers["Authorization"])
    sdk_auth = parse_authorization(sdk["Authorization"])
    assert ours_auth is not None and sdk_auth is not None
    assert ours_auth.signed_headers == ("content-type", "host", "x-content-sha256", "x-date")
    assert sdk_auth.signed_headers == ("content-type", "host", "x-content-sha256", "x-date", "x-security-token")
    signature, _, _ = compute_signature(
        secret_key=case.sk, method=case.method, path=case.path, query_items=case.query,
        signed_headers={name: ours.headers[name] for name in sdk_auth.signed_headers},
        body_sha256=hashlib.sha256(case.body).hexdigest(), x_date=case.x_date, region=case.region, service=case.service,
    )
    assert signature == sdk_auth.signature


@pytest.mark.xfail(strict=True, reason="SDK sorts raw keys; we (and volcenginesdkcore) sort encoded keys")
def test_key_order_divergence() -> None:
    items = [("a.b", "1"), ("a/b", "2"), ("é", "3"), ("~", "4")]
    # ours: a%2Fb < a.b and %C3%A9 < ~ ; SDK: a.b < a/b and ~ < é
    assert canonical_query(items) == Util.norm_query(OrderedDict(items))


def test_non_root_path_is_encoded_like_the_sdk() -> None:
    case = Case("GET", "h.example.com", "/a b/é", [("Action", "A")], None, b"", "20250329T180937Z",
                "cn-north-1", "cv", "AK", "SK")
    assert sign_ours(case).headers["Authorization"] == sign_sdk(case)["Authorization"]
