"""Request authentication: Volcengine V4 signatures (verified with providers.signing) and gateway Bearer keys."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from collections.abc import Mapping

from emulator.config import EmulatorConfig
from emulator.errors import ApiError
from providers.signing import DATE_FORMAT, compute_signature, parse_authorization


def _sig_error(message: str) -> ApiError:
    return ApiError("SignatureDoesNotMatch", 401, message)


def verify_volcengine(
    *,
    config: EmulatorConfig,
    service: str,
    method: str,
    path: str,
    query_items: list[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    wall_now: float | None = None,
) -> str:
    """Return the access key of a correctly signed request, else raise the vendor's auth error.

    Order follows the vendor gateway: credential present -> known AK -> timestamp -> scope -> body hash ->
    signature. ``headers`` must be case-insensitive (Starlette's Headers is).
    """
    authorization = headers.get("authorization")
    if not authorization:
        raise ApiError("MissingAuthenticationToken", 401, "Request is missing Authentication Token.")
    parsed = parse_authorization(authorization)
    if parsed is None:
        raise _sig_error("The Authorization header is malformed.")
    secret = config.credentials.get(parsed.access_key)
    if secret is None:
        raise ApiError("InvalidClientTokenId", 401, f"The AccessKeyId {parsed.access_key} in the request is invalid.")

    x_date = headers.get("x-date", "")
    try:
        signed_at = dt.datetime.strptime(x_date, DATE_FORMAT).replace(tzinfo=dt.timezone.utc).timestamp()
    except ValueError:
        raise ApiError("InvalidTimestamp", 403, "X-Date is missing or not in %Y%m%dT%H%M%SZ format.") from None
    now = time.time() if wall_now is None else wall_now
    if abs(now - signed_at) > config.max_clock_skew:
        raise ApiError("InvalidTimestamp", 403, "The signature of the request is expired (X-Date too far from now).")

    if parsed.date != x_date[:8]:
        raise _sig_error("Credential scope date does not match X-Date.")
    if parsed.service != service:
        raise _sig_error(f"Credential scope service '{parsed.service}' is not '{service}' for this action.")
    if parsed.region != config.region:
        raise _sig_error(f"Credential scope region '{parsed.region}' is not '{config.region}'.")

    body_hash = hashlib.sha256(body).hexdigest()
    declared = headers.get("x-content-sha256")
    if declared is not None and declared.lower() != body_hash:
        raise _sig_error("X-Content-Sha256 does not match the request body.")

    names = [n.lower() for n in parsed.signed_headers if n]
    if "host" not in names or "x-date" not in names:
        raise _sig_error("SignedHeaders must include host and x-date.")
    signed: dict[str, str] = {}
    for name in names:
        value = headers.get(name)
        if value is None:
            raise _sig_error(f"Signed header '{name}' is not in the request.")
        signed[name] = value

    candidates = [signed]
    host = signed["host"]
    # The vendor SDK signs the Host without an explicit :80/:443 while sending it with the port.
    if host.endswith((":80", ":443")):
        candidates.append({**signed, "host": host.rsplit(":", 1)[0]})
    for headers_to_check in candidates:
        expected, _, _ = compute_signature(
            secret_key=secret, method=method, path=path or "/", query_items=query_items,
            signed_headers=headers_to_check, body_sha256=body_hash, x_date=x_date,
            region=parsed.region, service=parsed.service,
        )
        if hmac.compare_digest(expected, parsed.signature.lower()):
            return parsed.access_key
    raise _sig_error(
        "The request signature we calculated does not match the signature you provided. "
        "Check your Secret Access Key and signing method."
    )


def verify_bearer(config: EmulatorConfig, authorization: str | None) -> str:
    """Return the gateway key, else raise a 401 in the gateway's shape."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError("missing_api_key", 401, "未提供令牌 (missing Authorization: Bearer <key>)")
    for key in config.gateway_keys:
        if hmac.compare_digest(token.encode(), key.encode()):
            return token
    raise ApiError("invalid_api_key", 401, "无效的令牌 (invalid token)")


def mask_key(key: str) -> str:
    """Ledger/log form of a gateway key: never print a whole secret."""
    return f"{key[:4]}…{key[-4:]}" if len(key) > 10 else "…"
