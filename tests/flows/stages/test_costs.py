"""Money end to end: the emulator bills with the same table clipflow estimates with (real HTTP, real Prefect)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from blocks.prices import ClipflowPrices
from flows.costs.guard import CostLimitError
from providers.pricing import PriceTable
from flows.models import JimengClipSpec, ProductionRequest, TranslateSpec
from flows.stages.batch_rows import ItemStatus
from flows.stages.batch import produce_batch
from flows.stages.pipeline import produce_video
from providers.states import JobState
from tests.harness import Pipeline

pytestmark = pytest.mark.slow

PRICES = PriceTable(
    currency="CNY", jimeng_per_second=0.5, import_per_call=0.01, edit_project_per_call=0.02,
    transcode_per_minute=0.1, translation_per_minute={"SubtitleTranslation": 1.0},
)
# One production: 5 s x 0.5 + 0.01 + 0.02 + 1 min x 0.1 + 1 language x 1 min x 1.0
ONE_PRODUCTION = 3.63


@pytest.fixture
async def priced(pipeline: Pipeline) -> AsyncIterator[Pipeline]:
    """The emulator and the clipflow-prices block with the same table (the default block put back after)."""
    pipeline.emulator.configure(prices=PRICES.model_dump())
    await ClipflowPrices(**PRICES.model_dump()).asave("clipflow", overwrite=True)
    try:
        yield pipeline
    finally:
        await ClipflowPrices().asave("clipflow", overwrite=True)


def request(title: str = "cost") -> ProductionRequest:
    tag = uuid.uuid4().hex[:8]
    return ProductionRequest(
        title=f"{title}-{tag}", clip=JimengClipSpec(prompt=f"A lighthouse in fog, take {tag}"),
        translate=TranslateSpec(target_languages=["en"], translation_types=["SubtitleTranslation"]),
    )


def ledger_total(pipeline: Pipeline) -> float:
    entries = pipeline.emulator.ledger()
    assert entries and all(e["currency"] == "CNY" and e["amount"] is not None for e in entries)
    return round(sum(e["amount"] for e in entries), 6)


async def test_spend_equals_the_priced_ledger_and_a_rerun_costs_nothing(priced: Pipeline) -> None:
    from flows.app.cost_cli import collect

    production = request()
    state = await produce_video(production, return_state=True)
    result = await state.result()

    assert result.status is JobState.SUCCEEDED
    cost = result.cost
    assert cost is not None and cost.currency == "CNY"
    assert cost.estimate == pytest.approx(ONE_PRODUCTION) and cost.estimate_complete
    assert cost.spent == pytest.approx(ledger_total(priced)) == pytest.approx(ONE_PRODUCTION)
    assert cost.by_stage == pytest.approx(
        {"generate": 2.5, "import": 0.01, "edit": 0.02, "transcode": 0.1, "translate": 1.0}
    )
    assert cost.takes == {"generate/clip": 1, "import": 1, "edit": 1, "transcode": 1, "translate/en": 1}

    # clipflow cost: the journal's records of this run, priced, total the emulator's ledger
    summary, rows = await collect(flow_run=str(state.state_details.flow_run_id))
    assert summary["total"] == pytest.approx(ledger_total(priced)) and summary["complete"]
    assert summary["by_stage"] == pytest.approx(cost.by_stage)
    assert len(rows) == len(priced.emulator.ledger()) == 5
    assert json.dumps(summary)  # the --json output is plain JSON

    # The same request again: everything is reused, the estimate is 0, so even max_cost=0 lets it run.
    ledger = priced.emulator.ledger()
    again = await produce_video(production, max_cost=0.0)
    assert again.cost is not None and again.cost.estimate == 0.0 and again.cost.spent == 0.0
    assert priced.emulator.ledger() == ledger


async def test_max_cost_below_the_estimate_is_refused_before_anything_is_paid(priced: Pipeline) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.outputs.artifacts import artifact_key

    production = request()
    with pytest.raises(CostLimitError, match=r"max_cost 3\.6 CNY is below the estimate of 3\.63 CNY"):
        await produce_video(production, max_cost=3.6)
    assert priced.emulator.ledger() == []
    # the estimate was published before the refusal: a person sees what it would have cost
    async with get_client() as client:
        key = artifact_key(production.title, "estimate")
        [artifact] = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert "Estimate for" in str(artifact.data) and "3.63 CNY" in str(artifact.data)


async def test_unknown_prices_cannot_be_capped(pipeline: Pipeline) -> None:
    await ClipflowPrices().asave("clipflow", overwrite=True)  # the defaults: every price unknown
    with pytest.raises(CostLimitError, match=r"max_cost 1000 CNY cannot be checked.*unknown prices"):
        await produce_video(request(), max_cost=1000.0)
    assert pipeline.emulator.ledger() == []


async def test_a_money_budget_stops_the_batch_at_the_right_item(priced: Pipeline) -> None:
    t = uuid.uuid4().hex[:8]
    items: list[dict[str, Any]] = [{"clip": {"prompt": f"A harbour crane at dusk, take {t}-{n}"}} for n in range(3)]
    defaults = ProductionRequest(
        title=f"money-{t}", translate=TranslateSpec(target_languages=["en"], translation_types=["SubtitleTranslation"]),
    )
    # two items fit (7.26), the third would pass 9 (7.26 + 3.63): it is not started
    result = await produce_batch(items=items, defaults=defaults, max_cost=9.0, max_concurrency=1)

    assert [row.status for row in result.items] == [ItemStatus.SUCCEEDED, ItemStatus.SUCCEEDED, ItemStatus.SKIPPED]
    assert "max_cost 9 CNY would be passed" in (result.items[2].error or "")
    assert result.stopped and "max_cost 9 CNY" in result.stopped
    assert result.cost is not None and result.cost.estimate == pytest.approx(3 * ONE_PRODUCTION)
    assert result.cost.spent == pytest.approx(ledger_total(priced)) == pytest.approx(2 * ONE_PRODUCTION)
    assert [row.cost.spent for row in result.items[:2]] == pytest.approx([ONE_PRODUCTION] * 2)

    # The same batch again: the two finished items are reused (estimated at 0), so the third now fits.
    again = await produce_batch(items=items, defaults=defaults, max_cost=9.0, max_concurrency=1)
    assert [row.status for row in again.items] == [ItemStatus.SUCCEEDED] * 3
    assert again.cost is not None and again.cost.estimate == pytest.approx(ONE_PRODUCTION)
    assert again.cost.spent == pytest.approx(ONE_PRODUCTION) and again.stopped is None
    assert ledger_total(priced) == pytest.approx(3 * ONE_PRODUCTION)


async def test_translate_video_is_capped_too(priced: Pipeline) -> None:
    from emulator.config import DEMO_VID
    from flows.app.cost_cli import collect
    from flows.stages.translate import ai_translate

    spec = TranslateSpec(target_languages=["en"], translation_types=["SubtitleTranslation"], take=uuid.uuid4().int % 900)
    # the demo video is 3 s: one started minute x 1.0
    with pytest.raises(CostLimitError, match=r"max_cost 0\.5 CNY is below the estimate of 1 CNY"):
        await ai_translate(DEMO_VID, "demo", spec, max_cost=0.5)
    assert priced.emulator.ledger() == []

    state = await ai_translate(DEMO_VID, "demo", spec, max_cost=1.0, return_state=True)
    done = await state.result()
    assert [r.status for r in done.languages] == [JobState.SUCCEEDED]
    assert done.cost is not None and done.cost.spent == pytest.approx(1.0) and done.cost.estimate == pytest.approx(1.0)
    assert done.cost.by_stage == {"translate": pytest.approx(1.0)}
    assert ledger_total(priced) == pytest.approx(1.0)
    summary, _rows = await collect(flow_run=str(state.state_details.flow_run_id))
    assert summary["total"] == pytest.approx(1.0) and summary["by_stage"] == {"translate": 1.0}
