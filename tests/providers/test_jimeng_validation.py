"""Jimeng request rules are enforced before anything is sent, naming the field and the rule."""

from __future__ import annotations

import base64
import struct
import zlib

import pytest

from providers.errors import RequestValidationError
from providers.jimeng import JimengClient, JimengVideoRequest, validate_request
from providers.jimeng.models import IMAGE_MAX_BYTES, image_kind, image_size
from tests.providers.support import NoNetwork

# Images are header-only: the client reads dimensions from the header and never decodes pixels.


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def jpeg(width: int, height: int, *, sof: int = 0xC0, before_sof: bytes = b"") -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    frame = bytes([0xFF, sof]) + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + app0 + before_sof + frame + b"\xff\xd9"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- header parsing ------------------------------------------------------------------------------------------


def test_png_dimensions() -> None:
    assert image_kind(png(640, 480)) == "PNG"
    assert image_size(png(640, 480)) == (640, 480)


@pytest.mark.parametrize("sof", [0xC0, 0xC1, 0xC2])  # baseline, extended, progressive
def test_jpeg_dimensions(sof: int) -> None:
    assert image_kind(jpeg(1920, 1080, sof=sof)) == "JPEG"
    assert image_size(jpeg(1920, 1080, sof=sof)) == (1920, 1080)


def test_jpeg_skips_dht_fill_bytes_and_restart_markers() -> None:
    # DHT (C4) lies in the SOF range but is not a frame header; 0xFF fill bytes may pad a marker.
    dht = b"\xff\xc4" + struct.pack(">H", 5) + b"\x00\x01\x02"
    assert image_size(jpeg(800, 600, before_sof=dht + b"\xff\xff\xd0")) == (800, 600)


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n",  # signature only
        b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIDAT" + b"\x00" * 16,  # first chunk is not IHDR
        b"\xff\xd8\xff\xe0\x00\x10JFIF",  # cut inside APP0
        b"\xff\xd8\xff\xda\x00\x08",  # scan before any frame header
        png(0, 100),
    ],
)
def test_unreadable_headers_give_none(data: bytes) -> None:
    assert image_size(data) is None


# --- rules ---------------------------------------------------------------------------------------------------


def image_req(data: bytes, **fields: object) -> JimengVideoRequest:
    return JimengVideoRequest(binary_data_base64=[b64(data)], **fields)


INVALID = [
    pytest.param(JimengVideoRequest(prompt="x" * 801), "prompt", "at most 800 characters", id="prompt-too-long"),
    pytest.param(JimengVideoRequest(), "prompt", "required for text-to-video", id="nothing-given"),
    pytest.param(JimengVideoRequest(prompt="   "), "prompt", "required for text-to-video", id="blank-prompt"),
    pytest.param(
        JimengVideoRequest(prompt="p", image_urls=["https://a/1.png", "https://a/2.png"]),
        "image_urls", "exactly one image", id="two-urls",
    ),
    pytest.param(
        JimengVideoRequest(binary_data_base64=[b64(png(640, 480))] * 2), "binary_data_base64", "exactly one image",
        id="two-binaries",
    ),
    pytest.param(
        JimengVideoRequest(image_urls=["https://a/1.png"], binary_data_base64=[b64(png(640, 480))]),
        "binary_data_base64", "not both", id="url-and-binary",
    ),
    pytest.param(JimengVideoRequest(image_urls=["ftp://a/1.png"]), "image_urls[0]", "http(s) URL", id="url-scheme"),
    pytest.param(JimengVideoRequest(image_urls=["/tmp/1.png"]), "image_urls[0]", "http(s) URL", id="url-relative"),
    pytest.param(
        JimengVideoRequest(binary_data_base64=["data:image/png;base64,AAAA"]), "binary_data_base64[0]", "base64",
        id="not-base64",
    ),
    pytest.param(image_req(b"GIF89a" + b"\x00" * 64), "binary_data_base64[0]", "JPEG or PNG", id="gif"),
    pytest.param(
        image_req(png(1000, 1000) + b"\x00" * IMAGE_MAX_BYTES), "binary_data_base64[0]", "at most 4.7 MB",
        id="too-large",
    ),
    pytest.param(image_req(b"\x89PNG\r\n\x1a\nxx"), "binary_data_base64[0]", "dimensions", id="corrupt-png"),
    pytest.param(image_req(png(319, 600)), "binary_data_base64[0]", "short side must be >= 320", id="short-side"),
    pytest.param(image_req(jpeg(600, 300)), "binary_data_base64[0]", "short side must be >= 320", id="jpeg-short"),
    pytest.param(image_req(png(4097, 2000)), "binary_data_base64[0]", "long side must be <= 4096", id="long-side"),
    pytest.param(image_req(png(1000, 320)), "binary_data_base64[0]", "ratio must be <= 3", id="ratio"),
    pytest.param(image_req(jpeg(400, 1300)), "binary_data_base64[0]", "ratio must be <= 3", id="jpeg-ratio"),
    pytest.param(JimengVideoRequest(prompt="p", frames=120), "frames", "one of [121, 241]", id="frames"),
    pytest.param(JimengVideoRequest(prompt="p", aspect_ratio="2:1"), "aspect_ratio", "must be one of", id="aspect"),
    pytest.param(JimengVideoRequest(prompt="p", seed=-2), "seed", ">= -1", id="seed"),
    pytest.param(JimengVideoRequest(prompt="p", req_key="other"), "req_key", "jimeng_ti2v_v30_pro", id="req-key"),
]


@pytest.mark.parametrize("req,field,rule", INVALID)
async def test_rule_is_enforced_before_sending(req: JimengVideoRequest, field: str, rule: str) -> None:
    transport = NoNetwork()
    async with JimengClient("AK", "SK", transport=transport) as client:
        with pytest.raises(RequestValidationError) as info:
            await client.submit_task(req)
    err = info.value
    assert err.field == field
    assert rule in err.rule
    assert str(err).startswith(f"[jimeng:CVSync2AsyncSubmitTask] {field}: ")
    assert err.retryable is False
    assert transport.calls == 0


@pytest.mark.parametrize(
    "req",
    [
        pytest.param(JimengVideoRequest(prompt="千" * 800), id="prompt-800"),
        pytest.param(JimengVideoRequest(prompt="p", seed=-1, frames=241, aspect_ratio="21:9"), id="t2v-all-fields"),
        pytest.param(JimengVideoRequest(image_urls=["https://a/1.png"]), id="url-without-prompt"),
        pytest.param(JimengVideoRequest(prompt="p", image_urls=["http://a/1.png"], binary_data_base64=[]), id="empty-list"),
        pytest.param(image_req(png(320, 960)), id="ratio-exactly-3"),
        pytest.param(image_req(png(4096, 4096)), id="max-square"),
        pytest.param(image_req(jpeg(1920, 1080, sof=0xC2), prompt="p", seed=0), id="progressive-jpeg"),
        pytest.param(JimengVideoRequest.from_image_bytes(png(1080, 1920), "p"), id="from-bytes"),
    ],
)
def test_valid_requests_pass(req: JimengVideoRequest) -> None:
    validate_request(req)


def test_empty_image_list_is_not_sent() -> None:
    wire = JimengVideoRequest(prompt="p", binary_data_base64=[]).to_wire()
    assert wire == {"req_key": "jimeng_ti2v_v30_pro", "prompt": "p"}
