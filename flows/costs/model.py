"""The estimate a run publishes before paying, and the ``cost`` its result carries."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field


class CostLine(BaseModel):
    """One billed quantity: ``amount`` is None when its price or its quantity is unknown."""

    item: str = Field(description="What it is for: the production's title or the batch item.")
    stage: str
    detail: str = Field(description="The language of a translation, else the stage.")
    price_key: str
    unit: str
    units: float | None
    unit_price: float | None
    amount: float | None
    reused: bool = Field(False, description="Already bought (in the journal): costs 0 in the estimate.")


class CostEstimate(BaseModel):
    currency: str
    source: str = Field("", description="Where the prices come from (the clipflow-prices block's source).")
    lines: list[CostLine] = Field(default_factory=list)

    @property
    def total(self) -> float:
        """The sum of the known amounts (check ``complete``)."""
        return round(sum(line.amount or 0.0 for line in self.lines), 6)

    @property
    def unknown(self) -> list[str]:
        return [f"{l.item} {l.stage} {l.detail}: {_why(l)}" for l in self.lines if l.amount is None]

    @property
    def complete(self) -> bool:
        return all(line.amount is not None for line in self.lines)

    def by(self, field: str) -> dict[str, float | None]:
        """Amount per ``stage`` or ``item``; None where a part is unknown."""
        out: dict[str, float | None] = {}
        for line in self.lines:
            key = getattr(line, field)
            known = out.get(key, 0.0)
            out[key] = None if known is None or line.amount is None else round(known + line.amount, 6)
        return out

    def merged(self, other: CostEstimate) -> CostEstimate:
        return CostEstimate(currency=self.currency, lines=[*self.lines, *other.lines])


def _why(line: CostLine) -> str:
    if line.unit_price is None:
        return f"price {line.price_key} unknown"
    return f"number of {line.unit}s unknown"


class RunCost(BaseModel):
    """What a run was estimated to cost before it paid, and what it bought (from the journal's records)."""

    currency: str
    estimate: float = Field(description="Sum of the known estimated amounts.")
    estimate_complete: bool = True
    unknown: list[str] = Field(default_factory=list, description="Estimated items whose price is unknown.")
    spent: float | None = Field(description="What this run bought (reused work not counted); None if a price is unknown.")
    spent_complete: bool = True
    by_stage: dict[str, float | None] = Field(default_factory=dict, description="Spent per stage.")
    takes: dict[str, int] = Field(default_factory=dict, description="Paid jobs this run bought per stage/item.")


MaxCost = Annotated[
    float,
    Field(ge=0, le=1e12, description="Refuse the run before anything is paid when its estimate is above this amount "
                                     "(currency of the clipflow-prices block; a batch: its money budget). Empty: no cap."),
]
