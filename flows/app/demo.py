"""``clipflow demo``: the whole pipeline with zero configuration.

Starts the provider emulator and a local S3 endpoint (moto server) on loopback, uses Prefect's ephemeral local
API, saves the blocks, and runs produce_video for one prompt into two languages. Everything lives in a
temporary PREFECT_HOME so a user's own Prefect setup is left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

DEMO_TIME_SCALE = 0.01  # a nominal 90 s Jimeng job takes ~1 s
DEMO_BUCKET = "clipflow-demo"


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """A real S3 API on loopback (moto server in a thread); yields its endpoint URL."""
    import logging

    from moto.server import ThreadedMotoServer

    # werkzeug logs every request line, presigned signatures included: keep it quiet.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        if server._server is not None:  # stop() leaves the listening socket open
            server._server.server_close()


def prepare_environment(home: str, time_scale: float) -> None:
    """Must run before Prefect is imported: Prefect reads its settings once."""
    os.environ.setdefault("PREFECT_HOME", home)
    os.environ.pop("PREFECT_API_URL", None)
    os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "true"
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no network here: no telemetry
    os.environ["CLIPFLOW_TIME_SCALE"] = str(time_scale)
    os.environ.setdefault("CLIPFLOW_LOCK_DIR", os.path.join(home, "locks"))


def demo_env(emulator: Any, s3_endpoint: str) -> dict[str, str]:
    return {
        "CLIPFLOW_VOLC_ACCESS_KEY": emulator.access_key,
        "CLIPFLOW_VOLC_SECRET_KEY": emulator.secret_key,
        "CLIPFLOW_VOD_ENDPOINT": emulator.base_url,
        "CLIPFLOW_VISUAL_ENDPOINT": emulator.base_url,
        "CLIPFLOW_GATEWAY_URL": emulator.base_url,
        "CLIPFLOW_GATEWAY_KEY": emulator.gateway_key,
        "CLIPFLOW_S3_ENDPOINT": s3_endpoint,
        "CLIPFLOW_S3_ACCESS_KEY": "clipflow-demo",
        "CLIPFLOW_S3_SECRET_KEY": "clipflow-demo",
        "CLIPFLOW_S3_REGION": "us-east-1",
        "CLIPFLOW_S3_BUCKET": DEMO_BUCKET,
    }


def summary(result: Any) -> str:
    lines = [
        f"clipflow demo: {result.title} -> {result.status.value}",
        f"  clip       {result.clip.provider} job {result.clip.job_id}",
        f"  stored     s3://{result.clip.stored.bucket}/{result.clip.stored.key} ({result.clip.stored.size} bytes)",
        f"  imported   vid {result.clip.imported.vid}",
        f"  edit       project {result.edit.project_id}",
        f"  transcode  run {result.transcode.run_id}: {result.transcode.status.value}, "
        f"{len(result.transcode.outputs)} output(s)",
    ]
    for lang in result.languages:
        lines.append(
            f"  translate  {lang.language}: {lang.status.value} project {lang.project_id} vid {lang.output_vid} "
            f"subtitles {lang.srt_key}, {lang.vtt_key}" + (f" error {lang.error}" if lang.error else "")
        )
    return "\n".join(lines)


def money_summary(result: Any, ledger: list[dict[str, Any]]) -> str:
    """What the run estimated and bought, beside what the emulator billed (the same example price table)."""
    from emulator.example_prices import EXAMPLE_SOURCE
    from flows.costs.guard import money

    amounts = [entry.get("amount") for entry in ledger]
    billed = None if None in amounts else round(sum(amounts), 6)
    currency = ledger[0]["currency"] if ledger else (result.cost.currency if result.cost else "")
    line = f"  billed     {money(billed, currency)} for {len(ledger)} paid submissions in the emulator ledger"
    if result.cost is not None:
        line = (f"  cost       estimate {money(result.cost.estimate, result.cost.currency)}, spent "
                f"{money(result.cost.spent, result.cost.currency)}\n{line}")
    return f"{line}\n  prices     {EXAMPLE_SOURCE}"


async def _run(request_json: dict[str, Any], env: dict[str, str]) -> Any:
    import boto3

    from flows.app.block_setup import save_blocks_from_env
    from flows.coordination.quotas import ensure_limits
    from flows.models import ProductionRequest
    from flows.stages.pipeline import produce_video

    s3 = boto3.client(
        "s3", endpoint_url=env["CLIPFLOW_S3_ENDPOINT"], aws_access_key_id="clipflow-demo",
        aws_secret_access_key="clipflow-demo", region_name="us-east-1",
    )
    s3.create_bucket(Bucket=DEMO_BUCKET)
    await save_blocks_from_env(env, example_prices=True)  # the emulator bills with the same table
    await ensure_limits()
    return await produce_video(ProductionRequest.model_validate(request_json))


def default_request() -> dict[str, Any]:
    return {
        "title": "clipflow-demo",
        "clip": {"provider": "jimeng", "prompt": "A paper boat sails across a rainy city street, cinematic"},
        "translate": {"source_language": "zh", "target_languages": ["en", "ja"]},
    }


def require_local_extra(command: str) -> None:
    """A worker installs clipflow without the ``local`` extra: say how to get it instead of a traceback."""
    import importlib.util

    if importlib.util.find_spec("moto") is None:
        raise SystemExit(f"clipflow {command}: needs the local extra (moto, the emulated S3): run `make {command}`, "
                         "or install `clipflow[local]` (`uv sync --extra local`)")


def run_demo(as_json: bool = False, request_json: dict[str, Any] | None = None) -> int:
    require_local_extra("demo")
    with tempfile.TemporaryDirectory(prefix="clipflow-demo-") as home:
        prepare_environment(home, DEMO_TIME_SCALE)
        from emulator.testing import running_emulator

        with running_emulator(time_scale=DEMO_TIME_SCALE) as emu, moto_s3() as s3_endpoint:
            print(  # stderr, so --json keeps stdout pure JSON
                f"emulator on {emu.base_url}, S3 (moto) on {s3_endpoint}; starting Prefect's ephemeral API "
                "(20-40 s the first time) ...", file=sys.stderr, flush=True,
            )
            from flows.app.progress_display import show_progress

            with show_progress():  # stderr: a live table on a terminal, plain lines otherwise
                result = asyncio.run(_run(request_json or default_request(), demo_env(emu, s3_endpoint)))
            ledger = emu.ledger()
    if as_json:
        print(json.dumps(result.model_dump(mode="json")))
    else:
        print(summary(result))
        print(money_summary(result, ledger))
    return 0 if result.status.value == "succeeded" else 1
