"""The shared rules of every parameter model: strictness, and the limits that come from the providers."""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from providers.jimeng.models import IMAGE_MAX_BYTES


def _kinds(annotation: Any) -> set[type]:
    """The scalar types an annotation accepts (int, float, bool), through Annotated, unions and Literals."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _kinds(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return set().union(*(_kinds(a) for a in typing.get_args(annotation)))
    if origin is Literal:
        return {type(a) for a in typing.get_args(annotation)}
    return {annotation} if annotation in (int, float, bool) else set()


def bool_number_problem(annotation: Any, value: Any) -> str | None:
    """Why ``value`` is refused for a field of ``annotation``: a boolean where a number goes or a number where a
    boolean goes (lists item by item); None when it is not that mistake."""
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (Union, types.UnionType):
        lists = [a for a in typing.get_args(annotation) if typing.get_origin(a) is list]
        if len(lists) == 1 and isinstance(value, list):
            annotation = lists[0]
    if typing.get_origin(annotation) is list and isinstance(value, list):
        (item,) = typing.get_args(annotation) or (Any,)
        for n, each in enumerate(value):
            if problem := bool_number_problem(item, each):
                return f"item {n}: {problem}"
        return None
    kinds = _kinds(annotation)
    if isinstance(value, bool) and bool not in kinds and kinds & {int, float}:
        return f"must be a number, not a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and kinds == {bool}:
        return f"must be true or false, not a number ({value})"
    return None


class StrictModel(BaseModel):
    """A flow parameter: unknown fields are refused ("Extra inputs are not permitted" at the field's path), and
    the JSON schema says ``additionalProperties: false`` so Prefect refuses them at Submit too."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _booleans_are_not_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic's lax mode reads true as 1 and 1 as true; the JSON schema (what Prefect checks at Submit)
        # refuses both, so the models do too: a Python call or a manifest row is held to the same rule.
        if not isinstance(value, (int, float, list)):  # text and objects: nothing to tell apart (most values)
            return value
        field = cls.model_fields.get(info.field_name or "")
        if field is not None and (problem := bool_number_problem(field.annotation, value)):
            raise PydanticCustomError("bool_number", problem)
        return value


# --- the rules, where they come from -------------------------------------------------------------------------

# api-notes section 3, SubmitAITranslationWorkflow.TranslationConfig.
TargetLanguage = Literal["zh", "en", "ja", "ko", "de", "fr", "ru", "es", "pt", "it", "id", "vi", "th", "ar", "tr"]
TranslationType = Literal["SubtitleTranslation", "VoiceTranslation", "FacialTranslation"]
# providers/jimeng/models.py ASPECT_RATIOS / FRAMES.
JimengAspectRatio = Literal["16:9", "4:3", "1:1", "3:4", "9:16", "21:9"]
# providers/gateway/models.py: the model families it knows the rules of (an unknown model is refused).
GatewayModel = Literal[
    "grok-video-3", "veo3", "veo3.1", "veo3.1-fast", "veo3.1-components", "veo3-frames", "veo3.1-frames", "sora-2"
]
GatewayAspectRatio = Literal["2:3", "3:2", "1:1", "16:9", "9:16"]  # every model's ratios; per model: validator
GatewaySize = Literal["720P", "1080P"]
# Jimeng: -1 = random, otherwise a non-negative seed; the upper bound keeps it a 32-bit unsigned value (the
# vendor's diffusion seed) and far inside the 64-bit integers Prefect's server can store.
SEED_MIN, SEED_MAX = -1, 2**32 - 1
# VOD space names: letters, digits, - and _, starting with a letter or digit (never a path such as ../x).
SPACE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
# CreateProject's ProjectName (providers/vod/models_edit.py): CJK ideographs, ASCII letters, digits, - and _,
# 1..128 characters. clipflow sends the title with a tag of the request's fingerprint appended (``-cf`` and 12
# hex digits, ``tagged_project`` in flows/stages/edit.py): the title gets what the tag leaves of the 128.
PROJECT_NAME_MAX_CHARS = 128
PROJECT_TAG_PREFIX, PROJECT_TAG_HEX = "-cf", 12
TITLE_MAX_CHARS = PROJECT_NAME_MAX_CHARS - len(PROJECT_TAG_PREFIX) - PROJECT_TAG_HEX
# Literal characters (not escapes), so every regex engine reads the class the same way.
TITLE_PATTERN = "^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134fA-Za-z0-9_-]{1,%d}$" % TITLE_MAX_CHARS
# Prefect block document names: lower-case letters, digits and dashes.
BLOCK_NAME_PATTERN = r"^[a-z0-9-]{1,100}$"
# VOD workflow template ids: letters, digits, -, _ and . (no spaces, no paths).
TEMPLATE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
# An http(s) URL whose authority has no user info ('@') and no backslash (read as '/' by some URL parsers): a
# refusal at Submit already. Which hosts are allowed is decided at run time (``image_url_rules``).
_URL = r"https?://[^\s/?#@\\]+(?:[/?#]\S*)?"
IMAGE_URL_PATTERN = rf"^{_URL}$"
# A first frame by reference: an http(s) URL, s3://bucket/key, or a key in the production's bucket (no ':' so it
# is never mistaken for a URL, no leading '/' or '.'). No look-arounds: pydantic's regex engine has none.
IMAGE_REF_PATTERN = rf"^(?:{_URL}|s3://[a-z0-9][a-z0-9.-]{{1,61}}[a-z0-9]/\S+|[A-Za-z0-9_][^\s:]*)$"
# Inline base64 is for small images: a flow run's parameters are at most 512 KiB of JSON (Prefect's
# server.api.max_parameter_size), so a 4.7 MB image can only come by reference. 350 KB leaves room for the rest.
IMAGE_BASE64_MAX_KB = 350
IMAGE_BASE64_MAX_CHARS = 4 * -(-IMAGE_BASE64_MAX_KB * 1024 // 3)
IMAGE_BASE64_RULE = (
    f"at most {IMAGE_BASE64_MAX_CHARS:,} characters (an image of {IMAGE_BASE64_MAX_KB} KB; a run's parameters are "
    f"limited to 512 KB): give a larger image (up to {IMAGE_MAX_BYTES / 1024 / 1024:.1f} MB) by reference in "
    "image_url (https URL, s3://bucket/key or a key in the bucket)"
)


def bucket_image(ref: str) -> tuple[str | None, str] | None:
    """(bucket, key) of an image reference in a bucket: ``s3://bucket/key`` or a bare key (bucket None: the
    production's bucket). None for an http(s) URL."""
    if ref.startswith(("http://", "https://")):
        return None
    if ref.startswith("s3://"):
        bucket, _, key = ref[len("s3://"):].partition("/")
        return bucket, key
    return None, ref


def image_url_rules(value: str | None) -> str | None:
    """An http(s) ``image_url`` passes the fetcher's rules that need no network (flows/runtime/fetch.py): https,
    or http to a host in CLIPFLOW_FETCH_ALLOW_HOSTS; no user info; no loopback, private, link-local … address,
    however written (``2130706433``, ``[::1]``, ``localhost``). Read at validation time, so the worker's settings
    apply; the fetcher checks again, with the addresses a name resolves to."""
    if value is None or bucket_image(value) is not None:
        return value
    from flows.runtime.fetch import FetchNotAllowed, check_url

    try:
        check_url(value)
    except FetchNotAllowed as exc:
        raise ValueError(str(exc)) from None
    return value


# clip.image_url: the pattern in the schema (refused at Submit), the host rules when the model is validated.
ImageRef = Annotated[str, AfterValidator(image_url_rules)]


def _unique(values: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    repeated = [v for v in values if v in seen or seen.add(v)]  # type: ignore[func-returns-value]
    if repeated:
        raise ValueError(f"must not repeat a value (repeated: {sorted(set(repeated))})")
    return values


def _unique_list(item: Any, default: list[Any], description: str, min_length: int = 0, max_length: int | None = None) -> Any:
    return Annotated[
        list[item],
        AfterValidator(_unique),
        Field(default, description=description, min_length=min_length, max_length=max_length,
              json_schema_extra={"uniqueItems": True}),
    ]

class BlockRefs(StrictModel):
    """Names of the Prefect blocks to load credentials and storage from."""

    volcengine: str = Field("clipflow", pattern=BLOCK_NAME_PATTERN, description="VolcengineCredentials block name.")
    gateway: str = Field(
        "clipflow", pattern=BLOCK_NAME_PATTERN, description="VideoGatewayCredentials block name (gateway models only)."
    )
    bucket: str = Field(
        "clipflow", pattern=BLOCK_NAME_PATTERN, description="prefect-aws S3Bucket block name where clips and subtitles go."
    )


_TAKE_DESCRIPTION = (
    "Raise it to deliberately pay for a new generation of the same request (e.g. when the last one's output "
    "expired before it was stored). 0 = the first take."
)
MAX_TAKES_LIMIT = 5
_MAX_TAKES_DESCRIPTION = (
    "Takes this stage may pay for in all: a job that fails with a code the provider documents as retryable "
    "(Jimeng 50511, its output failed moderation) is bought again as the next take, within the batch budget. "
    "1 = never buy again automatically."
)

