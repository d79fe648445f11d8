"""One production: everything from prompt to translated videos."""

from __future__ import annotations

from pydantic import BaseModel, Field

from flows.models.clip import ClipSpec, GeneratedClip, JimengClipSpec
from flows.models.edit import EditResult, EditSpec
from flows.models.rules import SPACE_NAME_PATTERN, TITLE_PATTERN, BlockRefs, StrictModel
from flows.models.transcode import TranscodeResult, TranscodeSpec
from flows.models.translate import LanguageResult, TranslateSpec
from providers.states import JobState


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
