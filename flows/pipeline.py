"""produce_video: prompt -> clip -> edit project -> transcode -> translations, as one Prefect flow."""

from __future__ import annotations

from prefect import flow

from flows import resources
from flows.artifacts import publish_production
from flows.edit import build_project_request, create_edit_project
from flows.generate import clip_fingerprint, generate_clip
from flows.models import ImportedClip, ProductionRequest, ProductionResult
from flows.transcode import build_workflow_request, start_transcode_workflow
from flows.translate import ai_translate, validate_translation
from providers.states import JobState


async def validate_production(request: ProductionRequest) -> None:
    """Check every stage's provider rules before the first paid call."""
    placeholder = ImportedClip(vid="v-placeholder", space_name=request.space_name)
    build_project_request(request.title, placeholder, request.edit)
    build_workflow_request("v-placeholder", request.space_name, request.transcode)
    validate_translation("v-placeholder", request.space_name, request.translate)
    await clip_fingerprint(request.clip, request.blocks)


@flow(name="produce-video", log_prints=True)
async def produce_video(request: ProductionRequest) -> ProductionResult:
    """The whole chain. Every paid step is cached by what it buys, so a re-run only redoes what failed."""
    refs = request.blocks
    await validate_production(request)
    clip = await generate_clip(request.clip, request.space_name, refs)
    edit = await create_edit_project(request.title, clip.imported, request.edit, refs)
    source_vid = edit.rendered_vid or clip.imported.vid
    transcode = await start_transcode_workflow(source_vid, request.space_name, request.transcode, refs)
    languages = await ai_translate(source_vid, request.space_name, request.translate, refs)

    ok = transcode.status is JobState.SUCCEEDED and all(lang.status is JobState.SUCCEEDED for lang in languages)
    result = ProductionResult(
        title=request.title, status=JobState.SUCCEEDED if ok else JobState.FAILED,
        clip=clip, edit=edit, transcode=transcode, languages=languages,
    )
    bucket = await resources.bucket(refs)
    await publish_production(result, bucket)
    return result
