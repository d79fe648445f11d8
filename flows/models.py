"""Flow parameters and results. Pydantic models so the Prefect UI renders proper forms.

Parameter models are strict (``StrictModel``: an unknown field is refused, naming it) and carry every rule a JSON
schema can express (lengths, enums, ranges, patterns), so Prefect refuses a bad run at Submit, in the UI and over
REST (``create_flow_run`` validates parameters against the deployment's schema). Rules a schema cannot express
(cross-field, per-model) are pydantic validators, and the provider's own rules run in ``validate_production``
before the first paid call. Result models stay tolerant.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator, BaseModel, ConfigDict, Discriminator, Field, GetJsonSchemaHandler, Tag, model_validator,
)
from pydantic.json_schema import JsonSchemaValue

from providers.gateway.models import model_rules
from providers.jimeng.models import IMAGE_MAX_BYTES, PROMPT_MAX_CHARS
from providers.states import JobState


class StrictModel(BaseModel):
    """A flow parameter: unknown fields are refused ("Extra inputs are not permitted" at the field's path), and
    the JSON schema says ``additionalProperties: false`` so Prefect refuses them at Submit too."""

    model_config = ConfigDict(extra="forbid")


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
# 1..128 characters. Literal characters (not escapes), so every regex engine reads the class the same way.
TITLE_PATTERN = "^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134fA-Za-z0-9_-]{1,128}$"
# Prefect block document names: lower-case letters, digits and dashes.
BLOCK_NAME_PATTERN = r"^[a-z0-9-]{1,100}$"
# VOD workflow template ids: letters, digits, -, _ and . (no spaces, no paths).
TEMPLATE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
IMAGE_URL_PATTERN = r"^https?://[^\s/]+\S*$"
# base64 of the largest image Jimeng takes (4.7 MB); Prefect's own parameter limit is lower still.
IMAGE_BASE64_MAX_CHARS = 4 * -(-IMAGE_MAX_BYTES // 3)


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


class JimengClipSpec(StrictModel):
    """A Jimeng AI video 3.0 Pro clip: text-to-video, or image-to-video from a first-frame image."""

    model_config = ConfigDict(title="Jimeng clip")

    provider: Literal["jimeng"] = Field("jimeng", description="Jimeng 3.0 Pro.")
    prompt: str = Field("", max_length=PROMPT_MAX_CHARS, description=f"Text prompt, at most {PROMPT_MAX_CHARS} characters.")
    image_url: str | None = Field(
        None, pattern=IMAGE_URL_PATTERN, max_length=4096, description="First-frame image URL (image-to-video)."
    )
    image_base64: str | None = Field(
        None, max_length=IMAGE_BASE64_MAX_CHARS,
        description="First-frame image, base64 JPEG/PNG (no data: prefix). Large images: use image_url.",
    )
    aspect_ratio: JimengAspectRatio = Field("16:9", description="16:9 4:3 1:1 3:4 9:16 21:9 (text-to-video).")
    frames: Literal[121, 241] = Field(121, description="Length: 121 frames = 5 s, 241 = 10 s.")
    seed: int = Field(-1, ge=SEED_MIN, le=SEED_MAX, description=f"Random seed, 0..{SEED_MAX}; -1 random.")
    take: int = Field(0, ge=0, le=1000, description=_TAKE_DESCRIPTION)

    @model_validator(mode="after")
    def _one_image(self) -> JimengClipSpec:
        if self.image_url and self.image_base64:
            raise ValueError("image_base64: give image_url or image_base64, not both")
        return self


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
    image_url: str | None = Field(
        None, pattern=IMAGE_URL_PATTERN, max_length=4096, description="First-frame / reference image URL."
    )
    aspect_ratio: GatewayAspectRatio = Field(
        "3:2", description="grok-video-3: 2:3 3:2 1:1; veo3 family and sora-2: 16:9 9:16."
    )
    size: GatewaySize = Field("720P", description="Output size (grok-video-3: 720P only).")
    take: int = Field(0, ge=0, le=1000, description=_TAKE_DESCRIPTION)

    @model_validator(mode="after")
    def _model_rules(self) -> GatewayClipSpec:
        rules = model_rules(self.model)
        if rules.aspect_ratios is not None and self.aspect_ratio not in rules.aspect_ratios:
            raise ValueError(
                f"aspect_ratio: {rules.family} supports {list(rules.aspect_ratios)}, got {self.aspect_ratio!r}"
            )
        if rules.sizes is not None and self.size not in rules.sizes:
            raise ValueError(f"size: {rules.family} supports {list(rules.sizes)}, got {self.size!r}")
        return self


def clip_provider(value: Any) -> str:
    """The union's discriminator: a clip without "provider" is a Jimeng clip."""
    if isinstance(value, dict):
        return value.get("provider", "jimeng")
    return getattr(value, "provider", "jimeng")


class _ProviderDiscriminatorSchema:
    """Names the discriminator in the JSON schema (a callable Discriminator leaves it out), and lists the variants
    as ``anyOf``: the Prefect UI renders ``anyOf`` as a choice between the two forms (``oneOf`` only as raw JSON).
    The variants never overlap (``provider`` is a const, and required by the gateway one), so a value matches
    exactly one of them either way."""

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        if "oneOf" in schema:
            schema["anyOf"] = schema.pop("oneOf")
        schema["discriminator"] = {"propertyName": "provider"}
        return schema


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


class EditSpec(StrictModel):
    width: int = Field(1920, ge=16, le=4096, description="Canvas width in pixels.")
    height: int = Field(1080, ge=16, le=4096, description="Canvas height in pixels.")
    fps: int = Field(25, ge=1, le=120, description="Output frames per second.")
    video_codec: Literal["h264", "h265"] = Field("h264", description="Output video codec.")
    crf: int = Field(23, ge=0, le=51, description="Constant rate factor (quality).")
    render: bool = Field(False, description="Also render the project with the direct-edit API into a new Vid.")


class EditResult(BaseModel):
    project_id: str
    group_id: str | None = None
    rendered_vid: str | None = None


class TranscodeSpec(StrictModel):
    template_id: str = Field(
        "demo-transcode-template", pattern=TEMPLATE_ID_PATTERN, description="VOD workflow (transcode template) id."
    )
    watermark_text: str | None = Field(
        None, max_length=200, description="Text for the template's text watermark variable."
    )
    clip_start_ms: int | None = Field(None, ge=0, le=86_400_000, description="Clip the output from this time (ms).")
    clip_end_ms: int | None = Field(None, ge=0, le=86_400_000, description="Clip the output up to this time (ms).")
    priority: int = Field(0, ge=-5, le=5, description="Workflow priority, -5..5.")
    low_priority: bool = Field(False, description="Use idle-time (cheaper, slower) transcoding.")

    @model_validator(mode="after")
    def _clip_order(self) -> TranscodeSpec:
        start, end = self.clip_start_ms, self.clip_end_ms
        if start is not None and end is not None and end <= start:
            raise ValueError(f"clip_end_ms: must be after clip_start_ms ({start}), got {end}")
        return self


class TranscodeOutput(BaseModel):
    file_id: str | None = None
    store_uri: str | None = None
    format: str | None = None
    duration: float | None = None
    size: int | None = None


class TranscodeResult(BaseModel):
    run_id: str
    status: JobState
    outputs: list[TranscodeOutput] = []


class TranslateSpec(StrictModel):
    source_language: Literal["zh", "en"] = Field("zh", description="Spoken/subtitle language of the clip.")
    target_languages: _unique_list(
        TargetLanguage, ["en", "ja"], "One project per language, each at most once: "
        "zh en ja ko de fr ru es pt it id vi th ar tr.", max_length=15,
    )
    translation_types: _unique_list(
        TranslationType, ["SubtitleTranslation", "VoiceTranslation"],
        "Subtitle, +Voice, +Facial translation (each at most once).", min_length=1, max_length=3,
    )
    recognition: Literal["OCR", "ASR"] = Field("ASR", description="Read source subtitles by OCR or speech (ASR).")


class LanguageResult(BaseModel):
    language: str
    project_id: str
    status: JobState
    output_vid: str | None = None
    output_url: str | None = None
    srt_key: str | None = None
    vtt_key: str | None = None
    error: str | None = None


class ProductionRequest(StrictModel):
    """Everything one production needs: prompt to translated videos."""

    title: str = Field(
        "clipflow", pattern=TITLE_PATTERN, max_length=128,
        description="Project and file title: 1-128 letters, digits, CJK, - and _.",
    )
    clip: ClipSpec = Field(default_factory=JimengClipSpec)
    space_name: str = Field(
        "demo", pattern=SPACE_NAME_PATTERN, description="VOD space that receives the media (letters, digits, - _)."
    )
    edit: EditSpec = Field(default_factory=EditSpec)
    transcode: TranscodeSpec = Field(default_factory=TranscodeSpec)
    translate: TranslateSpec = Field(default_factory=TranslateSpec)
    blocks: BlockRefs = Field(default_factory=BlockRefs)


class ProductionResult(BaseModel):
    title: str
    status: JobState
    clip: GeneratedClip
    edit: EditResult
    transcode: TranscodeResult
    languages: list[LanguageResult]
