"""The estimate, said where a user looks before anything is paid: the run's log and a markdown artifact."""

from __future__ import annotations

from flows.costs.guard import estimate_markdown, money
from flows.costs.model import CostEstimate
from flows.outputs.artifacts import in_batch_item


async def announce(title: str, estimate: CostEstimate, key: str) -> None:
    """Log the estimate and publish it as a markdown artifact (not for a batch's items: the batch has one)."""
    from prefect.artifacts import acreate_markdown_artifact
    from prefect.logging import get_run_logger

    get_run_logger().info(
        "Estimate for %s: %s%s (by stage: %s)%s", title, money(estimate.total, estimate.currency),
        "" if estimate.complete else f" + {len(estimate.unknown)} item(s) of unknown price",
        ", ".join(f"{s} {money(v, estimate.currency)}" for s, v in estimate.by("stage").items()),
        f"; prices: {estimate.source}" if estimate.source else "",
    )
    if not in_batch_item():
        await acreate_markdown_artifact(markdown=estimate_markdown(title, estimate), key=key,
                                        description=f"Cost estimate of {title}, before the first paid call")
