"""The emulator bills like the vendor would: each ledger entry carries its price (``providers.pricing``).

Quantities come from the request as received (Jimeng ``frames``, the gateway ``model``, the translation types)
and, for per-minute actions, from the length of the video the emulator holds for the request's Vid (started
minutes, as clipflow estimates them). Prices are the config's ``prices`` (a ``PriceTable``); by default the
emulator's example prices (``emulator.example_prices``, illustrative, not vendor prices), the table ``make up``
and ``make demo`` save in the ``clipflow-prices`` block, so the local stack's estimates and bills agree.
"""

from __future__ import annotations

from typing import Any

from emulator.example_prices import EXAMPLE_PRICES
from providers.pricing import PriceTable, amount, billables


def priced(state: Any, provider: str, action: str, values: dict[str, Any]) -> dict[str, Any]:
    """The ledger fields of one billed submission: price keys, quantities, unit prices, amount and currency."""
    table = PriceTable.model_validate(state.config.prices) if state.config.prices is not None else EXAMPLE_PRICES
    config = _json(values.get("TranslationConfig")) or {}
    items = billables(
        provider, action, frames=_int(values.get("frames")) or 121, model=values.get("model"),
        types=config.get("TranslationTypeList") or None, video_seconds=_video_seconds(state, values),
    )
    return {
        "currency": table.currency,
        "billed": [
            {"price_key": b.key, "unit": b.unit, "units": b.units, "unit_price": table.price(b.key)} for b in items
        ],
        "amount": amount(table, items) if items else 0.0,
    }


def _video_seconds(state: Any, values: dict[str, Any]) -> float | None:
    vid = values.get("Vid") or values.get("Uploader")
    media = state.vids.get(vid) if isinstance(vid, str) else None
    if media is None:
        return None
    return float(media.source_info()["Duration"]) or None


def _json(value: Any) -> Any:
    import json

    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
