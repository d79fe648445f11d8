"""Hostile inputs, table-driven: what an attacker with the deployment form or REST (or a careless operator) can put
in a field that names a location or a text, and what must happen — refused naming the field, before anything is
paid, in bounded time and memory, saying nothing about other hosts and ports.

Through the public entry points against the emulator over HTTP, moto S3 and a real Prefect server
(tests.harness ``pipeline``): ``produce_video`` called from Python, the deployment's REST ``create_flow_run``,
``produce_batch`` items, and a translation review answered over the API. The emulator's ledger must stay empty for
every refusal.

The image server is a local one on 127.0.0.2 (the only address ``CLIPFLOW_FETCH_ALLOW_HOSTS`` allows here); on
127.0.0.1 a stand-in for a loopback admin service records every request it gets, and must get none. Addresses
other than loopback are only given to the pure checks (the models, the schema, ``check_url``), never connected to.
This file holds the cases of outbound fetches, subtitles and exposure; bucket scoping and strict values have their
own files (tests/flows/test_bucket_scoping.py and the strict-values tests).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import srt
import webvtt
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools.validation import validate
from pydantic import ValidationError

from flows.models import ProductionRequest
from flows.runtime.fetch import FetchNotAllowed, check_url
from flows.stages.preflight_checks import PreflightError, PreflightMemo
from flows.stages.preflight import preflight_production
from tests.flows.runtime.hostile_server import HostileServer, gzip_bomb, hostile_server
from tests.flows.stages.test_preflight_images import png
from tests.harness import Pipeline

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

IMAGES_HOST = "127.0.0.2"
DEADLINE = 3.0  # CLIPFLOW_FETCH_DEADLINE_SECONDS here: the slow cases end fast (a drip would take 20 minutes)
MIB = 1024 * 1024
NOT_ALLOWED = "not allowed"
FAILED = "download failed"


@pytest.fixture(autouse=True)
def _fetch_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPFLOW_FETCH_ALLOW_HOSTS", IMAGES_HOST)
    monkeypatch.setenv("CLIPFLOW_FETCH_DEADLINE_SECONDS", str(DEADLINE))


@pytest.fixture(scope="module")
def images() -> Iterator[HostileServer]:
    with hostile_server(IMAGES_HOST) as server:
        yield server


@pytest.fixture(scope="module")
def admin() -> Iterator[HostileServer]:
    """A loopback-only admin service: nothing in this file may ever reach it."""
    with hostile_server("127.0.0.1") as server:
        server.route(lambda req: req.send_error(418), "reset")
        yield server


def request_with(url: str, provider: str = "jimeng") -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    if provider == "gateway":
        clip = {"provider": "gateway", "model": "veo3.1", "aspect_ratio": "16:9", "prompt": f"a tram {tag}"}
    else:
        clip = {"prompt": f"the first frame comes alive {tag}"}
    return {"title": f"hostile-{tag}", "clip": {**clip, "image_url": url}, "translate": {"target_languages": []}}


# --- the table: URLs refused by rule, decided without any connection --------------------------------------------


@dataclass(frozen=True)
class UrlCase:
    name: str
    url: str  # "{admin}" stands for the admin stand-in's port
    rule: str  # what the refusal says
    at_submit: bool = False  # the deployment's schema refuses it already (HTTP 409 at Submit)
    provider: str = "jimeng"

    def resolved(self, admin_port: int) -> str:
        return self.url.replace("{admin}", str(admin_port))


def U(name: str, url: str, rule: str, at_submit: bool = False, provider: str = "jimeng") -> UrlCase:  # noqa: N802
    return UrlCase(name, url, rule, at_submit, provider)


# Not loopback: only ever given to the pure checks.
ELSEWHERE: list[UrlCase] = [
    U("plain http to a public host", "http://images.example.com/a.png", "only https://"),
    U("cloud metadata", "https://169.254.169.254/latest/meta-data/iam/", "link-local"),
    U("cloud metadata, decimal", "https://2852039166/latest/meta-data/", "link-local"),
    U("cloud metadata, hex", "https://0xa9fea9fe/latest/", "link-local"),
    U("cloud metadata, octal", "https://0251.0376.0251.0376/latest/", "not a valid URL"),
    U("cloud metadata, IPv4-mapped", "https://[::ffff:169.254.169.254]/latest/", "IPv4-mapped"),
    U("cloud metadata, 6to4", "https://[2002:a9fe:a9fe::1]/latest/", "embeds a non-public"),
    U("cloud metadata, NAT64", "https://[64:ff9b::a9fe:a9fe]/latest/", "embeds a non-public"),
    U("cloud metadata over http", "http://169.254.169.254/latest/", "only https://"),
    U("private 10/8", "https://10.0.0.5/a.png", "private"),
    U("private 10/8 short form", "https://10.1/a.png", "private"),
    U("private 172.16/12", "https://172.16.5.4/a.png", "private"),
    U("private 192.168/16", "https://192.168.1.1/admin", "private"),
    U("unique local IPv6", "https://[fd00::1]/a.png", "private"),
    U("link-local IPv6", "https://[fe80::1]/a.png", "link-local"),
    U("carrier-grade NAT", "https://100.64.0.1/a.png", "shared"),
    U("multicast", "https://224.0.0.1/a.png", "multicast"),
    U("unspecified", "https://0.0.0.0/a.png", "unspecified"),
    U("unspecified IPv6", "https://[::]/a.png", "unspecified"),
    U("reserved", "https://240.0.0.1/a.png", "reserved"),
    U("broadcast", "https://255.255.255.255/a.png", "reserved"),
    U("gateway clip to metadata", "https://169.254.169.254/latest/", "link-local", provider="gateway"),
    U("gateway clip over http", "http://images.example.com/a.png", "only https://", provider="gateway"),
    U("userinfo", "https://user:secret@images.example.com/a.png", "user info", at_submit=True),
    U("empty userinfo", "https://@images.example.com/a.png", "user info", at_submit=True),
    U("userinfo hiding the host", "https://images.example.com@169.254.169.254/", "user info", at_submit=True),
    U("backslash before @", "https://images.example.com\\@169.254.169.254/", "user info", at_submit=True),
    U("gopher to redis", "gopher://10.0.0.9:6379/_FLUSHALL", "only https://", at_submit=True),
    U("dict scheme", "dict://10.0.0.9:11211/stat", "only https://", at_submit=True),
    U("file scheme", "file:///etc/passwd", "only https://", at_submit=True),
]

# Loopback, however written: also sent through produce_video (only the admin stand-in could answer, and must not).
LOOPBACK: list[UrlCase] = [
    U("loopback admin", "http://127.0.0.1:{admin}/reset", "only https://"),
    U("loopback admin over https", "https://127.0.0.1:{admin}/reset", "loopback"),
    U("localhost", "http://localhost:{admin}/reset", "only https://"),
    U("localhost over https", "https://localhost:{admin}/reset", "localhost"),
    U("LOCALHOST with a dot", "https://LOCALHOST.:{admin}/reset", "localhost"),
    U("a .localhost name", "https://admin.localhost:{admin}/reset", "localhost"),
    U("IPv6 loopback", "https://[::1]:{admin}/reset", "loopback"),
    U("IPv6 loopback, long form", "https://[0:0:0:0:0:0:0:1]:{admin}/reset", "loopback"),
    U("IPv4-mapped loopback", "https://[::ffff:127.0.0.1]:{admin}/reset", "IPv4-mapped"),
    U("decimal loopback", "https://2130706433:{admin}/reset", "loopback"),
    U("hex loopback", "https://0x7f000001:{admin}/reset", "loopback"),
    U("octal loopback", "https://0177.0.0.1:{admin}/reset", "not a valid URL"),
    U("short loopback", "https://127.1:{admin}/reset", "loopback"),
    U("another loopback address", "https://127.0.0.3:{admin}/reset", "loopback"),
    U("loopback, userinfo", "https://x@127.0.0.1:{admin}/reset", "user info", at_submit=True),
]
RULE_CASES = ELSEWHERE + LOOPBACK
SUBMIT_CASES = [c for c in RULE_CASES if c.at_submit]


def ids(cases: list[UrlCase]) -> list[str]:
    return [c.name for c in cases]


@pytest.mark.parametrize("case", RULE_CASES, ids=ids(RULE_CASES))
def test_the_rules_refuse_without_a_connection(case: UrlCase) -> None:
    url = case.resolved(9)
    # The parameter model (what the worker validates a run with, and batch items are built with).
    with pytest.raises(ValidationError) as info:
        ProductionRequest.model_validate(request_with(url, case.provider))
    errors = info.value.errors()
    assert any(e["loc"][-1] == "image_url" for e in errors), errors
    if not case.at_submit:
        assert any(NOT_ALLOWED in e["msg"] and case.rule in e["msg"] for e in errors), errors
    # The fetcher's own check (what every hop of a download goes through).
    with pytest.raises(FetchNotAllowed) as refused:
        check_url(url)
    assert str(refused.value).startswith(NOT_ALLOWED) and case.rule in str(refused.value)


@pytest.mark.parametrize("case", SUBMIT_CASES, ids=ids(SUBMIT_CASES))
def test_the_deployment_schema_refuses_at_submit(case: UrlCase) -> None:
    from flows.stages.pipeline import produce_video

    schema = parameter_schema(produce_video).model_dump_for_openapi()
    errors = validate({"request": request_with(case.resolved(9), case.provider)}, schema)
    assert errors, case.url
    leaves = [leaf for e in errors for leaf in [e, *(e.context or [])]]
    assert any("image_url" in [str(p) for p in leaf.absolute_path] for leaf in leaves)


@pytest.mark.parametrize("case", LOOPBACK, ids=ids(LOOPBACK))
async def test_loopback_forms_are_refused_by_produce_video(
    pipeline: Pipeline, admin: HostileServer, case: UrlCase
) -> None:
    from flows.stages.pipeline import produce_video

    with pytest.raises(Exception) as info:  # noqa: PT011 - the validated entry's error, naming the field
        await produce_video(request=request_with(case.resolved(admin.port)))
    message = str(info.value)
    assert "image_url" in message and (NOT_ALLOWED in message or case.at_submit), message
    assert pipeline.emulator.ledger() == [] and admin.hits == []


# --- over REST: the deployment's create_flow_run ------------------------------------------------------------------


@pytest.fixture(scope="module")
async def deployment_id(prefect_api: str) -> str:
    from flows.stages.pipeline import produce_video

    deployment = await produce_video.ato_deployment(name="hostile-inputs")
    return str(await deployment.apply())


@pytest.mark.parametrize("case", SUBMIT_CASES, ids=ids(SUBMIT_CASES))
async def test_rest_create_flow_run_answers_409(
    pipeline: Pipeline, deployment_id: str, admin: HostileServer, case: UrlCase
) -> None:
    """Over REST, as the UI's Submit: HTTP 409 naming the field, and no flow run is created."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    body = {"parameters": {"request": request_with(case.resolved(admin.port), case.provider)}}
    async with httpx.AsyncClient(base_url=str(PREFECT_API_URL.value()), timeout=30) as api:
        answer = await api.post(f"/deployments/{deployment_id}/create_flow_run", json=body)
        assert answer.status_code == 409, answer.text
        assert "image_url" in answer.text
        runs = await api.post("/flow_runs/filter", json={"deployments": {"id": {"any_": [deployment_id]}}})
        assert runs.status_code == 200 and runs.json() == []
    assert pipeline.emulator.ledger() == [] and admin.hits == []


# --- at run time: what only the download can find out (local image server, allowed) ----------------------------


@dataclass(frozen=True)
class FetchCase:
    name: str
    make: Callable[[HostileServer, HostileServer, Any], str]  # (images, admin, emulator) -> the URL
    says: str  # NOT_ALLOWED, FAILED, or the image rule
    seconds: float = DEADLINE + 20.0  # the whole produce_video refusal ends within this (a busy machine included)


def _redirect_to(location: Callable[[HostileServer, Any], str]) -> Callable[[HostileServer, HostileServer, Any], str]:
    return lambda images, admin, emulator: images.redirect(location(admin, emulator))


def _chain(images: HostileServer, hops: int) -> str:
    url = images.body(png(640, 360))
    for _ in range(hops):
        url = images.redirect(url)
    return url


def _closed_port(images: HostileServer, admin: HostileServer, emulator: Any) -> str:
    sock = socket.socket()
    sock.bind((IMAGES_HOST, 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://{IMAGES_HOST}:{port}/a.png"


FETCH_CASES: list[FetchCase] = [
    FetchCase("redirect to the loopback admin", _redirect_to(lambda a, e: f"http://127.0.0.1:{a.port}/reset"),
              NOT_ALLOWED),
    FetchCase("redirect to localhost", _redirect_to(lambda a, e: f"http://localhost:{a.port}/reset"), NOT_ALLOWED),
    FetchCase("redirect to decimal loopback", _redirect_to(lambda a, e: f"http://2130706433:{a.port}/reset"),
              NOT_ALLOWED),
    FetchCase("redirect to the emulator's admin routes",
              _redirect_to(lambda a, e: f"{e.vod_endpoint.rstrip('/')}/_emulator/config"), NOT_ALLOWED),
    FetchCase("redirect to cloud metadata", _redirect_to(lambda a, e: "http://169.254.169.254/latest/meta-data/"),
              NOT_ALLOWED),
    FetchCase("redirect to userinfo", _redirect_to(lambda a, e: f"http://u:p@{IMAGES_HOST}/x.png"), NOT_ALLOWED),
    FetchCase("redirect to a file", _redirect_to(lambda a, e: "file:///etc/passwd"), NOT_ALLOWED),
    FetchCase("redirect to plain http elsewhere", _redirect_to(lambda a, e: "http://images.example.com/a.png"),
              NOT_ALLOWED),
    FetchCase("four redirects", lambda i, a, e: _chain(i, 4), FAILED),
    FetchCase("one byte every second", lambda i, a, e: i.drip(png(640, 360), every=1.0), FAILED),
    FetchCase("headers after the deadline", lambda i, a, e: i.hold(DEADLINE + 1.5, png(640, 360)), FAILED),
    FetchCase("gzip bomb, declared",
              lambda i, a, e: i.body(bomb(), headers={"Content-Encoding": "gzip"}), FAILED),
    FetchCase("gzip bomb, undeclared", lambda i, a, e: i.body(bomb()), "image must be JPEG or PNG"),
    FetchCase("oversize, declared", lambda i, a, e: i.body(png(1280, 720, total=6 * MIB)), "at most 4.7 MB"),
    FetchCase("oversize, undeclared", lambda i, a, e: i.body(png(1280, 720, total=6 * MIB), length=False),
              "at most 4.7 MB"),
    FetchCase("a 404", lambda i, a, e: f"{i.base_url}/nothing/here.png", FAILED),
    FetchCase("a closed port", _closed_port, FAILED),
]


@functools.cache
def bomb() -> bytes:
    return gzip_bomb(200 * MIB)  # about 200 KB


@pytest.mark.parametrize("case", FETCH_CASES, ids=[c.name for c in FETCH_CASES])
async def test_downloads_are_refused_before_paying(
    pipeline: Pipeline, images: HostileServer, admin: HostileServer, case: FetchCase
) -> None:
    from flows.stages.pipeline import produce_video

    url = case.make(images, admin, pipeline.emulator)
    started = time.monotonic()
    with pytest.raises(PreflightError) as info:
        await produce_video(request=request_with(url))
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert info.value.field == "clip.image_url" and case.says in message, message
    assert elapsed < case.seconds, elapsed
    assert pipeline.emulator.ledger() == [] and admin.hits == []
    told = message.replace(url, "<url>")  # the user's own URL is echoed; its random path may contain "404"
    for leak in ("404", "refused", "timed out", "Timeout", "Connect", "gzip", str(admin.port)):
        assert leak not in told, message  # what answered, and where, is never said


async def test_a_404_and_a_closed_port_read_the_same(pipeline: Pipeline, images: HostileServer) -> None:
    messages = []
    for url in (f"{images.base_url}/nothing.png", _closed_port(images, images, None)):
        with pytest.raises(PreflightError) as info:
            await preflight_production(ProductionRequest.model_validate(request_with(url)), PreflightMemo())
        messages.append(str(info.value).replace(url, "URL"))
    assert messages[0] == messages[1]
    assert pipeline.emulator.ledger() == []


async def test_a_name_that_resolves_to_loopback_is_refused(
    pipeline: Pipeline, admin: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS says a public-looking name is this machine (rebinding-style): refused before any connection."""
    from flows.stages.pipeline import produce_video

    real = socket.getaddrinfo

    def lookup(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "images.intranet.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port or 443)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    with pytest.raises(PreflightError) as info:
        await produce_video(request=request_with(f"https://images.intranet.test:{admin.port}/reset"))
    assert "resolves to a loopback address" in str(info.value)
    assert pipeline.emulator.ledger() == [] and admin.hits == []


async def test_the_memory_of_the_fetching_process_stays_small_with_gzip_bombs(
    pipeline: Pipeline, images: HostileServer
) -> None:
    """Eight 200 MiB gzip bombs (declared and not) checked at once: the process allocates a few MB, not GBs."""
    urls = [images.body(bomb(), headers={"Content-Encoding": "gzip"}) for _ in range(4)]
    urls += [images.body(bomb()) for _ in range(4)]
    memo = PreflightMemo()
    tracemalloc.start()
    try:
        results = await asyncio.gather(
            *(preflight_production(ProductionRequest.model_validate(request_with(u)), memo) for u in urls),
            return_exceptions=True,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert all(isinstance(r, PreflightError) for r in results), results
    assert peak < 40 * MIB, f"peak {peak / MIB:.1f} MiB"  # 8 x 200 MiB inflated would be 1.6 GiB
    assert pipeline.emulator.ledger() == []


async def test_a_batch_of_hostile_urls_pays_nothing_and_ends_within_the_deadline(
    pipeline: Pipeline, images: HostileServer, admin: HostileServer
) -> None:
    """The slow rows are checked side by side (a few at a time), so one slow row cannot stall the batch for
    longer than a deadline or two."""
    from flows.stages.batch_rows import ItemStatus
    from flows.stages.batch import produce_batch

    urls = [case.make(images, admin, pipeline.emulator) for case in FETCH_CASES]
    urls += [images.drip(png(640, 360), every=1.0) for _ in range(3)]
    items = [{"clip": request_with(url)["clip"], "title": f"hostile-{n}"} for n, url in enumerate(urls)]
    started = time.monotonic()
    result = await produce_batch(items=items, defaults={"translate": {"target_languages": []}})
    elapsed = time.monotonic() - started
    assert (result.total, result.invalid) == (len(items), len(items))
    assert all(row.status is ItemStatus.INVALID and "clip.image_url" in (row.error or "") for row in result.items)
    assert elapsed < 4 * DEADLINE + 40, elapsed
    assert pipeline.emulator.ledger() == [] and admin.hits == []


# --- subtitles: an edit cannot forge a cue -------------------------------------------------------------------------

FORGED = "Hello\n\n2\n00:00:00,000 ---> 09:59:59,000\n\x07\x1b[2JBuy now - -> <v Admin-->"


async def test_a_review_edit_cannot_forge_a_cue_in_the_final_subtitles(pipeline: Pipeline) -> None:
    """A reviewer's edit (over the API, as the Resume form sends it) with a blank line, an index, a timing line
    whose arrow has one dash too many, BEL/ESC and arrows inside a voice mark: the final en.srt and en.vtt read back
    (third-party parsers) as exactly the project's cues, each with its own timing."""
    from emulator.config import DEMO_VID
    from flows.models import BlockRefs
    from flows.outputs.subtitles import cue_text
    from flows.stages.translate import ai_translate
    from tests.flows.stages.test_review import paused_run, project, resume, review_spec

    running = asyncio.ensure_future(ai_translate(DEMO_VID, "demo", review_spec(), BlockRefs()))
    run = await paused_run()
    draft = await project(pipeline, run.state.state_details.pause_key.removeprefix("review-"))
    line = draft.target_utterances[0]
    await resume(run.id, {"action": "edit", "edits": [{"id": line.id, "text": FORGED}]})
    [result] = (await asyncio.wait_for(running, 120)).languages
    srt_text = pipeline.s3_client.get_object(Bucket=pipeline.bucket, Key=result.srt_key)["Body"].read().decode()
    vtt_text = pipeline.s3_client.get_object(Bucket=pipeline.bucket, Key=result.vtt_key)["Body"].read().decode()
    cues = list(srt.parse(srt_text))
    captions = webvtt.from_string(vtt_text).captions
    timed = [c for c in draft.target_utterances if any(clip.id == c.clip_id for clip in draft.target_clips)]
    assert len(cues) == len(captions) == len(timed)
    assert all(c.end.total_seconds() < 9 * 3600 for c in cues)  # no forged 09:59:59 cue
    forged = next(c.content for c in cues if "Buy now" in c.content)
    assert forged == cue_text(FORGED) and "-->" not in forged and "\x07" not in forged and "\x1b" not in forged
    assert "\x07" not in vtt_text and "\x1b" not in vtt_text and vtt_text.count("-->") == len(captions)


def test_the_table_is_big_enough() -> None:
    total = len(RULE_CASES) + len(FETCH_CASES) + 4  # + name to loopback, 404 = closed port, memory, review
    assert total >= 60, total
    assert ipaddress.ip_address(IMAGES_HOST).is_loopback
