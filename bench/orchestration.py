"""What Prefect orchestration costs per call, against a real (temporary) Prefect API server.

Measures, in ms per call: awaiting async tasks with ``asyncio.gather`` vs ``.submit()`` inside an async flow,
one top-level flow run, one subflow run (sequential and gathered), and how long one acquisition of a
1-QPS global rate limit takes when callers queue on it (Prefect as is) vs when the process spaces its own
requests 1/qps apart (what ``flows.coordination.quotas`` could do: see ``Pacer``).

On SQLite (``--database sqlite``) gathered subflows are slow because creating their parent task runs at
the same moment makes the server answer 503 (SQLITE_BUSY) and the client back off 2 s, 4 s...; on
PostgreSQL (the default when installed) they overlap.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any


def prepare_environment() -> None:
    """Before Prefect is imported: a private PREFECT_HOME and quiet logs."""
    home = tempfile.mkdtemp(prefix="clipflow-bench-")
    os.environ["PREFECT_HOME"] = home
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")


class Pacer:
    """Spaces one process's acquisitions of a rate limit 1/qps apart, one caller at a time.

    Prefect's server resets a limit's decay clock on every *denied* attempt, so callers retrying on a busy
    1-slot limit are slowed to ~1.4 s per slot instead of 1 s. Asking only once the slot has decayed avoids
    the denials."""

    def __init__(self, qps: float) -> None:
        self.interval = 1.0 / qps
        self.lock = asyncio.Lock()
        self.last: float | None = None

    async def acquire(self, name: str) -> None:
        from prefect.concurrency.asyncio import rate_limit

        async with self.lock:
            if self.last is not None:
                await asyncio.sleep(max(0.0, self.last + self.interval - time.monotonic()))
            await rate_limit(name, strict=True)
            self.last = time.monotonic()


async def _timed(n: int, run: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await run()
    return (time.perf_counter() - started) * 1000 / n


async def measure(calls: int, acquisitions: int) -> dict[str, float]:
    from prefect import flow, task
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.concurrency.asyncio import rate_limit

    @task
    async def noop_task(i: int) -> int:
        return i

    @flow
    async def noop_flow(i: int) -> int:
        return i

    @flow
    async def gather_tasks(n: int) -> float:
        return await _timed(n, lambda: asyncio.gather(*(noop_task(i) for i in range(n))))

    @flow
    async def submit_tasks(n: int) -> float:
        async def run() -> None:
            futures = [noop_task.submit(i) for i in range(n)]
            await asyncio.gather(*(asyncio.to_thread(f.result) for f in futures))

        return await _timed(n, run)

    @flow
    async def sequential_subflows(n: int) -> float:
        async def run() -> None:
            for i in range(n):
                await noop_flow(i)

        return await _timed(n, run)

    @flow
    async def gathered_subflows(n: int) -> float:
        return await _timed(n, lambda: asyncio.gather(*(noop_flow(i) for i in range(n))))

    await noop_flow(0)  # warm up: imports, client, first flow registration
    figures = {
        "task, awaited with asyncio.gather (per task)": await gather_tasks(calls),
        "task, .submit() + result (per task)": await submit_tasks(calls),
    }

    async def top_level() -> None:
        for i in range(calls):
            await noop_flow(i)

    figures["flow run, top level, sequential (per run)"] = await _timed(calls, top_level)
    figures["subflow run, sequential (per run)"] = await sequential_subflows(calls)
    figures["subflow run, asyncio.gather (per run)"] = await gathered_subflows(calls)

    async with get_client() as client:
        for name in ("bench-rate-queued", "bench-rate-paced"):
            await client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=name, limit=1, slot_decay_per_second=1.0)
            )
    await rate_limit("bench-rate-queued", strict=True)  # both start with their one slot taken
    await rate_limit("bench-rate-paced", strict=True)
    figures["1-QPS rate limit, queued callers (per acquisition; ideal 1000)"] = await _timed(
        acquisitions,
        lambda: asyncio.gather(*(rate_limit("bench-rate-queued", strict=True) for _ in range(acquisitions))),
    )
    pacer = Pacer(1.0)
    pacer.last = time.monotonic()
    figures["1-QPS rate limit, paced by the process (per acquisition; ideal 1000)"] = await _timed(
        acquisitions, lambda: asyncio.gather(*(pacer.acquire("bench-rate-paced") for _ in range(acquisitions)))
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.orchestration", description=__doc__)
    parser.add_argument("--calls", type=int, default=20, help="calls per measurement (default 20)")
    parser.add_argument("--acquisitions", type=int, default=8, help="rate-limit acquisitions (default 8)")
    parser.add_argument("--database", choices=["auto", "postgres", "sqlite"], default="auto",
                        help="Prefect API database (auto: PostgreSQL when installed)")
    args = parser.parse_args(argv)
    prepare_environment()
    from bench.batch_throughput import pick_database, prefect_server

    database = pick_database(args.database)
    started = time.monotonic()
    with prefect_server(database):
        print(f"Prefect API ({database}) up in {time.monotonic() - started:.1f} s", flush=True)
        figures = asyncio.run(measure(args.calls, args.acquisitions))
    width = max(len(k) for k in figures)
    for name, ms in figures.items():
        print(f"{name:<{width}}  {ms:8.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
