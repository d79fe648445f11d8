"""Provider quotas as Prefect global concurrency limits, shared by every worker talking to one account.

- A QPS quota becomes a one-slot limit: the turn, held by the process whose calls go out, which spaces them
  itself (``flows.coordination.pacing`` says how and why: no Prefect round trip per provider call).
- A concurrency quota (jobs in flight) becomes a plain limit of ``concurrency`` slots, held for as long as the
  ``async with`` body runs with a 60 s lease that a background thread renews (``flows.coordination.leases``): a
  killed holder's slot is released by the next process of its machine that asks, and otherwise runs out about
  60 s after the holder's last renewal.

Limits are looked up by name (``Quota.limit_name``) and acquired with ``strict=True``: Prefect's default
(``strict=False``) logs a warning and *does not limit* when a limit is missing, which would let a misconfigured
deployment hammer a provider into 429s. Run ``ensure_limits()`` (``clipflow setup``) once per Prefect server.
``CLIPFLOW_QUOTA_LIMITS`` changes that: ``strict`` (default), ``lenient`` (missing limit → warning, no limit),
``off`` (no Prefect calls at all: for unit tests without a Prefect API).

An operator may deactivate a limit in the UI to stop enforcing it; ``ensure_limits`` leaves ``active`` alone.

Each process also paces its own calls before it asks Prefect (``flows.coordination.pacing``), and queues for a concurrency
slot locally before asking Prefect for it: Prefect's own waiting (a retry after a random 0.7-1.3 x the usual
wait) hands a freed slot over late. Slots are asked for by ``flows.coordination.leases``, which asks again after
``min(Retry-After, 5 s)`` and first releases the slots of dead processes of its machine.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from functools import cache

from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from flows.coordination.leases import held_lease
from flows.coordination.pacing import local_slots_for, pacer_for
from flows.runtime.settings import settings, variable
from providers.quotas import Quota, all_quotas

MODE_ENV = variable("quota_limits")
MODES = ("strict", "lenient", "off")

logger = logging.getLogger(__name__)


def limits_mode() -> str:
    return settings().quota_limits


def limit_settings(quota: Quota) -> tuple[int, float]:
    """(slots, slot decay per second) of the Prefect limit enforcing ``quota``."""
    if quota.qps is not None:
        if not quota.qps > 0:
            raise ValueError(f"{quota.limit_name}: qps must be positive")
        return 1, 0.0  # a one-slot turn the calling process holds (flows.coordination.pacing)
    if quota.concurrency is not None:
        if quota.concurrency < 1:
            raise ValueError(f"{quota.limit_name}: concurrency must be at least 1")
        return int(quota.concurrency), 0.0
    raise ValueError(f"{quota.limit_name}: quota has neither qps nor concurrency")


async def ensure_limits(client: PrefectClient | None = None, quotas: Iterable[Quota] | None = None) -> list[str]:
    """Create or update one global concurrency limit per quota (default: ``all_quotas()``); idempotent.

    Returns the names of all the limits ensured. Existing limits whose slots or decay differ are updated;
    ones that already match are not written to.
    """
    if client is None:
        async with get_client() as own:
            return await ensure_limits(own, quotas)
    wanted = list(all_quotas() if quotas is None else quotas)
    names = [q.limit_name for q in wanted]
    if len(set(names)) != len(names):
        raise ValueError("two quotas map to the same limit name")
    for quota in wanted:
        await _ensure_one(client, quota)
    return names


async def _ensure_one(client: PrefectClient, quota: Quota) -> None:
    name = quota.limit_name
    limit, decay = limit_settings(quota)
    try:
        existing = await client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        try:
            await client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=name, limit=limit, slot_decay_per_second=decay)
            )
            logger.info("created limit %s (limit %s, decay %s/s)", name, limit, decay)
            return
        except ObjectAlreadyExists:  # another ensure_limits won the race: check what it wrote
            existing = await client.read_global_concurrency_limit_by_name(name)
    if existing.limit != limit or not math.isclose(existing.slot_decay_per_second or 0.0, decay):
        update = GlobalConcurrencyLimitUpdate(limit=limit, slot_decay_per_second=decay)
        if (existing.slot_decay_per_second or 0.0) > 0 and decay == 0:
            # slots of a former rate limit only ever decayed: without decay they would be taken for good
            update.active_slots = 0
        await client.update_global_concurrency_limit(name, update)
        logger.info("updated limit %s (limit %s, decay %s/s)", name, limit, decay)


@cache
def _quota_table() -> dict[tuple[str, str], tuple[Quota, ...]]:
    table: dict[tuple[str, str], tuple[Quota, ...]] = {}
    for quota in all_quotas():
        key = (quota.provider.lower(), quota.action.lower())
        table[key] = table.get(key, ()) + (quota,)
    return table


def quotas_for(provider: str, action: str) -> tuple[Quota, ...]:
    """The quotas governing one provider action; ``KeyError`` for an action with none (likely a typo)."""
    try:
        return _quota_table()[(provider.lower(), action.lower())]
    except KeyError:
        raise KeyError(f"no quota is defined for {provider}:{action}") from None


@asynccontextmanager
async def rate_slot(quota: Quota) -> AsyncIterator[None]:
    """One call under a QPS quota, paced by this process while it holds the quota's turn; the body is the call."""
    if quota.qps is None:
        raise ValueError(f"{quota.limit_name} is not a rate quota; use hold_slot")
    mode = limits_mode()
    if mode == "off":
        yield
        return
    async with pacer_for(quota.limit_name, float(quota.qps)).turn(strict=mode == "strict"):
        yield


@asynccontextmanager
async def hold_slot(quota: Quota) -> AsyncIterator[None]:
    """Hold one slot of a concurrency quota for the body (e.g. submit → job finished)."""
    if quota.concurrency is None:
        raise ValueError(f"{quota.limit_name} is not a concurrency quota; use rate_slot")
    mode = limits_mode()
    if mode == "off":
        yield
        return
    async with local_slots_for(quota.limit_name, int(quota.concurrency)):
        async with held_lease([quota.limit_name], 1, strict=mode == "strict"):
            yield


@asynccontextmanager
async def quota_slot(provider: str, action: str) -> AsyncIterator[None]:
    """Every quota of ``provider:action`` for one call: the concurrency slot (if any) first, held for the body,
    then the rate slot, so a call waiting for a job slot does not burn a rate slot meanwhile."""
    quotas = quotas_for(provider, action)
    async with AsyncExitStack() as stack:
        for quota in quotas:
            if quota.concurrency is not None:
                await stack.enter_async_context(hold_slot(quota))
        for quota in quotas:
            if quota.qps is not None:
                await stack.enter_async_context(rate_slot(quota))
        yield
