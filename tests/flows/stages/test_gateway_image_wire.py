"""Several gateway images (first + last frame, reference images): each one fetched and checked by the preflight
like ``clip.image_url``, a bad one refused naming its own field before anything is paid (ledger empty), and the
good ones sent in the model's order. Against the emulator over HTTP, moto S3, a real Prefect API and a local
image server; "on the wire" = the emulator ledger's fingerprint of the create body it received."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from emulator.params import fingerprint as wire_fingerprint
from flows.models import ProductionRequest
from flows.stages.preflight_checks import PreflightError, PreflightMemo
from flows.stages.preflight import preflight_production
from tests.flows.stages.test_preflight_images import Served, _local_images, png, served  # noqa: F401 - fixtures
from tests.harness import Pipeline

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def gateway_request(**clip: Any) -> ProductionRequest:
    tag = uuid.uuid4().hex[:8]
    return ProductionRequest.model_validate({
        "title": f"gw-{tag}", "translate": {"target_languages": []},
        "clip": {"provider": "gateway", "aspect_ratio": "16:9", "prompt": f"a door opens {tag}", **clip},
    })


def created(pipeline: Pipeline) -> list[dict[str, Any]]:
    return [e for e in pipeline.emulator.ledger() if e["provider"] == "gateway" and e["action"] == "create"]


def expected(req: ProductionRequest, images: list[str]) -> str:
    clip = req.clip
    return wire_fingerprint({"model": clip.model, "prompt": clip.prompt, "aspect_ratio": clip.aspect_ratio,
                             "size": clip.size, "images": images})


async def _checked_then_sent(pipeline: Pipeline, served: Served, req: ProductionRequest, urls: list[str]) -> None:
    from flows.stages.generate import generate_clip

    memo = PreflightMemo()
    await preflight_production(req, memo)
    assert memo.performed["image"] == len(urls)
    for url in urls:
        assert served.hits.count(url.removeprefix(served.base_url)) == 1  # each image fetched once
    assert pipeline.emulator.ledger() == []
    await generate_clip(req.clip, "demo")
    [sent] = created(pipeline)
    assert sent["fingerprint"] == expected(req, urls)


async def test_first_and_last_frame_are_checked_then_sent(pipeline: Pipeline, served: Served) -> None:
    first, last = served.add("first.png", png(640, 360)), served.add("last.png", png(640, 360))
    req = gateway_request(model="veo3-frames", image_url=first, last_frame_url=last)
    await _checked_then_sent(pipeline, served, req, [first, last])


async def test_reference_images_are_checked_then_sent(pipeline: Pipeline, served: Served) -> None:
    refs = [served.add(f"ref{n}.png", png(480, 480)) for n in range(3)]
    req = gateway_request(model="veo3.1-components", image_url=refs[0], reference_image_urls=refs[1:])
    await _checked_then_sent(pipeline, served, req, refs)


async def test_a_bad_last_frame_is_refused_by_its_field_before_paying(pipeline: Pipeline, served: Served) -> None:
    from flows.stages.pipeline import produce_video

    first = served.add("first.png", png(640, 360))
    missing = served.base_url + f"/{uuid.uuid4().hex[:8]}/gone.png"
    with pytest.raises(PreflightError) as raised:
        await produce_video(gateway_request(model="veo3-frames", image_url=first, last_frame_url=missing))
    assert raised.value.field == "clip.last_frame_url", str(raised.value)
    assert "download failed" in str(raised.value)
    assert pipeline.emulator.ledger() == []


async def test_a_reference_that_is_not_an_image_is_refused_by_its_index(pipeline: Pipeline, served: Served) -> None:
    from flows.stages.pipeline import produce_video

    good, page = served.add("ok.png", png(480, 480)), served.add("page.png", b"<html></html>")
    with pytest.raises(PreflightError) as raised:
        await produce_video(gateway_request(model="veo3.1-components", reference_image_urls=[good, page]))
    assert raised.value.field == "clip.reference_image_urls[1]", str(raised.value)
    assert "image must be JPEG, PNG or WebP" in str(raised.value)
    assert pipeline.emulator.ledger() == []
