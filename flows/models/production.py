"""One production: everything from prompt to translated videos."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from flows.costs.model import RunCost
from providers.pricing import GATEWAY_CLIP_SECONDS, jimeng_seconds
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


Source = Literal["auto", "clip", "edit"]
_SOURCE_HELP = (
    "auto: the rendered edit when edit.render is on, else the generated clip; clip: always the clip; edit: the "
    "rendered edit (needs edit.render, a paid render)."
)


class StageSources(StrictModel):
    """Which video each later stage starts from: the generated clip, or the edit project rendered to a new Vid."""

    model_config = ConfigDict(title="Sources")

    transcode: Source = Field("auto", description="The video the transcode workflow starts from. " + _SOURCE_HELP)
    translate: Source = Field("auto", description="The video the translations start from. " + _SOURCE_HELP)

    def resolved(self, render: bool) -> dict[str, Literal["clip", "edit"]]:
        """Stage -> ``clip`` or ``edit``, ``auto`` decided by ``edit.render``."""
        return {
            stage: ("edit" if render else "clip") if choice == "auto" else choice
            for stage, choice in (("transcode", self.transcode), ("translate", self.translate))
        }


class StageVideos(BaseModel):
    """The video each stage started from: ``transcode`` and ``translate`` are the clip's or the rendered Vid."""

    clip: str
    edit: str | None = Field(None, description="The Vid the edit project was built on.")
    rendered: str | None = None
    transcode: str | None = Field(None, description="None when transcode.source_file named a file of the space.")
    transcode_file: str | None = None
    translate: str
    sources: dict[str, str] = Field(
        default_factory=dict, description="Stage -> 'clip', 'edit' or (transcode) 'file', as resolved.",
    )


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
    sources: StageSources = Field(default_factory=StageSources, validate_default=True)
    blocks: BlockRefs = Field(default_factory=BlockRefs)

    # Field validators (not model ones), so a refusal names its field: edit.cover_times_ms, sources.transcode.
    @field_validator("edit")
    @classmethod
    def _cover_inside_clip(cls, edit: EditSpec, info: ValidationInfo) -> EditSpec:
        """Cover times are ms into the edit, which lasts as long as the clip: Jimeng's by its frames. A gateway
        clip's length is known once it is generated (checked then, before the project is paid); a time at or past
        the longest clip a gateway model makes can never fit, and is refused before anything is paid."""
        clip = info.data.get("clip")
        jimeng = getattr(clip, "provider", "") == "jimeng"
        seconds = jimeng_seconds(getattr(clip, "frames", None)) if jimeng else GATEWAY_CLIP_SECONDS
        if seconds and not edit.disable_cover and max(edit.cover_times_ms) >= seconds * 1000:
            what = f"the {seconds:g} s clip" if jimeng else f"a gateway clip (at most {seconds:g} s)"
            raise ValueError(f"cover_times_ms: each must be before the end of {what} "
                             f"(< {int(seconds * 1000)} ms), got {max(edit.cover_times_ms)}")
        return edit

    @field_validator("sources")
    @classmethod
    def _sources_exist(cls, sources: StageSources, info: ValidationInfo) -> StageSources:
        """A stage that starts from the edit needs a render, holding what the stage works on."""
        edit, translate = info.data.get("edit"), info.data.get("translate")
        if edit is None:  # refused already, and named
            return sources
        if sources.transcode != "auto" and getattr(info.data.get("transcode"), "source_file", None):
            raise ValueError(f"transcode: is '{sources.transcode}' but transcode.source_file names the file to "
                             "transcode: leave sources.transcode 'auto' or clear transcode.source_file")
        for stage, source in sources.resolved(edit.render).items():
            if source != "edit":
                continue
            how = "is 'edit'" if getattr(sources, stage) == "edit" else "is 'auto' (the edit, as edit.render is on)"
            if not edit.render:
                raise ValueError(f"{stage}: is 'edit' but edit.render is false: turn on edit.render (a paid "
                                 f"render) or set sources.{stage} to 'clip'")
            if edit.disable_video:
                raise ValueError(f"{stage}: {how} but edit.disable_video renders no picture: set sources.{stage} "
                                 "to 'clip'")
            needs_audio = translate is not None and (
                translate.recognition == "ASR" or set(translate.translation_types) - {"SubtitleTranslation"}
            )
            if stage == "translate" and edit.disable_audio and needs_audio:
                raise ValueError(f"{stage}: {how} but edit.disable_audio renders no sound to recognise or dub: set "
                                 "sources.translate to 'clip', or keep the audio")
        return sources


class ProductionResult(BaseModel):
    title: str
    status: JobState
    clip: GeneratedClip
    edit: EditResult
    transcode: TranscodeResult
    languages: list[LanguageResult]
    videos: StageVideos | None = Field(None, description="Which Vid each stage started from.")
    cost: RunCost | None = Field(None, description="Estimate before paying and what this run bought (flows.costs).")
