"""Invalid parameters over live REST: ``POST /deployments/{id}/create_flow_run`` on the e2e server (PostgreSQL, the
schema ``prefect deploy`` stored for produce-video) answers HTTP 409 naming the field and the rule; no flow run is
created and the emulator bills nothing. The same endpoint accepts the valid edge cases.

The cases are tests/flows/test_invalid_inputs.py's (that file checks all of them against the schema in-process),
picked by name so that every rule class the schema carries is sent over the wire at least once.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.conftest import Stack
from tests.flows.test_invalid_inputs import CASES, VALID, Case

# the first e2e test of a session also pays for starting the stack (fixture setup counts towards the timeout)
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

# What the server's message says for each JSON-schema rule (jsonschema's wording).
SERVER_RULE = {
    "additionalProperties": "Additional properties are not allowed",
    "maxLength": "is too long",
    "enum": "is not one of",
    "maximum": "is greater than the maximum of",
    "minimum": "is less than the minimum of",
    "pattern": "does not match",
    "uniqueItems": "has non-unique elements",
    "minItems": "should be non-empty",
    "type": "is not of type",
    "const": "was expected",
}

# case name -> (field the server names, rule it says) when that differs from the case's own field and keyword.
PICKED: dict[str, tuple[str, str] | None] = {
    # unknown fields
    "top-level extra key": None,
    "translate typo target_language": None,
    "edit typo fpss": None,
    "blocks unknown block": None,
    "clip typo frame": None,  # inside the clip union: named like any other unknown field
    "clip typo promt": None,
    # lengths
    "jimeng prompt 801 chars": None,
    "jimeng prompt 801 CJK chars": None,
    "watermark too long": None,
    # enums
    "language 'english'": None,
    "language unknown xx": None,
    "jimeng frames 120": None,
    "gateway model unknown": None,
    "edit codec vp9": None,
    "source language english": None,
    # ranges
    "seed 2**70": None,
    "seed -2": None,
    "edit fps 121": None,
    "clip end 2**70": None,
    # patterns
    "space path traversal": None,
    "title with slash": None,
    "template path": None,
    "block name upper case": None,
    # uniqueItems, minItems
    "languages duplicate": None,
    "translation types duplicate": None,
    "translation types empty": None,
    # const / discriminator
    "provider unknown": None,
    # types
    "title not a string": None,
}


def _picked() -> list[Case]:
    by_name = {case.name: case for case in CASES}
    missing = sorted(set(PICKED) - set(by_name))
    assert not missing, f"cases renamed or removed in tests/flows/test_invalid_inputs.py: {missing}"
    return [by_name[name] for name in PICKED]


REST_CASES = _picked()


def server_field(case: Case) -> str:
    """The path the server names: ``Validation failed for field 'request.a.b[0]'`` (an unknown key: its parent)."""
    parts = case.field.split(".")
    if case.keyword == "additionalProperties":
        parts = parts[:-1]
    path = "request" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in parts)
    return path


@pytest.fixture(scope="module")
def deployment_id(stack: Stack) -> str:
    return stack.api.deployment("produce-video", "produce-video")["id"]


def test_the_cases_span_every_rule_class() -> None:
    keywords = {case.keyword for case in REST_CASES}
    assert len(REST_CASES) >= 15
    assert {"additionalProperties", "maxLength", "enum", "maximum", "minimum", "pattern", "uniqueItems",
            "const"} <= keywords, keywords


@pytest.mark.parametrize("case", REST_CASES, ids=[c.name for c in REST_CASES])
def test_create_flow_run_refuses_naming_the_field_and_the_rule(stack: Stack, deployment_id: str, case: Case) -> None:
    runs, mark = stack.api.count_flow_runs(deployment_id), len(stack.emulator.ledger())

    response = stack.api.post_flow_run(deployment_id, {"parameters": {"request": case.request}})

    assert response.status_code == 409, response.text
    detail = response.json()["detail"]
    field, rule = PICKED[case.name] or (server_field(case), SERVER_RULE[case.keyword or ""])
    assert detail.startswith(f"Error creating flow run: Validation failed for field '{field}'. "), detail[:300]
    assert rule in detail, detail[:300]
    leaf = case.field.split(".")[-1]
    if not leaf.isdigit() and not field.endswith(leaf):  # else quoted in the unexpected-key list or the value
        assert f"'{leaf}'" in detail, detail[:300]
    assert stack.api.count_flow_runs(deployment_id) == runs
    assert stack.ledger_since(mark) == []


def test_a_gateway_clip_error_names_its_own_field(stack: Stack, deployment_id: str) -> None:
    [case] = [c for c in CASES if c.name == "gateway size 480P"]
    runs, mark = stack.api.count_flow_runs(deployment_id), len(stack.emulator.ledger())

    response = stack.api.post_flow_run(deployment_id, {"parameters": {"request": case.request}})

    assert response.status_code == 409, response.text  # refused, and nothing created or paid: must hold
    assert stack.api.count_flow_runs(deployment_id) == runs
    assert stack.ledger_since(mark) == []
    detail = response.json()["detail"]
    # The clip schema applies the variant `provider` selects (flows/models/clip.py), so the field is the gateway's.
    assert "Validation failed for field 'request.clip.size'. " in detail and "'480P' is not one of" in detail, detail


# far in the future: the workers leave the run alone; the test deletes it
PARKED = {"type": "SCHEDULED", "name": "Scheduled", "state_details": {"scheduled_time": "2099-01-01T00:00:00Z"}}


@pytest.mark.parametrize(("name", "request_"), VALID, ids=[n for n, _ in VALID])
def test_create_flow_run_accepts_the_valid_edge_cases(
    stack: Stack, deployment_id: str, name: str, request_: dict[str, Any]
) -> None:
    mark = len(stack.emulator.ledger())
    response = stack.api.post_flow_run(deployment_id, {"parameters": {"request": request_}, "state": PARKED})
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()
    try:
        assert run["parameters"]["request"] == request_
        assert run["state"]["type"] == "SCHEDULED"
        assert re.match(r"2099-01-01", run["state"]["state_details"]["scheduled_time"]), run["state"]
    finally:
        stack.api.http.delete(f"/flow_runs/{run['id']}").raise_for_status()
    assert stack.ledger_since(mark) == []
