"""``clipflow cost``: what clipflow bought, from the journal, priced with the ``clipflow-prices`` block."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from flows.costs.guard import money
from flows.costs.spend import as_dicts, spend_rows, summarise


async def collect(
    *, since: str = "", until: str = "", deployment: str = "", flow_run: str = "", prices: str = "clipflow",
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The summary and the priced rows of every bought journal record matching the filters."""
    from flows.costs.estimate import load_prices
    from flows.engine.journal import Journal

    table = await load_prices(prices)
    rows = spend_rows(await (await Journal.default()).scan(), table)
    rows = [
        r for r in rows
        if (not since or r.day >= since) and (not until or r.day <= until)
        and (not deployment or r.deployment == deployment) and (not flow_run or r.flow_run == flow_run)
    ]
    rows.sort(key=lambda r: (r.day, r.deployment, r.stage, r.fingerprint))
    return summarise(rows, table.currency), as_dicts(rows)


def render(summary: dict[str, Any]) -> str:
    cur = summary["currency"]
    lines = [f"spent {money(summary['total'], cur)} on {summary['jobs']} paid job(s)"
             + ("" if summary["complete"] else
                f" + {summary['jobs_of_unknown_price']} job(s) of unknown price (set them in the clipflow-prices block)")]
    for title, key in (("by day", "by_day"), ("by deployment", "by_deployment"), ("by stage", "by_stage")):
        lines += ["", title]
        width = max((len(k) for k in summary[key]), default=0)
        partial = set(summary["incomplete"][key])
        lines += [f"  {k.ljust(width)}  {money(v, cur)}{' + unknown' if k in partial else ''}"
                  for k, v in summary[key].items()]
    return "\n".join(lines)


def run(*, as_json: bool = False, jobs: bool = False, **filters: str) -> int:
    summary, rows = asyncio.run(collect(**filters))
    if as_json:
        print(json.dumps({**summary, **({"rows": rows} if jobs else {})}, indent=2))
    else:
        print(render(summary))
        if jobs:
            for row in rows:
                print(f"  {row['day']} {row['deployment']} {row['stage']} {row['item']} {row['job_id']} "
                      f"{money(row['amount'], summary['currency'])}")
    return 0
