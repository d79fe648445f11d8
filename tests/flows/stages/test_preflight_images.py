"""First-frame images by reference (``clip.image_url``: an http(s) URL, ``s3://bucket/key`` or a key in the
production's bucket): fetched and checked before any paid call, then sent as checked.

Against the emulator over HTTP, moto S3, a real Prefect API (tests.harness ``pipeline``) and a local HTTP server
for URLs. "On the wire" = the emulator ledger's fingerprint of the submit body it received."""

from __future__ import annotations

import base64
import http.server
import os
import struct
import threading
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from emulator.params import fingerprint as wire_fingerprint
from flows.models import ProductionRequest
from flows.models.rules import IMAGE_BASE64_MAX_CHARS
from flows.stages.preflight_checks import PreflightError, PreflightMemo
from flows.stages.preflight import preflight_production
from providers.jimeng.models import IMAGE_MAX_BYTES, REQ_KEY, JimengVideoRequest
from tests.harness import Pipeline

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MIB = 1024 * 1024


# --- images --------------------------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, total: int | None = None) -> bytes:
    """A decodable RGB PNG (black); ``total`` pads it to that many bytes with an ancillary private chunk that
    decoders skip (so a "4.5 MB image" is a real one without encoding 4.5 MB of pixels)."""
    rows = (b"\x00" + b"\x00" * width * 3) * height
    head = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    tail = _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b"")
    if total is None:
        return head + tail
    pad = total - len(head) - len(tail) - 12
    assert pad >= 0
    return head + _chunk(b"clPd", os.urandom(pad)) + tail


@pytest.fixture(scope="module")
def big_png() -> bytes:
    data = png(1280, 720, total=int(4.5 * MIB))
    assert len(data) == int(4.5 * MIB) < IMAGE_MAX_BYTES
    return data


# --- a local HTTP server for image URLs ------------------------------------------------------------------------


class Served:
    def __init__(self, base_url: str, files: dict[str, bytes], hits: list[str]) -> None:
        self.base_url, self.files, self.hits = base_url, files, hits

    def add(self, name: str, data: bytes) -> str:
        path = f"/{uuid.uuid4().hex[:8]}/{name}"
        self.files[path] = data
        return self.base_url + path


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    files: dict[str, bytes] = {}
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path.split("?", 1)[0]
            hits.append(path)
            data = files.get(path)
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the preflight stops reading at the size limit and closes: that is the point

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_address[1]}", files, hits)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _local_images(monkeypatch: pytest.MonkeyPatch) -> None:
    """The image server is on loopback and speaks http: allowed for these tests only (flows/runtime/fetch.py)."""
    monkeypatch.setenv("CLIPFLOW_FETCH_ALLOW_HOSTS", "127.0.0.1")


# --- helpers ---------------------------------------------------------------------------------------------------


def request(image_url: str | None = None, **clip: Any) -> ProductionRequest:
    tag = uuid.uuid4().hex[:8]
    spec: dict[str, Any] = {"prompt": f"The first frame comes alive, take {tag}", **clip}
    if image_url is not None:
        spec["image_url"] = image_url
    return ProductionRequest.model_validate(
        {"title": f"img-{tag}", "clip": spec, "translate": {"target_languages": []}}
    )


def put(pipeline: Pipeline, data: bytes, name: str = "frame.png") -> str:
    key = f"frames/{uuid.uuid4().hex[:8]}/{name}"
    pipeline.s3_client.put_object(Bucket=pipeline.bucket, Key=key, Body=data)
    return key


def submitted(pipeline: Pipeline) -> list[dict[str, Any]]:
    return [e for e in pipeline.emulator.ledger() if e["action"] == "CVSync2AsyncSubmitTask"]


def expected_fingerprint(req: ProductionRequest, **image: Any) -> str:
    """The fingerprint the emulator records for the submit body clipflow should send."""
    clip = req.clip
    wire = JimengVideoRequest(
        prompt=clip.prompt or None, frames=clip.frames, aspect_ratio=clip.aspect_ratio, seed=clip.seed, **image
    ).to_wire()
    assert wire["req_key"] == REQ_KEY
    return wire_fingerprint(wire)


async def refused(pipeline: Pipeline, req: ProductionRequest, *needles: str) -> str:
    """Through produce_video (the real wiring) and the preflight alone: refused before paying, the message names
    the field, the value and the rule."""
    from flows.stages.pipeline import produce_video

    with pytest.raises(PreflightError) as raised:
        await produce_video(req)
    message = str(raised.value)
    assert raised.value.field == "clip.image_url" and "clip.image_url: " in message, message
    for needle in needles:
        assert needle in message, message
    assert len(message) < 600, message
    # The preflight alone refuses it too (not only the re-check at submit time), with the same message.
    with pytest.raises(PreflightError) as alone:
        await preflight_production(req, PreflightMemo())
    assert str(alone.value) == message
    assert pipeline.emulator.ledger() == []
    return message


# --- accepted, and sent as checked -----------------------------------------------------------------------------


async def test_a_4_5_mb_image_in_the_bucket_is_checked_and_sent_as_base64(pipeline: Pipeline, big_png: bytes) -> None:
    from flows.stages.pipeline import produce_video

    key = put(pipeline, big_png)
    req = request(key, prompt="")  # image-to-video without a prompt
    result = await produce_video(req)
    assert result.clip.job_id
    sent = submitted(pipeline)
    assert len(sent) == 1
    b64 = base64.b64encode(big_png).decode("ascii")
    assert sent[0]["fingerprint"] == expected_fingerprint(req, binary_data_base64=[b64])


async def test_an_s3_uri_names_the_bucket_itself(pipeline: Pipeline) -> None:
    from flows.stages.generate import generate_clip

    image = png(640, 360)
    key = put(pipeline, image)
    req = request(f"s3://{pipeline.bucket}/{key}")
    clip = await generate_clip(req.clip, "demo")
    assert clip.job_id == submitted(pipeline)[0]["job_id"]
    b64 = base64.b64encode(image).decode("ascii")
    assert submitted(pipeline)[0]["fingerprint"] == expected_fingerprint(req, binary_data_base64=[b64])


async def test_a_4_5_mb_image_at_a_url_is_checked_then_sent_as_the_url(
    pipeline: Pipeline, served: Served, big_png: bytes
) -> None:
    from flows.stages.pipeline import produce_video

    url = served.add("first-frame.png", big_png)
    req = request(url)
    await produce_video(req)
    assert served.hits.count(url.removeprefix(served.base_url)) == 1  # fetched once, by the preflight
    sent = submitted(pipeline)
    assert len(sent) == 1 and sent[0]["fingerprint"] == expected_fingerprint(req, image_urls=[url])


async def test_each_distinct_image_is_read_once_per_run(pipeline: Pipeline, served: Served) -> None:
    url = served.add("shared.png", png(640, 480))
    key = put(pipeline, png(480, 640))
    memo = PreflightMemo()
    for ref in (url, key, url, key, url):
        await preflight_production(request(ref), memo)
    assert memo.performed["image"] == 2
    assert served.hits.count(url.removeprefix(served.base_url)) == 1
    assert pipeline.emulator.ledger() == []


# --- refused before paying -------------------------------------------------------------------------------------


async def test_too_large_in_the_bucket(pipeline: Pipeline) -> None:
    key = put(pipeline, png(1280, 720, total=5 * MIB))
    await refused(pipeline, request(key), f"s3://{pipeline.bucket}/{key}", "image must be at most 4.7 MB", "5.00 MB")


async def test_too_large_at_a_url(pipeline: Pipeline, served: Served) -> None:
    url = served.add("huge.png", png(1280, 720, total=6 * MIB))
    await refused(pipeline, request(url), url, "image must be at most 4.7 MB", "6.00 MB")


async def test_a_text_file_is_not_an_image(pipeline: Pipeline, served: Served) -> None:
    key = put(pipeline, b"just some notes, not a picture\n" * 10, name="notes.txt")
    await refused(pipeline, request(key), f"s3://{pipeline.bucket}/{key}", "image must be JPEG or PNG")
    url = served.add("notes.png", b"<html>not found, really</html>")
    await refused(pipeline, request(url), url, "image must be JPEG or PNG")


@pytest.mark.parametrize(
    ("size", "rule"),
    [
        ((200, 200), "short side must be >= 320 px, got 200x200"),
        ((4200, 2400), "long side must be <= 4096 px, got 4200x2400"),
        ((1600, 400), "long/short side ratio must be <= 3, got 1600x400"),
    ],
    ids=["too-small", "too-long", "too-narrow"],
)
async def test_wrong_dimensions(pipeline: Pipeline, size: tuple[int, int], rule: str) -> None:
    key = put(pipeline, png(*size))
    await refused(pipeline, request(key), f"s3://{pipeline.bucket}/{key}", rule)


async def test_a_url_answering_404(pipeline: Pipeline, served: Served) -> None:
    url = served.base_url + "/nothing/here.png"
    message = await refused(pipeline, request(url), url, "download failed: it must answer 200")
    assert "404" not in message.replace(url, "")  # what answered is not said (its port may hold a "404")


async def test_an_unreachable_url(pipeline: Pipeline) -> None:
    url = "http://127.0.0.1:9/frame.png"
    message = await refused(pipeline, request(url), url, "download failed: it must answer 200")
    served_404 = "download failed: it must answer 200 with the file itself within 60 s"
    assert served_404 in message  # a closed port reads like a 404: no port scanning through this message


async def test_a_signed_url_is_named_without_its_query(pipeline: Pipeline, served: Served) -> None:
    secret = "X-Amz-Signature=" + uuid.uuid4().hex
    url = served.base_url + "/gone/frame.png"
    message = await refused(pipeline, request(f"{url}?{secret}"), url, "download failed")
    assert secret not in message


async def test_a_missing_bucket_key(pipeline: Pipeline) -> None:
    key = f"frames/{uuid.uuid4().hex}/missing.png"
    await refused(pipeline, request(key), f"s3://{pipeline.bucket}/{key}", "does not exist", "s3-bucket/clipflow")


async def test_another_bucket_in_an_s3_uri_is_not_allowed(pipeline: Pipeline) -> None:
    uri = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/a.png"
    message = await refused(pipeline, request(uri), uri, "is not allowed", "CLIPFLOW_IMAGE_BUCKETS")
    assert "does not exist" not in message  # decided by name: nothing said about the bucket itself


async def test_a_gateway_image_url_that_is_not_an_image(pipeline: Pipeline, served: Served) -> None:
    url = served.add("page.png", b"<html></html>")
    req = ProductionRequest.model_validate({
        "title": "gw-img", "translate": {"target_languages": []},
        "clip": {"provider": "gateway", "model": "veo3.1", "aspect_ratio": "16:9", "prompt": "a tram",
                 "image_url": url},
    })
    await refused(pipeline, req, url, "image must be JPEG, PNG or WebP")


# --- inline base64: small images only, said in KB ---------------------------------------------------------------


def test_base64_over_the_limit_names_the_field_and_the_limit_in_kb() -> None:
    too_long = "A" * (IMAGE_BASE64_MAX_CHARS + 4)
    with pytest.raises(ValidationError) as info:
        request(image_base64=too_long)
    error = info.value.errors()[0]
    assert error["loc"][-1] == "image_base64"
    assert "at most" in error["msg"] and "350 KB" in error["msg"] and "image_url" in error["msg"]
    assert len(str(info.value)) < 2000  # the value itself is not repeated back


async def test_base64_over_the_limit_is_refused_by_produce_video_before_paying(pipeline: Pipeline) -> None:
    from flows.stages.pipeline import produce_video

    clip = {"prompt": "x", "image_base64": "A" * (IMAGE_BASE64_MAX_CHARS + 4)}
    with pytest.raises(Exception) as info:  # noqa: PT011 - Prefect's parameter error wrapping pydantic's
        await produce_video(request={"title": "b64", "clip": clip})
    assert "image_base64" in str(info.value) and "350 KB" in str(info.value)
    assert pipeline.emulator.ledger() == []


def test_small_base64_images_are_checked_by_the_model() -> None:
    ok = base64.b64encode(png(640, 360)).decode()
    assert request(image_base64=ok).clip.image_base64 == ok  # type: ignore[union-attr]
    with pytest.raises(ValidationError, match="image short side must be >= 320 px"):
        request(image_base64=base64.b64encode(png(100, 100)).decode())
    with pytest.raises(ValidationError, match="image must be JPEG or PNG"):
        request(image_base64=base64.b64encode(b"hello").decode())
