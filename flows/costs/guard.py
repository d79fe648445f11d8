"""The cap and the report: check ``max_cost`` before paying, log and publish the estimate, sum what was bought."""

from __future__ import annotations

from collections import Counter
from typing import Any

from flows.costs.model import CostEstimate, RunCost
from providers.pricing import PriceTable, amount
from flows.costs.trace import Note


class CostLimitError(ValueError):
    """The run's estimate is above ``max_cost`` (or cannot be checked against it): nothing was paid for."""


def money(value: float | None, currency: str) -> str:
    return "unknown" if value is None else f"{f'{value:.4f}'.rstrip('0').rstrip('.')} {currency}"


def check_max_cost(estimate: CostEstimate, max_cost: float | None) -> None:
    """Refuse, naming ``max_cost``, the estimate and the currency, a run whose estimate is above the cap or has
    unknown prices in it (an unknown price cannot be shown to fit under a cap)."""
    if max_cost is None:
        return
    cur = estimate.currency
    if max_cost < 0:
        raise CostLimitError(f"max_cost: must be >= 0 (got {max_cost})")
    if not estimate.complete:
        unknown = "; ".join(estimate.unknown[:5]) + (" …" if len(estimate.unknown) > 5 else "")
        raise CostLimitError(
            f"max_cost {max_cost:g} {cur} cannot be checked: the estimate ({money(estimate.total, cur)} known) has "
            f"unknown prices ({unknown}). Set them in the clipflow-prices block, or leave max_cost empty; "
            "nothing was paid for"
        )
    if estimate.total > max_cost:
        raise CostLimitError(
            f"max_cost {max_cost:g} {cur} is below the estimate of {money(estimate.total, cur)}; nothing was paid for. "
            "Raise max_cost or buy less (fewer languages, translation types, a shorter clip)"
        )


def estimate_markdown(title: str, estimate: CostEstimate) -> str:
    cur = estimate.currency
    lines = [
        f"# Estimate for {title}: {money(estimate.total, cur)}"
        + ("" if estimate.complete else f" + unknown ({len(estimate.unknown)} item(s) without a price)"),
        *([f"Prices: {estimate.source}"] if estimate.source else []),
        "", "| item | stage | what | quantity | unit price | amount |", "|---|---|---|---|---|---|",
    ]
    for l in estimate.lines:
        quantity = "?" if l.units is None else f"{l.units:g} {l.unit}(s)"
        price = "unknown" if l.unit_price is None else f"{l.unit_price:g}"
        shown = "0 (reused)" if l.reused else money(l.amount, cur)
        lines.append(f"| {l.item[:24]} | {l.stage} | {l.detail} ({l.price_key}) | {quantity} | {price} | {shown} |")
    if not estimate.complete:
        lines += ["", "Unknown: " + "; ".join(estimate.unknown[:20]), "",
                  "Set the missing prices in the `clipflow-prices` block (Blocks in the UI)."]
    return "\n".join(lines)


def run_cost(estimate: CostEstimate, notes: list[Note], table: PriceTable) -> RunCost:
    """What this run bought, priced: jobs it reused cost nothing; a job whose price is unknown makes it None."""
    bought = [n for n in notes if not n.reused]
    by_stage: dict[str, float | None] = {}
    for n in bought:
        value = amount(table, list(n.items))
        known = by_stage.get(n.stage, 0.0)
        by_stage[n.stage] = None if known is None or value is None else round(known + value, 6)
    complete = all(v is not None for v in by_stage.values())
    return RunCost(
        currency=table.currency, estimate=estimate.total, estimate_complete=estimate.complete,
        unknown=estimate.unknown, spent=round(sum(v or 0.0 for v in by_stage.values()), 6) if complete else None,
        spent_complete=complete, by_stage=by_stage,
        takes=dict(Counter(f"{n.stage}/{n.item}" if n.item != n.stage else n.stage for n in bought)),
    )


def cost_rows(cost: Any) -> list[str]:
    """The production artifact's cost section (markdown lines)."""
    cur = cost.currency
    rows = ["", "## Cost", "", "| stage | spent |", "|---|---|"]
    rows += [f"| {stage} | {money(value, cur)} |" for stage, value in cost.by_stage.items()]
    rows += [f"| **total** | **{money(cost.spent, cur)}** (estimate {money(cost.estimate, cur)}"
             f"{'' if cost.estimate_complete else ' + unknown'}) |"]
    if cost.takes:
        rows += ["", "Paid jobs: " + ", ".join(f"{k} ×{v}" for k, v in cost.takes.items())]
    return rows
