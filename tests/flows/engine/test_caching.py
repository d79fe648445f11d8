"""Cache policies of paid tasks: keyed by what they buy, no lock (the journal decides who pays), settings read
at run time."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from typing import Any

import pytest
from prefect import flow, task

from flows.engine.caching import RuntimeCacheExpiration, cached_task_options, keyed_cache, storage_key


def test_user_strings_never_reach_record_paths() -> None:
    policy = keyed_cache(lambda p: f"clipflow-import-{p['space']}-abc")
    key = policy.compute_key(task_ctx=None, inputs={"space": "../other-space"}, flow_parameters={})  # type: ignore[arg-type]
    assert key == storage_key("clipflow-import-../other-space-abc")
    assert "other-space" not in key and "/" not in key and ".." not in key


@pytest.mark.timeout(120)
def test_a_rerun_reuses_the_cached_answer(prefect_api: str) -> None:
    key = f"test-{uuid.uuid4().hex}"
    bodies: list[str] = []

    @task(**cached_task_options(lambda p: p["key"]))
    def paid(key: str) -> str:
        bodies.append(key)
        return "paid once"

    @flow
    def run(key: str) -> str:
        return paid(key)

    assert run(key) == "paid once"
    assert run(key) == "paid once"
    assert bodies == [key], "the second run ran the body again instead of reading the cache"


@pytest.mark.timeout(120)
def test_a_second_run_of_a_key_in_flight_does_not_wait_for_the_first(prefect_api: str) -> None:
    """No cache lock: while one run is inside the body, another run of the same key runs too (the journal,
    not a lock, keeps the bill at one: tests/flows/stages/test_pipeline.py, tests/flows/engine/test_engine_race.py).
    A run killed mid-task therefore leaves nothing that blocks a re-run."""
    key = f"test-{uuid.uuid4().hex}"
    first_inside, release_first = threading.Event(), threading.Event()
    bodies: list[str] = []

    @task(**cached_task_options(lambda p: p["key"]))
    def paid(key: str, who: str) -> str:
        bodies.append(who)
        if who == "first":
            first_inside.set()
            assert release_first.wait(60), "the test never released the first run"
        return who

    @flow
    def run(key: str, who: str) -> str:
        return paid(key, who)

    results: dict[str, str] = {}
    first = threading.Thread(target=lambda: results.update(first=run(key, "first")))
    first.start()
    try:
        assert first_inside.wait(60), "the first run never reached its body"
        second = threading.Thread(target=lambda: results.update(second=run(key, "second")))
        second.start()
        second.join(60)
        assert not second.is_alive(), "the second run waited for the first one's task: a lock is back"
    finally:
        release_first.set()
        first.join(60)
    assert bodies == ["first", "second"] and results == {"first": "first", "second": "second"}


def test_cached_task_options_read_no_setting_until_a_run_uses_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPFLOW_CACHE_DAYS", "not a value")  # what an import sees must not matter

    @task(**cached_task_options(lambda p: "k"))
    def paid() -> None: ...

    assert isinstance(paid.cache_expiration, RuntimeCacheExpiration)
    monkeypatch.setenv("CLIPFLOW_CACHE_DAYS", "3")
    now = dt.datetime.now(dt.timezone.utc)
    assert now + paid.cache_expiration == now + dt.timedelta(days=3)
    monkeypatch.setenv("CLIPFLOW_CACHE_DAYS", "0.5")
    assert now + paid.cache_expiration == now + dt.timedelta(hours=12)


@pytest.mark.timeout(120)
def test_a_cached_result_expires_after_the_cache_days_of_its_run(
    prefect_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"test-{uuid.uuid4().hex}"

    @task(**cached_task_options(lambda p: p["key"]))
    def paid(key: str) -> str:
        return "paid"

    @flow
    def run(key: str) -> Any:
        return paid(key, return_state=True)

    monkeypatch.setenv("CLIPFLOW_CACHE_DAYS", "0.25")  # set after the task was decorated
    before = dt.datetime.now(dt.timezone.utc)
    state = run(key)
    expiration = state.data.metadata.expiration
    assert expiration is not None
    assert dt.timedelta(hours=5.9) < expiration - before < dt.timedelta(hours=6.1)
