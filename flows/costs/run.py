"""The two moments a run deals with money: before its first paid call, and when it reports its result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flows.costs.estimate import estimate_production, load_prices
from flows.costs.announce import announce
from flows.costs.guard import check_max_cost, run_cost
from flows.costs.model import CostEstimate, RunCost
from providers.pricing import PriceTable
from flows.costs.trace import current_notes


@dataclass(frozen=True)
class Priced:
    table: PriceTable
    estimate: CostEstimate


async def before_paying(
    request: Any, max_cost: float | None, estimate: CostEstimate | None = None, table: PriceTable | None = None,
) -> Priced:
    """Estimate ``request`` (unless a batch did), log and publish it, and refuse it when above ``max_cost``."""
    from flows.outputs.artifacts import artifact_key

    table = table or await load_prices()
    estimate = estimate or await estimate_production(request, table)
    await announce(request.title, estimate, artifact_key(request.title, "estimate"))
    check_max_cost(estimate, max_cost)
    return Priced(table, estimate)


def cost_so_far(priced: Priced) -> RunCost:
    return run_cost(priced.estimate, current_notes(), priced.table)
