"""Gateway create/query: shapes, state machine, validation, errors."""

from __future__ import annotations

import httpx
import pytest

from emulator.media import probe
from emulator.testing import EmulatorHandle
from tests.emulator.helpers import wait_for

GROK = {"model": "grok-video-3", "prompt": "小猫在吃鱼", "aspect_ratio": "3:2", "size": "720P",
        "images": ["https://example.com/a.png"]}


def test_create_then_query_until_completed(emu: EmulatorHandle, gw: httpx.Client) -> None:
    created = gw.post("/v1/video/create", json=GROK)
    assert created.status_code == 200
    body = created.json()
    assert set(body) == {"id", "status", "status_update_time"}
    assert body["id"].startswith("grok:") and body["status"] == "pending"
    assert body["status_update_time"] < 10**11  # grok: seconds

    def completed() -> dict | None:
        answer = gw.get("/v1/video/query", params={"id": body["id"]}).json()
        assert answer["status"] in ("pending", "processing", "completed")
        return answer if answer["status"] == "completed" else None

    done = wait_for(completed)
    assert done["video_url"] and done["detail"]["video_url"] == done["video_url"]
    assert {"id", "status", "video_url", "enhanced_prompt", "status_update_time", "detail"} <= set(done)
    assert probe(httpx.get(done["video_url"]).content) is not None
    assert emu.ledger()[0]["provider"] == "gateway" and emu.ledger()[0]["job_id"] == body["id"]



def test_a_result_url_lives_until_expired_by_the_admin_route(emu: EmulatorHandle, gw: httpx.Client) -> None:
    task_id = gw.post("/v1/video/create", json=GROK).json()["id"]
    emu.advance(100)
    url = gw.get("/v1/video/query", params={"id": task_id}).json()["video_url"]
    emu.advance(real_seconds=7 * 24 * 3600)  # the gateway documents no lifetime: a week later it still answers
    assert httpx.get(url).status_code == 200
    assert emu.expire() == [task_id]  # every task's output, as a lost one would be
    assert httpx.get(url).status_code == 403

def test_processing_has_no_url_and_veo_uses_milliseconds(emu: EmulatorHandle, gw: httpx.Client) -> None:
    emu.configure(time_scale=1.0)  # a minute of processing, not 0.3 s that a busy machine could let pass
    created = gw.post("/v1/video/create", json={"model": "veo3.1-components", "prompt": "x",
                                                 "images": ["https://a/1.png"]}).json()
    assert created["id"].startswith("veo3.1-components:") and created["status_update_time"] > 10**12
    emu.advance(10)
    answer = gw.get("/v1/video/query", params={"id": created["id"]}).json()
    assert answer["status"] == "processing" and answer["video_url"] is None


def test_failed_generation(emu: EmulatorHandle, gw: httpx.Client) -> None:
    task = gw.post("/v1/video/create", json={**GROK, "prompt": "EMULATOR_FAIL"}).json()
    emu.advance(100)
    answer = gw.get("/v1/video/query", params={"id": task["id"]}).json()
    assert answer["status"] == "failed" and answer["detail"]["error_message"]


def test_missing_task_is_400(gw: httpx.Client) -> None:
    response = gw.get("/v1/video/query", params={"id": "grok:nope"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "task_not_exist"


@pytest.mark.parametrize("patch", [
    {"model": "nope"}, {"model": None}, {"prompt": ""}, {"aspect_ratio": "16:9"}, {"size": "1080P"},
    {"images": "https://a/1.png"},
])
def test_invalid_create(emu: EmulatorHandle, gw: httpx.Client, patch: dict) -> None:
    body = {k: v for k, v in {**GROK, **patch}.items() if v is not None}
    response = gw.post("/v1/video/create", json=body)
    assert response.status_code == 400 and "error" in response.json()
    assert emu.ledger() == []


def test_throttled_with_saturation_message(emu: EmulatorHandle, gw: httpx.Client) -> None:
    emu.configure(qps={"gateway.create": 1})
    assert gw.post("/v1/video/create", json=GROK).status_code == 200
    refused = gw.post("/v1/video/create", json=GROK)
    assert refused.status_code == 429 and "饱和" in refused.json()["error"]["message"]
    assert int(refused.headers["retry-after"]) >= 1


@pytest.mark.parametrize(("model", "images"), [
    ("veo3-frames", ["https://a/first.png", "https://a/last.png"]),
    ("veo3.1-components", ["https://a/1.png", "https://a/2.png", "https://a/3.png"]),
])
def test_several_images_are_accepted_as_the_page_says(emu: EmulatorHandle, gw: httpx.Client, model: str,
                                                      images: list[str]) -> None:
    from emulator.params import fingerprint

    body = {"model": model, "prompt": "a door opens", "aspect_ratio": "16:9", "size": "720P", "images": images}
    assert gw.post("/v1/video/create", json=body).status_code == 200
    assert [e["fingerprint"] for e in emu.ledger()] == [fingerprint(body)]


@pytest.mark.parametrize(("model", "count"), [("veo3-frames", 3), ("veo3-frames", 0), ("veo3.1-components", 4)])
def test_too_many_or_too_few_images_for_the_model(
    emu: EmulatorHandle, gw: httpx.Client, model: str, count: int
) -> None:
    body = {"model": model, "prompt": "x", "images": [f"https://a/{n}.png" for n in range(count)]}
    response = gw.post("/v1/video/create", json=body)
    assert response.status_code == 400 and model in response.json()["error"]["message"]
    assert emu.ledger() == []
