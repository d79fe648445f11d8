"""Gateway models that take several images (first + last frame, reference images): reachable from the clip form,
refused per model naming the field (in the schema where it can say so, else by the model), built into the
wire's ``images`` in the model's order. Fast: no server; the wire and the preflight over HTTP are in
tests/flows/stages/test_gateway_image_wire.py."""

from __future__ import annotations

from typing import Any

import pytest
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools.validation import preprocess_schema, validate
from pydantic import ValidationError

from flows.models import GatewayClipSpec, ProductionRequest
from flows.outputs.manifest import field_paths
from flows.stages.generate import build_clip_request
from flows.stages.pipeline import produce_video
from flows.stages.requests import plan_production
from providers.gateway.models import GatewayVideoRequest, validate_request

A, B, C, D = (f"https://images.example.com/{n}.png" for n in "abcd")
FRAMES = {"provider": "gateway", "model": "veo3-frames", "aspect_ratio": "16:9", "prompt": "a door opens"}
COMPONENTS = {"provider": "gateway", "model": "veo3.1-components", "aspect_ratio": "16:9", "prompt": "a cat"}
GROK = {"provider": "gateway", "model": "grok-video-3", "prompt": "a kite"}
SCHEMA = preprocess_schema(parameter_schema(produce_video).model_dump(exclude_unset=True))


def production(clip: dict[str, Any]) -> dict[str, Any]:
    return {"title": "multi", "clip": clip, "translate": {"target_languages": []}}


def test_first_and_last_frame_go_on_the_wire_in_that_order() -> None:
    spec = GatewayClipSpec.model_validate({**FRAMES, "image_url": A, "last_frame_url": B})
    request = build_clip_request(spec)
    assert isinstance(request, GatewayVideoRequest)
    assert request.to_wire()["images"] == [A, B]
    assert spec.image_refs() == [("clip.image_url", A), ("clip.last_frame_url", B)]


def test_reference_images_follow_image_url_and_pass_the_plan() -> None:
    clip = {**COMPONENTS, "image_url": A, "reference_image_urls": [B, C]}
    request = ProductionRequest.model_validate(production(clip))
    plan = plan_production(request)
    assert plan.clip.to_wire()["images"] == [A, B, C]
    assert request.clip.image_refs()[2] == ("clip.reference_image_urls[1]", C)
    only_refs = GatewayClipSpec.model_validate({**COMPONENTS, "reference_image_urls": [A, B, C]})
    assert build_clip_request(only_refs).to_wire()["images"] == [A, B, C]


@pytest.mark.parametrize(("clip", "field", "rule"), [
    ({**GROK, "image_url": A, "last_frame_url": B}, "last_frame_url", "grok-video-3 takes no last frame"),
    ({**COMPONENTS, "image_url": A, "last_frame_url": B}, "last_frame_url", "takes no last frame"),
    ({**FRAMES, "last_frame_url": B}, "image_url", "generates from a first-frame image"),
    ({**GROK, "reference_image_urls": [A]}, "reference_image_urls", "grok-video-3 takes no reference images"),
    ({**FRAMES, "image_url": A, "reference_image_urls": [B]}, "reference_image_urls", "takes no reference images"),
    ({**COMPONENTS, "image_url": A, "reference_image_urls": [B, C, D]}, "reference_image_urls",
     "at most 3 images in all (image_url and reference_image_urls), got 4"),
    ({**COMPONENTS, "image_url": A, "reference_image_urls": [A]}, "reference_image_urls", "must not be given twice"),
    ({**FRAMES, "image_url": A, "last_frame_url": A}, "last_frame_url", "must not be given twice"),
], ids=["grok-last", "components-last", "frames-last-without-first", "grok-refs", "frames-refs", "four-in-all",
        "repeated-ref", "first-equals-last"])
def test_an_image_a_model_does_not_take_is_refused_naming_the_field(clip: dict, field: str, rule: str) -> None:
    with pytest.raises(ValidationError) as info:
        ProductionRequest.model_validate(production(clip))
    message = str(info.value)
    assert f"{field}: " in message and rule in message, message


@pytest.mark.parametrize(("patch", "field"), [
    ({"reference_image_urls": [A, B, C, D]}, "reference_image_urls"),  # maxItems
    ({"reference_image_urls": [A, A]}, "reference_image_urls"),  # uniqueItems
    ({"reference_image_urls": ["ftp://images.example.com/a.png"]}, "reference_image_urls"),  # pattern
    ({"last_frame_url": "https://user@images.example.com/b.png", "image_url": A}, "last_frame_url"),  # user info
])
def test_the_schema_refuses_at_submit(patch: dict, field: str) -> None:
    errors = validate({"request": production({**COMPONENTS, **patch})}, SCHEMA, preprocess=False)
    assert errors, patch
    assert any(field in [str(p) for p in leaf.absolute_path] for e in errors for leaf in _leaves(e)), errors


def _leaves(error: Any) -> list[Any]:
    return [error, *(leaf for sub in (error.context or []) for leaf in _leaves(sub))]


@pytest.mark.parametrize("url", [
    "https://169.254.169.254/latest/meta-data/", "https://10.0.0.5/b.png", "http://images.example.com/b.png",
    "https://localhost/b.png",
])
def test_every_image_goes_through_the_host_rules(url: str) -> None:
    for clip in ({**FRAMES, "image_url": A, "last_frame_url": url}, {**COMPONENTS, "reference_image_urls": [A, url]}):
        with pytest.raises(ValidationError) as info:
            ProductionRequest.model_validate(production(clip))
        assert "not allowed" in str(info.value) or "only https://" in str(info.value), str(info.value)


def test_the_wire_check_counts_the_images_of_each_model() -> None:
    validate_request(GatewayVideoRequest(model="veo3-frames", prompt="p", images=[A, B]))
    with pytest.raises(ValueError, match="images: veo3-frames takes at most 2"):
        validate_request(GatewayVideoRequest(model="veo3-frames", prompt="p", images=[A, B, C]))
    with pytest.raises(ValueError, match="images: veo3.1-components takes at most 3"):
        validate_request(GatewayVideoRequest(model="veo3.1-components", prompt="p", images=[A, B, C, D]))


def test_manifest_columns_reach_the_new_fields() -> None:
    paths = field_paths()
    assert paths["clip.reference_image_urls"] == "list" and "clip.last_frame_url" in paths
