"""A paid VOD submit whose answer is lost must never look retryable, unless the provider deduplicates it.

Every paid action x every way an answer is lost after the request arrived (5xx, read timeout, cut connection)
is OutcomeUnknownError, not retryable. Only answers that prove nothing was created (4xx, 429, a connect failure)
are definite refusals. StartWorkflow with a ClientToken stays retryable. Reads are unchanged.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from providers.errors import (
    AuthError,
    InvalidRequestError,
    OutcomeUnknownError,
    ProviderError,
    RequestNotSentError,
    ServerError,
    ThrottledError,
)
from providers.vod import PAID_ACTIONS, StartWorkflowRequest, VodClient, safe_to_repeat
from tests.providers.support import PAID_SUBMITS, READS, VodCall

ENDPOINT = "https://vod.volcengineapi.com"


def envelope(code: str) -> dict[str, Any]:
    return {"ResponseMetadata": {"RequestId": "req-lost", "Error": {"Code": code, "Message": "injected"}}}


def answer(status: int, code: str) -> respx.MockResponse:
    return httpx.Response(status, json=envelope(code))


# Each way the answer to a request that reached the provider can be lost.
LOST = {
    "500-InternalError": lambda: answer(500, "InternalError"),
    "503-ServiceUnavailable": lambda: answer(503, "ServiceUnavailable"),
    "504-InternalServiceTimeout": lambda: answer(504, "InternalServiceTimeout"),
    "502-html": lambda: httpx.Response(502, text="<html>bad gateway</html>"),
    "read-timeout": httpx.ReadTimeout("slow"),
    "dropped-connection": httpx.RemoteProtocolError("Server disconnected without sending a response."),
}

# Answers that prove nothing was created: (side effect, expected class).
REFUSED = {
    "400-InvalidParameter": (lambda: answer(400, "InvalidParameter"), InvalidRequestError),
    "401-SignatureDoesNotMatch": (lambda: answer(401, "SignatureDoesNotMatch"), AuthError),
    "429-FlowLimitExceeded": (lambda: answer(429, "FlowLimitExceeded"), ThrottledError),
    "connect-error": (httpx.ConnectError("refused"), RequestNotSentError),
}


def mock(api: respx.MockRouter, effect: Any) -> respx.Route:
    route = api.route()
    if isinstance(effect, Exception):
        return route.mock(side_effect=effect)
    return route.mock(side_effect=lambda request: effect())


def test_every_paid_action_is_covered() -> None:
    assert {a for a, _ in PAID_SUBMITS} == set(PAID_ACTIONS)


@pytest.mark.parametrize("lost", list(LOST), ids=list(LOST))
@pytest.mark.parametrize("action,call", PAID_SUBMITS, ids=[a for a, _ in PAID_SUBMITS])
async def test_lost_answer_on_paid_submit_is_outcome_unknown(
    api: respx.MockRouter, vod: VodClient, action: str, call: VodCall, lost: str
) -> None:
    route = mock(api, LOST[lost])
    with pytest.raises(OutcomeUnknownError) as info:
        await call(vod)
    err = info.value
    assert route.call_count == 1  # reported, not retried inside the client
    assert err.retryable is False and err.action == action and err.provider == "vod"


@pytest.mark.parametrize("refused", list(REFUSED), ids=list(REFUSED))
@pytest.mark.parametrize("action,call", PAID_SUBMITS, ids=[a for a, _ in PAID_SUBMITS])
async def test_definite_refusal_is_not_outcome_unknown(
    api: respx.MockRouter, vod: VodClient, action: str, call: VodCall, refused: str
) -> None:
    effect, expected = REFUSED[refused]
    mock(api, effect)
    with pytest.raises(ProviderError) as info:
        await call(vod)
    assert type(info.value) is expected and not isinstance(info.value, OutcomeUnknownError)
    assert info.value.retryable is (expected in (ThrottledError, RequestNotSentError))


@pytest.mark.parametrize("lost,expected", [
    ("500-InternalError", ServerError),
    ("503-ServiceUnavailable", ServerError),
    ("504-InternalServiceTimeout", ServerError),
    ("read-timeout", OutcomeUnknownError),
    ("dropped-connection", OutcomeUnknownError),
])
async def test_start_workflow_with_client_token_stays_retryable(
    api: respx.MockRouter, vod: VodClient, lost: str, expected: type[ProviderError]
) -> None:
    mock(api, LOST[lost])
    with pytest.raises(expected) as info:
        await vod.start_workflow(StartWorkflowRequest(vid="v", template_id="t", client_token="clipflow-abc"))
    assert info.value.retryable is True  # the provider deduplicates a repeat carrying the same ClientToken


@pytest.mark.parametrize("lost", ["500-InternalError", "503-ServiceUnavailable", "504-InternalServiceTimeout"])
@pytest.mark.parametrize("action,call", READS, ids=[a for a, _ in READS])
async def test_server_errors_on_reads_stay_retryable(
    api: respx.MockRouter, vod: VodClient, action: str, call: VodCall, lost: str
) -> None:
    mock(api, LOST[lost])
    with pytest.raises(ServerError) as info:
        await call(vod)
    assert type(info.value) is ServerError and info.value.retryable is True and info.value.action == action


@pytest.mark.parametrize("action,sent,safe", [
    ("StartWorkflow", {"ClientToken": "t"}, True),
    ("StartWorkflow", {"ClientToken": ""}, False),  # an empty token deduplicates nothing
    ("StartWorkflow", None, False),
    ("CreateProject", {"ClientToken": "t"}, False),  # no such field: a token does not make it safe
    ("GetMediaList", None, True),
    ("SearchGlobalProject", None, True),
    ("DeleteMedia", None, False),  # an unknown write counts as paid until the table says otherwise
])
def test_safe_to_repeat_table(action: str, sent: dict[str, str] | None, safe: bool) -> None:
    assert safe_to_repeat(action, sent) is safe
