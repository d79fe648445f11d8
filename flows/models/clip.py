"""What to generate: a Jimeng clip or a gateway clip, and what a generated clip became."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator, BaseModel, ConfigDict, Discriminator, Field, GetJsonSchemaHandler, Tag, field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue

from flows.models.rules import (
    _MAX_TAKES_DESCRIPTION, _TAKE_DESCRIPTION, IMAGE_BASE64_MAX_CHARS, IMAGE_BASE64_MAX_KB, IMAGE_BASE64_RULE,
    IMAGE_REF_PATTERN, IMAGE_URL_PATTERN, MAX_TAKES_LIMIT, SEED_MAX, SEED_MIN, GatewayAspectRatio, GatewayModel,
    GatewaySize, JimengAspectRatio, StrictModel, image_url_rules,
)
from providers.gateway.models import FIRST_FRAME, LAST_FRAME, REFERENCE, ModelRules, model_rules
from providers.jimeng.models import (
    IMAGE_MAX_LONG_SIDE, IMAGE_MAX_RATIO, IMAGE_MIN_SHORT_SIDE, PROMPT_MAX_CHARS, image_problem,
)

# veo3.1-components takes at most 3 reference images (api-notes section 5).
REFERENCE_IMAGES_MAX = 3
_JIMENG_IMAGE_RULES = (
    f"JPEG or PNG, at most 4.7 MB, short side >= {IMAGE_MIN_SHORT_SIDE} px, long side <= {IMAGE_MAX_LONG_SIDE} px, "
    f"long/short <= {IMAGE_MAX_RATIO:g}"
)


def _image_ref(pattern: str) -> Any:
    # The pattern before the host rules: pydantic leaves a pattern out of the JSON schema when it follows a
    # validator, and the schema is what Prefect refuses at Submit.
    return Annotated[str, Field(pattern=pattern, max_length=4096), AfterValidator(image_url_rules)]


class JimengClipSpec(StrictModel):
    """A Jimeng AI video 3.0 Pro clip: text-to-video, or image-to-video from a first-frame image."""

    model_config = ConfigDict(title="Jimeng clip")

    provider: Literal["jimeng"] = Field("jimeng", description="Jimeng 3.0 Pro.")
    prompt: str = Field("", max_length=PROMPT_MAX_CHARS, description=f"Text prompt, at most {PROMPT_MAX_CHARS} characters.")
    image_url: _image_ref(IMAGE_REF_PATTERN) | None = Field(
        None,
        description=(
            "First frame (image-to-video) by reference: an https:// URL, s3://bucket/key, or a key in the bucket of "
            f"blocks.bucket. {_JIMENG_IMAGE_RULES}; fetched and checked before anything is paid for."
        ),
    )
    image_base64: str | None = Field(
        None, max_length=IMAGE_BASE64_MAX_CHARS,
        description=(
            f"First frame inline, for small images only: base64 JPEG/PNG (no data: prefix) of at most "
            f"{IMAGE_BASE64_MAX_KB} KB ({IMAGE_BASE64_MAX_CHARS:,} characters). Larger images: image_url."
        ),
    )
    aspect_ratio: JimengAspectRatio = Field("16:9", description="16:9 4:3 1:1 3:4 9:16 21:9 (text-to-video).")
    frames: Literal[121, 241] = Field(121, description="Length: 121 frames = 5 s, 241 = 10 s.")
    seed: int = Field(-1, ge=SEED_MIN, le=SEED_MAX, description=f"Random seed, 0..{SEED_MAX}; -1 random.")
    take: int = Field(0, ge=0, le=1000, description=_TAKE_DESCRIPTION)
    max_takes: int = Field(2, ge=1, le=MAX_TAKES_LIMIT, description=_MAX_TAKES_DESCRIPTION)

    @field_validator("image_base64", mode="before")
    @classmethod
    def _small_inline_image(cls, value: object) -> object:
        # Before max_length, so the message says the limit in KB and where a larger image goes.
        if isinstance(value, str) and len(value) > IMAGE_BASE64_MAX_CHARS:
            raise ValueError(f"{IMAGE_BASE64_RULE}; got {len(value):,} characters")
        return value

    @field_validator("image_base64", mode="after")
    @classmethod
    def _inline_image_rules(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be standard base64 (no data: prefix, no line breaks)") from None
        problem = image_problem(raw)
        if problem:
            raise ValueError(f"{problem} (Jimeng takes {_JIMENG_IMAGE_RULES})")
        return value

    @model_validator(mode="after")
    def _one_image(self) -> JimengClipSpec:
        if self.image_url and self.image_base64:
            raise ValueError("image_base64: give image_url or image_base64, not both")
        return self

    def image_refs(self) -> list[tuple[str, str]]:
        """(field, reference) of each image given by reference: what preflight fetches and checks."""
        return [("clip.image_url", self.image_url)] if self.image_url else []


class GatewayClipSpec(StrictModel):
    """A clip from an OpenAI-style video gateway (grok-video-3, veo3.1, sora-2 ...)."""

    model_config = ConfigDict(
        title="Gateway clip",
        # In the schema "provider" is required: a clip without it is a Jimeng clip, never both at once.
        json_schema_extra=lambda schema: schema.setdefault("required", []).insert(0, "provider"),
    )

    provider: Literal["gateway"] = Field("gateway", description="An OpenAI-style video gateway.")
    model: GatewayModel = Field("grok-video-3", description="Gateway model.")
    prompt: str = Field("", max_length=4000, description="Text prompt.")
    image_url: _image_ref(IMAGE_URL_PATTERN) | None = Field(
        None,
        description=(
            "First frame (image-to-video): an https:// URL the gateway fetches; checked before paying. For "
            "veo3.1-components, the first reference image."
        ),
    )
    last_frame_url: _image_ref(IMAGE_URL_PATTERN) | None = Field(
        None,
        description=(
            "Last frame, for veo3-frames and veo3.1-frames only (with the first frame in image_url): an https:// "
            "URL, checked like image_url."
        ),
    )
    reference_image_urls: list[_image_ref(IMAGE_URL_PATTERN)] = Field(
        default_factory=list, max_length=REFERENCE_IMAGES_MAX,
        json_schema_extra={"uniqueItems": True},
        description=(
            f"Reference images, for veo3.1-components only: https:// URLs, at most {REFERENCE_IMAGES_MAX} with "
            "image_url; each checked like image_url."
        ),
    )
    aspect_ratio: GatewayAspectRatio = Field(
        "3:2", description="grok-video-3: 2:3 3:2 1:1; veo3 family and sora-2: 16:9 9:16."
    )
    size: GatewaySize = Field("720P", description="Output size (grok-video-3: 720P only).")
    take: int = Field(0, ge=0, le=1000, description=_TAKE_DESCRIPTION)
    max_takes: int = Field(2, ge=1, le=MAX_TAKES_LIMIT, description=_MAX_TAKES_DESCRIPTION)

    @model_validator(mode="after")
    def _model_rules(self) -> GatewayClipSpec:
        rules = model_rules(self.model)
        if rules.aspect_ratios is not None and self.aspect_ratio not in rules.aspect_ratios:
            raise ValueError(
                f"aspect_ratio: {rules.family} supports {list(rules.aspect_ratios)}, got {self.aspect_ratio!r}"
            )
        if rules.sizes is not None and self.size not in rules.sizes:
            raise ValueError(f"size: {rules.family} supports {list(rules.sizes)}, got {self.size!r}")
        if rules.min_images and not self.image_url:
            raise ValueError(f"image_url: {rules.family} generates from a first-frame image: give one")
        self._image_roles(rules)
        return self

    def _image_roles(self, rules: ModelRules) -> None:
        """Which image fields the model takes (its roles, providers/gateway/models.py) and how many in all."""
        if self.last_frame_url and LAST_FRAME not in rules.roles:
            raise ValueError(f"last_frame_url: {rules.family} takes no last frame (veo3-frames and veo3.1-frames do)")
        if self.last_frame_url and not self.image_url:
            raise ValueError("last_frame_url: a last frame needs the first frame in image_url")
        if self.reference_image_urls and REFERENCE not in rules.roles:
            raise ValueError(
                f"reference_image_urls: {rules.family} takes no reference images (veo3.1-components does)"
            )
        if self.image_url and FIRST_FRAME not in rules.roles and REFERENCE not in rules.roles:
            raise ValueError(f"image_url: {rules.family} takes no image")
        refs = self.image_refs()
        first: dict[str, str] = {}
        for field, ref in refs:
            if ref in first:
                name = field.removeprefix("clip.").split("[", 1)[0]
                raise ValueError(f"{name}: an image must not be given twice (the same URL is in {first[ref]})")
            first[ref] = field
        if rules.max_images is not None and len(refs) > rules.max_images:
            raise ValueError(
                f"reference_image_urls: {rules.family} takes at most {rules.max_images} images in all "
                f"(image_url and reference_image_urls), got {len(refs)}"
            )

    def image_refs(self) -> list[tuple[str, str]]:
        """(field, URL) of each image, in the order of the wire's ``images``: first frame, then last frame or
        the reference images."""
        refs = [("clip.image_url", self.image_url)] if self.image_url else []
        if self.last_frame_url:
            refs.append(("clip.last_frame_url", self.last_frame_url))
        refs += [(f"clip.reference_image_urls[{i}]", url) for i, url in enumerate(self.reference_image_urls)]
        return refs


def clip_provider(value: Any) -> str:
    """The union's discriminator: a clip without "provider" is a Jimeng clip."""
    if isinstance(value, dict):
        return value.get("provider", "jimeng")
    return getattr(value, "provider", "jimeng")


class _ProviderDiscriminatorSchema:
    """Names the discriminator in the JSON schema (a callable Discriminator leaves it out), and lists the variants
    as ``anyOf``: the Prefect UI renders ``anyOf`` as a choice between the two forms (``oneOf`` only as raw JSON).
    The variants never overlap (``provider`` is a const, and required by the gateway one), so a value matches
    exactly one of them either way. (``flows.models.production`` adds the rule that makes a refusal inside the
    clip name its field: ``selected_clip_variant``.)"""

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        if "oneOf" in schema:
            schema["anyOf"] = schema.pop("oneOf")
        schema["discriminator"] = {"propertyName": "provider"}
        return schema


def selected_clip_variant(clip_schema: dict[str, Any]) -> dict[str, Any]:
    """The clip variant ``provider`` selects, as a JSON schema (from the union's own ``anyOf``): gateway when it
    says so, else Jimeng, each as a one-branch ``anyOf`` so that a refusal carries only that variant's errors."""
    jimeng, gateway = clip_schema["anyOf"]
    return {
        "if": {"required": ["provider"], "properties": {"provider": {"const": "gateway"}}},
        "then": {"anyOf": [dict(gateway)]},
        "else": {"anyOf": [dict(jimeng)]},
    }


ClipSpec = Annotated[
    Union[Annotated[JimengClipSpec, Tag("jimeng")], Annotated[GatewayClipSpec, Tag("gateway")]],
    Discriminator(
        clip_provider,
        custom_error_type="clip_provider",
        custom_error_message="provider must be 'jimeng' or 'gateway'",
    ),
    _ProviderDiscriminatorSchema(),
]
"""What to generate: a ``JimengClipSpec`` or a ``GatewayClipSpec``, told apart by ``provider`` (default jimeng)."""


class StoredClip(BaseModel):
    bucket: str
    key: str
    size: int
    sha256: str
    source_job_id: str


class ImportedClip(BaseModel):
    vid: str
    space_name: str
    duration_seconds: float | None = None
    width: int | None = None
    height: int | None = None


class GeneratedClip(BaseModel):
    provider: str
    job_id: str
    stored: StoredClip
    imported: ImportedClip
    takes: int = 1  # generation jobs this clip cost (more than 1 when a retryable failure was bought again)

