"""VOD error envelope -> typed errors, and transport failures -> retryable or not, per action idempotency."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import respx

from providers.errors import (
    AuthError,
    InvalidRequestError,
    NotFoundError,
    OutcomeUnknownError,
    ProviderError,
    RequestNotSentError,
    ServerError,
    ThrottledError,
    UnexpectedResponseError,
)
from providers.vod import CODE_TABLE, StartWorkflowRequest, VodClient
from tests.providers.support import PAID_SUBMITS, READS

ENDPOINT = "https://vod.volcengineapi.com"
AK, SK = "AKLTerrortestkey", "c2VjcmV0LWZvci1lcnJvci10ZXN0cw=="


@pytest.fixture(scope="module")
async def vod() -> AsyncIterator[VodClient]:
    # One client for the module: building an AsyncClient (TLS context) costs ~80 ms; respx mocks the transport.
    async with VodClient(AK, SK) as client:
        yield client


def envelope(action: str, code: str, message: str = "boom", request_id: str = "req-123") -> dict[str, Any]:
    return {"ResponseMetadata": {"RequestId": request_id, "Action": action, "Version": "2020-08-01", "Service": "vod",
                                 "Region": "cn-north-1", "Error": {"Code": code, "Message": message}}}


def any_route(api: respx.MockRouter) -> respx.Route:
    return api.route()


def check_common(err: ProviderError, action: str, status: int | None, code: str | None) -> None:
    assert err.provider == "vod"
    assert err.action == action
    assert err.http_status == status
    assert err.code == code
    assert SK not in str(err) and SK not in repr(err.__dict__)


async def test_signature_mismatch_is_auth_error_not_retryable(api: respx.MockRouter, vod: VodClient) -> None:
    any_route(api).respond(401, json=envelope("GetWorkflowExecution", "SignatureDoesNotMatch", "bad signature"))
    with pytest.raises(AuthError) as info:
        await vod.get_workflow_execution("r")
    err = info.value
    check_common(err, "GetWorkflowExecution", 401, "SignatureDoesNotMatch")
    assert err.request_id == "req-123" and err.retryable is False
    assert "bad signature" in str(err)


async def test_flow_limit_is_throttled_with_retry_after(api: respx.MockRouter, vod: VodClient) -> None:
    any_route(api).respond(429, json=envelope("StartWorkflow", "FlowLimitExceeded"), headers={"Retry-After": "3"})
    with pytest.raises(ThrottledError) as info:
        await vod.start_workflow(StartWorkflowRequest(vid="v", template_id="t"))
    check_common(info.value, "StartWorkflow", 429, "FlowLimitExceeded")
    assert info.value.retry_after == 3.0 and info.value.retryable is True


async def test_throttled_without_retry_after(api: respx.MockRouter, vod: VodClient) -> None:
    any_route(api).respond(429, json=envelope("StartWorkflow", "RequestLimitExceeded"))
    with pytest.raises(ThrottledError) as info:
        await vod.start_workflow(StartWorkflowRequest(vid="v", template_id="t"))
    assert info.value.retry_after is None and info.value.retryable


async def test_internal_error_is_retryable_server_error(api: respx.MockRouter, vod: VodClient) -> None:
    any_route(api).respond(500, json=envelope("GetAITranslationProject", "InternalError"))
    with pytest.raises(ServerError) as info:
        await vod.get_ai_translation_project("s", "p")
    check_common(info.value, "GetAITranslationProject", 500, "InternalError")
    assert info.value.retryable is True


async def test_resource_not_found(api: respx.MockRouter, vod: VodClient) -> None:
    any_route(api).respond(404, json=envelope("GetWorkflowExecution", "ResourceNotFound"))
    with pytest.raises(NotFoundError) as info:
        await vod.get_workflow_execution("r")
    check_common(info.value, "GetWorkflowExecution", 404, "ResourceNotFound")
    assert info.value.retryable is False


@pytest.mark.parametrize(
    "status,code,expected",
    [
        (401, "InvalidClientTokenId", AuthError),
        (403, "InvalidTimestamp", AuthError),
        (403, "RequestForbidden", AuthError),
        (400, "InvalidParameter", InvalidRequestError),
        (400, "InvalidParameter.InvalidParam", InvalidRequestError),  # CreateProject page's own code
        (400, "MissingParameter", InvalidRequestError),
        (404, "InvalidActionOrVersion", InvalidRequestError),  # our bug, not a missing resource
        (409, "ResourceInUse", InvalidRequestError),
        (429, "AccountFlowLimitExceeded", ThrottledError),
        (503, "ServiceUnavailable", ServerError),
        (503, "ServiceUnavailableTemp", ServerError),
        (504, "InternalServiceTimeout", ServerError),
        # unknown codes: the HTTP status decides
        (401, "SomethingNew", AuthError),
        (404, "SomethingNew", NotFoundError),
        (418, "SomethingNew", InvalidRequestError),
        (429, "SomethingNew", ThrottledError),
        (502, "SomethingNew", ServerError),
        # a documented code wins over an odd status
        (200, "FlowLimitExceeded", ThrottledError),
        (400, "InternalError", ServerError),
    ],
)
async def test_code_and_status_mapping(
    api: respx.MockRouter, vod: VodClient, status: int, code: str, expected: type[ProviderError]
) -> None:
    any_route(api).respond(status, json=envelope("GetWorkflowExecution", code))
    with pytest.raises(ProviderError) as info:
        await vod.get_workflow_execution("r")
    assert type(info.value) is expected
    check_common(info.value, "GetWorkflowExecution", status, code)
    assert info.value.retryable is (expected in (ThrottledError, ServerError))


def test_every_documented_code_is_in_the_table() -> None:
    documented = {
        "FlowLimitExceeded", "AccountFlowLimitExceeded", "RequestLimitExceeded", "SignatureDoesNotMatch",
        "InvalidClientTokenId", "InvalidTimestamp", "RequestForbidden", "InvalidParameter", "MissingParameter",
        "InvalidActionOrVersion", "ResourceNotFound", "ResourceInUse", "InternalError", "ServiceUnavailable",
        "ServiceUnavailableTemp", "InternalServiceTimeout",
    }
    assert documented <= set(CODE_TABLE)


@pytest.mark.parametrize(
    "status,expected", [(401, AuthError), (403, AuthError), (404, NotFoundError), (400, InvalidRequestError),
                        (429, ThrottledError), (502, ServerError), (503, ServerError)]
)
async def test_non_json_error_bodies_fall_back_to_status(
    api: respx.MockRouter, vod: VodClient, status: int, expected: type[ProviderError]
) -> None:
    any_route(api).respond(status, text="<html>gateway says no</html>", headers={"X-Tt-Logid": "logid-9"})
    with pytest.raises(expected) as info:
        await vod.get_workflow_execution("r")
    check_common(info.value, "GetWorkflowExecution", status, None)
    assert info.value.request_id == "logid-9"


async def test_success_without_result_is_unexpected(api: respx.MockRouter, vod: VodClient) -> None:
    any_route(api).respond(200, json={"ResponseMetadata": {"RequestId": "r1"}})
    with pytest.raises(UnexpectedResponseError) as info:
        await vod.get_workflow_execution("r")
    assert info.value.request_id == "r1" and not info.value.retryable


async def test_result_of_wrong_shape_is_unexpected(api: respx.MockRouter, vod: VodClient) -> None:
    any_route(api).respond(200, json={"ResponseMetadata": {}, "Result": {"Vid": "v"}})  # RunId missing
    with pytest.raises(UnexpectedResponseError, match="RunId"):
        await vod.get_workflow_execution("r")


async def test_empty_error_object_on_success_is_not_an_error(api: respx.MockRouter, vod: VodClient) -> None:
    any_route(api).respond(200, json={"ResponseMetadata": {"Error": {"Code": "", "Message": ""}}, "Result": 5})
    assert await vod.get_direct_edit_progress("r") == 5


@pytest.mark.parametrize("action,call", PAID_SUBMITS + READS, ids=[a for a, _ in PAID_SUBMITS + READS])
async def test_connect_error_is_request_not_sent_and_retryable(
    api: respx.MockRouter, vod: VodClient, action: str, call: Callable[[VodClient], Awaitable[Any]]
) -> None:
    route = any_route(api).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(RequestNotSentError) as info:
        await call(vod)
    assert route.called and info.value.retryable is True and info.value.action == action


@pytest.mark.parametrize("action,call", PAID_SUBMITS, ids=[a for a, _ in PAID_SUBMITS])
async def test_read_timeout_on_paid_submit_is_outcome_unknown_not_retryable(
    api: respx.MockRouter, vod: VodClient, action: str, call: Callable[[VodClient], Awaitable[Any]]
) -> None:
    any_route(api).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(OutcomeUnknownError) as info:
        await call(vod)
    assert info.value.retryable is False and info.value.action == action


async def test_read_timeout_on_start_workflow_with_client_token_is_retryable(
    api: respx.MockRouter, vod: VodClient
) -> None:
    any_route(api).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(OutcomeUnknownError) as info:
        await vod.start_workflow(StartWorkflowRequest(vid="v", template_id="t", client_token="run-1"))
    assert info.value.retryable is True


@pytest.mark.parametrize("action,call", READS, ids=[a for a, _ in READS])
async def test_read_timeout_on_reads_is_retryable(
    api: respx.MockRouter, vod: VodClient, action: str, call: Callable[[VodClient], Awaitable[Any]]
) -> None:
    any_route(api).mock(side_effect=httpx.RemoteProtocolError("cut"))
    with pytest.raises(OutcomeUnknownError) as info:
        await call(vod)
    assert info.value.retryable is True and info.value.action == action
