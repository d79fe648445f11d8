"""The edit project's Output/Canvas fields and which video each stage starts from.

Fast: every form field as sent on the wire (the project built by the edit stage's own builder, created in the
emulator over HTTP and read back from it), refusals at Submit (the deployment's schema, as the server checks it)
and by the models (contradictions, sources without a render) naming the field, the offline plan and the estimate.
Slow (one flow run): a production whose transcode starts from the rendered edit sends that Vid on the wire.
"""

from __future__ import annotations

import typing
import uuid
from collections import Counter
from typing import Any

import pytest
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools.validation import validate
from pydantic import ValidationError

from emulator.config import DEMO_SPACE, DEMO_VID
from emulator.testing import EmulatorHandle
from flows.costs.estimate import production_lines
from providers.pricing import PriceTable
from flows.models import EditResult, EditSpec, ImportedClip, JimengClipSpec, ProductionRequest, TranslateSpec
from flows.models.edit import Preset
from flows.outputs.manifest import problem_path
from flows.stages.canonical import purchase_key
from flows.stages.edit import build_project_request, tagged_project
from flows.stages.pipeline import produce_video, stage_videos
from flows.stages.requests import PLACEHOLDER_RENDERED_VID, PLACEHOLDER_VID, plan_production
from providers.vod.client import VodClient
from providers.vod.edit_param import PRESETS

SCHEMA = parameter_schema(produce_video).model_dump(exclude_unset=True)
EVERY_FIELD = EditSpec(
    width=1080, height=1920, background_color="#10203040", fps=30, video_codec="h265", preset="veryfast", crf=20,
    audio_codec="aac", audio_bitrate=192, alpha=True, disable_audio=True, cover_times_ms=[0, 2500],
)


def request(**fields: Any) -> dict[str, Any]:
    return {"clip": {"prompt": "a kite over the harbour"}, **fields}


def test_the_form_offers_exactly_the_providers_presets() -> None:
    assert typing.get_args(Preset) == PRESETS


async def test_every_edit_field_is_sent_on_the_wire(emu: EmulatorHandle) -> None:
    emu.configure(quotas_enabled=False)
    clip = ImportedClip(vid=DEMO_VID, space_name=DEMO_SPACE, duration_seconds=5.0)
    project = tagged_project(build_project_request("fields", clip, EVERY_FIELD), "ab" * 32)
    async with VodClient(emu.access_key, emu.secret_key, endpoint=emu.base_url) as vod:
        created = await vod.create_project(project)
        found = (await vod.search_global_project(DEMO_SPACE)).detail
    [sent] = [p.latest_edit_param for p in found if p.project_id == created.project_id]
    assert sent is not None
    assert sent["Output"] == {
        "Alpha": True, "Fps": 30,
        "Codec": {"VideoCodec": "h265", "Preset": "veryfast", "Crf": 20, "AudioCodec": "aac", "AudioBitrate": 192},
        "DisableVideo": False, "DisableAudio": True, "Cover": {"DisableCover": False, "CoverTime": [0, 2500]},
    }
    assert sent["Canvas"] == {"Width": 1080, "Height": 1920, "BackgroundColor": "#10203040"}
    without_cover = build_project_request("nocover", clip, EditSpec(disable_cover=True, disable_video=True))
    assert without_cover.edit_param.to_wire()["Output"]["Cover"] == {"DisableCover": True}
    assert without_cover.edit_param.to_wire()["Output"]["DisableVideo"] is True
    assert [e["action"] for e in emu.ledger()] == ["CreateProject"]


@pytest.mark.parametrize(("edit", "field", "keyword"), [
    ({"preset": "placebo"}, ["edit", "preset"], "enum"),
    ({"audio_codec": "mp3"}, ["edit", "audio_codec"], "const"),
    ({"audio_bitrate": 16}, ["edit", "audio_bitrate"], "minimum"),
    ({"audio_bitrate": 512}, ["edit", "audio_bitrate"], "maximum"),
    ({"background_color": "#000"}, ["edit", "background_color"], "pattern"),
    ({"cover_times_ms": [-1]}, ["edit", "cover_times_ms", "0"], "minimum"),
    ({"cover_times_ms": []}, ["edit", "cover_times_ms"], "minItems"),
    ({"cover_times_ms": [1, 1]}, ["edit", "cover_times_ms"], "uniqueItems"),
    ({"alpha": 1}, ["edit", "alpha"], "type"),
    ({"disable_video": "maybe"}, ["edit", "disable_video"], "type"),
])
def test_the_form_refuses_bad_values_at_submit_naming_the_field(edit: dict, field: list[str], keyword: str) -> None:
    errors = validate({"request": request(edit=edit)}, SCHEMA)
    leaves = [(e.validator, [str(p) for p in e.absolute_path][1:]) for e in errors]
    assert (keyword, field) in leaves, leaves
    with pytest.raises(ValidationError):
        ProductionRequest.model_validate(request(edit=edit))


@pytest.mark.parametrize(("fields", "field", "rule"), [
    ({"edit": {"disable_video": True, "disable_audio": True}}, "edit.disable_audio", "disable_video and disable_audio"),
    ({"edit": {"alpha": True}}, "edit.alpha", "video_codec h265"),
    ({"edit": {"alpha": True, "video_codec": "h265", "disable_video": True}}, "edit.alpha", "disable_video"),
    ({"edit": {"disable_cover": True, "cover_times_ms": [100]}}, "edit.cover_times_ms", "disable_cover"),
    ({"edit": {"cover_times_ms": [5000]}}, "edit.cover_times_ms", "before the end of the 5 s clip"),
    ({"sources": {"transcode": "edit"}}, "sources.transcode", "edit.render is false"),
    ({"sources": {"translate": "edit"}}, "sources.translate", "edit.render is false"),
    ({"edit": {"render": True, "disable_video": True}}, "sources.transcode", "edit.disable_video"),
    ({"edit": {"render": True, "disable_audio": True}}, "sources.translate", "edit.disable_audio"),
    ({"transcode": {"source_file": "in/a.mp4"}, "sources": {"transcode": "clip"}}, "sources.transcode", "source_file"),
])
def test_contradictions_are_refused_naming_the_fields(fields: dict, field: str, rule: str) -> None:
    assert validate({"request": request(**fields)}, SCHEMA) == []  # cross-field: the models' rule, at run start
    with pytest.raises(ValidationError) as info:
        ProductionRequest.model_validate(request(**fields))
    named = [problem_path(e["loc"], e["msg"], e["type"]) for e in info.value.errors()]
    assert any(f == field and rule in r for f, r in named), named


def test_consistent_choices_are_accepted() -> None:
    for fields in (
        {"edit": {"render": True, "disable_video": True}, "sources": {"transcode": "clip", "translate": "clip"}},
        {"edit": {"render": True, "disable_audio": True}, "sources": {"translate": "clip"}},
        {"edit": {"render": True, "disable_audio": True}, "translate": {"translation_types": ["SubtitleTranslation"]}},
        {"clip": {"prompt": "x", "frames": 241}, "edit": {"cover_times_ms": [0, 9999]}},
        {"edit": {"disable_cover": True}},
    ):
        ProductionRequest.model_validate(request(**fields))
        assert validate({"request": request(**fields)}, SCHEMA) == []


@pytest.mark.parametrize(("fields", "transcode", "translate"), [
    ({}, PLACEHOLDER_VID, PLACEHOLDER_VID),  # auto without a render: the clip, nothing extra paid
    ({"edit": {"render": True}}, PLACEHOLDER_RENDERED_VID, PLACEHOLDER_RENDERED_VID),  # auto with a render
    ({"edit": {"render": True}, "sources": {"translate": "clip"}}, PLACEHOLDER_RENDERED_VID, PLACEHOLDER_VID),
    ({"edit": {"render": True}, "sources": {"transcode": "clip", "translate": "clip"}}, PLACEHOLDER_VID,
     PLACEHOLDER_VID),
])
def test_the_plan_sends_each_stage_the_video_its_source_names(fields: dict, transcode: str, translate: str) -> None:
    plan = plan_production(ProductionRequest.model_validate(request(**fields)))
    assert plan.workflow.vid == transcode
    assert {r.vid for r in plan.translations.values()} == {translate}
    assert (plan.render is not None) == bool(fields.get("edit", {}).get("render"))


def test_a_batch_tells_items_apart_by_their_sources() -> None:
    rendered = request(edit={"render": True})
    from_clip = request(edit={"render": True}, sources={"transcode": "clip"})
    keys = {purchase_key(ProductionRequest.model_validate(r)) for r in (rendered, from_clip)}
    assert len(keys) == 2


def test_the_estimate_counts_the_render_a_source_needs() -> None:
    prices = PriceTable(render_per_minute=0.2, transcode_per_minute=0.1)
    lines = production_lines(ProductionRequest.model_validate(request(edit={"render": True},
                                                                      sources={"transcode": "edit"})), prices)
    render = [(line.stage, line.units, line.amount) for line in lines if line.detail == "render"]
    assert render == [("edit", 1.0, 0.2)]  # one started minute of the 5 s clip
    plain = production_lines(ProductionRequest.model_validate(request()), prices)
    assert not [line for line in plain if line.detail == "render"]


@pytest.mark.parametrize(("fields", "transcode", "translate", "sources"), [
    ({}, "vclip", "vclip", {"transcode": "clip", "translate": "clip"}),
    ({"edit": {"render": True}}, "vrender", "vrender", {"transcode": "edit", "translate": "edit"}),
    ({"edit": {"render": True}, "sources": {"transcode": "clip"}}, "vclip", "vrender",
     {"transcode": "clip", "translate": "edit"}),
    ({"transcode": {"source_file": "in/a.mp4"}}, None, "vclip", {"transcode": "file", "translate": "clip"}),
])
def test_the_result_records_the_video_each_stage_started_from(
    fields: dict, transcode: str | None, translate: str, sources: dict
) -> None:
    prod = ProductionRequest.model_validate(request(**fields))
    edit = EditResult(project_id="p1", source_vid="vclip", rendered_vid="vrender" if prod.edit.render else None)
    videos = stage_videos(prod, "vclip", edit)
    assert (videos.clip, videos.edit, videos.transcode, videos.translate) == ("vclip", "vclip", transcode, translate)
    assert videos.sources == sources
    assert videos.transcode_file == prod.transcode.source_file


# --- one production, over Prefect, against the emulator ----------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_a_production_from_the_edit_transcodes_the_rendered_vid(pipeline: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    prod = ProductionRequest(
        title=f"edit-src-{tag}", clip=JimengClipSpec(prompt=f"A lighthouse at dawn, take {tag}"),
        edit=EditSpec(render=True, preset="fast", background_color="#FFFFFFFF", cover_times_ms=[1000]),
        translate=TranslateSpec(target_languages=["en"]), sources={"transcode": "edit", "translate": "clip"},
    )
    result = await produce_video(prod)

    videos = result.videos
    assert videos is not None and videos.rendered == result.edit.rendered_vid
    assert (videos.transcode, videos.translate) == (videos.rendered, result.clip.imported.vid)
    assert videos.sources == {"transcode": "edit", "translate": "clip"}
    assert result.edit.output and result.edit.output["Codec"]["Preset"] == "fast"
    emu = pipeline.emulator
    async with VodClient(emu.access_key, emu.secret_key, endpoint=emu.base_url) as vod:
        execution = await vod.get_workflow_execution(result.transcode.run_id)
        translation = await vod.get_ai_translation_project(prod.space_name, result.languages[0].project_id)
        projects = (await vod.search_global_project(prod.space_name, limit=100)).detail
        [render] = await vod.get_direct_edit_result([(await _render_req_id(emu))])
    assert execution.vid == videos.rendered  # on the wire: StartWorkflow's Vid is the rendered edit
    assert translation.vid == result.clip.imported.vid
    [project] = [p for p in projects if p.project_id == result.edit.project_id]
    assert project.latest_edit_param is not None
    assert project.latest_edit_param["Output"]["Cover"] == {"DisableCover": False, "CoverTime": [1000]}
    assert project.latest_edit_param["Canvas"]["BackgroundColor"] == "#FFFFFFFF"
    assert render.output_vid == videos.rendered and render.edit_param is not None
    assert render.edit_param["Output"]["Codec"]["Preset"] == "fast"
    assert Counter(e["action"] for e in emu.ledger()) == Counter({
        "CVSync2AsyncSubmitTask": 1, "UploadMediaByUrl": 1, "CreateProject": 1, "SubmitDirectEditTaskAsync": 1,
        "StartWorkflow": 1, "SubmitAITranslationWorkflow": 1,
    })


async def _render_req_id(emu: Any) -> str:
    [entry] = [e for e in emu.ledger() if e["action"] == "SubmitDirectEditTaskAsync"]
    return entry["job_id"]
