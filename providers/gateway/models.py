"""OpenAI-style video gateway wire models (api-docs/gateway-video-create.txt, api-notes section 5)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from providers._models import WireModel
from providers.errors import RequestValidationError
from providers.states import JobState, gateway_state

PROVIDER = "gateway"
CREATE_ACTION = "video.create"
QUERY_ACTION = "video.query"

# Epoch values above this are milliseconds: 1e11 s is the year 5138, 1e11 ms is 1973.
_MS_THRESHOLD = 1e11


# The roles an image of ``images`` can play. The page has one list of links ("垫图图片链接"); what each position
# means comes from the model: a frames model reads [first, last], a components model reads references.
FIRST_FRAME, LAST_FRAME, REFERENCE = "first_frame", "last_frame", "reference"
IMAGE_ROLES = (FIRST_FRAME, LAST_FRAME, REFERENCE)


@dataclass(frozen=True)
class ModelRules:
    family: str
    aspect_ratios: tuple[str, ...] | None = None  # None: not checked
    aspect_required: bool = False
    sizes: tuple[str, ...] | None = None
    size_required: bool = False
    min_images: int = 0
    max_images: int | None = None
    # What the images of ``images`` stand for, in order (IMAGE_ROLES): which clip form fields the model takes.
    roles: tuple[str, ...] = (FIRST_FRAME,)


# Source of each constraint:
# - grok-video-3: the seed page (aspect "可选为 2:3, 3:2, 1:1"; size "720P或者1080P 暂只支持720P"; all fields
#   marked required in its schema).
# - veo3.1-components <= 3 reference images, veo3-frames first/last frame: api-notes section 5.
# - 16:9 | 9:16 for the veo3 family and sora-2: assumed from the upstream models (Veo and Sora 2 render
#   landscape or portrait only); not stated by the seed page.
# - veo3-frames needing 1-2 images: assumed from "first/last frame" (a first frame is the minimum).
# - Roles (what the clip form offers): grok-video-3 (the page's example has one image), veo3/veo3.1 and sora-2
#   one first frame; a last frame only for the frames models, references only for veo3.1-components (api-notes).
#   The wire check counts images only where a count is documented; the form gives one image to the others.
GROK = ModelRules("grok-video-3", ("2:3", "3:2", "1:1"), True, ("720P",), True)
VEO_COMPONENTS = ModelRules("veo3.1-components", ("16:9", "9:16"), max_images=3, roles=(REFERENCE,))
VEO_FRAMES = ModelRules("veo3-frames", ("16:9", "9:16"), min_images=1, max_images=2, roles=(FIRST_FRAME, LAST_FRAME))
VEO = ModelRules("veo3", ("16:9", "9:16"))
SORA = ModelRules("sora-2", ("16:9", "9:16"))
UNKNOWN = ModelRules("unknown", roles=IMAGE_ROLES)


def model_rules(model: str) -> ModelRules:
    """Most specific family first: ``veo3.1-components`` and ``veo3-frames`` before the veo3 prefix."""
    name = model.strip().lower()
    if name.startswith("grok-video-3"):
        return GROK
    if name.startswith("veo3.1-components"):
        return VEO_COMPONENTS
    if name.startswith("veo3-frames") or name.startswith("veo3.1-frames"):
        return VEO_FRAMES
    if name.startswith("veo3"):
        return VEO
    if name.startswith("sora-2"):
        return SORA
    return UNKNOWN  # gateways add models all the time: allowed, unchecked


class GatewayVideoRequest(WireModel):
    model: str
    prompt: str
    aspect_ratio: str | None = None
    size: str | None = None
    # The page's schema marks images required; an empty list is sent rather than leaving it out.
    images: list[str] = Field(default_factory=list)


def _invalid(field: str, rule: str) -> RequestValidationError:
    return RequestValidationError(field, rule, provider=PROVIDER, action=CREATE_ACTION)


def validate_request(req: GatewayVideoRequest) -> None:
    """Raise RequestValidationError naming the field and the rule; rules depend on the model family."""
    if not req.model.strip():
        raise _invalid("model", "must be a non-empty model name")
    if not req.prompt.strip():
        raise _invalid("prompt", "must be a non-empty prompt")
    rules = model_rules(req.model)
    if rules.aspect_ratios is not None:
        if req.aspect_ratio is None:
            if rules.aspect_required:
                raise _invalid("aspect_ratio", f"required for {rules.family}: one of {list(rules.aspect_ratios)}")
        elif req.aspect_ratio not in rules.aspect_ratios:
            raise _invalid(
                "aspect_ratio", f"{rules.family} supports {list(rules.aspect_ratios)}, got {req.aspect_ratio!r}"
            )
    if rules.sizes is not None:
        if req.size is None:
            if rules.size_required:
                raise _invalid("size", f"required for {rules.family}: one of {list(rules.sizes)}")
        elif req.size.upper() == "1080P" and "1080P" not in rules.sizes:
            raise _invalid("size", f"1080P is documented but not yet supported by {rules.family}; use 720P")
        elif req.size not in rules.sizes:
            raise _invalid("size", f"{rules.family} supports {list(rules.sizes)}, got {req.size!r}")
    count = len(req.images)
    if count < rules.min_images:
        raise _invalid("images", f"{rules.family} needs at least {rules.min_images} image(s) (first frame)")
    if rules.max_images is not None and count > rules.max_images:
        raise _invalid("images", f"{rules.family} takes at most {rules.max_images} images, got {count}")
    for i, image in enumerate(req.images):
        scheme = urlsplit(image.strip()).scheme
        # Links per the page ("垫图图片链接"); data: URIs are accepted by many relays, so they pass too.
        if scheme not in ("http", "https", "data"):
            raise _invalid(f"images[{i}]", "must be an http(s) URL (or a data: URI)")


class GatewayTaskDetail(WireModel):
    """Upstream-specific detail; only the fields the client reads are modelled, the rest is kept."""

    video_url: str | None = None
    upsample_video_url: str | None = None
    error_message: str | None = None


class GatewayTask(WireModel):
    """Create answer ``{id, status, status_update_time}`` or query answer (plus video_url, detail...)."""

    id: str
    status: str | None = None
    video_url: str | None = None
    enhanced_prompt: str | None = None
    status_update_time: int | float | None = None  # seconds or milliseconds, model-dependent
    detail: GatewayTaskDetail | None = None

    @field_validator("detail", mode="before")
    @classmethod
    def _detail_object_only(cls, value: Any) -> Any:
        # Some upstreams put a string (or nothing useful) here; only an object has the fields we read.
        return value if isinstance(value, dict) else None

    @field_validator("status_update_time", mode="before")
    @classmethod
    def _numeric_time(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return int(value) if value.strip().isdigit() else float(value)
            except ValueError:
                return None
        return value

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @property
    def state(self) -> JobState:
        # Status only: a non-empty detail.error_message on a "completed" task is a warning, not a failure.
        return gateway_state(self.status)

    @property
    def result_url(self) -> str | None:
        """First non-empty of video_url, detail.video_url, detail.upsample_video_url."""
        detail = self.detail or GatewayTaskDetail()
        for url in (self.video_url, detail.video_url, detail.upsample_video_url):
            if url and url.strip():
                return url.strip()
        return None

    @property
    def updated_at(self) -> dt.datetime | None:
        """status_update_time as an aware UTC datetime, whether the upstream sent seconds or milliseconds."""
        value = self.status_update_time
        if not value or value <= 0:
            return None
        seconds = value / 1000 if value >= _MS_THRESHOLD else value
        return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)

    @property
    def error_message(self) -> str | None:
        """Why a FAILED task failed (None for any other state)."""
        if self.state is not JobState.FAILED:
            return None
        candidates = [self.detail.error_message if self.detail else None]
        extra = self.model_extra or {}
        candidates += [extra.get("error_message"), extra.get("fail_reason"), extra.get("message")]
        error = extra.get("error")
        candidates.append(error.get("message") if isinstance(error, dict) else error)
        for text in candidates:
            if isinstance(text, str) and text.strip():
                return text.strip()
        return f"task {self.status}"
