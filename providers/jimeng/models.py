"""Jimeng AI video 3.0 Pro wire models (api-docs/jimeng-video-3.0-pro.txt, api-notes section 4)."""

from __future__ import annotations

import base64
import binascii
import struct
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from providers._models import WireModel
from providers.errors import JobFailedError, RequestValidationError
from providers.states import JIMENG_OK_CODE, JobState, jimeng_state

PROVIDER = "jimeng"
SUBMIT_ACTION = "CVSync2AsyncSubmitTask"
RESULT_ACTION = "CVSync2AsyncGetResult"

REQ_KEY = "jimeng_ti2v_v30_pro"
ASPECT_RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9")
FRAMES = (121, 241)  # 24 * seconds + 1, for 5 s and 10 s
PROMPT_MAX_CHARS = 800
# "最大 4.7MB": read as MiB (the vendor's usual meaning); the exact boundary is not documented.
IMAGE_MAX_BYTES = int(4.7 * 1024 * 1024)
IMAGE_MIN_SHORT_SIDE = 320
IMAGE_MAX_LONG_SIDE = 4096
IMAGE_MAX_RATIO = 3.0

# The vendor's retry table, in one place (api-docs/jimeng-video-3.0-pro.txt, "业务错误码", column 是否需要重试:
# 可重试 = retry; api-notes section 4 adds 50516 50517 50519 "retry" from other vendor pages).
# - On submit, an answer in the service's own envelope ({"code", "message", "request_id"}) is the service
#   speaking: throttling (50429 QPS, 50430 concurrency) and the internal errors the page marks 可重试 (50500,
#   50501) say no task was started, so the submit may be sent again. 50516/50517/50519 are not on this
#   model's page: on submit they stay outcome-unknown (an operator decides), never retried on hearsay.
THROTTLE_CODES = {50429: "QPS limit", 50430: "concurrency limit"}
RETRY_ON_SUBMIT_CODES = frozenset({50500, 50501})
# - A *job* that ended failed with one of these may pass when bought again (a new take): 50511 is the output
#   image moderation (generation is stochastic, a new one can pass), the others internal errors.
RETRYABLE_CODES = frozenset({*THROTTLE_CODES, *RETRY_ON_SUBMIT_CODES, 50511, 50516, 50517, 50519})


class JimengVideoRequest(WireModel):
    """Submit body. Text-to-video: ``prompt``. First-frame image-to-video: one image as ``image_urls`` or
    ``binary_data_base64`` (plus an optional prompt). Limits are checked by ``validation.validate_request``
    before anything is sent, so a bad request fails with the field and the rule instead of a vendor code."""

    req_key: str = REQ_KEY
    prompt: str | None = None
    image_urls: list[str] | None = None
    binary_data_base64: list[str] | None = None
    seed: int | None = None  # vendor default -1 (random)
    frames: int | None = None  # vendor default 121
    aspect_ratio: str | None = None  # vendor default "16:9"; ignored by the vendor for image-to-video
    # Not sent: a first frame the caller still has to fetch (an object in its own bucket). It counts as the
    # image in ``validate_request``; ``JimengClient.submit_task`` refuses a request that still carries one.
    first_frame_ref: str | None = Field(default=None, exclude=True)

    @field_validator("image_urls", "binary_data_base64", mode="after")
    @classmethod
    def _empty_list_is_absent(cls, value: list[str] | None) -> list[str] | None:
        # The page's own example leaves `"binary_data_base64": []` around: treat it as "not given".
        return value or None

    @classmethod
    def from_image_bytes(cls, image: bytes, prompt: str | None = None, **fields: Any) -> JimengVideoRequest:
        """First-frame image-to-video from raw JPEG/PNG bytes."""
        return cls(prompt=prompt, binary_data_base64=[base64.b64encode(image).decode("ascii")], **fields)


class JimengResult(WireModel):
    """Get-result answer. ``data.video_url`` lives one hour: copy the file at once.

    ``state`` combines the task status with the envelope code: ``done`` + 10000 is SUCCEEDED, any code other
    than 10000 on a finished task is FAILED (the client only builds such a result for job-outcome codes).
    """

    task_id: str
    status: str | None = None  # raw data.status: in_queue | generating | done | not_found | expired
    video_url: str | None = None
    code: int = JIMENG_OK_CODE
    message: str | None = None
    request_id: str | None = None
    time_elapsed: str | None = None
    data: dict[str, Any] | None = Field(default=None, description="The raw data object, for fields not modelled.")

    @property
    def state(self) -> JobState:
        return jimeng_state(self.status, self.code)

    @property
    def failure_retryable(self) -> bool:
        """For a FAILED result: would a *new submission* plausibly succeed (post-moderation, internal error)?"""
        return self.state is JobState.FAILED and self.code in RETRYABLE_CODES

    def raise_for_failure(self) -> JimengResult:
        """Return self unless FAILED/EXPIRED; then raise JobFailedError (retryable when a resubmit may help)."""
        if self.state in (JobState.FAILED, JobState.EXPIRED):
            raise JobFailedError(
                self.message or f"task {self.status or 'failed'}",
                provider=PROVIDER, action=RESULT_ACTION, code=self.code, request_id=self.request_id,
                retryable=self.failure_retryable,
            )
        return self


# --- validation: everything the page states, checked before a paid request is sent --------------------------


def _invalid(field: str, rule: str) -> RequestValidationError:
    return RequestValidationError(field, rule, provider=PROVIDER, action=SUBMIT_ACTION)


def validate_request(req: JimengVideoRequest) -> None:
    """Raise RequestValidationError (field + rule) for anything the vendor page says it would refuse."""
    if req.req_key != REQ_KEY:
        raise _invalid("req_key", f"must be {REQ_KEY!r} (this client implements only 3.0 Pro)")
    prompt = req.prompt
    if prompt is not None and len(prompt) > PROMPT_MAX_CHARS:
        raise _invalid("prompt", f"at most {PROMPT_MAX_CHARS} characters (got {len(prompt)})")
    has_prompt = bool(prompt and prompt.strip())
    if req.image_urls and req.binary_data_base64:
        raise _invalid("binary_data_base64", "give image_urls or binary_data_base64, not both")
    if req.first_frame_ref and (req.image_urls or req.binary_data_base64):
        raise _invalid("first_frame_ref", "give one first frame: a reference, image_urls or binary_data_base64")
    images = req.image_urls or req.binary_data_base64 or ([req.first_frame_ref] if req.first_frame_ref else None)
    if not images and not has_prompt:
        # "文生视频场景必选" + "图片和prompt二选一必选": with no image the prompt is what is generated from.
        raise _invalid("prompt", "required for text-to-video: give a non-empty prompt, an image, or both")
    if images and len(images) != 1:
        field = "image_urls" if req.image_urls else "binary_data_base64"
        raise _invalid(field, f"exactly one image (the first frame) is supported, got {len(images)}")
    if req.image_urls:
        _check_image_url(req.image_urls[0])
    if req.binary_data_base64:
        _check_image_bytes(req.binary_data_base64[0])
    if req.frames is not None and req.frames not in FRAMES:
        raise _invalid("frames", f"must be one of {list(FRAMES)} (5 s or 10 s), got {req.frames}")
    if req.aspect_ratio is not None and req.aspect_ratio not in ASPECT_RATIOS:
        raise _invalid("aspect_ratio", f"must be one of {list(ASPECT_RATIOS)}, got {req.aspect_ratio!r}")
    if req.seed is not None and (isinstance(req.seed, bool) or req.seed < -1):
        raise _invalid("seed", f"must be an integer >= -1 (-1 = random), got {req.seed}")


def _check_image_url(url: str) -> None:
    # Only the scheme can be checked without downloading; size/ratio limits are the vendor's to enforce.
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _invalid("image_urls[0]", "must be an absolute http(s) URL")


def _check_image_bytes(encoded: str) -> None:
    field = "binary_data_base64[0]"
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(field, "must be standard base64 (no data: prefix, no line breaks)") from None
    problem = image_problem(raw)
    if problem:
        raise _invalid(field, problem)


def image_problem(raw: bytes) -> str | None:
    """The page's first-frame rules (JPEG/PNG, at most 4.7 MB, 320..4096 px, long/short <= 3) applied to the
    bytes of an image: None when they hold, else the rule that fails and what the image is."""
    if len(raw) > IMAGE_MAX_BYTES:
        return f"image must be at most 4.7 MB, got {len(raw) / 1024 / 1024:.2f} MB"
    kind = image_kind(raw)
    if kind is None:
        return "image must be JPEG or PNG"
    size = image_size(raw)
    if size is None:
        return f"could not read the {kind} image dimensions (truncated or corrupt header)"
    short, long_ = sorted(size)
    if short < IMAGE_MIN_SHORT_SIDE:
        return f"image short side must be >= {IMAGE_MIN_SHORT_SIDE} px, got {size[0]}x{size[1]}"
    if long_ > IMAGE_MAX_LONG_SIDE:
        return f"image long side must be <= {IMAGE_MAX_LONG_SIDE} px, got {size[0]}x{size[1]}"
    if long_ / short > IMAGE_MAX_RATIO:
        return f"image long/short side ratio must be <= 3, got {size[0]}x{size[1]}"
    return None


# --- image headers: enough of PNG and JPEG to read the dimensions, no imaging library needed ----------------

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
# Start-of-frame markers carry the dimensions; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0-7: no length field


def image_kind(data: bytes) -> str | None:
    if data.startswith(_PNG_MAGIC):
        return "PNG"
    if data.startswith(_JPEG_MAGIC):
        return "JPEG"
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the PNG IHDR chunk or the first JPEG SOFn segment; None when unreadable."""
    kind = image_kind(data)
    if kind == "PNG":
        # signature (8) + chunk length (4) + b"IHDR" (4) + width (4) + height (4)
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        width, height = struct.unpack(">II", data[16:24])
        return (width, height) if width and height else None
    if kind == "JPEG":
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2  # after SOI
    n = len(data)
    while i < n:
        if data[i] != 0xFF:
            return None  # lost sync: not a well-formed marker stream
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            return None
        marker = data[i]
        i += 1
        if marker in _STANDALONE_MARKERS:
            continue
        if marker in (0xD9, 0xDA):  # EOI or start of scan before any frame header
            return None
        if i + 2 > n:
            return None
        (length,) = struct.unpack(">H", data[i : i + 2])
        if length < 2:
            return None
        if marker in _SOF_MARKERS:
            if i + 7 > n:
                return None
            height, width = struct.unpack(">HH", data[i + 3 : i + 7])  # after length (2) + precision (1)
            return (width, height) if width and height else None
        i += length
    return None
