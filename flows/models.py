"""Flow parameters and results. Pydantic models so the Prefect UI renders proper forms."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from providers.states import JobState


class BlockRefs(BaseModel):
    """Names of the Prefect blocks to load credentials and storage from."""

    volcengine: str = Field("clipflow", description="VolcengineCredentials block name.")
    gateway: str = Field("clipflow", description="VideoGatewayCredentials block name (gateway models only).")
    bucket: str = Field("clipflow", description="prefect-aws S3Bucket block name where clips and subtitles go.")


class ClipSpec(BaseModel):
    """What to generate. Checked against the provider's rules before anything is paid for."""

    provider: Literal["jimeng", "gateway"] = Field("jimeng", description="Jimeng 3.0 Pro or an OpenAI-style gateway.")
    prompt: str = Field("", description="Text prompt (Jimeng: at most 800 characters).")
    image_url: str | None = Field(None, description="First-frame image URL (image-to-video).")
    image_base64: str | None = Field(None, description="First-frame image, base64 JPEG/PNG (Jimeng only).")
    aspect_ratio: str = Field("16:9", description="Jimeng: 16:9 4:3 1:1 3:4 9:16 21:9; grok-video-3: 2:3 3:2 1:1.")
    frames: Literal[121, 241] = Field(121, description="Jimeng length: 121 frames = 5 s, 241 = 10 s.")
    seed: int = Field(-1, description="Random seed; -1 random.")
    take: int = Field(
        0, ge=0, le=1000,
        description="Raise it to deliberately pay for a new generation of the same request (e.g. when the last "
        "one's output expired before it was stored). 0 = the first take.",
    )
    model: str = Field("grok-video-3", description="Gateway model: grok-video-3, veo3.1, sora-2 ...")
    size: str = Field("720P", description="Gateway output size.")


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


class EditSpec(BaseModel):
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


class TranscodeSpec(BaseModel):
    template_id: str = Field("demo-transcode-template", description="VOD workflow (transcode template) id.")
    watermark_text: str | None = Field(None, description="Text for the template's text watermark variable.")
    clip_start_ms: int | None = Field(None, ge=0, description="Clip the output from this time (ms).")
    clip_end_ms: int | None = Field(None, ge=0, description="Clip the output up to this time (ms).")
    priority: int = Field(0, ge=-5, le=5, description="Workflow priority, -5..5.")
    low_priority: bool = Field(False, description="Use idle-time (cheaper, slower) transcoding.")


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


class TranslateSpec(BaseModel):
    source_language: Literal["zh", "en"] = Field("zh", description="Spoken/subtitle language of the clip.")
    target_languages: list[str] = Field(["en", "ja"], description="One project per language: zh en ja ko de fr ...")
    translation_types: list[str] = Field(
        ["SubtitleTranslation", "VoiceTranslation"], description="Subtitle, +Voice, +Facial translation."
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


class ProductionRequest(BaseModel):
    """Everything one production needs: prompt to translated videos."""

    title: str = Field("clipflow", description="Project and file title (letters, digits, CJK, - and _).")
    clip: ClipSpec = Field(default_factory=ClipSpec)
    space_name: str = Field("demo", description="VOD space that receives the media.")
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
