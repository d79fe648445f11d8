"""StartWorkflow's DirectUrl source, several override items per kind and several watermark variables: built by the
stage's own builders, sent with the project's VodClient to the emulator over HTTP and asserted as the emulator
recorded them (GetWorkflowExecution echoes DirectUrl and Input); bad values are refused naming the field before
anything is paid (the ledger stays empty). No Prefect server here: the flow itself is in test_transcode.py."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError

from emulator.config import DEMO_SPACE, DEMO_TEMPLATE
from emulator.testing import EmulatorHandle
from flows.models import (
    AudioOverride, ProductionRequest, SnapshotOverride, TranscodeSpec, TranslateSpec, VideoOverride, Watermark,
)
from flows.outputs.manifest import problem_path
from flows.stages.requests import plan_production
from flows.stages.transcode import build_overrides, build_workflow_request, check_watermarks, collect_result
from providers.errors import InvalidRequestError, NotFoundError, RequestValidationError
from providers.states import JobState
from providers.vod.client import VodClient
from providers.vod.models import StartWorkflowRequest
from tests.emulator.helpers import call, result as vod_result, signed_client

MULTI = "multi-template"  # two renditions of each kind, two snapshot kinds, a watermark with two variables + another
TEMPLATES = {
    DEMO_TEMPLATE: ["480p", "720p"],
    MULTI: ["480p", "720p", "audio:m4a", "audio:aac", "snapshot:poster", "snapshot:sample",
            "logo:caption", "logo:date", "logo:badge/label"],
}
SOURCE = "demo-sample.mp4"  # a file of the demo space (the emulator's sample video, 3.008 s)
LOGO, BADGE = f"{MULTI}-logo", f"{MULTI}-logo-badge"


@pytest.fixture
def multi(emu: EmulatorHandle) -> EmulatorHandle:
    emu.configure(workflow_templates=TEMPLATES)  # undone by the next test's reset
    return emu


def vod_client(emu: EmulatorHandle) -> VodClient:
    return VodClient(emu.access_key, emu.secret_key, endpoint=emu.base_url)


def raw_result(emu: EmulatorHandle, run_id: str) -> dict[str, Any]:
    with signed_client(emu, "vod") as vod:
        return vod_result(call(vod, "GetWorkflowExecutionResult", "2022-12-01", method="GET", query={"RunId": run_id}))


def every_new_field() -> TranscodeSpec:
    return TranscodeSpec(
        template_id=MULTI,
        source_file=SOURCE,
        watermarks=[
            Watermark(logo_template_id=LOGO, texts={"caption": "Harbour 港", "date": "2026-12-07"}),
            Watermark(logo_template_id=BADGE, texts={"label": "NEW"}),
        ],
        video=VideoOverride(template_ids=[f"{MULTI}-480p"], file_name="r/{{fileTitle}}_small"),
        more_video=[VideoOverride(template_ids=[f"{MULTI}-720p"], clip_start_ms=1000, clip_end_ms=2000,
                                  file_name="r/{{fileTitle}}_large", logo_template_id=BADGE)],
        audio=AudioOverride(template_ids=[f"{MULTI}-audio-m4a"], file_name="a/main"),
        more_audio=[AudioOverride(template_ids=[f"{MULTI}-audio-aac"], clip_start_ms=500, file_name="a/short")],
        snapshot=SnapshotOverride(template_ids=[f"{MULTI}-snapshot-poster"], offset_time_ms=1500),
        more_snapshot=[SnapshotOverride(template_ids=[f"{MULTI}-snapshot-sample"], sample_offsets_s=[0.5, 1.0],
                                        width=320, height=180, file_name="s/{{fileTitle}}_{{count}}")],
    )


EXPECTED_OVERRIDES = {
    "Logo": [
        {"TemplateId": LOGO, "Vars": {"caption": "Harbour 港", "date": "2026-12-07"}},
        {"TemplateId": BADGE, "Vars": {"label": "NEW"}},
    ],
    "TranscodeVideo": [
        {"TemplateId": [f"{MULTI}-480p"], "FileName": "r/{{fileTitle}}_small"},
        {"TemplateId": [f"{MULTI}-720p"], "Clip": {"StartTime": 1000, "EndTime": 2000},
         "FileName": "r/{{fileTitle}}_large", "LogoTemplateId": BADGE},
    ],
    "TranscodeAudio": [
        {"TemplateId": [f"{MULTI}-audio-m4a"], "FileName": "a/main"},
        {"TemplateId": [f"{MULTI}-audio-aac"], "Clip": {"StartTime": 500, "EndTime": 0}, "FileName": "a/short"},
    ],
    "Snapshot": [
        {"TemplateId": [f"{MULTI}-snapshot-poster"], "OffsetTime": 1500},
        {"TemplateId": [f"{MULTI}-snapshot-sample"], "FileName": "s/{{fileTitle}}_{{count}}",
         "SampleOffsets": [0.5, 1.0], "Width": 320, "Height": 180},
    ],
}


async def test_every_new_field_is_sent_and_shows_in_the_outputs(multi: EmulatorHandle) -> None:
    spec = every_new_field()
    async with vod_client(multi) as vod:
        check_watermarks(spec, await vod.get_workflow_template(MULTI))  # every key is one of the template's
        request = build_workflow_request("v0-not-used", DEMO_SPACE, spec, client_token="clipflow-fields-1")
        run_id = await vod.start_workflow(request)
        sent = await vod.get_workflow_execution(run_id)
        # The emulator's record of the request: the file of the space instead of a Vid, and every item.
        assert sent.direct_url == {"FileName": SOURCE, "SpaceName": DEMO_SPACE} and not sent.vid
        assert sent.input == {"OverrideParams": EXPECTED_OVERRIDES}
        multi.advance(600)
        done = await vod.get_workflow_execution_result(run_id)
    assert Counter(e["action"] for e in multi.ledger()) == Counter({"StartWorkflow": 1})

    collected = collect_result(run_id, JobState.SUCCEEDED, done, spec, build_overrides(spec))
    assert (collected.source_file, collected.source_vid) == (SOURCE, None)
    assert collected.overrides == EXPECTED_OVERRIDES  # recorded as sent
    by_definition = {o.definition: o for o in collected.outputs}
    assert by_definition["480p"].file_name == "r/demo-sample_small.mp4" and by_definition["480p"].duration == 3.008
    assert by_definition["720p"].file_name == "r/demo-sample_large.mp4" and by_definition["720p"].duration == 1.0
    assert by_definition["m4a"].file_name == "a/main.m4a" and by_definition["aac"].file_name == "a/short.m4a"
    assert by_definition["aac"].duration == 2.508  # 0.5 s to the end
    # Each rendition carries the texts of its own watermark template: both variables, or the badge's.
    logos = {i["Definition"]: i.get("LogoVars") for i in raw_result(multi, run_id)["TranscodeInfos"]}
    assert logos == {"480p": {"caption": "Harbour 港", "date": "2026-12-07"}, "720p": {"label": "NEW"},
                     "m4a": None, "aac": None}
    poster, sample = collected.snapshots
    assert poster.type == "Poster" and sample.type == "Sample" and (sample.width, sample.height) == (320, 180)
    assert [u.split("/", 1)[1] for u in sample.store_uris] == ["s/demo-sample_00001.jpg", "s/demo-sample_00002.jpg"]


@pytest.mark.parametrize(("watermark", "field"), [
    (Watermark(logo_template_id=LOGO, texts={"label": "x"}), "transcode.watermarks[0].texts.label"),
    (Watermark(texts={"input_text": "x"}), "transcode.watermarks[0].texts.input_text"),
    (Watermark(logo_template_id="other-logo", texts={"caption": "x"}), "transcode.watermarks[0].logo_template_id"),
])
async def test_a_watermark_variable_the_template_lacks_is_refused_before_paying(
    multi: EmulatorHandle, watermark: Watermark, field: str
) -> None:
    spec = TranscodeSpec(template_id=MULTI, watermarks=[watermark])
    async with vod_client(multi) as vod:
        template = await vod.get_workflow_template(MULTI)
    with pytest.raises(RequestValidationError) as info:
        check_watermarks(spec, template)
    assert info.value.field == field
    assert multi.ledger() == []


@pytest.mark.parametrize(("transcode", "field", "rule"), [
    ({"source_file": "../other-space/x.mp4"}, "transcode.source_file", "'..'"),
    ({"source_file": "uploads/../../x.mp4"}, "transcode.source_file", "'..'"),
    ({"source_file": "/etc/passwd"}, "transcode.source_file", "pattern"),
    ({"source_file": "s3://other-bucket/x.mp4"}, "transcode.source_file", "not a URL"),
    ({"source_file": "https://example.com/x.mp4"}, "transcode.source_file", "not a URL"),
    ({"source_file": "TOS://tos-cn-v-1/x.mp4"}, "transcode.source_file", "not a URL"),
    ({"source_file": "a\\b.mp4"}, "transcode.source_file", "pattern"),
    ({"source_file": "a//b.mp4"}, "transcode.source_file", "empty"),
    ({"source_file": "x" * 1025}, "transcode.source_file", "at most 1024"),
    ({"watermarks": [{"texts": {}}]}, "transcode.watermarks.0.texts", "at least 1"),
    ({"watermarks": [{"texts": {"1bad": "x"}}]}, "transcode.watermarks.0.texts.1bad.[key]", "pattern"),
    ({"watermarks": [{"texts": {"caption": "w" * 201}}]}, "transcode.watermarks.0.texts.caption", "at most 200"),
    ({"watermarks": [{"texts": {"a": "x"}}, {"logo_template_id": "l2", "texts": {"a": "y"}}]},
     "transcode.watermarks", "targets All"),
    ({"watermark_text": "t", "logo_template_id": "l1", "watermarks": [{"logo_template_id": "l1", "texts": {"a": "y"}}]},
     "transcode.watermarks", "already the target"),
    ({"video": {"template_ids": ["v1"]}, "more_video": [{"template_ids": ["v2", "v1"]}]}, "transcode.more_video",
     "already the target"),
    ({"clip_start_ms": 10, "more_video": [{"template_ids": ["v2"]}]}, "transcode.video", "targets All"),
    ({"clip_start_ms": 10, "video": {"clip_end_ms": 50}}, "transcode.clip_start_ms", "set twice"),
    ({"more_video": [{"clip_start_ms": 50, "clip_end_ms": 50}]}, "transcode.more_video.0.clip_end_ms", "after"),
    ({"more_audio": [{"template_ids": ["a1"]}, {"template_ids": ["a1"]}]}, "transcode.more_audio", "already"),
    ({"snapshot": {}, "more_snapshot": [{"template_ids": ["s1"]}]}, "transcode.snapshot", "targets All"),
    ({"more_snapshot": [{"width": 4097}]}, "transcode.more_snapshot.0.width", "less than or equal"),
    ({"more_video": [{"template_ids": [f"v{n}"]} for n in range(11)]}, "transcode.more_video", "at most 10"),
])
def test_bad_new_values_are_refused_by_the_form_naming_the_field(
    emu: EmulatorHandle, transcode: dict[str, Any], field: str, rule: str
) -> None:
    with pytest.raises(ValidationError) as info:
        ProductionRequest.model_validate({"title": "fields", "transcode": transcode})
    named = [problem_path(e["loc"], e["msg"], e["type"]) for e in info.value.errors()]
    assert any(f == field and rule in r for f, r in named), named
    assert emu.ledger() == []


@pytest.mark.parametrize("hostile", ["../x.mp4", "/x.mp4", "s3://b/x.mp4", "a/./b.mp4", "a\x00b.mp4"])
def test_a_hostile_file_that_skipped_the_form_is_refused_by_the_offline_plan(emu: EmulatorHandle, hostile: str) -> None:
    """``model_construct`` skips the form's rules: the plan built before paying still refuses, naming the field."""
    transcode = TranscodeSpec.model_construct(**{**TranscodeSpec().model_dump(), "source_file": hostile})
    request = ProductionRequest(title="fields", clip={"prompt": "a kite"}, translate=TranslateSpec(target_languages=[]))
    request = request.model_copy(update={"transcode": transcode})
    with pytest.raises(RequestValidationError) as info:
        plan_production(request)
    assert info.value.field == "transcode.source_file"
    assert emu.ledger() == []


def test_the_offline_plan_builds_the_direct_url_request() -> None:
    request = ProductionRequest(title="fields", clip={"prompt": "a kite"}, transcode=every_new_field())
    wire = plan_production(request).workflow.to_wire()
    assert "Vid" not in wire and wire["DirectUrl"] == '{"FileName":"demo-sample.mp4","SpaceName":"demo"}'


@pytest.mark.parametrize(("direct_url", "status", "code"), [
    ({"FileName": "../demo-sample.mp4", "SpaceName": DEMO_SPACE}, 400, "InvalidParameter"),
    ({"FileName": "demo-sample.mp4", "SpaceName": DEMO_SPACE, "BucketName": "someone-elses-bucket"}, 400,
     "InvalidParameter"),
    ({"FileName": "demo-sample.mp4", "SpaceName": "no-such-space"}, 404, "ResourceNotFound"),
    ({"FileName": "missing.mp4", "SpaceName": DEMO_SPACE}, 404, "ResourceNotFound"),
])
async def test_the_vendor_refuses_a_direct_url_outside_the_space_unbilled(
    multi: EmulatorHandle, direct_url: dict[str, str], status: int, code: str
) -> None:
    """What the emulator answers (as VOD) when a client skips clipflow's own checks: the provider model refuses
    the first locally, the others reach the emulator and are refused there, never billed."""
    body = {"DirectUrl": json.dumps(direct_url), "TemplateId": DEMO_TEMPLATE}
    with signed_client(multi, "vod") as vod:
        response = call(vod, "StartWorkflow", "2020-08-01", body=body)
    assert response.status_code == status and response.json()["ResponseMetadata"]["Error"]["Code"] == code
    assert multi.ledger() == []
    async with vod_client(multi) as client:
        if direct_url["FileName"].startswith(".."):
            with pytest.raises(RequestValidationError, match="DirectUrl.FileName"):
                build_workflow_request("", DEMO_SPACE, TranscodeSpec.model_construct(
                    **{**TranscodeSpec().model_dump(), "source_file": direct_url["FileName"]}))
        else:
            with pytest.raises((InvalidRequestError, NotFoundError)):
                await client.start_workflow(StartWorkflowRequest(direct_url=direct_url, template_id=DEMO_TEMPLATE))
    assert multi.ledger() == []
