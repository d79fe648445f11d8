"""Every provider request a production will send, built offline before the first paid call.

``plan_production`` builds each stage's request from a ``ProductionRequest`` with the same builders the stages use,
values only known later standing in as placeholders of their real shape (a Vid, a fingerprint, a presigned URL, a
project id), and the values clipflow derives from the request included as sent: the edit project's name with its
``-cf<12 hex>`` tag, the import's UrlSet title and file name, the subtitle keys. A refusal is a
``RequestValidationError`` naming the request's field and the rule (a derived value names the field it comes from:
the tagged project name is the ``title``), raised before anything is paid for.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from flows.costs.estimate import clip_seconds
from flows.models import ImportedClip, ProductionRequest
from flows.models.rules import PROJECT_NAME_MAX_CHARS, TITLE_MAX_CHARS
from flows.stages.edit import build_project_request, tagged_project
from flows.stages.generate import build_clip_request
from flows.stages.transcode import build_workflow_request
from flows.stages.translate import build_translation_request
from providers.errors import RequestValidationError
from providers.gateway.models import GatewayVideoRequest
from providers.gateway.models import validate_request as validate_gateway_request
from providers.jimeng.models import JimengVideoRequest
from providers.jimeng.models import validate_request as validate_jimeng_request
from providers.vod.models import (
    CreateProjectRequest, StartWorkflowRequest, SubmitAITranslationWorkflowRequest, SubmitDirectEditTaskRequest,
    UploadMediaByUrlRequest, UrlSet,
)

# Placeholders of the shape the real values have (lengths included: they end up inside keys and names).
PLACEHOLDER_VID = "v0" + "0" * 30
PLACEHOLDER_RENDERED_VID = "v0" + "1" * 30  # the rendered edit: a stage that starts from it buys something else
PLACEHOLDER_FINGERPRINT = "0" * 64
PLACEHOLDER_SHA256 = "0" * 64
PLACEHOLDER_PROJECT_ID = "p" + "0" * 63
PLACEHOLDER_URL = f"https://bucket.invalid/clips/{PLACEHOLDER_SHA256}.mp4?X-Amz-Signature={'0' * 64}"
# A 640x360 PNG header: what the first-frame checks read of a bucket image that is fetched at submit time.
PLACEHOLDER_PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + struct.pack(">II", 640, 360) + b"\x08\x02\x00\x00\x00"
)
S3_KEY_MAX_BYTES = 1024


@dataclass(frozen=True)
class ProductionPlan:
    """What a production will send, stage by stage (placeholders where a value comes from an earlier stage)."""

    clip: JimengVideoRequest | GatewayVideoRequest
    upload: UploadMediaByUrlRequest
    project: CreateProjectRequest  # as sent: the name carries the fingerprint tag
    render: SubmitDirectEditTaskRequest | None
    workflow: StartWorkflowRequest
    translations: dict[str, SubmitAITranslationWorkflowRequest]
    subtitle_keys: list[str] = field(default_factory=list)

    def actions(self) -> list[str]:
        """Every provider action the plan holds, in order (a translation once per language)."""
        sent = ["clip", "UploadMediaByUrl", "CreateProject"]
        sent += ["SubmitDirectEditTaskAsync"] if self.render is not None else []
        return sent + ["StartWorkflow"] + ["SubmitAITranslationWorkflow"] * len(self.translations)


def plan_clip(request: ProductionRequest) -> JimengVideoRequest | GatewayVideoRequest:
    """The generation request, checked against the provider's own rules (a bucket image as the bytes it becomes)."""
    clip = build_clip_request(request.clip)
    if isinstance(clip, JimengVideoRequest):
        validate_jimeng_request(clip)
        if clip.first_frame_ref:
            validate_jimeng_request(build_clip_request(request.clip, PLACEHOLDER_PNG))
    else:
        validate_gateway_request(clip)
    return clip


def plan_upload(request: ProductionRequest) -> UploadMediaByUrlRequest:
    """The VOD import of the stored clip, as ``import_clip_to_vod`` sends it."""
    return UploadMediaByUrlRequest(
        space_name=request.space_name,
        url_sets=[UrlSet(
            source_url=PLACEHOLDER_URL, file_name=f"{PLACEHOLDER_SHA256}.mp4",
            title=f"clipflow-{PLACEHOLDER_FINGERPRINT[:16]}",
        )],
    )


def plan_project(request: ProductionRequest) -> CreateProjectRequest:
    """CreateProject as sent, the title tagged; a name the tag pushes over the vendor's limit names ``title``."""
    # As long as the clip asked for: the cover times must fall inside it.
    seconds = clip_seconds(request.clip)
    imported = ImportedClip(vid=PLACEHOLDER_VID, space_name=request.space_name, duration_seconds=seconds)
    built = build_project_request(request.title, imported, request.edit)
    try:
        return tagged_project(built, PLACEHOLDER_FINGERPRINT)
    except RequestValidationError as exc:
        if exc.field != "ProjectName":
            raise
        rule = (
            f"must be at most {TITLE_MAX_CHARS} characters (got {len(request.title)}): the edit project is named "
            f"after it plus a 15-character tag, and VOD takes at most {PROJECT_NAME_MAX_CHARS}"
            if len(request.title) > TITLE_MAX_CHARS else f"as the edit project's name: {exc.rule}"
        )
        raise RequestValidationError("title", rule, provider=exc.provider, action=exc.action) from None


def plan_workflow(request: ProductionRequest, source_vid: str = PLACEHOLDER_VID) -> StartWorkflowRequest:
    """StartWorkflow as the transcode stage sends it (a watermark key read later from the template stands in as
    the vendor's example key); a refused ``DirectUrl`` names the form's ``transcode.source_file``."""
    try:
        return build_workflow_request(source_vid, request.space_name, request.transcode)
    except RequestValidationError as exc:
        if not exc.field.startswith("DirectUrl"):
            raise
        raise RequestValidationError("transcode.source_file", exc.rule, provider=exc.provider,
                                     action=exc.action) from None


def subtitle_keys(request: ProductionRequest, project_id: str = PLACEHOLDER_PROJECT_ID) -> list[str]:
    """The bucket keys a finished translation writes (``collect_translation``): target and source, SRT and VTT."""
    names = [*request.translate.target_languages, f"{request.translate.source_language}.source"]
    return [f"subtitles/{project_id}/{name}.{ext}" for name in names for ext in ("srt", "vtt")]


def plan_production(request: ProductionRequest) -> ProductionPlan:
    """Build and validate every provider request ``request`` leads to; raise ``RequestValidationError`` naming
    the field and the rule on the first that would be refused. Free: nothing is sent, no block is loaded."""
    clip = plan_clip(request)
    upload = plan_upload(request)
    project = plan_project(request)
    render = (
        SubmitDirectEditTaskRequest(uploader=request.space_name, edit_param=project.edit_param)
        if request.edit.render else None
    )
    sources = request.sources.resolved(request.edit.render)
    vids = {"clip": PLACEHOLDER_VID, "edit": PLACEHOLDER_RENDERED_VID}
    workflow = plan_workflow(request, vids[sources["transcode"]])
    translations = {
        language: build_translation_request(vids[sources["translate"]], request.space_name, language, request.translate)
        for language in request.translate.target_languages
    }
    keys = subtitle_keys(request)
    for key in keys:
        if len(key.encode()) > S3_KEY_MAX_BYTES:
            rule = f"subtitle key {key[:60]}… is over {S3_KEY_MAX_BYTES} bytes"
            raise RequestValidationError("translate.target_languages", rule, provider="s3")
    return ProductionPlan(clip, upload, project, render, workflow, translations, keys)

