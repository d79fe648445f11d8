"""produce_batch: many productions from one manifest, run concurrently inside the provider quotas.

Behaviour (what an operator can rely on):

- **Bad items** are found before anything is paid: pydantic rules, unknown fields, the provider rules
  ``validate_production`` checks. With ``on_invalid="skip"`` (default) they are reported
  (item number, source line, field, rule) as ``invalid`` rows and the valid items run; with ``"fail"`` the
  batch stops with ``ManifestError`` before the first paid call. Skipping is the default because a re-run is
  cheap: fix the line, run the same manifest again, and only the fixed item costs anything.
- **Duplicates** are found by meaning (``flows.stages.canonical``): rows that would buy exactly the same things,
  however they are spelled (an empty CSV cell or the default written out, ``5`` or ``5.0``), run once, as the
  first of them; the others are ``duplicate`` rows naming that item (``duplicate_of``), never an error.
- **Budget**: ``max_paid_submissions`` caps the paid submits of this run (``flows.engine.budget``). Once it is used up
  no further item starts (``skipped``, with the reason in ``BatchResult.stopped``); an item already in flight
  finishes if it needs no more paid calls, or fails with ``BudgetExceededError`` at its next one.
- **Re-run**: every paid step is cached by what it buys, so running the same batch again reuses finished
  items (nothing billed) and redoes only what failed or was skipped.
- **Concurrency**: at most ``max_concurrency`` items in flight; the provider quotas themselves are Prefect
  global concurrency limits taken inside each paid call, so the batch never goes over them.
- **Review**: an item whose translations pause for review (``translate.review``) does not hold the batch: its
  drafts are stored, each waiting language gets its own ``review-translation`` run (which suspends until a person
  answers), and the item ends ``awaiting_review``, its row naming the project and the review run
  (``flows.stages.review``, handoff mode).

Each item runs inline in the batch's own run: its paid tasks (cached, journaled, quota-paced) are task runs of
the batch, its log lines name its title, its row in the items table holds every id and output. A subflow run per
item bought nothing more and cost 8 Prefect API calls, ~10 events and a parameter schema per item, and item runs
had to be *created* one at a time (concurrent subflow creation makes a SQLite-backed server answer 503), which
set the pace of a batch once items were in flight (bench/vs_plain.py, issue #12). Items reuse the blocks,
clients and result storage the batch loaded (``resources.per_run``) and write no artifacts of their own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal
from uuid import UUID

from prefect.artifacts import (
    acreate_markdown_artifact, acreate_progress_artifact, acreate_table_artifact, aupdate_progress_artifact,
)
from prefect.logging import get_run_logger
from pydantic import Field

from flows.costs.batch import (
    MoneyBudget, batch_cost, batch_cost_markdown, check_batch, clip_estimates, combined, estimate_items,
)
from flows.costs.estimate import load_prices
from flows.costs.announce import announce
from flows.costs.guard import run_cost
from flows.costs.trace import collecting, current_notes
from flows.costs.model import CostEstimate, MaxCost, RunCost
from flows.runtime import resources
from flows.outputs.artifacts import BATCH_ITEM, artifact_key
from flows.engine.budget import Budget, budget
from flows.stages.generate import clip_fingerprint, generate_clip
from flows.outputs.manifest import (
    ItemProblem,
    ManifestError,
    RawItem,
    ValidItem,
    check_item_count,
    check_manifest_key,
    from_inline,
    load_manifest,
    provider_problem,
)
from flows.models import BlockRefs, ClipSpec, GeneratedClip, ProductionRequest, ProductionResult
from flows.stages.batch_rows import (
    BatchItemRow, BatchResult, ClipRow, ClipsResult, ERROR_CHARS, ItemSlot, ItemStatus, LostAnswer, _duplicate_row, _problem_rows, _row, _shown_rows, _table, lost_answer, publish_lost_answers,
)
from flows.stages.canonical import build_item, duplicates_by_purchase
from flows.stages.entry import validated_flow
from flows.stages.pipeline import run_production, validate_clip_spec, validate_production

VALIDATION_CONCURRENCY = 8  # provider validation loads blocks: a few at a time, not hundreds
PROGRESS_EVERY_SECONDS = 5.0  # progress artifact writes are throttled (each is an API write)
# Bounded in the parameter schema: an integer the form accepts must fit the server's 64-bit columns.
PaidSubmissions = Annotated[int, Field(ge=0, le=1_000_000, description="Paid submits this run may make.")]
Concurrency = Annotated[int, Field(ge=1, le=1_000, description="Items in flight at once.")]


# --- one item ------------------------------------------------------------------------------------------------


async def _run_item(
    request: ProductionRequest, slot: ItemSlot, estimate: CostEstimate | None = None
) -> ProductionResult:
    """One production of a batch: produce_video's chain with its stages inline in the batch's run. Called in the
    item's own asyncio task, so the context variables set here are the item's alone."""
    from flows.stages.review import HANDOFF

    HANDOFF.set(True)  # a review becomes its own run: this item (and the batch) does not wait for a person
    BATCH_ITEM.set(True)  # the batch's items table is the item's record: no per-item artifacts
    return await run_production(request, inline_stages=True, observe=slot.stages.__setitem__, estimate=estimate)


# --- shared machinery ----------------------------------------------------------------------------------------


class _Admission:
    """At most ``max_concurrency`` items in flight; none started once the budget is used up."""

    def __init__(self, max_concurrency: int, guard: Budget | None) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency: must be >= 1")
        self.slots = asyncio.Semaphore(max_concurrency)
        self.guard = guard

    @property
    def budget_used_up(self) -> bool:
        return self.guard is not None and self.guard.spent >= self.guard.limit

    def stop_reason(self) -> str:
        assert self.guard is not None
        return (
            f"budget of {self.guard.limit} paid submissions used up ({self.guard.spent} made in this run); "
            "items not started were skipped. Run the same batch again with a larger max_paid_submissions: "
            "finished work is reused from the cache, not paid again."
        )


class _Progress:
    """A progress artifact that moves as items finish (writes throttled to one per second)."""

    def __init__(self, total: int, description: str) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.description = description
        self.artifact_id: UUID | None = None
        self._last_write = 0.0

    async def start(self, key: str, already_done: int) -> None:
        self.done = already_done
        self.artifact_id = await acreate_progress_artifact(self.percent, key=key, description=self.description)
        self._last_write = time.monotonic()

    @property
    def percent(self) -> float:
        return round(100.0 * self.done / self.total, 1)

    async def advance(self, *, final: bool = False) -> None:
        if not final:
            self.done += 1
        if self.artifact_id is None:
            return
        if final or self.done >= self.total or time.monotonic() - self._last_write >= PROGRESS_EVERY_SECONDS:
            self._last_write = time.monotonic()
            await aupdate_progress_artifact(self.artifact_id, self.percent, description=self.description)


async def _validated(
    raws: list[RawItem], defaults: ProductionRequest
) -> tuple[list[ValidItem], list[ItemProblem], dict[int, tuple[ValidItem, int]]]:
    """Every item checked the way produce_video checks a request, before anything is paid for; then the items
    that would buy exactly what an earlier one buys (``flows.stages.canonical``), by item number."""
    problems: list[ItemProblem] = []
    built: list[tuple[RawItem, ProductionRequest]] = []
    for raw in raws:
        request = build_item(raw, defaults)
        if isinstance(request, list):
            problems += request
        else:
            built.append((raw, request))
    gate = asyncio.Semaphore(VALIDATION_CONCURRENCY)

    async def check(raw: RawItem, request: ProductionRequest) -> ItemProblem | ValidItem:
        async with gate:
            try:
                await validate_production(request)
            except Exception as exc:  # noqa: BLE001 - any refusal is this item's problem, reported with it
                return provider_problem(raw, exc)
        return ValidItem(item=raw.item, line=raw.line, request=request)

    checked = await asyncio.gather(*(check(raw, request) for raw, request in built))
    valid = [c for c in checked if isinstance(c, ValidItem)]
    problems += [c for c in checked if isinstance(c, ItemProblem)]
    firsts = duplicates_by_purchase(valid)
    dupes = {v.item: (v, firsts[v.item]) for v in valid if v.item in firsts}
    return [v for v in valid if v.item not in firsts], sorted(problems, key=lambda p: (p.item, p.field)), dupes


async def _read_manifest(key: str, fmt: str, refs: BlockRefs) -> tuple[list[RawItem], list[ItemProblem]]:
    check_manifest_key(key)  # by name, before the bucket block is even loaded
    return await load_manifest(await resources.bucket(refs), key, fmt)


# --- the batch -----------------------------------------------------------------------------------------------


@validated_flow(name="produce-batch", log_prints=True)
async def produce_batch(
    items: list[dict[str, Any]] | None = None,
    manifest_key: str | None = None,
    defaults: ProductionRequest = ProductionRequest(),  # noqa: B008 - pydantic default; Prefect renders the form
    max_paid_submissions: PaidSubmissions | None = None,
    max_concurrency: Concurrency = 16,
    on_invalid: Literal["skip", "fail"] = "skip",
    manifest_format: Literal["auto", "jsonl", "csv"] = "auto",
    max_cost: MaxCost | None = None,
) -> BatchResult:
    """Run one production per manifest item (``items`` inline, or ``manifest_key`` in the bucket of
    ``defaults.blocks``: JSONL, or CSV with dotted-path columns). Each item is deep-merged over ``defaults``."""
    logger = get_run_logger()
    if (items is None) == (manifest_key is None):
        raise ManifestError("give exactly one of items (inline) or manifest_key (an object in the bucket)")
    if max_concurrency < 1:
        raise ValueError("max_concurrency: must be >= 1")
    if items is not None:
        raws, problems = from_inline(items)
    else:
        raws, problems = await _read_manifest(manifest_key or "", manifest_format, defaults.blocks)
    valid, more, dupes = await _validated(raws, defaults)
    from flows.stages.preflight_checks import PreflightMemo, preflight_scope
    from flows.stages.preflight import preflight_many, preflight_production

    # Once for the whole batch, before the first item pays: each distinct block, bucket, space, template and
    # model is read once (the items' own preflight reuses this memo). An item whose values fail is invalid.
    memo = PreflightMemo()
    refused = await preflight_many(
        [(v.item, lambda m, r=v.request: preflight_production(r, m)) for v in valid], memo
    )
    more += [provider_problem(RawItem(item=v.item, line=v.line), refused[v.item]) for v in valid if v.item in refused]
    more += [  # a duplicate of a refused item holds the same values: refused with it
        provider_problem(RawItem(item=d.item, line=d.line), refused[first])
        for d, first in dupes.values() if first in refused
    ]
    dupes = {item: (d, first) for item, (d, first) in dupes.items() if first not in refused}
    valid = [v for v in valid if v.item not in refused]
    problems = sorted(problems + more, key=lambda p: (p.item, p.field))
    total = len(raws) + len({p.item for p in problems} - {r.item for r in raws})
    for problem in problems:
        logger.error("Invalid %s", problem)
    if problems and on_invalid == "fail":
        listed = "\n".join(str(p) for p in problems[:50])
        count = len({p.item for p in problems})
        raise ManifestError(f"{count} invalid item(s); nothing was run or paid for:\n{listed}")

    # Before the first item pays: every item's estimate (work already bought at 0), logged and published;
    # with max_cost, refused when it cannot be checked or not even the first item fits (flows.costs.batch).
    prices = await load_prices()
    estimates = await estimate_items([(v.item, v.request) for v in valid], prices)
    estimate = combined(estimates, prices.currency)
    await announce(f"{defaults.title} batch", estimate, artifact_key(f"{defaults.title}-batch", "estimate"))
    check_batch(estimate, estimates, max_cost)
    money = MoneyBudget(max_cost, prices.currency) if max_cost is not None else None

    bucket = await resources.bucket(defaults.blocks)
    titles = {raw.item: str(raw.overrides.get("title", "")) for raw in raws}
    rows: dict[int, BatchItemRow] = {row.item: row for row in _problem_rows(problems, titles)}
    rows.update({item: _duplicate_row(d, first) for item, (d, first) in dupes.items()})
    for item, (_, first) in sorted(dupes.items()):
        logger.warning("Item %d is the same request as item %d: run once, as item %d", item, first, first)
    progress = _Progress(total, f"{defaults.title}: {total} item(s), {len(valid)} to run")
    key = artifact_key(f"{defaults.title}-batch", "progress")
    await progress.start(key, already_done=len(rows))
    logger.info("Batch of %d item(s): %d valid, %d invalid, %d duplicate(s)", total, len(valid),
                len(rows) - len(dupes), len(dupes))

    lost: list[LostAnswer] = []
    with budget(max_paid_submissions) as guard, preflight_scope(memo):
        admission = _Admission(max_concurrency, guard)

        async def run_item(valid_item: ValidItem) -> BatchItemRow:
            async with admission.slots:
                item_estimate = estimates[valid_item.item]
                if admission.budget_used_up:
                    row = BatchItemRow(
                        item=valid_item.item, line=valid_item.line, title=valid_item.request.title,
                        status=ItemStatus.SKIPPED, error="not started: the batch's paid-submission budget is used up",
                    )
                elif money is not None and not money.admit(item_estimate.total):
                    row = BatchItemRow(
                        item=valid_item.item, line=valid_item.line, title=valid_item.request.title,
                        status=ItemStatus.SKIPPED, error=money.skip_reason(item_estimate.total),
                    )
                else:
                    row = await _launch(valid_item, bucket.name, lost, item_estimate)
                    if money is not None:
                        money.settle(item_estimate.total, row.cost.spent if row.cost is not None else None)
            rows[row.item] = row
            await progress.advance()
            return row

        await asyncio.gather(*(run_item(v) for v in valid))
        skipped = any(r.status is ItemStatus.SKIPPED for r in rows.values())
        stopped = admission.stop_reason() if skipped and admission.guard is not None and admission.budget_used_up else None
        if money is not None and money.refused:
            stopped = "; ".join(filter(None, [stopped, money.stop_reason()]))
        spent = guard.spent if guard is not None else None

    ordered = [rows[n] for n in sorted(rows)]
    result = BatchResult(
        total=len(ordered),
        succeeded=sum(r.status is ItemStatus.SUCCEEDED for r in ordered),
        failed=sum(r.status is ItemStatus.FAILED for r in ordered),
        invalid=sum(r.status is ItemStatus.INVALID for r in ordered),
        skipped=sum(r.status is ItemStatus.SKIPPED for r in ordered),
        awaiting_review=sum(r.status is ItemStatus.AWAITING_REVIEW for r in ordered),
        duplicates=sum(r.status is ItemStatus.DUPLICATE for r in ordered),
        paid_submissions=spent, stopped=stopped, items=ordered,
        lost_answers=sorted(lost, key=lambda a: a.item),
        cost=batch_cost(estimate, [r.cost for r in ordered if r.cost is not None]),
    )
    summary = (
        f"{result.succeeded} succeeded, {result.failed} failed, {result.invalid} invalid, {result.skipped} skipped"
        f"{f', {result.awaiting_review} awaiting review' if result.awaiting_review else ''}"
        f"{f', {result.duplicates} duplicate(s)' if result.duplicates else ''} of {result.total}"
    )
    await progress.advance(final=True)
    shown = _shown_rows(ordered)
    await acreate_table_artifact(
        table=_table(shown), key=artifact_key(f"{defaults.title}-batch", "items"),
        description=f"{defaults.title} batch: {summary}" + (f". Stopped: {stopped}" if stopped else "") + (
            f". The table shows {len(shown):,} of {len(ordered):,} rows (those not succeeded first); the run's "
            "result has every row" if len(shown) < len(ordered) else ""
        ),
    )
    await acreate_markdown_artifact(
        markdown=batch_cost_markdown(f"{defaults.title} batch", estimate, ordered, result.cost),
        key=artifact_key(f"{defaults.title}-batch", "cost"), description=f"{defaults.title} batch: estimate and spend",
    )
    await publish_lost_answers(defaults.title, result.lost_answers)
    for answer in result.lost_answers:
        logger.error("Item %d waits for an operator: lost answer of %s %s (fingerprint %s); %s",
                     answer.item, answer.provider, answer.action, answer.fingerprint, answer.resolve)
    if stopped:
        logger.warning("Batch stopped early: %s", stopped)
    (logger.warning if result.succeeded < result.total else logger.info)("Batch finished: %s", summary)
    return result


async def _launch(
    valid: ValidItem, bucket_name: str, lost: list[LostAnswer], estimate: CostEstimate | None = None
) -> BatchItemRow:
    """Run one item to its end; its row, whatever happened (the others go on)."""
    slot = ItemSlot()
    try:
        result = await _run_item(valid.request, slot, estimate)
    except Exception as exc:  # noqa: BLE001 - the item failed; its row says why, the others go on
        if (answer := lost_answer(valid.item, exc)) is not None:
            lost.append(answer)
        return _row(valid, slot, None, f"{type(exc).__name__}: {exc}", bucket_name)
    return _row(valid, slot, result, None, bucket_name)


# --- clips only ----------------------------------------------------------------------------------------------


@validated_flow(name="generate-clips", log_prints=True)
async def generate_clips(
    specs: list[ClipSpec],
    space_name: str = "demo",
    blocks: BlockRefs = BlockRefs(),  # noqa: B008 - pydantic default; Prefect renders the form
    max_paid_submissions: PaidSubmissions | None = None,
    max_concurrency: Concurrency = 8,
    max_cost: MaxCost | None = None,
) -> ClipsResult:
    """Generate, keep and import N clips (generate_clip for each, inline in this run). Invalid specs are
    reported and skipped before anything is paid; the same budget and re-run rules as produce-batch apply."""
    check_item_count(len(specs), "specs")
    rows: dict[int, ClipRow] = {}
    runnable: list[tuple[int, ClipSpec]] = []
    for n, spec in enumerate(specs, start=1):
        try:
            validate_clip_spec(spec)  # the provider rules, before any paid call
            await clip_fingerprint(spec, blocks)
        except Exception as exc:  # noqa: BLE001 - reported on the spec's row
            problem = provider_problem(RawItem(item=n), exc)
            rows[n] = ClipRow(item=n, status=ItemStatus.INVALID, error=f"{problem.field}: {problem.rule}")
        else:
            runnable.append((n, spec))
    from flows.stages.preflight_checks import PreflightMemo
    from flows.stages.preflight import preflight, preflight_many

    # Once for all clips, before the first one pays: each distinct block, bucket, space and model read once.
    refused = await preflight_many(
        [(n, lambda m, s=spec: preflight(blocks, space_name=space_name, clip=s, memo=m)) for n, spec in runnable],
        PreflightMemo(),
    )
    for n, exc in refused.items():
        rows[n] = ClipRow(item=n, status=ItemStatus.INVALID, error=f"{exc.field}: {exc.rule}"[:ERROR_CHARS])
    runnable = [(n, spec) for n, spec in runnable if n not in refused]
    prices = await load_prices()  # each clip's estimate, before the first pays; max_cost is the budget
    estimates = await clip_estimates(runnable, blocks, prices)
    estimate = combined(estimates, prices.currency)
    await announce("generate-clips", estimate, artifact_key("generate-clips", "estimate"))
    check_batch(estimate, estimates, max_cost)
    money = MoneyBudget(max_cost, prices.currency) if max_cost is not None else None
    costs: list[RunCost] = []

    lost: list[LostAnswer] = []
    with budget(max_paid_submissions) as guard:
        admission = _Admission(max_concurrency, guard)

        async def one(n: int, spec: ClipSpec) -> None:
            async with admission.slots:
                if admission.budget_used_up:
                    rows[n] = ClipRow(item=n, status=ItemStatus.SKIPPED, error=admission.stop_reason())
                    return
                if money is not None and not money.admit(estimates[n].total):
                    rows[n] = ClipRow(item=n, status=ItemStatus.SKIPPED, error=money.skip_reason(estimates[n].total))
                    return
                with collecting():
                    rows[n] = await _clip_row(n, lambda: generate_clip.fn(spec, space_name, blocks), lost)
                    costs.append(cost := run_cost(estimates[n], current_notes(), prices))
                if money is not None:
                    money.settle(estimates[n].total, cost.spent)

        await asyncio.gather(*(one(n, spec) for n, spec in runnable))

    ordered = [rows[n] for n in sorted(rows)]
    await acreate_table_artifact(
        table=[r.model_dump(mode="json") for r in ordered], key=artifact_key("generate-clips", "items"),
        description=f"{len(ordered)} clip(s)",
    )
    await publish_lost_answers("generate-clips", lost)
    return ClipsResult(
        total=len(ordered), clips=ordered, lost_answers=sorted(lost, key=lambda a: a.item),
        cost=batch_cost(estimate, costs),
        **{s.value: sum(r.status is s for r in ordered) for s in ItemStatus},
    )


async def _clip_row(n: int, make: Callable[[], Awaitable[GeneratedClip]], lost: list[LostAnswer]) -> ClipRow:
    try:
        clip = await make()
    except Exception as exc:  # noqa: BLE001 - one clip failing must not stop the others
        if (answer := lost_answer(n, exc)) is not None:
            lost.append(answer)
        return ClipRow(item=n, status=ItemStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:ERROR_CHARS])
    return ClipRow(
        item=n, status=ItemStatus.SUCCEEDED, job_id=clip.job_id,
        clip=f"s3://{clip.stored.bucket}/{clip.stored.key}", vid=clip.imported.vid, takes=clip.takes,
    )

