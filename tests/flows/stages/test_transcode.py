"""The transcode stage under a real Prefect API, against the emulator over HTTP: every override as sent on the
wire (the emulator's record of the StartWorkflow request), what the workflow produced, the renditions artifact,
the re-run knob, and refusals before anything is paid."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from emulator.config import DEMO_TEMPLATE, DEMO_VID
from flows.models import AudioOverride, BlockRefs, SnapshotOverride, TranscodeSpec, VideoOverride, Watermark
from flows.outputs.artifacts import artifact_key
from flows.stages.transcode import build_workflow_request, start_transcode_workflow
from providers.errors import RequestValidationError
from providers.states import JobState
from tests.emulator.helpers import call, result as vod_result, signed_client
from tests.harness import Pipeline

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

FULL = "full-template"  # every kind of task: two video and one audio rendition, sample snapshots, a text logo
PLAIN = "plain-template"  # renditions only: no watermark to put text in
TWO_VARS = "two-vars-template"  # a watermark with two text variables
TEMPLATES = {
    DEMO_TEMPLATE: ["480p", "720p"],
    FULL: ["480p", "720p", "audio:m4a", "snapshot:sample", "logo:caption"],
    PLAIN: ["720p"],
    TWO_VARS: ["480p", "logo:caption", "logo:date"],
}


@pytest.fixture
def templates(pipeline: Pipeline) -> Pipeline:
    pipeline.emulator.configure(workflow_templates=TEMPLATES)  # undone by the next test's reset
    return pipeline


def billed(pipeline: Pipeline) -> Counter[str]:
    return Counter(entry["action"] for entry in pipeline.emulator.ledger())


def sent(pipeline: Pipeline, run_id: str) -> dict[str, Any]:
    """What the emulator received for this run (GetWorkflowExecution echoes the request's fields)."""
    with signed_client(pipeline.emulator, "vod") as vod:
        return vod_result(call(vod, "GetWorkflowExecution", "2020-08-01", method="GET", query={"RunId": run_id}))


def produced(pipeline: Pipeline, run_id: str) -> dict[str, Any]:
    with signed_client(pipeline.emulator, "vod") as vod:
        return vod_result(call(vod, "GetWorkflowExecutionResult", "2022-12-01", method="GET", query={"RunId": run_id}))


async def read_table(key: str) -> list[dict[str, Any]]:
    async with get_client() as client:
        found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert found, f"no artifact {key}"
    latest = max(found, key=lambda a: a.created)
    return json.loads(latest.data) if isinstance(latest.data, str) else latest.data


def tag() -> str:
    return uuid.uuid4().hex[:8]


async def test_transcode_alone_with_overrides(templates: Pipeline) -> None:
    """The demo template: the watermark goes under the template's own key ("keyword", not the vendor's example
    key), and the clip and priority arrive as sent."""
    text = f"clipflow {tag()}"
    spec = TranscodeSpec(watermark_text=text, clip_start_ms=0, clip_end_ms=2000, priority=2)
    result = await start_transcode_workflow(DEMO_VID, "demo", spec, BlockRefs(), title=f"t-{tag()}")

    assert result.status is JobState.SUCCEEDED and result.outputs
    assert billed(templates) == Counter({"StartWorkflow": 1})
    wire = sent(templates, result.run_id)
    assert wire["Input"] == {"OverrideParams": {
        "Logo": [{"TemplateId": "All", "Vars": {"keyword": text}}],
        "TranscodeVideo": [{"TemplateId": ["All"], "Clip": {"StartTime": 0, "EndTime": 2000}}],
    }}
    assert wire["Priority"] == 2 and wire["EnableLowPriority"] is False
    assert all(out.duration == 2.0 and out.logo_type == "text" for out in result.outputs)
    assert all(info["LogoVars"] == {"keyword": text} for info in produced(templates, result.run_id)["TranscodeInfos"])


async def test_every_override_is_sent_and_shows_in_what_was_produced(templates: Pipeline) -> None:
    t, title = tag(), f"full-{tag()}"
    spec = TranscodeSpec(
        template_id=FULL,
        watermark_text=f"caption {t}",
        clip_start_ms=1000,
        clip_end_ms=3000,
        video=VideoOverride(
            file_name=f"renditions/{t}/{{{{vid}}}}_{{{{templateId}}}}", logo_template_id=f"{FULL}-logo"
        ),
        audio=AudioOverride(template_ids=[f"{FULL}-audio-m4a"], clip_start_ms=500, clip_end_ms=1500,
                            file_name=f"audio/{t}/{{{{fileTitle}}}}"),
        snapshot=SnapshotOverride(sample_offsets_s=[0.5, 1.5], width=320, height=180,
                                  file_name=f"shots/{t}/{{{{fileTitle}}}}_{{{{count}}}}"),
        callback_args=f"order-{t}",
        priority=-3,
        low_priority=True,
    )
    result = await start_transcode_workflow(DEMO_VID, "demo", spec, BlockRefs(), title=title)
    assert result.status is JobState.SUCCEEDED
    assert billed(templates) == Counter({"StartWorkflow": 1})

    wire = sent(templates, result.run_id)
    assert wire["Input"] == {"OverrideParams": {
        "Logo": [{"TemplateId": "All", "Vars": {"caption": f"caption {t}"}}],
        "TranscodeVideo": [{
            "TemplateId": ["All"], "Clip": {"StartTime": 1000, "EndTime": 3000},
            "FileName": f"renditions/{t}/{{{{vid}}}}_{{{{templateId}}}}", "LogoTemplateId": f"{FULL}-logo",
        }],
        "TranscodeAudio": [{
            "TemplateId": [f"{FULL}-audio-m4a"], "Clip": {"StartTime": 500, "EndTime": 1500},
            "FileName": f"audio/{t}/{{{{fileTitle}}}}",
        }],
        "Snapshot": [{
            "TemplateId": ["All"], "FileName": f"shots/{t}/{{{{fileTitle}}}}_{{{{count}}}}",
            "SampleOffsets": [0.5, 1.5], "Width": 320, "Height": 180,
        }],
    }}
    assert (wire["CallbackArgs"], wire["Priority"], wire["EnableLowPriority"]) == (f"order-{t}", -3, True)

    video = [o for o in result.outputs if o.file_type == "video"]
    audio = [o for o in result.outputs if o.file_type == "audio"]
    assert [o.definition for o in video] == ["480p", "720p"] and [o.definition for o in audio] == ["m4a"]
    assert all(o.duration == 2.0 and o.logo_type == "text" for o in video)  # clipped 1 s .. 3 s, watermarked
    assert all(o.file_name == f"renditions/{t}/{DEMO_VID}_{FULL}.mp4" for o in video)
    assert audio[0].duration == 1.0 and audio[0].format == "m4a" and audio[0].logo_type is None
    assert audio[0].file_name == f"audio/{t}/demo-sample.m4a"
    assert all(o.file_id and o.store_uri and o.size and o.template_id for o in result.outputs)
    [shots] = result.snapshots
    assert shots.type == "Sample" and (shots.width, shots.height) == (320, 180)
    assert [u.split("/", 1)[1] for u in shots.store_uris] == [
        f"shots/{t}/demo-sample_00001.jpg", f"shots/{t}/demo-sample_00002.jpg"
    ]

    rows = await read_table(artifact_key(title, "renditions", of=DEMO_VID))
    assert [r["kind"] for r in rows] == ["video", "video", "audio", "snapshot sample", "snapshot sample"]
    assert {r["store_uri"] for r in rows} == {o.store_uri for o in result.outputs} | set(shots.store_uris)
    assert not any("http" in str(v) or "X-Signature" in str(v) for r in rows for v in r.values())


async def test_a_file_of_the_space_with_several_watermark_variables(templates: Pipeline) -> None:
    """DirectUrl instead of the Vid, the watermark keys checked against the template (read before paying), and
    the source and overrides recorded in the result."""
    t, title = tag(), f"direct-{tag()}"
    texts = {"caption": f"Harbour {t}", "date": "2026-12-07"}
    spec = TranscodeSpec(template_id=TWO_VARS, source_file="demo-sample.mp4",
                         watermarks=[Watermark(logo_template_id=f"{TWO_VARS}-logo", texts=texts)])
    result = await start_transcode_workflow("v0-not-sent", "demo", spec, BlockRefs(), title=title)
    assert result.status is JobState.SUCCEEDED and billed(templates) == Counter({"StartWorkflow": 1})
    wire = sent(templates, result.run_id)
    assert wire["DirectUrl"] == {"FileName": "demo-sample.mp4", "SpaceName": "demo"} and wire["Vid"] == ""
    assert wire["Input"] == {"OverrideParams": {"Logo": [{"TemplateId": f"{TWO_VARS}-logo", "Vars": texts}]}}
    assert (result.source_file, result.source_vid) == ("demo-sample.mp4", None)
    assert result.overrides == wire["Input"]["OverrideParams"]
    assert [info["LogoVars"] for info in produced(templates, result.run_id)["TranscodeInfos"]] == [texts]
    assert await read_table(artifact_key(title, "renditions", of="demo-sample.mp4"))


async def test_run_knob_pays_exactly_one_new_run_and_an_unchanged_spec_pays_nothing(templates: Pipeline) -> None:
    spec = TranscodeSpec(callback_args=f"rerun-{tag()}")
    first = await start_transcode_workflow(DEMO_VID, "demo", spec, BlockRefs())
    again = await start_transcode_workflow(DEMO_VID, "demo", spec, BlockRefs())
    assert again.run_id == first.run_id and len(templates.emulator.ledger()) == 1

    rerun = spec.model_copy(update={"run": 1})
    second = await start_transcode_workflow(DEMO_VID, "demo", rerun, BlockRefs())
    second_again = await start_transcode_workflow(DEMO_VID, "demo", rerun, BlockRefs())
    assert second.run_id != first.run_id and second_again.run_id == second.run_id and second.run == 1
    ledger = templates.emulator.ledger()
    assert [e["job_id"] for e in ledger] == [first.run_id, second.run_id]
    # The knob never reaches the vendor: the same request, under a new ClientToken.
    assert sent(templates, second.run_id)["CallbackArgs"] == spec.callback_args
    assert "run" not in json.dumps(sent(templates, second.run_id)["Input"] or {})


@pytest.mark.parametrize(("spec", "field"), [
    (TranscodeSpec(template_id=PLAIN, watermark_text="hello"), "transcode.watermark_text"),
    (TranscodeSpec(template_id=FULL, watermark_text="hello", watermark_variable="input_text"),
     "transcode.watermark_variable"),
    (TranscodeSpec(template_id=FULL, watermark_text="hello", logo_template_id="other-logo"),
     "transcode.logo_template_id"),
    (TranscodeSpec(template_id="no-such-template", watermark_text="hello"), "transcode.template_id"),
])
async def test_a_watermark_the_template_cannot_take_is_refused_before_paying(
    templates: Pipeline, spec: TranscodeSpec, field: str
) -> None:
    with pytest.raises(RequestValidationError) as info:
        await start_transcode_workflow(DEMO_VID, "demo", spec, BlockRefs())
    assert info.value.field == field
    assert templates.emulator.ledger() == []


def test_a_spec_that_skipped_its_own_rules_is_refused_by_the_request_model() -> None:
    """model_construct skips the spec's validators: the provider request still refuses before sending."""
    spec = TranscodeSpec.model_construct(**{**TranscodeSpec().model_dump(), "clip_start_ms": 3000, "clip_end_ms": 1000})
    with pytest.raises(RequestValidationError, match="EndTime"):
        build_workflow_request("v1", "demo", spec)
    shot = SnapshotOverride.model_construct(**{**SnapshotOverride().model_dump(), "width": 5000})
    spec = TranscodeSpec.model_construct(**{**TranscodeSpec().model_dump(), "snapshot": shot})
    with pytest.raises(RequestValidationError, match="Width"):
        build_workflow_request("v1", "demo", spec)
