"""Estimates before the first paid call: per stage, per item, in total; work already bought costs 0.

Quantities come from the request (Jimeng's frames, the gateway model, the translation types, the clip's length
for video minutes), prices from the ``clipflow-prices`` block. Reuse is read from the journal: the clip by its
fingerprint, the later stages through the fingerprints the last run of the same request bought (``memo``).
"""

from __future__ import annotations

import logging
from typing import Any

from flows.costs.model import CostEstimate, CostLine
from providers.pricing import (
    DEFAULT_PRICES, GATEWAY_CLIP_SECONDS, Billable, PriceTable, billables, jimeng_seconds,
)

logger = logging.getLogger("clipflow.costs")

PRICES_BLOCK = "clipflow"


async def load_prices(name: str = PRICES_BLOCK) -> PriceTable:
    """The saved ``clipflow-prices`` block, or the default table (every price unknown) when none is saved; read
    once per flow run (a batch's items share its table)."""
    from flows.runtime.resources import per_run

    return await per_run("clipflow-prices", name, lambda: _load_prices(name))


async def _load_prices(name: str) -> PriceTable:
    from blocks.prices import ClipflowPrices

    try:
        block = await ClipflowPrices.aload(name)  # type: ignore[misc]
    except ValueError:
        logger.warning("No clipflow-prices block %r saved: every price is unknown (clipflow setup saves one)", name)
        return DEFAULT_PRICES
    return block.table()


def line(table: PriceTable, item: str, stage: str, detail: str, billable: Billable, *, reused: bool = False) -> CostLine:
    price = table.price(billable.key)
    amount = 0.0 if reused else (
        None if price is None or billable.units is None else round(price * billable.units, 6)
    )
    return CostLine(
        item=item, stage=stage, detail=detail, price_key=billable.key, unit=billable.unit, units=billable.units,
        unit_price=price, amount=amount, reused=reused,
    )


def clip_seconds(clip: Any) -> float:
    """The generated clip's length as requested (Jimeng frames; a gateway clip at most ``GATEWAY_CLIP_SECONDS``)."""
    if clip.provider == "jimeng":
        return jimeng_seconds(clip.frames) or 5.0
    return GATEWAY_CLIP_SECONDS


def production_lines(request: Any, table: PriceTable, reused: frozenset[str] = frozenset(), item: str = "") -> list[CostLine]:
    """The estimate of one ``ProductionRequest`` as lines; ``reused`` holds the ``stage/detail`` keys already
    bought. Pure: the tests compare it with tables computed by hand."""
    item = item or request.title
    seconds = clip_seconds(request.clip)
    clip = request.clip
    plan: list[tuple[str, str, list[Billable]]] = [
        ("generate", "clip", billables(
            clip.provider, "submit", frames=getattr(clip, "frames", None), model=getattr(clip, "model", None)
        )),
        ("import", "import", billables("vod", "UploadMediaByUrl")),
        ("edit", "edit", billables("vod", "CreateProject")),
    ]
    if request.edit.render:
        plan.append(("edit", "render", billables("vod", "SubmitDirectEditTaskAsync", video_seconds=seconds)))
    plan.append(("transcode", "transcode", billables("vod", "StartWorkflow", video_seconds=seconds)))
    for language in request.translate.target_languages:
        plan.append(("translate", language, billables(
            "vod", "SubmitAITranslationWorkflow", types=list(request.translate.translation_types), video_seconds=seconds,
        )))
    return [
        line(table, item, stage, detail, b, reused=f"{stage}/{detail}" in reused)
        for stage, detail, items in plan for b in items
    ]


def translation_lines(
    languages: list[str], spec: Any, video_seconds: float | None, table: PriceTable,
    reused: frozenset[str] = frozenset(), item: str = "",
) -> list[CostLine]:
    """The estimate of a translate-video run of a video ``video_seconds`` long (None: unknown)."""
    return [
        line(table, item or "translate-video", "translate", language, b, reused=f"translate/{language}" in reused)
        for language in languages
        for b in billables("vod", "SubmitAITranslationWorkflow", types=list(spec.translation_types),
                           video_seconds=video_seconds)
    ]


async def estimate_production(request: Any, table: PriceTable, item: str = "") -> CostEstimate:
    from flows.costs.memo import reused_stages

    reused = await reused_stages(request)
    return CostEstimate(currency=table.currency, source=table.source,
                        lines=production_lines(request, table, reused, item))
