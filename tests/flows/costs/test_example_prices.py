"""The local stack shows money: its setup saves the emulator's example prices, and an estimate made with them is
what the emulator bills (real Prefect server, the emulator over HTTP, moto S3)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from blocks.prices import ClipflowPrices
from flows.app.block_setup import save_blocks_from_env
from emulator.example_prices import EXAMPLE_PRICES, EXAMPLE_SOURCE
from providers.pricing import DEFAULT_PRICES
from tests.harness import Pipeline

# By hand, with the example table: Jimeng 5 s x 0.5 + import 0.01 + edit project 0.02 + transcode 1 min x 0.1
# + 2 languages x 1 min x (subtitle 1.0 + voice 3.0)
PRODUCTION_ESTIMATE = 10.63


async def test_setup_saves_the_example_prices_and_keeps_a_persons_edit(
    prefect_api: str, emulator: Any, s3_server: Any,
) -> None:
    """`make up` = setup with example prices and keep_existing; `make up --reset` = without keep_existing."""
    from flows.app.demo import demo_env

    env, name = demo_env(emulator, s3_server.endpoint_url), f"example-{uuid.uuid4().hex[:6]}"
    saved = await save_blocks_from_env(env, name=name, keep_existing=True, example_prices=True)
    assert f"clipflow-prices/{name} (example prices)" in saved
    assert (await ClipflowPrices.aload(name)).table() == EXAMPLE_PRICES

    edited = await ClipflowPrices.aload(name)
    edited.transcode_per_minute, edited.source = 0.2, "our contract"
    await edited.asave(name, overwrite=True)
    again = await save_blocks_from_env(env, name=name, keep_existing=True, example_prices=True)
    assert f"clipflow-prices/{name} (kept)" in again
    assert (await ClipflowPrices.aload(name)).transcode_per_minute == 0.2

    await save_blocks_from_env(env, name=name, example_prices=True)  # --reset: the example prices back
    assert (await ClipflowPrices.aload(name)).table() == EXAMPLE_PRICES

    # a block still at the all-unknown defaults (what plain `clipflow setup` saves) was never edited: replaced
    await ClipflowPrices().asave(name, overwrite=True)
    await save_blocks_from_env(env, name=name, keep_existing=True, example_prices=True)
    assert (await ClipflowPrices.aload(name)).table() == EXAMPLE_PRICES
    # production setup never writes example prices over a saved block, nor saves them
    await save_blocks_from_env(env, name=name)
    assert (await ClipflowPrices.aload(name)).table() == EXAMPLE_PRICES
    assert (await ClipflowPrices.aload(name)).table() != DEFAULT_PRICES


@pytest.mark.slow
async def test_the_local_stack_estimate_is_what_the_emulator_bills(pipeline: Pipeline) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.models import JimengClipSpec, ProductionRequest, TranslateSpec
    from flows.outputs.artifacts import artifact_key
    from flows.stages.pipeline import produce_video
    from providers.states import JobState

    # the session's "clipflow" prices block is at the defaults, as a stack set up before example prices had it
    assert (await ClipflowPrices.aload("clipflow")).table() == DEFAULT_PRICES
    await save_blocks_from_env(pipeline.env, keep_existing=True, example_prices=True)  # what `make up` runs
    tag = uuid.uuid4().hex[:8]
    production = ProductionRequest(
        title=f"example-prices-{tag}", clip=JimengClipSpec(prompt=f"A kite over dunes, take {tag}"),
        translate=TranslateSpec(target_languages=["en", "ja"],
                                translation_types=["SubtitleTranslation", "VoiceTranslation"]),
    )
    try:
        result = await produce_video(production)
    finally:
        await ClipflowPrices().asave("clipflow", overwrite=True)  # other tests expect the defaults

    assert result.status is JobState.SUCCEEDED and result.cost is not None
    entries = pipeline.emulator.ledger()  # the emulator's own default table: the example prices
    assert entries and all(e["currency"] == "CNY" and e["amount"] is not None for e in entries)
    billed = round(sum(e["amount"] for e in entries), 6)
    assert result.cost.currency == "CNY" and result.cost.estimate_complete
    assert result.cost.estimate == pytest.approx(PRODUCTION_ESTIMATE)
    assert billed == pytest.approx(PRODUCTION_ESTIMATE) and result.cost.spent == pytest.approx(billed)
    async with get_client() as client:  # the estimate says whose prices these are
        key = artifact_key(production.title, "estimate")
        [artifact] = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert EXAMPLE_SOURCE in str(artifact.data)


def test_the_demo_prints_the_estimate_the_spend_and_the_emulators_bill() -> None:
    from types import SimpleNamespace

    from flows.app.demo import money_summary
    from flows.costs.model import RunCost

    cost = RunCost(currency="CNY", estimate=3.63, spent=3.63)
    ledger = [{"currency": "CNY", "amount": 2.5}, {"currency": "CNY", "amount": 1.13}]
    text = money_summary(SimpleNamespace(cost=cost), ledger)
    assert "estimate 3.63 CNY, spent 3.63 CNY" in text and "billed     3.63 CNY for 2 paid submissions" in text
    assert EXAMPLE_SOURCE in text
    unknown = money_summary(SimpleNamespace(cost=None), [*ledger, {"currency": "CNY", "amount": None}])
    assert "billed     unknown for 3 paid submissions" in unknown  # never a partial sum shown as the bill
