"""JimengClient against the vendor page's wire examples and every error mapping (respx at the HTTP layer)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx

from providers.errors import (
    AuthError,
    ContentRejectedError,
    InvalidRequestError,
    JobFailedError,
    NotFoundError,
    OutcomeUnknownError,
    RequestNotSentError,
    RequestValidationError,
    RetryableRefusalError,
    ServerError,
    ThrottledError,
    UnexpectedResponseError,
)
from providers.jimeng import JimengClient, JimengResult, JimengVideoRequest
from providers.signing import compute_signature, parse_authorization
from providers.states import JobState

ENDPOINT = "https://visual.volcengineapi.com"
AK = "AKLTtestaccesskey"
SK = "c2VjcmV0LWtleS1uZXZlci1sb2dnZWQ="
SUBMIT = "CVSync2AsyncSubmitTask"
RESULT = "CVSync2AsyncGetResult"

# Wire examples from api-docs/jimeng-video-3.0-pro.txt
PAGE_SUBMIT_BODY = {
    "req_key": "jimeng_ti2v_v30_pro",
    "image_urls": ["https://xxx"],
    "prompt": "千军万马",
    "seed": -1,
    "frames": 121,
    "aspect_ratio": "16:9",
}
PAGE_SUBMIT_ANSWER = {
    "code": 10000,
    "data": {"task_id": "7392616336519610409"},
    "message": "Success",
    "request_id": "20240720103939AF0029465CF6A74E51EC",
    "status": 10000,
    "time_elapsed": "104.852309ms",
}
PAGE_RESULT_ANSWER = {
    "code": 10000,
    "data": {"status": "done", "video_url": "https://xxxx"},
    "message": "Success",
    "request_id": "20250805144938F6E5264E9D24EB0C4E0A",
    "status": 10000,
    "time_elapsed": "57.354545ms",
}


def envelope(code: int, message: str, data: Any = None) -> dict[str, Any]:
    return {"code": code, "data": data, "message": message, "request_id": "req-1", "status": code, "time_elapsed": "1ms"}


def metadata_error(code: str, message: str = "denied") -> dict[str, Any]:
    return {
        "ResponseMetadata": {
            "RequestId": "meta-req", "Action": SUBMIT, "Version": "2022-08-31", "Service": "cv", "Region": "cn-north-1",
            "Error": {"Code": code, "Message": message},
        }
    }


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=ENDPOINT, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
async def client() -> AsyncIterator[JimengClient]:
    async with JimengClient(AK, SK) as c:
        yield c


def sent(route: respx.Route) -> httpx.Request:
    assert route.call_count == 1
    return route.calls.last.request


def assert_signed_for(request: httpx.Request, action: str) -> None:
    assert request.method == "POST"
    assert request.url.path == "/"
    assert dict(request.url.params) == {"Action": action, "Version": "2022-08-31"}
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-content-sha256"] == hashlib.sha256(request.content).hexdigest()
    parsed = parse_authorization(request.headers["authorization"])
    assert parsed is not None
    assert (parsed.access_key, parsed.region, parsed.service) == (AK, "cn-north-1", "cv")
    assert parsed.signed_headers == ("content-type", "host", "x-content-sha256", "x-date")
    expected, _, _ = compute_signature(
        secret_key=SK, method="POST", path="/", query_items=request.url.params.multi_items(),
        signed_headers={name: request.headers[name] for name in parsed.signed_headers},
        body_sha256=hashlib.sha256(request.content).hexdigest(), x_date=request.headers["x-date"],
        region="cn-north-1", service="cv",
    )
    assert parsed.signature == expected


# --- submit --------------------------------------------------------------------------------------------------


async def test_submit_page_example(router: respx.MockRouter, client: JimengClient) -> None:
    route = router.post("/").respond(200, json=PAGE_SUBMIT_ANSWER)
    req = JimengVideoRequest(image_urls=["https://xxx"], prompt="千军万马", seed=-1, frames=121, aspect_ratio="16:9")
    assert await client.submit_task(req) == "7392616336519610409"
    request = sent(route)
    assert_signed_for(request, SUBMIT)
    assert json.loads(request.content) == PAGE_SUBMIT_BODY


async def test_submit_text_to_video_sends_only_given_fields(router: respx.MockRouter, client: JimengClient) -> None:
    route = router.post("/").respond(200, json=PAGE_SUBMIT_ANSWER)
    await client.submit_task(JimengVideoRequest(prompt="a cat", frames=241))
    assert json.loads(sent(route).content) == {"req_key": "jimeng_ti2v_v30_pro", "prompt": "a cat", "frames": 241}


async def test_submit_binary_image(router: respx.MockRouter, client: JimengClient) -> None:
    from tests.providers.test_jimeng_validation import png

    route = router.post("/").respond(200, json=PAGE_SUBMIT_ANSWER)
    await client.submit_task(JimengVideoRequest.from_image_bytes(png(1280, 720), "waves"))
    body = json.loads(sent(route).content)
    assert body["binary_data_base64"][0].startswith("iVBORw0KGgo")  # base64 of the PNG signature
    assert "image_urls" not in body


async def test_session_token_is_sent() -> None:
    with respx.mock(base_url=ENDPOINT) as mock:
        route = mock.post("/").respond(200, json=PAGE_SUBMIT_ANSWER)
        async with JimengClient(AK, SK, session_token="sts-token") as c:
            await c.submit_task(JimengVideoRequest(prompt="p"))
    assert sent(route).headers["x-security-token"] == "sts-token"


async def test_custom_endpoint_and_region() -> None:
    with respx.mock(base_url="http://127.0.0.1:9000") as mock:
        route = mock.post("/").respond(200, json=PAGE_SUBMIT_ANSWER)
        async with JimengClient(AK, SK, region="cn-beijing", endpoint="http://127.0.0.1:9000/") as c:
            await c.submit_task(JimengVideoRequest(prompt="p"))
    parsed = parse_authorization(sent(route).headers["authorization"])
    assert parsed is not None and parsed.region == "cn-beijing"


async def test_submit_without_task_id_is_unexpected(router: respx.MockRouter, client: JimengClient) -> None:
    router.post("/").respond(200, json=envelope(10000, "Success", {}))
    with pytest.raises(UnexpectedResponseError) as info:
        await client.submit_task(JimengVideoRequest(prompt="p"))
    assert info.value.retryable is False


def test_keys_never_shown() -> None:
    c = JimengClient(AK, SK, session_token="sts-secret")
    assert AK not in repr(c) and SK not in repr(c) and "sts-secret" not in repr(c)


# --- get_result ----------------------------------------------------------------------------------------------


async def test_get_result_page_example(router: respx.MockRouter, client: JimengClient) -> None:
    route = router.post("/").respond(200, json=PAGE_RESULT_ANSWER)
    result = await client.get_result("7491596536074305586")
    request = sent(route)
    assert_signed_for(request, RESULT)
    assert json.loads(request.content) == {"req_key": "jimeng_ti2v_v30_pro", "task_id": "7491596536074305586"}
    assert isinstance(result, JimengResult)
    assert result.state is JobState.SUCCEEDED
    assert (result.status, result.video_url) == ("done", "https://xxxx")
    assert (result.code, result.message) == (10000, "Success")
    assert result.request_id == "20250805144938F6E5264E9D24EB0C4E0A"
    assert result.raise_for_failure() is result


async def test_get_result_req_json_is_a_json_string(router: respx.MockRouter, client: JimengClient) -> None:
    route = router.post("/").respond(200, json=PAGE_RESULT_ANSWER)
    await client.get_result("t1", req_json={"return_url": True})
    body = json.loads(sent(route).content)
    assert body["req_json"] == '{"return_url": true}'
    assert json.loads(body["req_json"]) == {"return_url": True}


@pytest.mark.parametrize(
    "status,state",
    [
        ("in_queue", JobState.QUEUED),
        ("generating", JobState.RUNNING),
        ("not_found", JobState.EXPIRED),
        ("expired", JobState.EXPIRED),
        ("some_new_word", JobState.RUNNING),
    ],
)
async def test_get_result_states(router: respx.MockRouter, client: JimengClient, status: str, state: JobState) -> None:
    router.post("/").respond(200, json=envelope(10000, "Success", {"status": status, "video_url": ""}))
    result = await client.get_result("t1")
    assert result.state is state
    assert result.video_url is None


@pytest.mark.parametrize(
    "http,code,data,retryable",
    [
        pytest.param(400, 50511, None, True, id="post-image-moderation"),
        pytest.param(400, 50512, None, False, id="post-text-moderation"),
        pytest.param(400, 50411, None, False, id="pre-image-moderation"),
        pytest.param(400, 50413, {"status": "done"}, False, id="text-risk"),
        pytest.param(400, 50520, None, False, id="invalid-content"),
        pytest.param(500, 50500, {"status": "done"}, True, id="internal-on-done-task"),
        pytest.param(400, 59999, {"status": "done"}, False, id="unknown-code-on-done-task"),
    ],
)
async def test_get_result_job_failures_are_results(
    router: respx.MockRouter, client: JimengClient, http: int, code: int, data: Any, retryable: bool
) -> None:
    router.post("/").respond(http, json=envelope(code, "Risk Not Pass", data))
    result = await client.get_result("t1")
    assert result.state is JobState.FAILED
    assert (result.code, result.message, result.request_id) == (code, "Risk Not Pass", "req-1")
    assert result.failure_retryable is retryable
    with pytest.raises(JobFailedError) as info:
        result.raise_for_failure()
    assert info.value.code == code and info.value.retryable is retryable


async def test_get_result_internal_error_without_done_is_a_failed_query(
    router: respx.MockRouter, client: JimengClient
) -> None:
    router.post("/").respond(500, json=envelope(50500, "Internal Error"))
    with pytest.raises(ServerError) as info:
        await client.get_result("t1")
    assert type(info.value) is ServerError  # a read: polled again, not a refusal of anything paid
    assert info.value.retryable is True and info.value.code == 50500


# --- the retry table on submit: the vendor's own body or nothing ---------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(lambda: httpx.Response(502, text="<html><h1>502 Bad Gateway</h1></html>"), id="proxy-502-html"),
        pytest.param(lambda: httpx.Response(504, text="<html>gateway time-out</html>"), id="proxy-504-html"),
        pytest.param(lambda: httpx.Response(500, content=b""), id="500-empty-body"),
        pytest.param(lambda: httpx.Response(500, json={"error": "Internal Error 50500"}), id="500-foreign-json"),
        pytest.param(lambda: httpx.Response(504, json=metadata_error("InternalServiceTimeout")), id="gateway-504"),
        pytest.param(lambda: httpx.Response(500, json=metadata_error("InternalError")), id="gateway-500"),
    ],
)
async def test_submit_5xx_without_the_service_envelope_is_outcome_unknown(
    router: respx.MockRouter, client: JimengClient, answer: Any
) -> None:
    """Only the service's own envelope with a code the page marks 可重试 is a refusal; whatever a proxy or the
    OpenAPI gateway in front says could come after the task was created."""
    router.post("/").mock(return_value=answer())
    with pytest.raises(OutcomeUnknownError) as info:
        await client.submit_task(JimengVideoRequest(prompt="p"))
    assert type(info.value) is OutcomeUnknownError and info.value.retryable is False


async def test_submit_retryable_refusal_keeps_the_vendor_fields(router: respx.MockRouter, client: JimengClient) -> None:
    router.post("/").respond(500, json=envelope(50500, "Internal Error"))
    with pytest.raises(RetryableRefusalError) as info:
        await client.submit_task(JimengVideoRequest(prompt="p"))
    err = info.value
    assert isinstance(err, ServerError) and not isinstance(err, OutcomeUnknownError)
    assert (err.code, err.http_status, err.request_id, err.action) == (50500, 500, "req-1", SUBMIT)


@pytest.mark.parametrize("code", [50429, 50430])
async def test_get_result_throttling_raises(router: respx.MockRouter, client: JimengClient, code: int) -> None:
    router.post("/").respond(429, json=envelope(code, "Request Has Reached API Limit"), headers={"Retry-After": "3"})
    with pytest.raises(ThrottledError) as info:
        await client.get_result("t1")
    assert info.value.code == code and info.value.retry_after == 3.0


async def test_get_result_needs_task_id(router: respx.MockRouter, client: JimengClient) -> None:
    route = router.post("/")
    with pytest.raises(RequestValidationError) as info:
        await client.get_result(" ")
    assert info.value.field == "task_id" and "non-empty" in info.value.rule
    assert route.call_count == 0


# --- error mapping -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "http,code,exc,retryable,words",
    [
        (429, 50429, ThrottledError, True, "QPS"),
        (429, 50430, ThrottledError, True, "concurrency"),
        # the page's 可重试 internal errors, in the service's own envelope: a refusal, sent again in place
        (500, 50500, RetryableRefusalError, True, "safe to send again"),
        (500, 50501, RetryableRefusalError, True, "safe to send again"),
        # internal errors not on this model's page: the paid task may have been created, never retried blindly
        (400, 50511, ServerError, True, "moderation"),
        (500, 50516, OutcomeUnknownError, False, ""),
        (500, 50517, OutcomeUnknownError, False, ""),
        (500, 50519, OutcomeUnknownError, False, ""),
        (400, 50411, ContentRejectedError, False, "moderation"),
        (400, 50412, ContentRejectedError, False, "moderation"),
        (400, 50413, ContentRejectedError, False, "moderation"),
        (400, 50512, ContentRejectedError, False, "moderation"),
        (400, 50518, InvalidRequestError, False, ""),
        (400, 50520, InvalidRequestError, False, ""),
        (400, 50521, InvalidRequestError, False, ""),
        (400, 50522, InvalidRequestError, False, ""),
        (400, 50200, InvalidRequestError, False, ""),  # unknown code: by HTTP status
        (503, 50999, OutcomeUnknownError, False, ""),  # unknown code on a 5xx
        (401, 50401, AuthError, False, ""),
    ],
)
async def test_submit_envelope_codes(
    router: respx.MockRouter, client: JimengClient, http: int, code: int, exc: type, retryable: bool, words: str
) -> None:
    router.post("/").respond(http, json=envelope(code, "vendor says no"))
    with pytest.raises(exc) as info:
        await client.submit_task(JimengVideoRequest(prompt="p"))
    err = info.value
    assert type(err) is exc
    assert (err.code, err.http_status, err.retryable, err.request_id) == (code, http, retryable, "req-1")
    assert words in err.message and "vendor says no" in err.message


@pytest.mark.parametrize(
    "http,code,exc",
    [
        (401, "SignatureDoesNotMatch", AuthError),
        (401, "InvalidClientTokenId", AuthError),
        (401, "InvalidAccessKey", AuthError),
        (403, "InvalidTimestamp", AuthError),
        (403, "RequestForbidden", AuthError),
        (403, "AccessDenied", AuthError),
        (401, "SomeNewAuthCode", AuthError),  # by HTTP status
        (429, "FlowLimitExceeded", ThrottledError),
        (429, "AccountFlowLimitExceeded", ThrottledError),
        (404, "InvalidActionOrVersion", InvalidRequestError),
        (400, "InvalidParameter", InvalidRequestError),
        (500, "InternalError", ServerError),
        (503, "ServiceUnavailable", ServerError),
    ],
)
@pytest.mark.parametrize("call", ["submit", "result"])
async def test_response_metadata_errors(
    router: respx.MockRouter, client: JimengClient, http: int, code: str, exc: type, call: str
) -> None:
    if exc is ServerError and call == "submit":
        exc = OutcomeUnknownError  # a server failure on the paid submit: the task may exist
    router.post("/").respond(http, json=metadata_error(code))
    with pytest.raises(exc) as info:
        if call == "submit":
            await client.submit_task(JimengVideoRequest(prompt="p"))
        else:
            await client.get_result("t1")
    err = info.value
    assert type(err) is exc
    assert (err.code, err.http_status, err.request_id) == (code, http, "meta-req")
    assert SK not in str(err) and AK not in str(err)


@pytest.mark.parametrize("call,exc,retryable", [("submit", OutcomeUnknownError, False), ("result", ServerError, True)])
async def test_non_json_bad_gateway(
    router: respx.MockRouter, client: JimengClient, call: str, exc: type, retryable: bool
) -> None:
    router.post("/").respond(502, text="<html>bad gateway</html>")
    with pytest.raises(exc) as info:
        if call == "submit":
            await client.submit_task(JimengVideoRequest(prompt="p"))
        else:
            await client.get_result("t1")
    assert info.value.retryable is retryable and "bad gateway" in info.value.message


@pytest.mark.parametrize("call,retryable", [("submit", False), ("result", True)])
async def test_non_json_success(router: respx.MockRouter, client: JimengClient, call: str, retryable: bool) -> None:
    router.post("/").respond(200, text="OK")
    with pytest.raises(UnexpectedResponseError) as info:
        if call == "submit":
            await client.submit_task(JimengVideoRequest(prompt="p"))
        else:
            await client.get_result("t1")
    assert info.value.retryable is retryable


async def test_gateway_timeout_on_submit_is_outcome_unknown(router: respx.MockRouter, client: JimengClient) -> None:
    router.post("/").respond(504, json=metadata_error("InternalServiceTimeout"))
    with pytest.raises(OutcomeUnknownError) as info:
        await client.submit_task(JimengVideoRequest(prompt="p"))
    assert info.value.retryable is False


async def test_gateway_timeout_on_result_is_retryable(router: respx.MockRouter, client: JimengClient) -> None:
    router.post("/").respond(504, json=metadata_error("InternalServiceTimeout"))
    with pytest.raises(ServerError) as info:
        await client.get_result("t1")
    assert info.value.retryable is True


async def test_not_found_http_status(router: respx.MockRouter, client: JimengClient) -> None:
    router.post("/").respond(404, text="")
    with pytest.raises(NotFoundError):
        await client.get_result("t1")


# --- transport -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["submit", "result"])
async def test_connect_error_is_not_sent(router: respx.MockRouter, client: JimengClient, call: str) -> None:
    router.post("/").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(RequestNotSentError) as info:
        if call == "submit":
            await client.submit_task(JimengVideoRequest(prompt="p"))
        else:
            await client.get_result("t1")
    assert info.value.retryable is True


@pytest.mark.parametrize("call,retryable", [("submit", False), ("result", True)])
async def test_read_timeout_outcome_unknown(
    router: respx.MockRouter, client: JimengClient, call: str, retryable: bool
) -> None:
    router.post("/").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(OutcomeUnknownError) as info:
        if call == "submit":
            await client.submit_task(JimengVideoRequest(prompt="p"))
        else:
            await client.get_result("t1")
    assert info.value.retryable is retryable
