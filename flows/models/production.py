"""One production: everything from prompt to translated videos."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from flows.costs.model import RunCost
from flows.models.clip import ClipSpec, GeneratedClip, JimengClipSpec, selected_clip_variant
from flows.models.edit import EditResult, EditSpec
from flows.models.rules import SPACE_NAME_PATTERN, TITLE_MAX_CHARS, TITLE_PATTERN, BlockRefs, StrictModel
from flows.models.transcode import TranscodeResult, TranscodeSpec
from flows.models.translate import LanguageResult, TranslateSpec
from providers.states import JobState


def _clip_errors_name_their_field(schema: dict[str, Any]) -> None:
    """Adds ``if a clip is given, then it is the variant its provider selects`` to the schema.

    Prefect's server answers a refused parameter with jsonschema's ``best_match``; on a failed ``anyOf`` (the clip
    union) that is "… is not valid under any of the given schemas", or a field of the variant that was not meant
    (the Jimeng ``provider`` of a gateway clip). The rule added here fails at the same place with the selected
    variant's errors alone, and comes first (``if`` sorts before ``properties``: alphabetically, as pydantic writes
    the schema and SQLite keeps it, and in PostgreSQL's JSONB), so it wins the tie and its own error is reported:
    ``'promt' was unexpected``, ``request.clip.size``. The UIs render the ``anyOf`` and ignore ``if``."""
    clip = schema.get("properties", {}).get("clip")
    if clip and "anyOf" in clip:
        schema["if"] = {"required": ["clip"]}
        schema["then"] = {"properties": {"clip": selected_clip_variant(clip)}}


class ProductionRequest(StrictModel):
    """Everything one production needs: prompt to translated videos."""

    model_config = ConfigDict(json_schema_extra=_clip_errors_name_their_field)

    title: str = Field(
        "clipflow", pattern=TITLE_PATTERN, max_length=TITLE_MAX_CHARS,
        description=(
            f"Project and file title: 1-{TITLE_MAX_CHARS} letters, digits, CJK, - and _ (the edit project's name "
            "adds a 15-character tag to it, within VOD's 128)."
        ),
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
    cost: RunCost | None = Field(None, description="Estimate before paying and what this run bought (flows.costs).")
