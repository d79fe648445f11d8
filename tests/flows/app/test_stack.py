"""The stack's direct REST calls ride out a server that is briefly busy (SQLite locked answers 503)."""

from __future__ import annotations

import httpx

from flows.app.stack import _call


def server_busy_for(answers: int) -> tuple[httpx.Client, list[str]]:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        return httpx.Response(503 if len(seen) <= answers else 200, json={"n": len(seen)})

    return httpx.Client(base_url="http://prefect.test/api", transport=httpx.MockTransport(answer)), seen


def test_a_503_is_retried_until_the_server_answers() -> None:
    api, seen = server_busy_for(2)
    answer = _call(api, "PATCH", "/deployments/d/schedules/s", json={"active": False})
    assert answer.status_code == 200
    assert seen == ["PATCH /api/deployments/d/schedules/s"] * 3


def test_a_server_that_stays_busy_gets_its_answer_returned_after_the_last_attempt() -> None:
    api, seen = server_busy_for(100)
    answer = _call(api, "GET", "/deployments/name/x", attempts=3)
    assert answer.status_code == 503
    assert len(seen) == 3


def test_a_client_error_is_not_retried() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404)

    api = httpx.Client(base_url="http://prefect.test/api", transport=httpx.MockTransport(answer))
    assert _call(api, "GET", "/deployments/name/x").status_code == 404


def test_the_deployments_up_checks_are_the_ones_prefect_yaml_declares() -> None:
    """`up` creates only the missing deployments by name: the names (and the nightly one it pauses) come from
    prefect.yaml itself, so a deployment added there is never taken for one that exists."""
    from flows.app.stack_settings import NIGHTLY
    from flows.app.stack import declared_deployments

    names = declared_deployments()
    assert {"produce-video", "translate-video", "review-translation", "nightly-batch"} <= set(names)
    assert len(names) == len(set(names))
    assert NIGHTLY.split("/", 1)[1] in names
