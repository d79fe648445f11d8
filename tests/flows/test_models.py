"""The parameter models: the clip spec as a discriminated union, strict fields, and the schema Prefect renders."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from flows.models import (
    ClipSpec,
    GatewayClipSpec,
    JimengClipSpec,
    ProductionRequest,
    ProductionResult,
    TranslateSpec,
)
from flows.stages.generate import build_clip_request
from providers.gateway.models import GatewayVideoRequest
from providers.gateway.models import validate_request as validate_gateway_request
from providers.jimeng.models import JimengVideoRequest

CLIP = TypeAdapter(ClipSpec)


def test_each_provider_has_its_own_valid_defaults() -> None:
    jimeng, gateway = JimengClipSpec(), GatewayClipSpec()
    assert (jimeng.provider, jimeng.aspect_ratio, jimeng.frames, jimeng.seed) == ("jimeng", "16:9", 121, -1)
    assert (gateway.provider, gateway.model, gateway.aspect_ratio, gateway.size) == ("gateway", "grok-video-3", "3:2", "720P")
    # The defaults pass their own model and, with a prompt, the provider's rules (grok-video-3 takes 2:3 3:2 1:1).
    for spec in (jimeng, gateway):
        assert CLIP.validate_python(spec.model_dump()) == spec
    request = build_clip_request(gateway.model_copy(update={"prompt": "an owl"}))
    assert isinstance(request, GatewayVideoRequest)
    validate_gateway_request(request)
    assert isinstance(build_clip_request(jimeng.model_copy(update={"prompt": "an owl"})), JimengVideoRequest)


def test_each_spec_has_only_its_own_fields() -> None:
    assert "model" not in JimengClipSpec.model_fields and "size" not in JimengClipSpec.model_fields
    assert {"image_base64", "frames", "seed"}.isdisjoint(GatewayClipSpec.model_fields)
    assert "take" in JimengClipSpec.model_fields and "take" in GatewayClipSpec.model_fields


def test_a_clip_without_provider_is_jimeng() -> None:
    assert isinstance(CLIP.validate_python({"prompt": "a kite"}), JimengClipSpec)
    assert isinstance(CLIP.validate_python({"provider": "gateway", "prompt": "a kite"}), GatewayClipSpec)
    assert isinstance(ProductionRequest().clip, JimengClipSpec)
    assert isinstance(ProductionRequest.model_validate({"clip": {"prompt": "x"}}).clip, JimengClipSpec)
    with pytest.raises(ValidationError, match="provider must be 'jimeng' or 'gateway'"):
        CLIP.validate_python({"provider": "kling"})


def test_round_trip_keeps_the_provider() -> None:
    request = ProductionRequest(clip=GatewayClipSpec(model="sora-2", aspect_ratio="9:16", prompt="x"))
    again = ProductionRequest.model_validate_json(request.model_dump_json())
    assert again == request and isinstance(again.clip, GatewayClipSpec)


def test_gateway_refuses_image_base64_and_unknown_models() -> None:
    with pytest.raises(ValidationError) as info:
        CLIP.validate_python({"provider": "gateway", "prompt": "x", "image_base64": "aGk="})
    assert info.value.errors()[0]["loc"][-1] == "image_base64" and info.value.errors()[0]["type"] == "extra_forbidden"
    with pytest.raises(ValidationError) as info:
        CLIP.validate_python({"provider": "gateway", "prompt": "x", "model": "kling-2"})
    assert info.value.errors()[0]["loc"][-1] == "model"


def test_json_schema_has_the_union_with_its_discriminator() -> None:
    schema = ProductionRequest.model_json_schema()
    clip = schema["properties"]["clip"]
    variants = clip.get("oneOf") or clip.get("anyOf")
    assert variants and len(variants) == 2
    assert clip["discriminator"] == {"propertyName": "provider"}
    defs = schema["$defs"]
    assert defs["JimengClipSpec"]["properties"]["provider"]["const"] == "jimeng"
    assert defs["GatewayClipSpec"]["properties"]["provider"]["const"] == "gateway"
    # A clip without "provider" matches only the Jimeng variant: the gateway one requires it.
    assert "provider" in defs["GatewayClipSpec"]["required"]
    assert "provider" not in defs["JimengClipSpec"].get("required", [])
    assert defs["GatewayClipSpec"]["properties"]["aspect_ratio"]["default"] == "3:2"
    for name in ("JimengClipSpec", "GatewayClipSpec", "ProductionRequest", "TranslateSpec", "EditSpec",
                 "TranscodeSpec", "BlockRefs"):
        assert defs.get(name, schema)["additionalProperties"] is False, name
    languages = defs["TranslateSpec"]["properties"]["target_languages"]
    assert languages["uniqueItems"] is True and "english" not in languages["items"]["enum"]
    assert defs["JimengClipSpec"]["properties"]["prompt"]["maxLength"] == 800
    assert defs["JimengClipSpec"]["properties"]["seed"]["maximum"] < 2**63


def test_prefect_renders_the_schema() -> None:
    from prefect.utilities.callables import parameter_schema

    from flows.stages.batch import generate_clips, produce_batch
    from flows.stages.pipeline import produce_video

    schema = parameter_schema(produce_video.fn).model_dump()
    clip = schema["definitions"]["ProductionRequest"]["properties"]["clip"]
    assert {v["$ref"].rsplit("/", 1)[-1] for v in clip["anyOf"]} == {"JimengClipSpec", "GatewayClipSpec"}
    assert parameter_schema(produce_batch.fn).model_dump()["definitions"]["GatewayClipSpec"]
    specs = parameter_schema(generate_clips.fn).model_dump()["properties"]["specs"]
    assert "anyOf" in specs["items"]


def test_results_stay_tolerant() -> None:
    assert ProductionResult.model_config.get("extra") in (None, "ignore")
    assert TranslateSpec.model_config["extra"] == "forbid"


# --- transcode: every override of StartWorkflow, readable in the form ----------------------------------------


def test_transcode_defaults_send_no_override_and_old_fields_still_work() -> None:
    from flows.models import TranscodeSpec
    from flows.stages.transcode import build_overrides, build_workflow_request

    assert build_overrides(TranscodeSpec()) == {}
    assert build_workflow_request("v1", "demo", TranscodeSpec()).to_wire().get("Input") is None
    old = TranscodeSpec(watermark_text="hi", clip_start_ms=500, clip_end_ms=900, priority=1, low_priority=True)
    assert build_overrides(old, "caption") == {
        "Logo": [{"TemplateId": "All", "Vars": {"caption": "hi"}}],
        "TranscodeVideo": [{"TemplateId": ["All"], "Clip": {"StartTime": 500, "EndTime": 900}}],
    }


def test_transcode_form_has_titled_sections_and_the_rerun_knob() -> None:
    from flows.models import TranscodeSpec

    schema = TranscodeSpec.model_json_schema()
    assert {schema["$defs"][name]["title"] for name in ("VideoOverride", "AudioOverride", "SnapshotOverride")} == {
        "Video renditions", "Audio renditions", "Snapshots"}
    run = schema["properties"]["run"]
    assert run["default"] == 0 and run["minimum"] == 0 and "new workflow run" in run["description"]
    assert all(d.get("additionalProperties") is False for d in schema["$defs"].values())
    assert schema["$defs"]["SnapshotOverride"]["properties"]["width"]["anyOf"][0]["maximum"] == 4096


@pytest.mark.parametrize("bad,field", [
    ({"video": {"file_name": "a/../b"}}, "file_name"),
    ({"video": {"file_name": "a//b"}}, "file_name"),
    ({"audio": {"clip_start_ms": 10, "clip_end_ms": 5}}, "clip_end_ms"),
    ({"clip_start_ms": 10, "clip_end_ms": 10}, "clip_end_ms"),
    ({"callback_args": "港" * 171}, "callback_args"),  # 513 bytes in UTF-8, 171 characters
    ({"watermark_variable": "caption"}, "watermark_variable"),  # a key without text
])
def test_transcode_rules_a_schema_cannot_carry(bad: dict, field: str) -> None:
    from flows.models import TranscodeSpec

    with pytest.raises(ValidationError, match=field):
        TranscodeSpec.model_validate(bad)


def test_the_watermark_key_is_read_from_the_template_in_any_listed_shape() -> None:
    from flows.models import TranscodeSpec
    from flows.stages.transcode import choose_logo_variable, logo_variables
    from providers.errors import RequestValidationError

    template = {"Activities": [
        {"Type": "Transcode", "Logo": {"TemplateId": "l1", "Type": "Text", "Vars": ["caption"]}},
        {"Type": "Transcode", "Logo": {"TemplateId": "l1", "Type": "Text", "Vars": ["caption"]}},
        {"Type": "Transcode", "Logo": {"TemplateId": "l2", "LogoType": "text", "Vars": [{"Key": "name"}]}},
        {"Type": "Transcode", "Logo": {"TemplateId": "l3", "Type": "Image", "Vars": ["picture"]}},
    ]}
    assert logo_variables(template) == {"l1": ["caption"], "l2": ["name"]}
    assert choose_logo_variable(TranscodeSpec(watermark_text="x", logo_template_id="l2"), template) == "name"
    assert choose_logo_variable(TranscodeSpec(watermark_text="x", watermark_variable="caption"), template) == "caption"
    for spec, field in [
        (TranscodeSpec(watermark_text="x"), "transcode.watermark_variable"),  # two keys: the user must choose
        (TranscodeSpec(watermark_text="x", logo_template_id="l3"), "transcode.logo_template_id"),  # image logo
        (TranscodeSpec(watermark_text="x", watermark_variable="input_text"), "transcode.watermark_variable"),
    ]:
        with pytest.raises(RequestValidationError) as info:
            choose_logo_variable(spec, template)
        assert info.value.field == field
    with pytest.raises(RequestValidationError, match="no text-watermark variable"):
        choose_logo_variable(TranscodeSpec(watermark_text="x"), {"Activities": [{"Type": "Transcode"}]})
