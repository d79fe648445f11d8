"""The published V4 vectors reproduce exactly, and the httpx.Auth signs what it sends."""

from __future__ import annotations

import datetime as dt
import hashlib

import httpx
import pytest

from providers.signing import (
    VolcengineSigner,
    canonical_query,
    compute_signature,
    parse_authorization,
    signing_key,
)

AK = "AKLTYWViMTVmZGYzM2E0NDI5Mzk2MDZjNjFmMjc2MjRjMzg"
SK = "WkRZeE1EQmxPVGhsWWpWak5HVmtNbUUxTXpZeU9UVXlOMlE1TmpZeVlqTQ=="

VECTORS = [
    pytest.param(
        "GET", "iam.volcengineapi.com",
        [("Action", "ListUsers"), ("Version", "2018-01-01"), ("Limit", "10"), ("Offset", "0")],
        b"", "20240619T071306Z", "cn-beijing", "iam",
        "e31c4558bcfe08a286001f59cedbf0791ffd0b2362f10e55ee2627467bcdde93", id="A",
    ),
    pytest.param(
        "GET", "billing.volcengineapi.com", [("Action", "QueryBalanceAcct"), ("Version", "2022-01-01")],
        b"", "20250329T180937Z", "cn-beijing", "billing",
        "1eda9e7e6b1728151a8e8791fdaf67cfbd28bd5c80d0fce2eb208746cf483105", id="B",
    ),
    pytest.param(
        "POST", "billing.volcengineapi.com", [("Action", "ListBill"), ("Version", "2022-01-01")],
        b'{"Limit":10,"BillPeriod":"2023-08"}', "20250329T180937Z", "cn-beijing", "billing",
        "5e8480ceea12d0000a23c054151c50dd02c1a7dec835004057d19f13d53a7658", id="C",
    ),
]


@pytest.mark.parametrize("method,host,query,body,x_date,region,service,expected", VECTORS)
def test_published_vectors(method, host, query, body, x_date, region, service, expected) -> None:
    signature, scope, signed = compute_signature(
        secret_key=SK, method=method, path="/", query_items=query,
        signed_headers={"host": host, "x-date": x_date}, body_sha256=hashlib.sha256(body).hexdigest(),
        x_date=x_date, region=region, service=service,
    )
    assert signed == "host;x-date"
    assert scope == f"{x_date[:8]}/{region}/{service}/request"
    assert signature == expected


def test_intermediate_values_of_vector_b() -> None:
    assert signing_key(SK, "20250329", "cn-beijing", "billing").hex() == (
        "b491ed164936de3bb06c1eb23326aa9587b5aaa6a4e02144b9d523bbebb7ca9f"
    )


def test_canonical_query_encoding_and_order() -> None:
    items = [("b", "x y"), ("a", "~é"), ("b", "1"), ("A", "*")]
    # Upper-case sorts first; repeated keys keep their order; space is %20, ~ stays, unicode is UTF-8.
    assert canonical_query(items) == "A=%2A&a=~%C3%A9&b=x%20y&b=1"


def test_auth_signs_headers_and_body() -> None:
    fixed = dt.datetime(2025, 3, 29, 18, 9, 37, tzinfo=dt.timezone.utc)
    signer = VolcengineSigner(AK, SK, region="cn-north-1", service="vod", session_token="sts-token", clock=lambda: fixed)
    request = httpx.Request(
        "POST", "https://vod.volcengineapi.com/?Action=StartWorkflow&Version=2020-08-01", json={"Vid": "v1"}
    )
    signed = next(signer.auth_flow(request))
    assert signed.headers["X-Date"] == "20250329T180937Z"
    assert signed.headers["X-Content-Sha256"] == hashlib.sha256(request.content).hexdigest()
    assert signed.headers["X-Security-Token"] == "sts-token"
    parsed = parse_authorization(signed.headers["Authorization"])
    assert parsed is not None and parsed.access_key == AK and parsed.service == "vod"
    assert parsed.signed_headers == ("content-type", "host", "x-content-sha256", "x-date")
    expected, _, _ = compute_signature(
        secret_key=SK, method="POST", path="/", query_items=request.url.params.multi_items(),
        signed_headers={
            "host": "vod.volcengineapi.com", "x-date": "20250329T180937Z",
            "x-content-sha256": signed.headers["X-Content-Sha256"], "content-type": "application/json",
        },
        body_sha256=signed.headers["X-Content-Sha256"], x_date="20250329T180937Z", region="cn-north-1", service="vod",
    )
    assert parsed.signature == expected
    assert SK not in repr(signer) and AK not in repr(signer)
