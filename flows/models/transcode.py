"""The transcode stage's parameters and result.

Every StartWorkflow field of the vendor page has a field here (see docs/vendor-fields.md): the source as a Vid or
as a file of the space (``source_file``: DirectUrl), and every ``Input.OverrideParams`` kind (Logo, Snapshot,
TranscodeAudio, TranscodeVideo), one item or several, as small nested models the Prefect form renders as
sections. Rules a JSON schema can carry are in the schema (Prefect refuses at Submit); cross-field ones are
validators.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from flows.models.rules import TEMPLATE_ID_PATTERN, StrictModel
from providers.states import JobState

CLIP_MAX_MS = 86_400_000
CALLBACK_ARGS_MAX_BYTES = 512  # StartWorkflow.CallbackArgs (vendor page)
SNAPSHOT_SIZE_MAX = 4096  # SnapshotOverride.Width/Height: [0, 4096]

# Output path variables of the vendor's "custom output file path" page (doc 4/130881); {{count}}, {{width}} and
# {{height}} exist for snapshots only.
FILE_NAME_VARIABLES = ("fileName", "fileTitle", "filePrefix", "vid", "templateId", "random", "outFormat")
SNAPSHOT_FILE_NAME_VARIABLES = (*FILE_NAME_VARIABLES, "count", "width", "height")


def _file_name_pattern(variables: tuple[str, ...]) -> str:
    # Fixed parts: letters, digits, - _ . and / between folders; never a leading / (no absolute paths).
    var = r"\{\{(?:" + "|".join(variables) + r")\}\}"
    return rf"^(?:[A-Za-z0-9_.-]|{var})(?:[A-Za-z0-9_./-]|{var}){{0,254}}$"


FILE_NAME_PATTERN = _file_name_pattern(FILE_NAME_VARIABLES)
SNAPSHOT_FILE_NAME_PATTERN = _file_name_pattern(SNAPSHOT_FILE_NAME_VARIABLES)
_FILE_NAME_HELP = (
    "Output file path: letters, digits, - _ . / and the variables {{fileTitle}} {{fileName}} {{filePrefix}} "
    "{{vid}} {{templateId}} (the workflow id) {{random}} {{outFormat}}; no leading /, no '..'. "
)


def _no_parent_folder(value: str | None) -> str | None:
    if value is not None and (".." in value or "//" in value):
        raise ValueError("must not contain '..' or '//' (a path inside the space, never above it)")
    return value


FileName = Annotated[str | None, AfterValidator(_no_parent_folder)]

SOURCE_FILE_MAX_BYTES = 1024  # an object key
# No leading '/', no backslash or control character; the validator adds the rest (a user-given location).
SOURCE_FILE_PATTERN = r"^[^/\\\x00-\x1f\x7f][^\\\x00-\x1f\x7f]*$"


def source_file_problem(value: str) -> str | None:
    """Why ``value`` is not the FileName of one file inside the production's space (None when it is). It is a
    location the user typed: never a URL, another bucket, an absolute path or a path that climbs out."""
    if "://" in value or value.lower().startswith(("s3:", "tos:", "http:", "https:")):
        return "must be a file name inside the production's VOD space (e.g. uploads/intro.mp4), not a URL"
    if len(value.encode()) > SOURCE_FILE_MAX_BYTES:
        return f"must be at most {SOURCE_FILE_MAX_BYTES} bytes (UTF-8)"
    if value.startswith("/") or "\\" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "must be a relative path without backslashes or control characters"
    if any(part in ("", ".", "..") for part in value.split("/")):
        return "must not have empty, '.' or '..' parts (a file inside the space, never above it)"
    return None


def _source_file(value: str | None) -> str | None:
    if value is not None and (problem := source_file_problem(value)):
        raise ValueError(problem)
    return value


SourceFile = Annotated[str | None, AfterValidator(_source_file)]


def _template_ids(description: str) -> Any:
    return Field(
        ["All"], min_length=1, max_length=20, json_schema_extra={"uniqueItems": True},
        description=description + " 'All' = every template of that kind in the workflow.",
    )


def _clip_order(start: int | None, end: int | None, prefix: str = "clip_") -> None:
    if start is not None and end is not None and end <= start:
        raise ValueError(f"{prefix}end_ms: must be after {prefix}start_ms ({start}), got {end}")


def _unique_ids(ids: list[str]) -> list[str]:
    if len(set(ids)) != len(ids):
        raise ValueError(f"must not repeat a value (got {ids})")
    return ids


TemplateIds = Annotated[list[Annotated[str, Field(pattern=TEMPLATE_ID_PATTERN)]], AfterValidator(_unique_ids)]


class VideoOverride(StrictModel):
    """TranscodeVideo override: where the video renditions go, their clip and watermark template. The first
    item's clip may also be given as the spec's ``clip_start_ms``/``clip_end_ms``."""

    model_config = ConfigDict(title="Video renditions")

    template_ids: TemplateIds = _template_ids("Video transcode templates this applies to.")
    clip_start_ms: int | None = Field(None, ge=0, le=CLIP_MAX_MS, description="Clip these renditions from (ms).")
    clip_end_ms: int | None = Field(None, ge=1, le=CLIP_MAX_MS, description="Clip these renditions up to (ms).")
    file_name: FileName = Field(None, pattern=FILE_NAME_PATTERN, max_length=255, description=_FILE_NAME_HELP)
    logo_template_id: str | None = Field(
        None, pattern=TEMPLATE_ID_PATTERN, description="Watermark (logo) template to burn into these renditions."
    )

    @model_validator(mode="after")
    def _order(self) -> VideoOverride:
        _clip_order(self.clip_start_ms, self.clip_end_ms)
        return self


class AudioOverride(StrictModel):
    """TranscodeAudio override: clip and output path of the audio-only renditions."""

    model_config = ConfigDict(title="Audio renditions")

    template_ids: TemplateIds = _template_ids("Audio transcode templates this applies to.")
    clip_start_ms: int | None = Field(None, ge=0, le=CLIP_MAX_MS, description="Clip the audio from this time (ms).")
    clip_end_ms: int | None = Field(None, ge=1, le=CLIP_MAX_MS, description="Clip the audio up to this time (ms).")
    file_name: FileName = Field(None, pattern=FILE_NAME_PATTERN, max_length=255, description=_FILE_NAME_HELP)

    @model_validator(mode="after")
    def _order(self) -> AudioOverride:
        _clip_order(self.clip_start_ms, self.clip_end_ms)
        return self


class SnapshotOverride(StrictModel):
    """Snapshot override: which frames the workflow's snapshot templates take and where they go."""

    model_config = ConfigDict(title="Snapshots")

    template_ids: TemplateIds = _template_ids("Snapshot templates this applies to.")
    file_name: FileName = Field(
        None, pattern=SNAPSHOT_FILE_NAME_PATTERN, max_length=255,
        description=_FILE_NAME_HELP + "Snapshots also: {{count}} {{width}} {{height}}.",
    )
    file_index: FileName = Field(
        None, pattern=SNAPSHOT_FILE_NAME_PATTERN, max_length=255, description="Index file path (sample snapshots)."
    )
    offset_time_ms: int | None = Field(
        None, ge=0, le=CLIP_MAX_MS, description="Time between snapshots (ms): poster, animated and looping types."
    )
    sample_offsets_s: list[Annotated[float, Field(ge=0, le=CLIP_MAX_MS / 1000)]] | None = Field(
        None, max_length=100, description="Sample snapshot times (seconds)."
    )
    offset_time_list_ms: list[Annotated[int, Field(ge=0, le=CLIP_MAX_MS)]] | None = Field(
        None, max_length=100, description="Animated snapshot times (ms): Dynpost templates."
    )
    width: int | None = Field(
        None, ge=0, le=SNAPSHOT_SIZE_MAX, description="Sample snapshot width (px); 0 = scale from the height."
    )
    height: int | None = Field(
        None, ge=0, le=SNAPSHOT_SIZE_MAX, description="Sample snapshot height (px); 0 = scale from the width."
    )


WATERMARK_TEXT_MAX = 200
WatermarkKey = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
WatermarkText = Annotated[str, Field(min_length=1, max_length=WATERMARK_TEXT_MAX)]


class Watermark(StrictModel):
    """Logo override: the texts of one watermark template's variables (several variables at once)."""

    model_config = ConfigDict(title="Watermark texts")

    logo_template_id: str = Field(
        "All", pattern=TEMPLATE_ID_PATTERN, description="Watermark template these texts go to; All = every one."
    )
    texts: dict[WatermarkKey, WatermarkText] = Field(
        ..., min_length=1, max_length=20,
        description="Variable key -> text, e.g. {\"title\": \"Harbour\", \"date\": \"2026-12-07\"}; each key "
        "must be a text variable of that watermark template (checked before paying).",
    )


_MORE = "Further {kind} items, each for other templates than the first item's (several items of a kind)."
OVERRIDE_ITEMS_MAX = 10

_RUN_DESCRIPTION = (
    "Raise it to deliberately pay for a new workflow run of the same request (e.g. after changing the "
    "template in the VOD console): a new run number is a new ClientToken and cache key. 0 = the first run; "
    "an unchanged spec never pays twice."
)


class TranscodeSpec(StrictModel):
    """StartWorkflow: the VOD workflow (transcode template) and the overrides of this run."""

    model_config = ConfigDict(title="Transcode")

    template_id: str = Field(
        "demo-transcode-template", pattern=TEMPLATE_ID_PATTERN, description="VOD workflow (transcode template) id."
    )
    source_file: SourceFile = Field(
        None, pattern=SOURCE_FILE_PATTERN, max_length=SOURCE_FILE_MAX_BYTES,
        description="Transcode this file of the production's VOD space instead of the production's video "
        "(StartWorkflow DirectUrl): its FileName in the space, e.g. uploads/intro.mp4. Only a file of this "
        "space: no URL, no bucket, no leading / and no '..'.",
    )
    watermark_text: str | None = Field(
        None, max_length=200,
        description="Text for the template's text-watermark variable (its key is read from the template).",
    )
    watermark_variable: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
        description="The watermark variable's key, when the template has several (default: its only one).",
    )
    logo_template_id: str = Field(
        "All", pattern=TEMPLATE_ID_PATTERN, description="Watermark template the text goes to; All = every one."
    )
    clip_start_ms: int | None = Field(None, ge=0, le=CLIP_MAX_MS, description="Clip the video from this time (ms).")
    clip_end_ms: int | None = Field(None, ge=0, le=CLIP_MAX_MS, description="Clip the video up to this time (ms).")
    watermarks: list[Watermark] = Field(
        default_factory=list, max_length=OVERRIDE_ITEMS_MAX,
        description="Texts of several watermark variables, per watermark template (beside or instead of "
        "watermark_text).",
    )
    video: VideoOverride | None = Field(None, description="Video renditions: templates, output path, watermark.")
    more_video: list[VideoOverride] = Field(
        default_factory=list, max_length=OVERRIDE_ITEMS_MAX, description=_MORE.format(kind="video rendition")
    )
    audio: AudioOverride | None = Field(None, description="Audio renditions: templates, clip, output path.")
    more_audio: list[AudioOverride] = Field(
        default_factory=list, max_length=OVERRIDE_ITEMS_MAX, description=_MORE.format(kind="audio rendition")
    )
    snapshot: SnapshotOverride | None = Field(None, description="Snapshots: times, size, output path.")
    more_snapshot: list[SnapshotOverride] = Field(
        default_factory=list, max_length=OVERRIDE_ITEMS_MAX, description=_MORE.format(kind="snapshot")
    )
    callback_args: str | None = Field(
        None, max_length=CALLBACK_ARGS_MAX_BYTES,
        description="Passed back in the WorkflowComplete event (at most 512 bytes). Never put a secret here.",
    )
    priority: int = Field(0, ge=-5, le=5, description="Workflow priority, -5..5.")
    low_priority: bool = Field(False, description="Use idle-time (cheaper, slower) transcoding.")
    run: int = Field(0, ge=0, le=1000, description=_RUN_DESCRIPTION)

    @model_validator(mode="after")
    def _rules(self) -> TranscodeSpec:
        _clip_order(self.clip_start_ms, self.clip_end_ms)
        if self.callback_args is not None and len(self.callback_args.encode()) > CALLBACK_ARGS_MAX_BYTES:
            raise ValueError(f"callback_args: must be at most {CALLBACK_ARGS_MAX_BYTES} bytes (UTF-8)")
        if self.watermark_variable and not self.watermark_text:
            raise ValueError("watermark_variable: set watermark_text too (the variable needs a value)")
        if self.video and (self.clip_start_ms is not None or self.clip_end_ms is not None) and (
            self.video.clip_start_ms is not None or self.video.clip_end_ms is not None
        ):
            raise ValueError("clip_start_ms: the first video item's clip is set twice (here and in video): set it "
                             "once")
        logos = [("watermarks", f"item {n}", [w.logo_template_id]) for n, w in enumerate(self.watermarks)]
        if self.watermark_text:
            logos.insert(0, ("logo_template_id", "watermark_text's", [self.logo_template_id]))
        _distinct_targets(logos, "watermark template")
        clip = self.clip_start_ms is not None or self.clip_end_ms is not None
        first_video = self.video.template_ids if self.video else ["All"] if clip else None
        for kind, first, more in (
            ("video", first_video, self.more_video),
            ("audio", self.audio.template_ids if self.audio else None, self.more_audio),
            ("snapshot", self.snapshot.template_ids if self.snapshot else None, self.more_snapshot),
        ):
            items = ([(kind, "its item", first)] if first is not None else []) + [
                (f"more_{kind}", f"item {n}", item.template_ids) for n, item in enumerate(more)
            ]
            _distinct_targets(items, f"{kind} template")
        return self


def _distinct_targets(items: list[tuple[str, str, list[str]]], what: str) -> None:
    """Several override items of one kind must not aim at the same template: which one wins is not documented
    by the vendor, so clipflow refuses the ambiguity instead of guessing. ``items``: (field, which, ids)."""
    seen: dict[str, str] = {}
    for field, which, ids in items:
        if "All" in ids and len(items) > 1:
            raise ValueError(f"{field}: {which} targets All, which applies to every {what}, so it cannot be "
                             "combined with other items: name the templates of each item")
        for tid in ids:
            if tid in seen:
                raise ValueError(f"{field}: {which} targets {what} {tid!r}, already the target of {seen[tid]}")
            seen[tid] = f"{field} ({which})"


class TranscodeOutput(BaseModel):
    """One rendition, as the workflow reported it. Never a signed URL: ids and store URIs only."""

    file_id: str | None = None
    store_uri: str | None = None
    file_name: str | None = None  # the path inside the space's bucket (StoreUri without the bucket)
    format: str | None = None
    file_type: str | None = None  # video | audio
    definition: str | None = None
    template_id: str | None = None
    duration: float | None = None  # seconds
    size: int | None = None  # bytes
    width: int | None = None
    height: int | None = None
    bitrate: int | None = None
    md5: str | None = None
    logo_type: str | None = None


class SnapshotOutput(BaseModel):
    type: str | None = None  # Poster, Sample, Sprite, Dynpost ...
    template_id: str | None = None
    store_uris: list[str] = []
    width: int | None = None
    height: int | None = None


class TranscodeResult(BaseModel):
    run_id: str
    status: JobState
    outputs: list[TranscodeOutput] = []
    snapshots: list[SnapshotOutput] = []
    template_id: str | None = None
    run: int = 0
    source_vid: str | None = None  # the video transcoded (Vid mode) ...
    source_file: str | None = None  # ... or its FileName in the space (DirectUrl mode)
    overrides: dict[str, Any] = {}  # Input.OverrideParams as sent: the texts, paths and clips applied
