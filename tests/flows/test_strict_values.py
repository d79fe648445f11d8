"""Hostile values, table-driven, through every public way to start a production; nothing is created or paid.

Booleans are never numbers (``seed: true`` is not seed 1, ``render: 1`` is not true), a wrong field inside the
clip union is answered naming that field (not "… is not valid under any of the given schemas"), and an integer
beyond the form's ranges never reaches Prefect's database (Prefect stores a run's parameters before it validates
them; an integer past 64 bits then makes ``POST /flow_runs/filter`` answer 500). Each case goes through

- the model (what a worker, a manifest row and ``submit_production`` validate with), naming the field;
- REST ``create_flow_run`` on a real Prefect server, for a deployment carrying produce-video's parameter schema:
  HTTP 409 naming the field, no run created;
- ``produce_video(...)`` called from Python: refused before a flow run exists (``flows.stages.entry``);
- ``flows.app.submit.submit_production``: refused before ``run_deployment`` is called;
- all at once as the rows of one ``produce_batch``: every row invalid, naming the field;

with the emulator's ledger unchanged, and the server still able to list its flow runs at the end.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.utilities.callables import parameter_schema
from pydantic import ValidationError

from flows.app.submit import submit_production
from flows.models import ProductionRequest
from flows.outputs.manifest import problem_path
from flows.stages.entry import validated_flow
from flows.stages.pipeline import produce_video
from tests.harness import Pipeline

SCHEMA = parameter_schema(produce_video).model_dump(exclude_unset=True)


@dataclass(frozen=True)
class Hostile:
    name: str
    request: dict[str, Any]
    field: str  # dotted, as a person names it
    rule: str  # in the model's refusal
    server: str  # in the server's 409 (jsonschema's wording)
    server_field: str = ""  # the path the server names, when it is not ``request.<field>``


def clip(**fields: Any) -> dict[str, Any]:
    return {"clip": {"prompt": "a kite over the harbour", **fields}}


def gw(**fields: Any) -> dict[str, Any]:
    return {"clip": {"provider": "gateway", "prompt": "a kite over the harbour", **fields}}


NOT_A_NUMBER, NOT_A_BOOL = "not a boolean", "must be true or false"
OPTIONAL = "is not valid under any of the given schemas"
HOSTILE: list[Hostile] = [
    # --- booleans are not numbers, numbers are not booleans ------------------------------------------------
    Hostile("seed true", clip(seed=True), "clip.seed", NOT_A_NUMBER, "True is not of type 'integer'"),
    Hostile("seed false", clip(seed=False), "clip.seed", NOT_A_NUMBER, "False is not of type 'integer'"),
    Hostile("take true", clip(take=True), "clip.take", NOT_A_NUMBER, "True is not of type 'integer'"),
    Hostile("gateway take true", gw(take=True), "clip.take", NOT_A_NUMBER, "True is not of type 'integer'"),
    # Two rules break at one place (type and enum): jsonschema's best_match cannot choose and the server names
    # the clip, quoting the value with its key. Still refused at Submit, and by the model naming the field.
    Hostile("frames true", clip(frames=True), "clip.frames", NOT_A_NUMBER, "'frames': True", "request.clip"),
    Hostile("edit fps true", {"edit": {"fps": True}}, "edit.fps", NOT_A_NUMBER, "True is not of type 'integer'"),
    Hostile("edit crf false", {"edit": {"crf": False}}, "edit.crf", NOT_A_NUMBER, "False is not of type 'integer'"),
    Hostile("edit render 1", {"edit": {"render": 1}}, "edit.render", NOT_A_BOOL, "1 is not of type 'boolean'"),
    Hostile("edit render 0", {"edit": {"render": 0}}, "edit.render", NOT_A_BOOL, "0 is not of type 'boolean'"),
    Hostile("low priority 1", {"transcode": {"low_priority": 1}}, "transcode.low_priority", NOT_A_BOOL,
            "1 is not of type 'boolean'"),
    Hostile("priority true", {"transcode": {"priority": True}}, "transcode.priority", NOT_A_NUMBER,
            "True is not of type 'integer'"),
    Hostile("run true", {"transcode": {"run": True}}, "transcode.run", NOT_A_NUMBER, "True is not of type 'integer'"),
    Hostile("review hours true", {"translate": {"review_timeout_hours": True}}, "translate.review_timeout_hours",
            NOT_A_NUMBER, "True is not of type 'number'"),
    Hostile("export outputs 1", {"translate": {"export_outputs": 1}}, "translate.export_outputs", NOT_A_BOOL,
            "1 is not of type 'boolean'"),
    # An optional value is "a value or null" (anyOf): the server names the field, not which type it wanted.
    Hostile("hard subtitle 1", {"translate": {"subtitles": {"hard_subtitle": 1}}}, "translate.subtitles.hard_subtitle",
            NOT_A_BOOL, OPTIONAL),
    Hostile("font size true", {"translate": {"subtitles": {"font_size": True}}}, "translate.subtitles.font_size",
            NOT_A_NUMBER, OPTIONAL),
    Hostile("snapshot time true in a list", {"transcode": {"snapshot": {"offset_time_list_ms": [100, True]}}},
            "transcode.snapshot.offset_time_list_ms", NOT_A_NUMBER, "True is not of type 'integer'",
            "request.transcode.snapshot.offset_time_list_ms[1]"),
    # --- a wrong field inside the clip union is named ------------------------------------------------------
    Hostile("jimeng promt", {"clip": {"promt": "a kite"}}, "clip.promt", "unknown field", "'promt' was unexpected",
            "request.clip"),
    Hostile("gateway promt", {"clip": {"provider": "gateway", "promt": "a kite"}}, "clip.promt", "unknown field",
            "'promt' was unexpected", "request.clip"),
    Hostile("jimeng frame", clip(frame=241), "clip.frame", "unknown field", "'frame' was unexpected", "request.clip"),
    Hostile("jimeng clip with a gateway model", clip(model="sora-2"), "clip.model", "unknown field",
            "'model' was unexpected", "request.clip"),
    Hostile("gateway clip with a seed", gw(seed=7), "clip.seed", "unknown field", "'seed' was unexpected",
            "request.clip"),
    Hostile("gateway size 480P", gw(size="480P"), "clip.size", "Input should be", "'480P' is not one of"),
    Hostile("gateway model unknown", gw(model="kling-2"), "clip.model", "Input should be", "'kling-2' is not one of"),
    Hostile("gateway prompt too long", gw(prompt="p" * 4001), "clip.prompt", "at most 4000", "is too long"),
    Hostile("gateway take negative", gw(take=-5), "clip.take", "greater than or equal", "less than the minimum"),
    Hostile("jimeng seed too large", clip(seed=2**32), "clip.seed", "less than or equal", "greater than the maximum"),
    Hostile("jimeng aspect 2:3", clip(aspect_ratio="2:3"), "clip.aspect_ratio", "Input should be", "is not one of"),
    Hostile("provider unknown", clip(provider="kling"), "clip.provider", "provider must be", "'jimeng' was expected"),
    # --- integers beyond 64 bits ----------------------------------------------------------------------------
    Hostile("seed 2**70", clip(seed=2**70), "clip.seed", "less than or equal", "greater than the maximum"),
    Hostile("seed -2**70", clip(seed=-(2**70)), "clip.seed", "greater than or equal", "less than the minimum"),
    Hostile("take 2**63", clip(take=2**63), "clip.take", "less than or equal", "greater than the maximum"),
    Hostile("edit width 2**100", {"edit": {"width": 2**100}}, "edit.width", "less than or equal",
            "greater than the maximum"),
    Hostile("clip end 2**64", {"transcode": {"clip_end_ms": 2**64}}, "transcode.clip_end_ms", "less than or equal",
            "greater than the maximum"),
    Hostile("font size 2**80", {"translate": {"subtitles": {"font_size": 2**80}}}, "translate.subtitles.font_size",
            "less than or equal", "greater than the maximum"),
]


def _named(exc: ValidationError) -> list[tuple[str, str]]:
    return [problem_path(e["loc"], e["msg"], e["type"]) for e in exc.errors()]


def test_the_table_covers_each_kind() -> None:
    assert len(HOSTILE) >= 30 and len({h.name for h in HOSTILE}) == len(HOSTILE)
    assert sum(h.rule in (NOT_A_NUMBER, NOT_A_BOOL) for h in HOSTILE) >= 12
    assert sum(h.request.get("clip", {}).get("seed", 0) in (2**70, -(2**70)) for h in HOSTILE) == 2


@pytest.mark.parametrize("case", HOSTILE, ids=[h.name for h in HOSTILE])
def test_the_model_refuses_naming_the_field(case: Hostile) -> None:
    with pytest.raises(ValidationError) as info:
        ProductionRequest.model_validate(case.request)
    named = _named(info.value)
    assert any(field == case.field and case.rule in rule for field, rule in named), named


# --- against a real Prefect server ------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def deployment(prefect_api: str) -> dict[str, str]:
    """A deployment of produce-video with the schema ``prefect deploy`` stores (no work pool: nothing runs it)."""
    name = f"strict-values-{uuid.uuid4().hex[:8]}"
    async with get_client() as client:
        flow_id = await client.create_flow(produce_video)
        deployment_id = await client.create_deployment(
            flow_id=flow_id, name=name, parameter_openapi_schema=SCHEMA, enforce_parameter_schema=True,
            entrypoint="flows/stages/pipeline.py:produce_video",
        )
    return {"id": str(deployment_id), "name": f"produce-video/{name}", "api": prefect_api}


async def _runs_of_produce_video() -> int:
    async with get_client() as client:
        return await client.count_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["produce-video"])))


@pytest.mark.slow
@pytest.mark.parametrize("case", HOSTILE, ids=[h.name for h in HOSTILE])
async def test_every_entry_point_refuses_before_a_run_exists(
    pipeline: Pipeline, deployment: dict[str, str], case: Hostile
) -> None:
    runs, mark = await _runs_of_produce_video(), len(pipeline.emulator.ledger())

    async with httpx.AsyncClient(base_url=deployment["api"], timeout=30) as http:
        answer = await http.post(f"/deployments/{deployment['id']}/create_flow_run",
                                 json={"parameters": {"request": case.request}})
    assert answer.status_code == 409, answer.text
    detail = answer.json()["detail"]
    field = case.server_field or f"request.{case.field}"
    assert f"Validation failed for field '{field}'. " in detail and case.server in detail, detail[:300]
    if case.field.startswith("clip.") and case.name != "frames true":  # the union itself is never what is named
        assert "is not valid under any of the given schemas" not in detail, detail[:300]

    with pytest.raises(Exception) as called:  # noqa: PT011 - Prefect's ParameterTypeError
        await produce_video(request=case.request)
    assert case.field.split(".")[-1] in str(called.value), str(called.value)[:300]

    with pytest.raises(ValidationError) as submitted:
        await submit_production(case.request, deployment=deployment["name"])
    assert any(f == case.field for f, _ in _named(submitted.value)), _named(submitted.value)

    assert await _runs_of_produce_video() == runs  # not one run created by any of the three
    assert pipeline.emulator.ledger()[mark:] == []


def _oversized(case: Hostile) -> bool:
    from flows.stages.entry import oversized_integer

    return oversized_integer(case.request) is not None


@pytest.mark.slow
async def test_a_batch_of_every_hostile_row_pays_nothing(pipeline: Pipeline) -> None:
    """As manifest rows: each an invalid row naming its field; rows with integers past 64 bits keep the batch
    run itself from being created (its parameters could not be listed), naming the row."""
    from flows.stages.batch_rows import ItemStatus
    from flows.stages.batch import produce_batch

    mark, runs = len(pipeline.emulator.ledger()), await _runs_of_produce_video()
    rows = [h for h in HOSTILE if not _oversized(h)]
    result = await produce_batch(items=[h.request for h in rows], defaults=ProductionRequest(title="hostile"))
    assert (result.total, result.invalid) == (len(rows), len(rows))
    for case, row in zip(rows, sorted(result.items, key=lambda r: r.item), strict=True):
        assert row.status is ItemStatus.INVALID and case.field in (row.error or ""), (case.name, row.error)

    async with get_client() as client:
        batches = await client.count_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["produce-batch"])))
    huge = [h.request for h in HOSTILE if _oversized(h)]
    assert len(huge) >= 5
    with pytest.raises(Exception, match=r"items\.0\..*must be a 64-bit integer"):  # noqa: PT011
        await produce_batch(items=huge, defaults=ProductionRequest(title="hostile"))
    async with get_client() as client:
        assert await client.count_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["produce-batch"]))
        ) == batches
    assert pipeline.emulator.ledger()[mark:] == [] and await _runs_of_produce_video() == runs


@pytest.mark.slow
async def test_a_model_built_in_code_with_a_huge_integer_creates_no_run(pipeline: Pipeline) -> None:
    """``model_construct`` skips validation (and Prefect does not validate a model instance again): the
    64-bit check on the serialised parameters still refuses it before the run is created."""
    base = ProductionRequest.model_validate(clip())
    huge = base.model_copy(update={"clip": base.clip.model_copy(update={"seed": 2**70})})
    runs, mark = await _runs_of_produce_video(), len(pipeline.emulator.ledger())
    with pytest.raises(Exception, match=r"clip.seed: must be a 64-bit integer|seed"):  # noqa: PT011
        await produce_video(request=huge)
    assert await _runs_of_produce_video() == runs
    assert pipeline.emulator.ledger()[mark:] == []


@pytest.mark.slow
async def test_submit_production_starts_a_valid_request_and_the_runs_stay_listable(
    pipeline: Pipeline, deployment: dict[str, str]
) -> None:
    mark = len(pipeline.emulator.ledger())
    run = await submit_production({"title": "strict-ok", **clip(seed=5)}, deployment=deployment["name"])
    try:
        assert run.parameters["request"]["clip"]["seed"] == 5 and run.parameters["request"]["title"] == "strict-ok"
        async with httpx.AsyncClient(base_url=deployment["api"], timeout=30) as http:
            listed = await http.post("/flow_runs/filter", json={"limit": 200})
        assert listed.status_code == 200, listed.text[:300]  # no stored parameter breaks the runs list
    finally:
        async with get_client() as client:
            await client.delete_flow_run(run.id)
    assert pipeline.emulator.ledger()[mark:] == []  # created, not run: nothing is paid until a worker runs it


def test_validated_flow_is_a_prefect_flow() -> None:
    from prefect import Flow

    @validated_flow(name="strict-probe")
    def probe(n: int) -> int:
        return n

    assert isinstance(probe, Flow) and isinstance(produce_video, Flow)
