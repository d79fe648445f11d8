"""GatewayClient against the seed page's examples, the query variants of api-notes section 5, and every error."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx

from providers.errors import (
    AuthError,
    InvalidRequestError,
    NotFoundError,
    OutcomeUnknownError,
    RequestNotSentError,
    RetryableRefusalError,
    ServerError,
    ThrottledError,
    UnexpectedResponseError,
)
from providers.gateway import GatewayClient, GatewayTask, GatewayVideoRequest
from providers.states import JobState

BASE = "https://gw.example.com"
KEY = "sk-secret-gateway-key"
GROK_ID = "grok:299604b7-c5ea-47b5-bc64-c06f300f0d27"
VEO_ID = "veo3.1-components:1762241017-xTL0P9HvGF"

# Request example from api-docs/gateway-video-create.txt
PAGE_CREATE_BODY = {
    "model": "grok-video-3",
    "prompt": "小猫在吃鱼 --mode=custom",
    "aspect_ratio": "3:2",
    "size": "720P",
    "images": ["https://ark-project.tos-cn-beijing.volces.com/doc_image/seedream4_5_imageToimage.png"],
}


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
async def client() -> AsyncIterator[GatewayClient]:
    async with GatewayClient(BASE, KEY) as c:
        yield c


def sent(route: respx.Route) -> httpx.Request:
    assert route.call_count == 1
    return route.calls.last.request


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.timezone.utc)


# --- create --------------------------------------------------------------------------------------------------


async def test_create_page_example_grok_id(router: respx.MockRouter, client: GatewayClient) -> None:
    route = router.post("/v1/video/create").respond(
        200, json={"id": GROK_ID, "status": "processing", "status_update_time": 1764522528}
    )
    task = await client.create_video(GatewayVideoRequest(**PAGE_CREATE_BODY))
    request = sent(route)
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == PAGE_CREATE_BODY
    assert task.id == GROK_ID
    assert task.state is JobState.RUNNING
    assert task.updated_at == utc(2025, 11, 30, 17, 8, 48)  # seconds


async def test_create_page_example_veo_id_in_ms(router: respx.MockRouter, client: GatewayClient) -> None:
    route = router.post("/v1/video/create").respond(
        200, json={"id": VEO_ID, "status": "pending", "status_update_time": 1762241017286}
    )
    task = await client.create_video(
        GatewayVideoRequest(model="veo3.1-components", prompt="p", images=["https://x/1.png", "https://x/2.png"])
    )
    assert json.loads(sent(route).content) == {
        "model": "veo3.1-components", "prompt": "p", "images": ["https://x/1.png", "https://x/2.png"],
    }
    assert task.id == VEO_ID and task.state is JobState.QUEUED
    assert task.updated_at == utc(2025, 11, 4, 7, 23, 37) + dt.timedelta(milliseconds=286)  # milliseconds


@pytest.mark.parametrize("base", ["https://gw.example.com/", "https://gw.example.com/v1", "https://gw.example.com/v1/"])
async def test_base_url_with_or_without_v1(base: str) -> None:
    with respx.mock(base_url=BASE) as mock:
        route = mock.get("/v1/video/query").respond(200, json={"id": GROK_ID, "status": "pending"})
        async with GatewayClient(base, KEY) as c:
            await c.query_video(GROK_ID)
    assert sent(route).url.path == "/v1/video/query"


async def test_create_tolerates_data_wrapper(router: respx.MockRouter, client: GatewayClient) -> None:
    router.post("/v1/video/create").respond(200, json={"code": 0, "message": "ok", "data": {"id": 123, "status": "pending"}})
    task = await client.create_video(GatewayVideoRequest(model="sora-2", prompt="p"))
    assert task.id == "123"


def test_key_never_shown() -> None:
    assert KEY not in repr(GatewayClient(BASE, KEY))


# --- query ---------------------------------------------------------------------------------------------------


async def test_query_sends_id_as_returned(router: respx.MockRouter, client: GatewayClient) -> None:
    route = router.get("/v1/video/query").respond(200, json={"id": VEO_ID, "status": "processing", "video_url": None})
    task = await client.query_video(VEO_ID)
    request = sent(route)
    assert request.method == "GET"
    assert request.url.params["id"] == VEO_ID
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert task.state is JobState.RUNNING and task.result_url is None and task.error_message is None


QUERIES: list[Any] = [
    pytest.param(
        {"id": GROK_ID, "status": "completed", "video_url": "https://cdn/v.mp4", "enhanced_prompt": "a cat...",
         "status_update_time": 1764522600, "detail": {"video_url": "https://cdn/other.mp4"}},
        JobState.SUCCEEDED, "https://cdn/v.mp4", None, utc(2025, 11, 30, 17, 10), id="completed-top-url",
    ),
    pytest.param(
        {"id": GROK_ID, "status": "success", "video_url": None, "status_update_time": 1764522600000,
         "detail": {"video_url": "https://cdn/detail.mp4", "upsample_video_url": "https://cdn/up.mp4"}},
        JobState.SUCCEEDED, "https://cdn/detail.mp4", None, utc(2025, 11, 30, 17, 10), id="success-detail-url-ms",
    ),
    pytest.param(
        {"id": VEO_ID, "status": "completed", "video_url": "", "status_update_time": "1764522600",
         "detail": {"video_url": None, "upsample_video_url": "https://cdn/up.mp4", "error_message": "upsample slow"}},
        JobState.SUCCEEDED, "https://cdn/up.mp4", None, utc(2025, 11, 30, 17, 10), id="completed-with-error-message",
    ),
    pytest.param(
        {"id": VEO_ID, "status": "failed", "video_url": None, "detail": {"error_message": "prompt blocked"}},
        JobState.FAILED, None, "prompt blocked", None, id="failed-detail-message",
    ),
    pytest.param(
        {"id": VEO_ID, "status": "error", "error": {"message": "upstream crashed"}, "detail": "raw text"},
        JobState.FAILED, None, "upstream crashed", None, id="error-top-level-message",
    ),
    pytest.param(
        {"id": VEO_ID, "status": "FAILED"}, JobState.FAILED, None, "task FAILED", None, id="failed-no-message",
    ),
    pytest.param(
        {"id": VEO_ID, "status": "pending", "status_update_time": 0}, JobState.QUEUED, None, None, None, id="pending",
    ),
    pytest.param(
        {"id": VEO_ID, "status": "upscaling", "detail": {"progress": "80%"}}, JobState.RUNNING, None, None, None,
        id="unknown-word-running",
    ),
]


@pytest.mark.parametrize("answer,state,url,error,updated", QUERIES)
async def test_query_variants(
    router: respx.MockRouter, client: GatewayClient, answer: dict[str, Any], state: JobState, url: str | None,
    error: str | None, updated: dt.datetime | None,
) -> None:
    router.get("/v1/video/query").respond(200, json=answer)
    task = await client.query_video(answer["id"])
    assert isinstance(task, GatewayTask)
    assert task.state is state
    assert task.result_url == url
    assert task.error_message == error
    assert task.updated_at == updated


async def test_query_keeps_unknown_fields(router: respx.MockRouter, client: GatewayClient) -> None:
    router.get("/v1/video/query").respond(
        200, json={"id": GROK_ID, "status": "completed", "enhanced_prompt": "ep", "detail": {"seed": 7}, "cost": 1.5}
    )
    task = await client.query_video(GROK_ID)
    assert task.enhanced_prompt == "ep"
    assert task.model_extra == {"cost": 1.5}
    assert task.detail is not None and task.detail.model_extra == {"seed": 7}


# --- errors --------------------------------------------------------------------------------------------------


def openai_error(message: str, code: str | None = "x") -> dict[str, Any]:
    return {"error": {"message": message, "type": "new_api_error", "code": code}}


def plain_error(message: str) -> dict[str, Any]:
    return {"code": "fail", "message": message, "data": None}


@pytest.mark.parametrize(
    "call,http,body,exc,retryable",
    [
        pytest.param("create", 401, openai_error("invalid token"), AuthError, False, id="401"),
        pytest.param("query", 403, plain_error("forbidden"), AuthError, False, id="403"),
        pytest.param("query", 400, openai_error("task_not_exist"), NotFoundError, False, id="query-not-exist"),
        pytest.param("query", 400, plain_error("Task not found"), NotFoundError, False, id="query-not-found"),
        pytest.param("query", 400, plain_error("任务不存在"), NotFoundError, False, id="query-not-found-zh"),
        pytest.param("query", 404, {}, NotFoundError, False, id="query-404"),
        pytest.param("query", 400, openai_error("invalid id format"), InvalidRequestError, False, id="query-bad-id"),
        pytest.param("create", 400, openai_error("model not found"), InvalidRequestError, False, id="create-model"),
        pytest.param("create", 422, plain_error("bad size"), InvalidRequestError, False, id="create-422"),
        pytest.param("create", 402, openai_error("quota exhausted"), InvalidRequestError, False, id="create-402"),
        pytest.param("create", 429, openai_error("rate limited"), ThrottledError, True, id="429"),
        # Saturation in the relay's own body: a refusal. A 5xx one on the paid create is a RetryableRefusalError
        # (retried in place, or an operator's under the strict policy); on a read, or as 429, throttling.
        pytest.param("create", 500, plain_error("上游负载已饱和，请稍后再试"), RetryableRefusalError, True,
                     id="saturated-500"),
        pytest.param("create", 503, openai_error("上游负载已饱和"), RetryableRefusalError, True, id="saturated-503"),
        pytest.param("create", 429, openai_error("上游负载已饱和"), ThrottledError, True, id="saturated-429-create"),
        pytest.param("query", 503, openai_error("上游负载已饱和"), ThrottledError, True, id="saturated-503-query"),
        pytest.param("query", 429, plain_error("上游负载已饱和"), ThrottledError, True, id="saturated-429"),
        # Not saturation: the relay failed after the paid create arrived, the job may exist.
        pytest.param("create", 500, openai_error("panic"), OutcomeUnknownError, False, id="500-create"),
        pytest.param("create", 502, {}, OutcomeUnknownError, False, id="502-create"),
        pytest.param("create", 503, plain_error("maintenance"), OutcomeUnknownError, False, id="503-create"),
        pytest.param("query", 500, openai_error("panic"), ServerError, True, id="500-query"),
        pytest.param("query", 503, plain_error("maintenance"), ServerError, True, id="503-query"),
        pytest.param("create", 504, {}, OutcomeUnknownError, False, id="504-create"),
        pytest.param("query", 504, {}, ServerError, True, id="504-query"),
    ],
)
async def test_error_mapping(
    router: respx.MockRouter, client: GatewayClient, call: str, http: int, body: dict[str, Any], exc: type,
    retryable: bool,
) -> None:
    router.post("/v1/video/create").respond(http, json=body, headers={"Retry-After": "7"})
    router.get("/v1/video/query").respond(http, json=body, headers={"Retry-After": "7"})
    with pytest.raises(exc) as info:
        if call == "create":
            await client.create_video(GatewayVideoRequest(model="sora-2", prompt="p"))
        else:
            await client.query_video(GROK_ID)
    err = info.value
    assert type(err) is exc
    assert err.http_status == http and err.retryable is retryable
    assert KEY not in str(err)
    if isinstance(err, ThrottledError):
        assert err.retry_after == 7.0


async def test_error_fields_are_kept(router: respx.MockRouter, client: GatewayClient) -> None:
    router.get("/v1/video/query").respond(400, json=openai_error("task_not_exist", code="task_not_exist"))
    with pytest.raises(NotFoundError) as info:
        await client.query_video(GROK_ID)
    assert info.value.code == "task_not_exist" and "new_api_error" in info.value.message


@pytest.mark.parametrize(
    "call,body,exc,retryable",
    [
        ("create", {"error": {"message": "上游负载已饱和"}}, ThrottledError, True),
        ("create", {"code": "error", "message": "something odd"}, UnexpectedResponseError, False),
        ("query", {"code": "error", "message": "something odd"}, UnexpectedResponseError, True),
        ("create", {"status": "pending"}, UnexpectedResponseError, False),
    ],
)
async def test_success_status_without_a_task(
    router: respx.MockRouter, client: GatewayClient, call: str, body: dict[str, Any], exc: type, retryable: bool
) -> None:
    router.post("/v1/video/create").respond(200, json=body)
    router.get("/v1/video/query").respond(200, json=body)
    with pytest.raises(exc) as info:
        if call == "create":
            await client.create_video(GatewayVideoRequest(model="sora-2", prompt="p"))
        else:
            await client.query_video(GROK_ID)
    assert info.value.retryable is retryable


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(lambda: httpx.Response(503, text="<html>upstream saturated</html>"), id="html-503-saturated"),
        pytest.param(lambda: httpx.Response(502, text="<html><h1>502 Bad Gateway</h1></html>"), id="proxy-502"),
        pytest.param(lambda: httpx.Response(504, content=b""), id="504-empty"),
    ],
)
async def test_create_5xx_without_the_relay_body_is_outcome_unknown(
    router: respx.MockRouter, client: GatewayClient, answer: Any
) -> None:
    """Saturation counts only in the relay's own JSON error body: a proxy page proves nothing about the job."""
    router.post("/v1/video/create").mock(return_value=answer())
    with pytest.raises(OutcomeUnknownError) as info:
        await client.create_video(GatewayVideoRequest(model="sora-2", prompt="p"))
    assert type(info.value) is OutcomeUnknownError and info.value.retryable is False


async def test_non_json_success_is_unexpected(router: respx.MockRouter, client: GatewayClient) -> None:
    router.get("/v1/video/query").respond(200, text="<html>login</html>")
    with pytest.raises(UnexpectedResponseError) as info:
        await client.query_video(GROK_ID)
    assert info.value.retryable is True


# --- transport -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["create", "query"])
async def test_connect_error_is_not_sent(router: respx.MockRouter, client: GatewayClient, call: str) -> None:
    router.post("/v1/video/create").mock(side_effect=httpx.ConnectError("refused"))
    router.get("/v1/video/query").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(RequestNotSentError) as info:
        if call == "create":
            await client.create_video(GatewayVideoRequest(model="sora-2", prompt="p"))
        else:
            await client.query_video(GROK_ID)
    assert info.value.retryable is True


@pytest.mark.parametrize("call,retryable", [("create", False), ("query", True)])
async def test_read_timeout_outcome_unknown(
    router: respx.MockRouter, client: GatewayClient, call: str, retryable: bool
) -> None:
    router.post("/v1/video/create").mock(side_effect=httpx.ReadTimeout("slow"))
    router.get("/v1/video/query").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(OutcomeUnknownError) as info:
        if call == "create":
            await client.create_video(GatewayVideoRequest(model="sora-2", prompt="p"))
        else:
            await client.query_video(GROK_ID)
    assert info.value.retryable is retryable
