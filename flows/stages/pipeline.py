"""produce_video: prompt -> clip -> edit project -> transcode and translations, as one Prefect flow."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from flows.costs.estimate import clip_seconds
from flows.costs.memo import remember
from flows.costs.model import CostEstimate, MaxCost
from flows.costs.run import before_paying, cost_so_far
from flows.costs.trace import collecting, know_length
from flows.runtime import progress, resources
from flows.outputs.artifacts import publish_production
from flows.stages.edit import create_edit_project
from flows.stages.entry import validated_flow
from flows.stages.generate import build_clip_request, clip_fingerprint, generate_clip
from flows.models import ClipSpec, EditResult, ProductionRequest, ProductionResult
from flows.models.production import StageVideos
from flows.stages.requests import PLACEHOLDER_VID, plan_production
from flows.stages.transcode import start_transcode_workflow
from flows.stages.translate import ai_translate, validate_translation
from providers.gateway.models import validate_request as validate_gateway_request
from providers.jimeng.models import JimengVideoRequest
from providers.jimeng.models import validate_request as validate_jimeng_request
from providers.states import JobState


def validate_clip_spec(spec: ClipSpec) -> None:
    """The generation provider's own rules (prompt length, ratios, image formats...), checked locally; then the
    spec's own model rules (a spec built in code, e.g. ``model_construct``, skipped them)."""
    from pydantic import TypeAdapter

    clip_request = build_clip_request(spec)
    if isinstance(clip_request, JimengVideoRequest):
        validate_jimeng_request(clip_request)
    else:
        validate_gateway_request(clip_request)
    TypeAdapter(ClipSpec).validate_python(spec.model_dump())


async def validate_production(request: ProductionRequest) -> None:
    """Build every provider request the production will send (``flows.stages.requests``) and check the
    providers' rules on them before the first paid call, then the request's own model rules once more: a request
    changed in code (attribute assignment, ``model_construct``) skipped them (strict fields, enums, ranges,
    duplicate languages), and they must hold before anything is paid too."""
    validate_clip_spec(request.clip)
    plan_production(request)  # every provider request, derived values included (the tagged project name ...)
    validate_translation(PLACEHOLDER_VID, request.space_name, request.translate)
    ProductionRequest.model_validate(request.model_dump())
    await clip_fingerprint(request.clip, request.blocks)


def stage_videos(request: ProductionRequest, clip_vid: str, edit: EditResult) -> StageVideos:
    """The Vid each stage starts from, as ``request.sources`` says (validated: 'edit' comes with a render)."""
    sources = request.sources.resolved(request.edit.render)
    vids = {"clip": clip_vid, "edit": edit.rendered_vid}
    for stage, source in sources.items():
        if vids[source] is None:  # a request changed in code after validation
            raise ValueError(f"sources.{stage} is 'edit' but the edit stage rendered no video")
    videos = StageVideos(
        clip=clip_vid, edit=edit.source_vid or clip_vid, rendered=edit.rendered_vid,
        transcode=vids[sources["transcode"]], translate=vids[sources["translate"]] or clip_vid, sources=dict(sources),
    )
    if request.transcode.source_file:  # the transcode starts from a file of the space (DirectUrl), not a Vid
        videos.sources["transcode"] = "file"
        videos.transcode, videos.transcode_file = None, request.transcode.source_file
    return videos


async def run_production(
    request: ProductionRequest,
    *,
    inline_stages: bool = False,
    observe: Callable[[str, Any], None] | None = None,
    max_cost: float | None = None,
    estimate: CostEstimate | None = None,
) -> ProductionResult:
    """``_chain`` with every paid job it uses noted (``flows.costs``): its result's ``cost`` is what it bought,
    and the next estimate of the same request knows which stages are already bought."""
    with collecting() as notes:
        try:
            return await _chain(request, inline_stages=inline_stages, observe=observe, max_cost=max_cost, estimate=estimate)
        finally:
            await remember(request, notes)


async def _chain(
    request: ProductionRequest,
    *,
    inline_stages: bool,
    observe: Callable[[str, Any], None] | None,
    max_cost: float | None,
    estimate: CostEstimate | None,
) -> ProductionResult:
    """The chain itself. ``inline_stages`` runs the stage flows' bodies in the caller's run instead of as
    subflow runs: a batch runs many productions at once, and concurrent subflow creation is slow on a
    SQLite-backed Prefect server (bench/orchestration.py). The paid tasks, their cache and journal are the
    same either way. ``observe(stage, result)`` sees each stage's result as it lands (a batch keeps the ids
    of an item that fails later)."""

    def stage(f: Any) -> Any:
        return f.fn if inline_stages else f

    seen = observe or (lambda _stage, _result: None)
    refs = request.blocks
    from flows.stages.preflight import preflight_blocks, preflight_production

    async with progress.stage("preflight", request.title):
        await preflight_blocks(request)  # a missing block is named before the local validation loads it
        await validate_production(request)
        # The outside world before the first paid call: bucket, space, template, credentials, model (memoised
        # per run: a batch's items reuse the batch's checks).
        await preflight_production(request)
        priced = await before_paying(request, max_cost, estimate)  # logged, published, refused above max_cost
    async with progress.stage("generate", f"{request.title}: {request.clip.provider}"):
        clip = await stage(generate_clip)(request.clip, request.space_name, refs)
    seen("clip", clip)
    know_length(clip.imported.vid, clip.imported.duration_seconds or clip_seconds(request.clip))
    async with progress.stage("edit", request.title):
        edit = await stage(create_edit_project)(request.title, clip.imported, request.edit, refs)
    seen("edit", edit)
    videos = stage_videos(request, clip.imported.vid, edit)
    transcode_vid = edit.rendered_vid or clip.imported.vid  # what 'auto' gives: passed, unused, with a source_file
    # Renditions and translations start from their sources (the clip, or the rendered edit): neither waits for
    # the other. Both run to the end even when one fails, so nothing paid for is left half-watched.
    # With a review gate the translations run inline: Prefect can suspend a top-level run (freeing its worker
    # while a person reviews) but not a subflow (flows.stages.review).
    translate = ai_translate.fn if request.translate.review != "none" else stage(ai_translate)

    async def transcoding() -> Any:
        source = f"the {videos.sources['transcode']} {videos.transcode or videos.transcode_file}"
        detail = f"{request.title}: {request.transcode.template_id} from {source}"
        async with progress.stage("transcode", detail):
            return await stage(start_transcode_workflow)(
                videos.transcode or transcode_vid, request.space_name, request.transcode, refs, title=request.title
            )

    async def translating() -> Any:
        languages = ", ".join(request.translate.target_languages)
        detail = f"{request.title}: {languages} from the {videos.sources['translate']} {videos.translate}"
        async with progress.stage("translate", detail):
            return await translate(videos.translate, request.space_name, request.translate, refs)

    transcoded, translated = await asyncio.gather(transcoding(), translating(), return_exceptions=True)
    if not isinstance(transcoded, BaseException):
        seen("transcode", transcoded)
    for outcome in (transcoded, translated):
        if isinstance(outcome, BaseException):
            raise outcome
    transcode, languages = transcoded, translated.languages  # its cost is None inside a production: counted here

    ok = transcode.status is JobState.SUCCEEDED and all(lang.status is JobState.SUCCEEDED for lang in languages)
    waiting = transcode.status is JobState.SUCCEEDED and all(
        lang.status is JobState.SUCCEEDED or lang.awaiting_review for lang in languages
    )
    result = ProductionResult(
        title=request.title,
        status=JobState.SUCCEEDED if ok else JobState.PAUSED if waiting else JobState.FAILED,
        clip=clip, edit=edit, transcode=transcode, languages=languages, videos=videos, cost=cost_so_far(priced),
    )
    bucket = await resources.bucket(refs)
    await publish_production(result, bucket)
    return result


@validated_flow(name="produce-video", log_prints=True)
async def produce_video(request: ProductionRequest, max_cost: MaxCost | None = None) -> ProductionResult:
    """The whole chain. Every paid step is cached by what it buys, so a re-run only redoes what failed.
    Called from Python, the request is validated before a flow run is created (``flows.stages.entry``).
    ``max_cost``: refuse the run, before anything is paid, when its estimate is above it (currency of the
    ``clipflow-prices`` block)."""
    return await run_production(request, max_cost=max_cost)
