"""The ``clipflow-prices`` block: the currency and unit price of every paid action, edited in the UI.

Its fields are ``providers.pricing.PriceTable``'s; an empty field is an unknown price (an estimate built on it
says so). ``clipflow setup`` and ``make up`` save one named ``clipflow`` with the defaults when none exists and
never overwrite one a person saved.
"""

from __future__ import annotations

from prefect.blocks.core import Block

from providers.pricing import PriceTable


class ClipflowPrices(Block, PriceTable):
    """Unit prices clipflow estimates, caps and reports spend with (empty = unknown, never taken as 0)."""

    _block_type_name = "Clipflow Prices"
    _block_type_slug = "clipflow-prices"
    _code_example = """
from blocks.prices import ClipflowPrices

prices = ClipflowPrices.load("clipflow")
prices.transcode_per_minute = 0.05
prices.save("clipflow", overwrite=True)
"""

    def table(self) -> PriceTable:
        return PriceTable.model_validate(self.model_dump(include=set(PriceTable.model_fields)))
