"""Bases shared by the VOD request/response models.

Requests validate before anything is sent and surface one error type, ``RequestValidationError`` naming the
wire field and the rule. Responses are tolerant: unknown fields kept, numbers-as-strings accepted, nulls
where lists are expected read as empty.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar, Self, TypeVar

from pydantic import AfterValidator, BeforeValidator, ConfigDict, ValidationError
from pydantic.alias_generators import to_pascal
from pydantic_core import PydanticCustomError

from providers._models import PascalModel
from providers.errors import RequestValidationError

PROVIDER = "vod"
RULE_ERROR = "vod_rule"


def rule_error(rule: str, field: str | None = None) -> PydanticCustomError:
    """Raise from a validator. ``field`` is only needed from model validators (their loc names no field)."""
    return PydanticCustomError(RULE_ERROR, "{rule}", {"rule": rule, "field": field or ""})


# python field name -> wire name, filled as request models are defined; errors name fields as sent.
_WIRE_NAMES: dict[str, str] = {}


def _loc_text(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = _WIRE_NAMES.get(part, part)
            out += f".{name}" if out else name
    return out


def to_request_error(exc: ValidationError, action: str | None) -> RequestValidationError:
    """First pydantic error -> RequestValidationError(field, rule) with the wire path of the field."""
    errors = exc.errors()
    first = errors[0]
    ctx = first.get("ctx") or {}
    field = _loc_text(tuple(first["loc"]))
    inner = ctx.get("error")
    if first["type"] == RULE_ERROR:
        rule = str(ctx.get("rule", first["msg"]))
        if ctx.get("field"):
            field = f"{field}.{ctx['field']}" if field else str(ctx["field"])
    elif isinstance(inner, RequestValidationError):
        # A nested request part is built through its own __init__, which already converted its error.
        rule = inner.rule
        field = f"{field}.{inner.field}" if field else inner.field
    elif first["type"] == "missing":
        rule = "required"
    else:
        rule = first["msg"]
    if len(errors) > 1:
        rule += f" (and {len(errors) - 1} more problem(s))"
    return RequestValidationError(field or "<request>", rule, provider=PROVIDER, action=action)


class VodParams(PascalModel):
    """A request or a part of one. Construction failures become RequestValidationError."""

    # Requests forbid unknown fields: on a paid call a typo must fail here, not be silently ignored.
    model_config = ConfigDict(populate_by_name=True, extra="forbid", alias_generator=to_pascal, frozen=True)
    action: ClassVar[str | None] = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        for name, info in cls.model_fields.items():
            if info.alias:
                _WIRE_NAMES.setdefault(name, info.alias)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise to_request_error(exc, self.action) from None

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as exc:
            raise to_request_error(exc, cls.action) from None

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> Self:
        try:
            return super().model_validate_json(json_data, **kwargs)
        except ValidationError as exc:
            raise to_request_error(exc, cls.action) from None

    def revalidated(self) -> Self:
        """Validate again: model_copy(update=...) and model_construct() skip validation."""
        return type(self).model_validate(self.model_dump(by_alias=True, round_trip=True))


class VodRequest(VodParams):
    """A whole request. Subclasses set ``action``."""


class OpenVodParams(VodParams):
    """An open-ended request document (vendor keeps adding options): unknown keys are passed through."""

    model_config = ConfigDict(extra="allow")


class VodResult(PascalModel):
    """Response model: tolerant of the quirks seen in VOD answers."""

    model_config = ConfigDict(coerce_numbers_to_str=True)


def _none_to_list(value: Any) -> Any:
    return [] if value is None else value


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def json_string_to_object(value: Any) -> Any:
    """VOD sometimes carries objects as JSON-encoded strings (POST bodies, some answers)."""
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise rule_error("must be a JSON object or a JSON-encoded object string") from None
    return value


T = TypeVar("T")

# A list that may arrive as null.
LaxList = Annotated[list[T], BeforeValidator(_none_to_list)]
# A number that may arrive as a string, or as "" meaning absent.
LaxInt = Annotated[int | None, BeforeValidator(_blank_to_none)]
LaxFloat = Annotated[float | None, BeforeValidator(_blank_to_none)]
# Use as Annotated[Model | None, JSON_STRING_OK]: an object that may arrive JSON-encoded as a string.
JSON_STRING_OK = BeforeValidator(json_string_to_object)


def dumps_compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _non_empty(value: str) -> str:
    if not value.strip():
        raise rule_error("must be non-empty")
    return value


NonEmptyStr = Annotated[str, AfterValidator(_non_empty)]
