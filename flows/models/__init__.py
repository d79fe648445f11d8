"""Flow parameters and results. Pydantic models so the Prefect UI renders proper forms.

Parameter models are strict (``StrictModel``: an unknown field is refused, naming it) and carry every rule a JSON
schema can express (lengths, enums, ranges, patterns), so Prefect refuses a bad run at Submit, in the UI and over
REST (``create_flow_run`` validates parameters against the deployment's schema). Rules a schema cannot express
(cross-field, per-model) are pydantic validators, and the provider's own rules run in ``validate_production``
before the first paid call. Result models stay tolerant.
"""

from __future__ import annotations

from flows.models.clip import (
    ClipSpec, GatewayClipSpec, GeneratedClip, ImportedClip, JimengClipSpec, StoredClip, clip_provider,
)
from flows.models.edit import EditResult, EditSpec
from flows.models.production import ProductionRequest, ProductionResult
from flows.models.rules import (
    BLOCK_NAME_PATTERN, IMAGE_BASE64_MAX_CHARS, IMAGE_REF_PATTERN, IMAGE_URL_PATTERN, SEED_MAX, SEED_MIN,
    SPACE_NAME_PATTERN, TEMPLATE_ID_PATTERN, TITLE_MAX_CHARS, TITLE_PATTERN, BlockRefs, GatewayAspectRatio,
    GatewayModel, GatewaySize,
    JimengAspectRatio, StrictModel, TargetLanguage, TranslationType,
)
from flows.models.transcode import (
    AudioOverride, SnapshotOutput, SnapshotOverride, TranscodeOutput, TranscodeResult, TranscodeSpec, VideoOverride,
    Watermark,
)
from flows.models.translate import (
    LanguageResult, ReviewDecision, ReviewOutcome, SubtitleStyle, TranslateSpec, TranslateVideoResult, TranslationOutput,
    UtteranceEdit,
)

__all__ = [
    "BLOCK_NAME_PATTERN", "IMAGE_BASE64_MAX_CHARS", "IMAGE_REF_PATTERN", "IMAGE_URL_PATTERN", "SEED_MAX", "SEED_MIN",
    "SPACE_NAME_PATTERN", "TEMPLATE_ID_PATTERN", "TITLE_MAX_CHARS", "TITLE_PATTERN", "BlockRefs", "ClipSpec",
    "EditResult", "EditSpec", "GatewayAspectRatio",
    "GatewayClipSpec", "GatewayModel", "GatewaySize", "GeneratedClip", "ImportedClip", "JimengAspectRatio",
    "JimengClipSpec", "LanguageResult", "TranslateVideoResult", "ProductionRequest", "ProductionResult", "ReviewDecision", "ReviewOutcome",
    "StoredClip", "StrictModel", "SubtitleStyle", "TargetLanguage", "TranscodeOutput", "TranscodeResult", "TranscodeSpec",
    "TranslateSpec", "TranslationOutput", "TranslationType", "UtteranceEdit", "clip_provider",
]
__all__ += ["AudioOverride", "SnapshotOutput", "SnapshotOverride", "VideoOverride", "Watermark"]
