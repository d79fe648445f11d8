"""Throughput of produce_batch: N items x 2 languages against the emulator (its own process, like a remote
provider), moto S3 and a temporary Prefect API server, compared with the lower bound the slowest quota sets.

The bound: every item submits one AI translation per language, and SubmitAITranslationWorkflow is limited to
1 QPS (providers/quotas.py), so N x 2 submits need at least N x 2 seconds however the rest overlaps. The other
quotas' bounds are printed too, so a change of quotas or time scale shows which one binds, and so is how the
binding calls were spaced (the time to the first one, and the gaps: above 1/qps is where time went). Targets:
wall time ≤ 1.10 x the bound, and not one 429 answered by the emulator (it enforces the same quotas).

The Prefect API runs on PostgreSQL when its binaries are installed (``--database auto``), as production should:
on SQLite every quota slot is a write that collides with the server's own writes (503 "database is locked",
then the client backs off 2-32 s), so the SQLite figure measures SQLite. The Prefect answers that were not
2xx are counted and printed (the client is instrumented for that, nothing else).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

from tests.e2e.services import Postgres, postgres_bindir

TARGET_RATIO = 1.10


def prepare_environment(home: str, time_scale: float) -> None:
    """Before Prefect is imported: a private PREFECT_HOME, quiet logs, the flows' waits scaled to the emulator."""
    os.environ["PREFECT_HOME"] = home
    os.environ["PREFECT_LOCAL_STORAGE_PATH"] = os.path.join(home, "storage")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    from flows.runtime.settings import variable  # imports Prefect: after its variables are set

    os.environ[variable("time_scale")] = str(time_scale)
    os.environ[variable("lock_dir")] = os.path.join(home, "locks")


def pick_database(choice: str) -> str:
    if choice != "auto":
        return choice
    return "postgres" if postgres_bindir() else "sqlite"


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on loopback (the e2e tests' own); yields an asyncpg URL for Prefect."""
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL binaries (initdb, pg_ctl) not found")
    cluster = Postgres(bindir)
    cluster.start()
    try:
        yield cluster.url()
    finally:
        cluster.stop()


@contextlib.contextmanager
def prefect_server(database: str) -> Iterator[None]:
    """A temporary Prefect API: prefect_test_harness (SQLite) or the same subprocess server on PostgreSQL."""
    if database == "sqlite":
        from prefect.testing.utilities import prefect_test_harness

        with prefect_test_harness(server_startup_timeout=120):
            yield
        return
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_DATABASE_CONNECTION_URL, temporary_settings

    with postgres_cluster() as url, temporary_settings({PREFECT_SERVER_DATABASE_CONNECTION_URL: url}):
        from flows.runtime.compat import subprocess_api_server

        server = subprocess_api_server()
        server.start(timeout=120)
        try:
            with temporary_settings({PREFECT_API_URL: server.api_url}):
                yield
        finally:
            server.stop()


def count_prefect_answers(counts: Counter[str]) -> None:
    """Count the Prefect API's non-2xx answers per attempt (503 = SQLite busy, 423 = limit full)."""
    import httpx

    from flows.runtime.compat import prefect_http_client_types

    prefect_async_client = prefect_http_client_types()[0]

    send = httpx.AsyncClient.send

    async def counting(self: httpx.AsyncClient, request: httpx.Request, *args: Any, **kwargs: Any) -> httpx.Response:
        response = await send(self, request, *args, **kwargs)
        if isinstance(self, prefect_async_client) and response.status_code in (423, 429, 503):
            counts[f"{response.status_code} {request.url.path.rsplit('/api/', 1)[-1]}"] += 1
        return response

    httpx.AsyncClient.send = counting  # type: ignore[method-assign]


def lower_bounds(items: int, languages: int, time_scale: float, provider: str) -> dict[str, float]:
    """Seconds each quota needs at least for the batch (rate quotas: calls / qps; job slots: jobs / slots x job)."""
    from emulator.config import Durations
    from providers.quotas import GATEWAY_QPS, JIMENG_CONCURRENCY, JIMENG_QPS, VOD_QPS

    d = Durations()
    bounds = {
        "SubmitAITranslationWorkflow": items * languages / VOD_QPS["SubmitAITranslationWorkflow"],
        "CreateProject": items / VOD_QPS["CreateProject"],
        "StartWorkflow": items / VOD_QPS["StartWorkflow"],
    }
    if provider == "jimeng":
        bounds["CVSync2AsyncSubmitTask"] = items / JIMENG_QPS["CVSync2AsyncSubmitTask"]
        job = (d.jimeng_queue + d.jimeng_generate) * time_scale
        bounds["jimeng jobs in flight"] = items / JIMENG_CONCURRENCY * job
    else:
        bounds["gateway create"] = items / GATEWAY_QPS["create"]
    return bounds


async def run_batch(args: argparse.Namespace, emu: Any, s3_endpoint: str) -> dict[str, Any]:
    from flows.runtime.settings import setup_variable
    import boto3

    from flows.app.block_setup import save_blocks_from_env
    from flows.stages.batch import produce_batch
    from flows.app.demo import demo_env
    from flows.coordination.quotas import ensure_limits
    from flows.models import GatewayClipSpec, JimengClipSpec, ProductionRequest, TranslateSpec

    env = demo_env(emu, s3_endpoint)
    boto3.client(
        "s3", endpoint_url=s3_endpoint, aws_access_key_id="clipflow-demo", aws_secret_access_key="clipflow-demo",
        region_name="us-east-1",
    ).create_bucket(Bucket=env[setup_variable("s3_bucket")])
    await save_blocks_from_env(env)
    await ensure_limits()
    languages = ["en", "ja", "ko", "fr", "de"][: args.languages]
    clip = GatewayClipSpec(aspect_ratio="3:2") if args.provider == "gateway" else JimengClipSpec(aspect_ratio="16:9")
    defaults = ProductionRequest(title="bench", clip=clip, translate=TranslateSpec(target_languages=languages))
    run = uuid.uuid4().hex[:8]  # a fresh batch: nothing comes from an earlier run's cache
    items = [{"clip": {"prompt": f"A paper boat, bench {run} item {n}"}} for n in range(args.items)]

    started, started_wall = time.monotonic(), time.time()
    result = await produce_batch(items=items, defaults=defaults, max_concurrency=args.max_concurrency)
    wall = time.monotonic() - started
    return {"wall": wall, "result": result, "started_wall": started_wall}


def binding_calls(ledger: list[dict[str, Any]], action: str, started_wall: float) -> str:
    """When the binding quota's billed calls began, and how they were spaced (where the time above the bound went)."""
    times = sorted(e["time"] for e in ledger if e["action"] == action)
    gaps = [b - a for a, b in zip(times, times[1:])]
    if not gaps:
        return "fewer than two calls"
    slow = sum(g > 1.5 for g in gaps)
    return (f"first after {times[0] - started_wall:.1f} s, last after {times[-1] - started_wall:.1f} s; gaps median "
            f"{statistics.median(gaps):.3f} s, mean {statistics.mean(gaps):.3f} s, {slow} over 1.5 s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batch_throughput", description=__doc__)
    parser.add_argument("--items", type=int, default=200, help="items in the batch (default 200)")
    parser.add_argument("--languages", type=int, default=2, choices=range(1, 6), help="languages per item (2)")
    parser.add_argument("--time-scale", type=float, default=0.002, help="emulator + flow time scale (0.002)")
    parser.add_argument("--max-concurrency", type=int, default=16, help="produce_batch max_concurrency (16)")
    parser.add_argument("--provider", choices=["jimeng", "gateway"], default="jimeng", help="clip provider")
    parser.add_argument("--database", choices=["auto", "postgres", "sqlite"], default="auto",
                        help="Prefect API database (auto: PostgreSQL when installed)")
    parser.add_argument("--emulator", choices=["process", "thread"], default="process",
                        help="the emulator in its own process (default: like a remote provider) or in a thread")
    args = parser.parse_args(argv)
    database = pick_database(args.database)

    with tempfile.TemporaryDirectory(prefix="clipflow-bench-") as home:
        prepare_environment(home, args.time_scale)
        from emulator.config import EmulatorConfig
        from emulator.testing import emulator_process, running_emulator
        from flows.app.demo import moto_s3

        api_answers: Counter[str] = Counter()
        count_prefect_answers(api_answers)

        # Jobs run time_scale x faster; the result URL keeps its real 1 h life (lifetimes are never scaled).
        config = EmulatorConfig(time_scale=args.time_scale)
        serve = emulator_process(config) if args.emulator == "process" else running_emulator(config)
        with serve as emu, moto_s3() as s3_endpoint:
            t0 = time.monotonic()
            with prefect_server(database):
                print(f"Prefect API ({database}) up in {time.monotonic() - t0:.1f} s", flush=True)
                out = asyncio.run(run_batch(args, emu, s3_endpoint))
            throttled = emu.health()["throttled_answers"]
            ledger = emu.ledger()
            billed = Counter(entry["action"] for entry in ledger)

    result = out["result"]
    bounds = lower_bounds(args.items, args.languages, args.time_scale, args.provider)
    binding = max(bounds, key=bounds.__getitem__)
    bound = bounds[binding]
    ratio = out["wall"] / bound
    print(f"items {args.items} x {args.languages} languages, provider {args.provider}, time scale {args.time_scale}, "
          f"max_concurrency {args.max_concurrency}, Prefect on {database}, emulator in a {args.emulator}")
    print(f"result: {result.succeeded} succeeded, {result.failed} failed, {result.invalid} invalid, "
          f"{result.skipped} skipped")
    for name, seconds in sorted(bounds.items(), key=lambda kv: -kv[1]):
        print(f"  bound {name:<30} {seconds:8.1f} s")
    print(f"wall time      {out['wall']:8.1f} s")
    print(f"lower bound    {bound:8.1f} s  ({binding})")
    print(f"ratio          {ratio:8.3f}  (target ≤ {TARGET_RATIO})")
    print(f"429 answers    {throttled:8d}  (target 0)")
    print(f"translations   {binding_calls(ledger, 'SubmitAITranslationWorkflow', out['started_wall'])}")
    print(f"billed         {dict(billed)}")
    print(f"Prefect API    {dict(api_answers) or 'no 423/429/503 answers'}")
    ok = ratio <= TARGET_RATIO and throttled == 0 and result.succeeded == args.items
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
