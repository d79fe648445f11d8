"""A batch's money: the estimate of every item before the first pays, and ``max_cost`` as its budget.

Items start in order while what is committed — the spend of finished items plus the estimates of items in
flight — and the next item's estimate stay within ``max_cost``; an item that would pass it is not started
(``skipped``). Before anything is paid the batch is refused when its estimate has unknown prices or not even the
first item fits.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from flows.costs.estimate import estimate_production
from flows.costs.guard import CostLimitError, check_max_cost, estimate_markdown, money
from flows.costs.model import CostEstimate, RunCost
from providers.pricing import PriceTable

ESTIMATE_CONCURRENCY = 8  # each estimate reads the journal a few times


async def estimate_items(items: list[tuple[int, Any]], table: PriceTable) -> dict[int, CostEstimate]:
    """The estimate of each ``(item number, ProductionRequest)``, its lines labelled with the item number."""
    slots = asyncio.Semaphore(ESTIMATE_CONCURRENCY)

    async def one(item: int, request: Any) -> tuple[int, CostEstimate]:
        async with slots:
            return item, await estimate_production(request, table, item=f"{item} {request.title}"[:40])

    return dict(await asyncio.gather(*(one(item, request) for item, request in items)))


def combined(estimates: dict[int, CostEstimate], currency: str) -> CostEstimate:
    lines = [line for item in sorted(estimates) for line in estimates[item].lines]
    source = next((e.source for e in estimates.values()), "")
    return CostEstimate(currency=currency, source=source, lines=lines)


class MoneyBudget:
    """``max_cost`` of a batch: admit an item only if committed + its estimate stays within the limit."""

    def __init__(self, limit: float, currency: str) -> None:
        self.limit = limit
        self.currency = currency
        self.committed = 0.0
        self.refused = 0

    def admit(self, estimate: float) -> bool:
        if self.committed + estimate > self.limit + 1e-9:
            self.refused += 1
            return False
        self.committed += estimate
        return True

    def settle(self, estimate: float, spent: float | None) -> None:
        """An item ended: its estimate is replaced by what it bought (kept when unknown)."""
        if spent is not None:
            self.committed = max(0.0, self.committed - estimate + spent)

    def skip_reason(self, estimate: float) -> str:
        return (
            f"not started: max_cost {self.limit:g} {self.currency} would be passed (committed "
            f"{money(self.committed, self.currency)} + this item's estimate {money(estimate, self.currency)})"
        )

    def stop_reason(self) -> str:
        return (
            f"max_cost {self.limit:g} {self.currency}: {self.refused} item(s) not started because spent + their "
            "estimate would pass it. Run the same batch again with a larger max_cost: finished work is reused, "
            "not paid again"
        )


def check_batch(estimate: CostEstimate, per_item: dict[int, CostEstimate], max_cost: float | None) -> None:
    """Refuse, before anything is paid, a batch whose estimate cannot be checked or whose first item is over."""
    if max_cost is None or not per_item:
        return
    if not estimate.complete:
        check_max_cost(estimate, max_cost)  # raises: unknown prices, named
    first = per_item[min(per_item)]
    if first.total > max_cost:
        raise CostLimitError(
            f"max_cost {max_cost:g} {estimate.currency} is below the estimate of the first item, "
            f"{money(first.total, estimate.currency)} (the whole batch: {money(estimate.total, estimate.currency)}); "
            "nothing was paid for"
        )


def batch_cost(estimate: CostEstimate, costs: list[RunCost]) -> RunCost:
    """The items' costs added up (an unknown spend makes the total unknown)."""
    by_stage: dict[str, float | None] = {}
    takes: Counter[str] = Counter()
    for cost in costs:
        takes.update(cost.takes)
        for stage, value in cost.by_stage.items():
            known = by_stage.get(stage, 0.0)
            by_stage[stage] = None if known is None or value is None else round(known + value, 6)
    complete = all(c.spent is not None for c in costs)
    return RunCost(
        currency=estimate.currency, estimate=estimate.total, estimate_complete=estimate.complete,
        unknown=estimate.unknown, spent=round(sum(c.spent or 0.0 for c in costs), 6) if complete else None,
        spent_complete=complete, by_stage=by_stage, takes=dict(takes),
    )


def batch_cost_markdown(title: str, estimate: CostEstimate, rows: list[Any], cost: RunCost) -> str:
    """Spent per item next to its estimate, then the totals by stage."""
    cur = cost.currency
    per_item = estimate.by("item")
    lines = [f"# {title}: spent {money(cost.spent, cur)} of an estimated {money(cost.estimate, cur)}"
             + ("" if cost.estimate_complete else " + unknown"), "",
             "| item | status | estimate | spent |", "|---|---|---|---|"]
    for row in rows:
        est = next((v for k, v in per_item.items() if k.split(" ", 1)[0] == str(row.item)), None)
        spent = row.cost.spent if row.cost is not None else None
        lines.append(f"| {row.item} {row.title[:24]} | {row.status.value} | {money(est, cur)} | "
                     f"{money(spent, cur) if row.cost is not None else '-'} |")
    lines += ["", "| stage | spent |", "|---|---|"]
    lines += [f"| {stage} | {money(value, cur)} |" for stage, value in cost.by_stage.items()]
    return "\n".join(lines)


__all__ = [
    "MoneyBudget", "batch_cost", "batch_cost_markdown", "check_batch", "combined", "estimate_items",
    "estimate_markdown",
]


async def clip_estimates(specs: list[tuple[int, Any]], blocks: Any, table: PriceTable) -> dict[int, CostEstimate]:
    """generate-clips: each clip and its import (a clip the journal has already bought at 0)."""
    from flows.costs.estimate import line
    from providers.pricing import billables
    from flows.engine.journal import Journal
    from flows.stages.generate import clip_fingerprint

    journal = await Journal.default()
    out = {}
    for n, spec in specs:
        record = await journal.read(await clip_fingerprint(spec, blocks))
        reused = record is not None and record.bought
        clip = billables(spec.provider, "submit", frames=getattr(spec, "frames", None), model=getattr(spec, "model", None))
        out[n] = CostEstimate(currency=table.currency, source=table.source, lines=[
            *(line(table, str(n), "generate", "clip", b, reused=reused) for b in clip),
            *(line(table, str(n), "import", "import", b) for b in billables("vod", "UploadMediaByUrl")),
        ])
    return out
