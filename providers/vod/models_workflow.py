"""Media-processing workflows: StartWorkflow, GetWorkflowExecution, GetWorkflowExecutionResult."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from providers.states import JobState, workflow_state
from providers.vod.models_base import (
    JSON_STRING_OK,
    LaxFloat,
    LaxInt,
    LaxList,
    NonEmptyStr,
    OpenVodParams,
    VodParams,
    VodRequest,
    VodResult,
    dumps_compact,
    rule_error,
)

CALLBACK_ARGS_MAX_BYTES = 512
CLIENT_TOKEN_MAX = 64
SNAPSHOT_SIZE_MAX = 4096


FILE_NAME_MAX_BYTES = 1024


class DirectUrl(VodParams):
    """A file already in a space's storage, by its FileName. The name is a location a caller chose, so it is
    held to one object key's rules here too: no URL, no leading '/', no empty, '.' or '..' part."""

    file_name: NonEmptyStr
    space_name: str | None = None  # required by the vendor for built-in workflows
    bucket_name: str | None = None  # the space's own bucket (ListSpace); VOD finds it from SpaceName when absent

    @field_validator("file_name")
    @classmethod
    def _file_name(cls, v: str) -> str:
        if "://" in v:
            raise rule_error("must be a FileName inside the space, not a URL")
        if len(v.encode()) > FILE_NAME_MAX_BYTES or v.startswith("/") or "\\" in v or any(
            ord(c) < 32 or ord(c) == 127 for c in v
        ):
            raise rule_error(f"must be a relative path of at most {FILE_NAME_MAX_BYTES} bytes, without backslashes "
                             "or control characters")
        if any(part in ("", ".", "..") for part in v.split("/")):
            raise rule_error("must not have empty, '.' or '..' parts")
        return v

    @field_validator("space_name", "bucket_name")
    @classmethod
    def _named(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise rule_error("must be non-empty when set")
        return v


class ClipRange(OpenVodParams):
    start_time: int | None = None  # ms
    end_time: int | None = None  # ms; 0 (the vendor's example) = to the end

    @model_validator(mode="after")
    def _order(self) -> ClipRange:
        start, end = self.start_time or 0, self.end_time or 0
        if start < 0 or end < 0:
            raise rule_error("StartTime and EndTime must be >= 0", "StartTime/EndTime")
        if end and end <= start:
            raise rule_error(f"EndTime ({end}) must be after StartTime ({start})", "EndTime")
        return self


class LogoOverride(OpenVodParams):
    template_id: NonEmptyStr
    vars: dict[str, str] | None = None  # the watermark template's variable key -> text (several at once)

    @field_validator("vars")
    @classmethod
    def _vars(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is not None and any(not k.strip() for k in v):
            raise rule_error("variable keys must be non-empty")
        return v


class SnapshotOverride(OpenVodParams):
    template_id: list[str]
    file_name: str | None = None
    file_index: str | None = None
    offset_time: int | None = None
    sample_offsets: list[float] | None = None
    offset_time_list: list[int] | None = None
    width: int | None = None
    height: int | None = None

    @field_validator("width", "height")
    @classmethod
    def _size(cls, v: int | None) -> int | None:
        if v is not None and not 0 <= v <= SNAPSHOT_SIZE_MAX:
            raise rule_error(f"must be in [0, {SNAPSHOT_SIZE_MAX}]")
        return v


class TranscodeAudioOverride(OpenVodParams):
    template_id: list[str]
    clip: ClipRange | None = None
    file_name: str | None = None


class TranscodeVideoOverride(OpenVodParams):
    template_id: list[str]
    clip: ClipRange | None = None
    file_name: str | None = None
    logo_template_id: str | None = None


class OverrideParams(OpenVodParams):
    logo: list[LogoOverride] | None = None
    snapshot: list[SnapshotOverride] | None = None
    transcode_audio: list[TranscodeAudioOverride] | None = None
    transcode_video: list[TranscodeVideoOverride] | None = None


class WorkflowParams(OpenVodParams):
    override_params: OverrideParams | None = None


class StartWorkflowRequest(VodRequest):
    """Holds DirectUrl/Input as objects; ``to_wire`` encodes them as the JSON strings a POST body needs."""

    action = "StartWorkflow"

    vid: str | None = None
    direct_url: Annotated[DirectUrl | None, JSON_STRING_OK] = None
    template_id: NonEmptyStr
    input: Annotated[WorkflowParams | None, JSON_STRING_OK] = None
    priority: int | None = None
    callback_args: str | None = None
    enable_low_priority: bool | None = None
    client_token: str | None = None

    @field_validator("vid")
    @classmethod
    def _vid(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise rule_error("must be non-empty when set")
        return v

    @field_validator("priority")
    @classmethod
    def _priority(cls, v: int | None) -> int | None:
        if v is not None and not -5 <= v <= 5:
            raise rule_error("must be in [-5, 5]")
        return v

    @field_validator("callback_args")
    @classmethod
    def _callback_args(cls, v: str | None) -> str | None:
        if v is not None and len(v.encode()) > CALLBACK_ARGS_MAX_BYTES:
            raise rule_error(f"must be at most {CALLBACK_ARGS_MAX_BYTES} bytes (UTF-8)")
        return v

    @field_validator("client_token")
    @classmethod
    def _client_token(cls, v: str | None) -> str | None:
        if v is not None and not (0 < len(v) <= CLIENT_TOKEN_MAX and all(" " <= c <= "~" for c in v)):
            raise rule_error(f"must be 1-{CLIENT_TOKEN_MAX} printable ASCII characters")
        return v

    @model_validator(mode="after")
    def _vid_xor_direct_url(self) -> StartWorkflowRequest:
        if (self.vid is None) == (self.direct_url is None):
            got = "both" if self.vid is not None else "neither"
            raise rule_error(f"exactly one of Vid and DirectUrl must be set (got {got})", "Vid/DirectUrl")
        return self

    @property
    def idempotent(self) -> bool:
        """A repeated call is harmless only when it carries a ClientToken."""
        return self.client_token is not None

    def to_wire(self) -> dict[str, Any]:
        body = super().to_wire()
        for key in ("DirectUrl", "Input"):
            if key in body:
                body[key] = dumps_compact(body[key])
        return body


class TaskDetail(VodResult):
    display_name: str | None = None
    template_id: str | None = None
    status: str | None = None
    progress: LaxInt = None


class WorkflowExecution(VodResult):
    run_id: str
    vid: str | None = None
    template_id: str | None = None
    template_name: str | None = None
    space_name: str | None = None
    status: str | None = None  # "0" success, 1xxx/2xxx failed, PendingStart, Running, Terminated
    create_time: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    callback_args: str | None = None
    priority: LaxInt = None
    enable_low_priority: bool | None = None
    tasks_detail: LaxList[TaskDetail] = Field(default_factory=list)
    input: Annotated[dict[str, Any] | None, JSON_STRING_OK] = None
    direct_url: Annotated[dict[str, Any] | None, JSON_STRING_OK] = None

    @property
    def state(self) -> JobState:
        return workflow_state(self.status)


class VideoStreamMeta(VodResult):
    codec: str | None = None
    width: LaxInt = None
    height: LaxInt = None
    duration: LaxFloat = None
    definition: str | None = None
    bitrate: LaxInt = None
    fps: LaxFloat = None


class AudioStreamMeta(VodResult):
    codec: str | None = None
    duration: LaxFloat = None
    sample_rate: LaxInt = None
    bitrate: LaxInt = None
    quality: str | None = None
    channels: LaxInt = None


class TranscodeInfo(VodResult):
    file_id: str | None = None
    store_uri: str | None = None  # "<bucket>/<path>": the path is the output's file name in the space
    format: str | None = None
    duration: LaxFloat = None  # seconds
    size: LaxInt = None  # bytes
    md5: str | None = None
    file_type: str | None = None  # video | audio
    logo_type: str | None = None
    encrypt: bool | None = None
    create_time: str | None = None
    definition: str | None = None
    template_id: str | None = None  # the transcode template that made it
    width: LaxInt = None
    height: LaxInt = None
    bitrate: LaxInt = None
    video_stream_meta: VideoStreamMeta | None = None
    audio_stream_meta: AudioStreamMeta | None = None

    @property
    def file_name(self) -> str | None:
        """The output's path inside its bucket: StoreUri without the bucket."""
        if not self.store_uri or "/" not in self.store_uri:
            return None
        return self.store_uri.split("/", 1)[1]


class SnapshotInfo(VodResult):
    """One snapshot task's output: ``{Type, TemplateId, <Type>: {StoreUri | StoreUris, Width, Height ...}}``;
    the inner object's shape depends on the type, so it is kept as it came."""

    type: str | None = None
    template_id: str | None = None

    @property
    def detail(self) -> dict[str, Any]:
        inner = (self.model_extra or {}).get(self.type or "")
        return inner if isinstance(inner, dict) else {}

    @property
    def store_uris(self) -> list[str]:
        found = self.detail.get("StoreUris") or []
        single = self.detail.get("StoreUri")
        return [str(u) for u in ([single] if single else []) + list(found) if u]


class WorkflowExecutionResult(VodResult):
    run_id: str | None = None
    vid: str | None = None
    template_id: str | None = None
    space_name: str | None = None
    status: str | None = None
    callback_args: str | None = None
    client_token: str | None = None
    direct_url: Annotated[dict[str, Any] | None, JSON_STRING_OK] = None
    transcode_infos: LaxList[TranscodeInfo] = Field(default_factory=list)
    snapshots: LaxList[dict[str, Any]] = Field(default_factory=list)  # {Type, Poster|Sprite|Sample...}: many shapes

    @property
    def snapshot_infos(self) -> list[SnapshotInfo]:
        return [SnapshotInfo.model_validate(s) for s in self.snapshots if isinstance(s, dict)]

    @property
    def state(self) -> JobState:
        return workflow_state(self.status)
