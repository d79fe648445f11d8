"""Jimeng submit/get-result: validation codes, state machine, real MP4s, URL expiry, concurrency."""

from __future__ import annotations

import httpx
import pytest

from emulator.media import probe
from emulator.testing import EmulatorHandle
from tests.emulator.helpers import call, jimeng_get, jimeng_submit, wait_for


def test_reaches_done_with_a_playable_mp4(emu: EmulatorHandle, cv: httpx.Client) -> None:
    submitted = jimeng_submit(cv, prompt="a cat eating fish", seed=7)
    body = submitted.json()
    assert submitted.status_code == 200 and body["code"] == 10000 and body["status"] == 10000
    assert set(body) == {"code", "data", "message", "request_id", "status", "time_elapsed"}
    task_id = body["data"]["task_id"]
    seen = {jimeng_get(cv, task_id).json()["data"]["status"]}
    done = wait_for(lambda: (d := jimeng_get(cv, task_id).json()["data"])["status"] == "done" and d)
    seen.add("done")
    assert seen <= {"in_queue", "generating", "done"}
    video = httpx.get(done["video_url"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    info = probe(video.content)
    assert info is not None and info.duration > 2 and info.width > 0


def test_in_queue_then_generating(emu: EmulatorHandle, cv: httpx.Client) -> None:
    emu.configure(time_scale=1.0)  # 5 s in the queue, not the test scale's 25 ms: a busy machine cannot skip it
    task_id = jimeng_submit(cv, prompt="x").json()["data"]["task_id"]
    assert jimeng_get(cv, task_id).json()["data"]["status"] == "in_queue"
    emu.advance(10)
    assert jimeng_get(cv, task_id).json()["data"] == {"status": "generating", "video_url": ""}


def test_bytes_vary_by_prompt_and_seed(emu: EmulatorHandle, cv: httpx.Client) -> None:
    emu.configure(qps={"CVSync2AsyncSubmitTask": 100})
    ids = [jimeng_submit(cv, prompt=p, seed=s).json()["data"]["task_id"]
           for p, s in [("dog", 1), ("cat", 1)]]
    emu.advance(100)
    ids.append(jimeng_submit(cv, prompt="dog", seed=1).json()["data"]["task_id"])
    emu.advance(100)
    blobs = [httpx.get(jimeng_get(cv, i).json()["data"]["video_url"]).content for i in ids]
    assert blobs[0] != blobs[1] and blobs[0] == blobs[2]  # same seed + prompt -> same video


def test_url_expires_after_a_wall_clock_hour_and_task_after_12h(emu: EmulatorHandle, cv: httpx.Client) -> None:
    task_id = jimeng_submit(cv, prompt="expiring").json()["data"]["task_id"]
    emu.advance(70)
    url = jimeng_get(cv, task_id).json()["data"]["video_url"]
    assert httpx.get(url).status_code == 200
    assert httpx.get(url.replace("X-Expires=", "X-Expires=9")).status_code == 403  # cannot extend by hand
    # The time scale shortens the job, not the life of what was paid for: an hour of job time (18 s at this
    # scale) leaves the URL alive; the vendor's wall-clock hour ends it.
    emu.advance(3600)
    assert httpx.get(url).status_code == 200
    emu.advance(real_seconds=3600)
    assert httpx.get(url).status_code == 403
    assert jimeng_get(cv, task_id).json()["data"]["status"] == "done"
    emu.advance(real_seconds=11 * 3600)
    assert jimeng_get(cv, task_id).json()["data"]["status"] == "expired"


def test_expire_ends_one_result_url_now(emu: EmulatorHandle, cv: httpx.Client) -> None:
    emu.configure(qps={"CVSync2AsyncSubmitTask": 100})
    first, second = (jimeng_submit(cv, prompt=p).json()["data"]["task_id"] for p in ("one", "two"))
    emu.advance(70)
    handed_out = jimeng_get(cv, first).json()["data"]["video_url"]
    assert emu.expire(first) == [first]
    assert httpx.get(handed_out).status_code == 403  # a URL handed out before
    assert httpx.get(jimeng_get(cv, first).json()["data"]["video_url"]).status_code == 403  # and a fresh one
    assert jimeng_get(cv, first).json()["data"]["status"] == "done"  # the task itself lives on
    assert httpx.get(jimeng_get(cv, second).json()["data"]["video_url"]).status_code == 200  # others untouched
    missing = httpx.post(f"{emu.base_url}/_emulator/expire", json={"job_id": "404"})
    assert missing.status_code == 404 and "job_id" in missing.json()["error"]


def test_unknown_task_is_not_found(cv: httpx.Client) -> None:
    body = jimeng_get(cv, "123").json()
    assert body["code"] == 10000 and body["data"]["status"] == "not_found"


def test_fail_marker_ends_done_with_error_code(emu: EmulatorHandle, cv: httpx.Client) -> None:
    task_id = jimeng_submit(cv, prompt="EMULATOR_FAIL please").json()["data"]["task_id"]
    emu.advance(100)
    response = jimeng_get(cv, task_id)
    assert response.status_code == 400
    assert response.json()["code"] == 50511 and response.json()["data"]["status"] == "done"


@pytest.mark.parametrize("body,code", [
    ({}, 50400),  # neither prompt nor image
    ({"prompt": "x" * 801}, 50400),
    ({"prompt": "x", "frames": 100}, 50400),
    ({"prompt": "x", "aspect_ratio": "5:4"}, 50400),
    ({"image_urls": ["https://a/1.png", "https://a/2.png"]}, 50400),
    ({"image_urls": ["https://a/1.png"], "binary_data_base64": ["aGk="]}, 50400),
    ({"binary_data_base64": ["***"]}, 50400),
    ({"prompt": "x", "req_key": "other"}, 50400),
    ({"prompt": "this has EMULATOR_BANNED words"}, 50413),
])
def test_invalid_submissions(emu: EmulatorHandle, cv: httpx.Client, body: dict, code: int) -> None:
    response = jimeng_submit(cv, **body)
    assert response.status_code == 400 and response.json()["code"] == code
    assert response.json()["data"] is None
    assert emu.ledger() == []


def test_image_only_and_800_char_prompt_are_fine(cv: httpx.Client) -> None:
    assert jimeng_submit(cv, image_urls=["https://example.com/a.png"]).json()["code"] == 10000
    assert jimeng_submit(cv, prompt="x" * 800, frames=241, aspect_ratio="9:16").json()["code"] == 10000


def test_get_result_req_json_must_be_a_string(emu: EmulatorHandle, cv: httpx.Client) -> None:
    task_id = jimeng_submit(cv, prompt="x").json()["data"]["task_id"]
    base = {"req_key": "jimeng_ti2v_v30_pro", "task_id": task_id}
    ok = call(cv, "CVSync2AsyncGetResult", "2022-08-31", body={**base, "req_json": '{"return_url": true}'})
    assert ok.json()["code"] == 10000
    bad = call(cv, "CVSync2AsyncGetResult", "2022-08-31", body={**base, "req_json": {"return_url": True}})
    assert bad.status_code == 400 and bad.json()["code"] == 50400


def test_concurrency_limit_50430(emu: EmulatorHandle, cv: httpx.Client) -> None:
    emu.configure(qps={"CVSync2AsyncSubmitTask": 100})  # isolate the concurrency limit from QPS
    assert all(jimeng_submit(cv, prompt=f"p{i}").json()["code"] == 10000 for i in range(2))
    refused = jimeng_submit(cv, prompt="third")
    assert refused.status_code == 429 and refused.json()["code"] == 50430
    assert len(emu.ledger()) == 2
    emu.advance(100)  # the first two are done: slots free again
    assert jimeng_submit(cv, prompt="third").json()["code"] == 10000
