"""Blocks are loaded once per flow run: the second ask in a run costs no API round trip, and an edited block
applies to the next run."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest
from prefect import flow, task

from blocks.credentials import VolcengineCredentials
from flows.models import BlockRefs
from flows.runtime import resources


@task
async def _region_in_task(refs: BlockRefs) -> str:
    return (await resources.volcengine(refs)).region


@flow
async def _regions_around_an_edit(refs: BlockRefs) -> tuple[str, str, str]:
    first = (await resources.volcengine(refs)).region
    await VolcengineCredentials(access_key_id="AK", secret_access_key="SK", region="edited-region").asave(
        refs.volcengine, overwrite=True
    )
    return first, (await resources.volcengine(refs)).region, await _region_in_task(refs)


@flow
async def _region(refs: BlockRefs) -> str:
    return (await resources.volcengine(refs)).region


async def test_one_load_per_run_and_edits_apply_to_the_next_run(prefect_api: str) -> None:
    name = f"res-{uuid.uuid4().hex[:8]}"
    await VolcengineCredentials(access_key_id="AK", secret_access_key="SK", region="first-region").asave(name)
    refs = BlockRefs(volcengine=name)

    first, again, in_task = await _regions_around_an_edit(refs)
    assert (first, again, in_task) == ("first-region", "first-region", "first-region")  # reused within the run
    assert await _region(refs) == "edited-region"  # the next run sees the edit
    assert (await resources.volcengine(refs)).region == "edited-region"  # outside any run: always fresh


@pytest.mark.parametrize("size", [3])
async def test_the_cache_is_bounded(size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "_RUN_CACHE_SIZE", size)
    monkeypatch.setattr(resources, "_current_run", lambda: "run")
    resources._RUN_CACHE.clear()

    async def value(i: int) -> int:
        return i

    for i in range(10):
        assert await resources.per_run("kind", str(i), lambda i=i: value(i)) == i
    assert len(resources._RUN_CACHE) == size


def slow_load(loads: list[int], failing: int = 0) -> Callable[[], Awaitable[str]]:
    """A block load that takes 50 ms and counts itself in ``loads``; its first ``failing`` loads fail."""

    async def load() -> str:
        loads.append(1)
        await asyncio.sleep(0.05)
        if len(loads) <= failing:
            raise ValueError("block not found")
        return "block"

    return load


async def test_concurrent_asks_in_a_run_share_one_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ten items validated at once ask for the same block before the first load has returned: one load."""
    monkeypatch.setattr(resources, "_current_run", lambda: "run-concurrent")
    resources._RUN_CACHE.clear()
    loads: list[int] = []
    load = slow_load(loads)

    values = await asyncio.gather(*(resources.per_run("kind", "name", load) for _ in range(10)))
    assert values == ["block"] * 10 and len(loads) == 1


async def test_a_failed_load_fails_its_waiters_and_is_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "_current_run", lambda: "run-failing")
    resources._RUN_CACHE.clear()
    attempts: list[int] = []
    load = slow_load(attempts, failing=1)

    outcomes = await asyncio.gather(*(resources.per_run("kind", "n", load) for _ in range(3)), return_exceptions=True)
    assert [type(o) for o in outcomes] == [ValueError] * 3 and len(attempts) == 1
    assert await resources.per_run("kind", "n", load) == "block"  # the next ask loads again
