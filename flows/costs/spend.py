"""Spend from the journal: every bought job priced with the current table, by day, deployment and stage.

Each record a submit wrote carries its quantities (``billing``, ``flows.costs.trace``); a record written by an
older clipflow has none, and its amount is unknown unless the action bills per call.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from providers.pricing import Billable, PriceTable, amount, billables
from flows.costs.trace import ITEMS, stage_of


@dataclass(frozen=True)
class SpendRow:
    day: str
    deployment: str
    flow_run: str
    stage: str
    item: str
    provider: str
    action: str
    fingerprint: str
    job_id: str
    amount: float | None


def spend_rows(records: list[Any], table: PriceTable) -> list[SpendRow]:
    """One row per bought record (state ``submitted`` with a job id), priced."""
    rows = []
    for record in records:
        if not record.bought:
            continue
        billing = (record.detail or {}).get("billing") or {}
        if billing.get("items") is not None:
            items = [Billable(k, u, n) for k, u, n in billing["items"]]
        else:  # no quantities recorded: per-call prices still apply, the rest is unknown
            items = [b if b.unit == "call" or b.unit == "clip" else Billable(b.key, b.unit, None)
                     for b in billables(record.provider, record.action)]
        when = record.sent_at or record.at
        rows.append(SpendRow(
            day=when.astimezone(dt.timezone.utc).date().isoformat(),
            deployment=billing.get("deployment") or (f"(flow {billing['flow']})" if billing.get("flow") else "(unknown)"),
            flow_run=billing.get("flow_run", ""), stage=billing.get("stage") or stage_of(record.action),
            item=billing.get("item") or ITEMS.get(record.action, ""), provider=record.provider, action=record.action,
            fingerprint=record.fingerprint, job_id=record.job_id or "", amount=amount(table, items) if items else 0.0,
        ))
    return rows


def summarise(rows: list[SpendRow], currency: str) -> dict[str, Any]:
    """Known totals by day, deployment and stage; ``incomplete`` names the groups holding a job of unknown price
    (their figure is the known part)."""
    groups: dict[str, dict[str, float]] = {}
    incomplete: dict[str, list[str]] = {}
    for field in ("day", "deployment", "stage"):
        sums: dict[str, float] = {}
        partial: set[str] = set()
        for row in rows:
            key = getattr(row, field)
            sums[key] = round(sums.get(key, 0.0) + (row.amount or 0.0), 6)
            if row.amount is None:
                partial.add(key)
        groups[f"by_{field}"] = dict(sorted(sums.items()))
        incomplete[f"by_{field}"] = sorted(partial)
    unknown = sum(1 for r in rows if r.amount is None)
    return {
        "currency": currency,
        "total": round(sum(r.amount or 0.0 for r in rows), 6),
        "complete": unknown == 0,
        "jobs": len(rows),
        "jobs_of_unknown_price": unknown,
        **groups,
        "incomplete": incomplete,
    }


def as_dicts(rows: list[SpendRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
