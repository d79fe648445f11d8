"""Request parameters in every form the vendor SDKs send, plus typed accessors that refuse like VOD does.

GET sends everything in the query (nested values JSON-encoded); POST sends a form or a JSON body. Values from
the query or a form are always strings; values from a JSON body keep their JSON types. ``Params`` remembers
which keys came typed so quirks like "DirectUrl must be a JSON string in a POST body" can be enforced.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import parse_qsl

from emulator.errors import ApiError, invalid, missing

RESERVED = {"Action", "Version"}


def parse_body(body: bytes, content_type: str) -> tuple[dict[str, Any], bool]:
    """Return (params, came_as_json). Raises ApiError on an unparseable body."""
    if not body.strip():
        return {}, False
    ctype = content_type.split(";")[0].strip().lower()
    if ctype == "application/json" or (ctype not in ("application/x-www-form-urlencoded",) and body.lstrip()[:1] in (b"{", b"[")):
        try:
            value = json.loads(body)
        except ValueError as exc:
            raise invalid(f"request body is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise invalid("request body must be a JSON object")
        return value, True
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise invalid("request body is not UTF-8") from None
    out: dict[str, Any] = {}
    for k, v in pairs:
        out[k] = v  # last wins, like the vendor gateway for scalar params
    return out, False


class Params:
    def __init__(self, query: list[tuple[str, str]], body: dict[str, Any], body_is_json: bool) -> None:
        self.values: dict[str, Any] = {k: v for k, v in query if k not in RESERVED}
        self.values.update({k: v for k, v in body.items() if k not in RESERVED})
        self.typed_keys = set(body) if body_is_json else set()
        self.body_is_json = body_is_json

    def __contains__(self, key: str) -> bool:
        return key in self.values and self.values[key] not in (None, "")

    def raw(self, key: str) -> Any:
        return self.values.get(key)

    def str(self, key: str, *, required: bool = False, max_len: int | None = None) -> str | None:
        value = self.values.get(key)
        if value is None or value == "":
            if required:
                raise missing(key)
            return None
        if not isinstance(value, str):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise invalid(f"{key} must be a string")
            value = str(value)
        if max_len is not None and len(value) > max_len:
            raise invalid(f"{key} is longer than {max_len} characters")
        return value

    def int(self, key: str, *, default: int | None = None, lo: int | None = None, hi: int | None = None) -> int | None:
        value = self.values.get(key)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            raise invalid(f"{key} must be an integer")
        try:
            number = int(value) if not isinstance(value, float) or value.is_integer() else None
        except (TypeError, ValueError):
            number = None
        if number is None:
            raise invalid(f"{key} must be an integer")
        if (lo is not None and number < lo) or (hi is not None and number > hi):
            raise invalid(f"{key} must be within [{lo}, {hi}]")
        return number

    def bool(self, key: str, *, default: bool = False) -> bool:
        value = self.values.get(key)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1"):
            return True
        if str(value).lower() in ("false", "0"):
            return False
        raise invalid(f"{key} must be a boolean")

    def json(self, key: str, kind: type, *, mode: str = "either", required: bool = False) -> Any:
        """A nested value. ``mode``: ``string`` (must arrive JSON-encoded, the VOD POST quirk),
        ``object`` (a JSON body must carry the object itself; query/form strings are decoded), ``either``."""
        value = self.values.get(key)
        if value is None or value == "":
            if required:
                raise missing(key)
            return None
        if isinstance(value, str):
            if mode == "object" and key in self.typed_keys:
                raise invalid(f"{key} must be a JSON object, not a string", "InvalidParameter.InvalidParam")
            try:
                value = json.loads(value)
            except ValueError:
                raise invalid(f"{key} is not valid JSON") from None
        elif mode == "string":
            raise invalid(f"{key} must be a JSON-encoded string in the request body")
        if not isinstance(value, kind):
            raise invalid(f"{key} must be a JSON {'object' if kind is dict else 'array'}")
        return value

    def list_of_str(self, key: str, *, required: bool = False) -> list[str]:
        """A list sent as a JSON array, a JSON-encoded array string, or a comma-separated string."""
        value = self.values.get(key)
        if value is None or value == "" or value == []:
            if required:
                raise missing(key)
            return []
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except ValueError:
                    raise invalid(f"{key} is not valid JSON") from None
            else:
                value = [part.strip() for part in text.split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise invalid(f"{key} must be a list of strings")
        return value


def _normalize(value: Any) -> Any:
    """Canonical form for fingerprints: JSON strings decoded, scalars as strings, keys sorted by json.dumps."""
    if isinstance(value, dict):
        return {str(k): _normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                return _normalize(json.loads(text))
            except ValueError:
                return value
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return None
    return str(value)


def fingerprint(params: dict[str, Any]) -> str:
    """sha256 of the canonical request parameters, so the same request sent as GET, form or JSON matches."""
    canonical = json.dumps(_normalize(params), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def contains_marker(params: dict[str, Any], marker: str) -> bool:
    return bool(marker) and marker in json.dumps(params, ensure_ascii=False)


def require_api(condition: bool, message: str, code: str = "InvalidParameter") -> None:
    if not condition:
        raise ApiError(code, 400, message)
