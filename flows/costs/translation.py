"""translate-video's money: its estimate before the first submit (reused languages at 0) and the cap.

The video's length (translations bill per started minute of it) is a free read (GetMediaList by Vid); when
it cannot be read the estimate says the quantity is unknown instead of guessing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from flows.costs.estimate import load_prices, translation_lines
from flows.costs.announce import announce
from flows.costs.guard import check_max_cost
from flows.costs.model import CostEstimate, RunCost
from providers.pricing import PriceTable
from flows.costs.trace import collecting, in_production, know_length
from flows.engine.journal import Journal

logger = logging.getLogger("clipflow.costs")


async def video_seconds(vid: str, space_name: str, refs: Any) -> float | None:
    from flows.runtime import resources
    from flows.coordination.quotas import quota_slot

    try:
        async with await resources.client("vod", refs) as vod, quota_slot("vod", "GetMediaList"):
            found = await vod.get_media_list(space_name, vid=vid, page_size=1)
    except Exception as exc:  # noqa: BLE001 - the length only sizes the estimate: unknown, not a failure
        logger.warning("Could not read the length of %s (%s): its translations' minutes are unknown", vid, type(exc).__name__)
        return None
    for media in found.media_info_list:
        if media.vid == vid and media.source_info is not None and media.source_info.duration:
            return float(media.source_info.duration)
    return None


async def before_translating(
    vid: str, space_name: str, spec: Any, refs: Any, fingerprints: dict[str, str], max_cost: float | None,
    table: PriceTable | None = None,
) -> CostEstimate:
    """Estimate the languages of ``spec`` (those whose project the journal has: 0), log, publish, cap."""
    from flows.outputs.artifacts import artifact_key

    table = table or await load_prices()
    seconds = await video_seconds(vid, space_name, refs)
    know_length(vid, seconds)
    journal = await Journal.default()
    reused = set()
    for language, fp in fingerprints.items():
        record = await journal.read(fp)
        if record is not None and record.bought:
            reused.add(f"translate/{language}")
    estimate = CostEstimate(currency=table.currency, source=table.source, lines=translation_lines(
        list(spec.target_languages), spec, seconds, table, frozenset(reused), item=vid,
    ))
    await announce(f"translate-{vid}", estimate, artifact_key(f"translate-{vid}", "estimate"))
    check_max_cost(estimate, max_cost)
    return estimate


@contextlib.asynccontextmanager
async def translation_costs(
    vid: str, space_name: str, spec: Any, refs: Any, fingerprints: dict[str, str], max_cost: float | None,
) -> AsyncIterator[list[RunCost]]:
    """translate-video's money around its languages: the estimate and cap before, what it bought after (logged,
    published as ``translate-<vid>-cost`` and put in the yielded list for the run's result). Inside a production
    nothing: the production does both."""
    if in_production():
        yield []
        return
    from prefect.artifacts import acreate_markdown_artifact
    from prefect.logging import get_run_logger

    from flows.costs.estimate import load_prices
    from flows.costs.guard import cost_rows, money, run_cost
    from flows.outputs.artifacts import artifact_key

    with collecting() as notes:
        table = await load_prices()
        estimate = await before_translating(vid, space_name, spec, refs, fingerprints, max_cost, table)
        costs: list[RunCost] = []
        yield costs
        cost = run_cost(estimate, notes, table)
        costs.append(cost)
    get_run_logger().info("translate-%s bought %s (estimate %s%s)", vid, money(cost.spent, cost.currency),
                          money(cost.estimate, cost.currency), "" if cost.estimate_complete else " + unknown")
    await acreate_markdown_artifact(
        markdown="\n".join([f"# translate-{vid}", *cost_rows(cost)]), key=artifact_key(f"translate-{vid}", "cost"),
        description=f"What translate-{vid} bought",
    )
