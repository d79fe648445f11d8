"""One production-like stack for tests/e2e: the package's PostgreSQL-backed `prefect server start` (tests.harness
``production_server``), the emulator, moto S3, `clipflow setup`, `prefect deploy --all`
from prefect.yaml and two process workers.

Workers and the deploy run as separate processes with their own PREFECT_HOME; they share one result storage
directory (results, cache records, the submission journal) and one CLIPFLOW_LOCK_DIR, as workers on one machine
would. Everything started here is stopped when tests/e2e is done.
"""

from __future__ import annotations

import contextlib
import os
import signal
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emulator.testing import TEST_TIME_SCALE, running_emulator
from flows.app.demo import demo_env
from tests.e2e.api import PrefectApi
from tests.e2e.services import BIN, PrefectServer, Worker, clean_env, run_cli
from tests.harness import S3Server, production_server

REPO = Path(__file__).resolve().parents[2]
POOL = "clipflow"
BUCKET = "clipflow-e2e"
WORKERS = ("e2e-worker-1", "e2e-worker-2")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: needs PostgreSQL (and Chromium for the UI test); `make e2e-deps`")


@dataclass
class Stack:
    server: PrefectServer
    api: PrefectApi
    emulator: Any
    s3: Any  # boto3 client on the moto server
    bucket: str
    env: dict[str, str]  # what setup, deploy and the workers run with
    workers: list[Worker]
    shared: Path

    def ledger_since(self, mark: int) -> list[dict[str, Any]]:
        """Billed submissions after ``mark`` (= len(ledger) taken before the test acted)."""
        return self.emulator.ledger()[mark:]

    def worker_logs(self) -> str:
        from tests.e2e.services import tail

        return "\n".join(f"--- {w.name}\n{tail(w.log, 30)}" for w in self.workers)


@pytest.fixture(scope="package")
def postgres_prefect() -> Iterator[Any]:
    """This package's PostgreSQL-backed Prefect server (tests.harness ``production_server``), stopped when the
    package is done."""
    with production_server() as server:
        yield server


# package scope: torn down when tests/e2e is done, not left idling (and polling) through the rest of the suite
@pytest.fixture(scope="package")
def stack(s3_server: S3Server, postgres_prefect: PrefectServer) -> Iterator[Stack]:
    server = postgres_prefect
    root = Path(tempfile.mkdtemp(prefix="clipflow-e2e-"))
    shared = root / "shared"
    with contextlib.ExitStack() as stack_:
        stack_.callback(shutil.rmtree, root, True)  # last out: after every process is stopped
        api = PrefectApi(server.api_url)
        stack_.callback(api.close)

        emulator = stack_.enter_context(running_emulator(time_scale=TEST_TIME_SCALE))
        s3 = s3_server.client()
        s3.create_bucket(Bucket=BUCKET)
        env = clean_env(
            PREFECT_HOME=str(root / "client"),
            PREFECT_API_URL=server.api_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            # one machine, several workers: they share results/cache records/journal and the quota-slot registry
            PREFECT_LOCAL_STORAGE_PATH=str(shared / "storage"),
            CLIPFLOW_LOCK_DIR=str(shared / "locks"),
            CLIPFLOW_TIME_SCALE=str(TEST_TIME_SCALE),
            PREFECT_WORKER_QUERY_SECONDS="2",  # default 15: pick runs up sooner
            # read by `clipflow setup` for its Automations (tests/e2e/test_healing.py): shorter than in production
            CLIPFLOW_HEARTBEAT_TIMEOUT_SECONDS="60", CLIPFLOW_CANCELLING_TIMEOUT_SECONDS="10",
            **demo_env(emulator, s3_server.endpoint_url),
        )
        env.update(
            CLIPFLOW_S3_ACCESS_KEY=s3_server.access_key, CLIPFLOW_S3_SECRET_KEY=s3_server.secret_key,
            CLIPFLOW_S3_REGION=s3_server.region, CLIPFLOW_S3_BUCKET=BUCKET,
        )
        run_cli([str(BIN / "clipflow"), "setup", "--work-pool", POOL], env, REPO)
        run_cli([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], env, REPO)
        # The nightly cron must not fire into the tests' ledger checks: switch its schedule off (the deployment
        # stays runnable by hand; test_deployments checks the cron itself).
        for deployment in api.deployments():
            for schedule in deployment["schedules"]:
                api.http.patch(
                    f"/deployments/{deployment['id']}/schedules/{schedule['id']}", json={"active": False}
                ).raise_for_status()

        workers = [Worker(name, POOL, env, root / "workers") for name in WORKERS]
        stack_.callback(stop_together, workers)
        for worker in workers:
            worker.start()
        api.wait_workers_online(POOL, list(WORKERS))
        yield Stack(server=server, api=api, emulator=emulator, s3=s3, bucket=BUCKET, env=env, workers=workers,
                    shared=shared)


def stop_together(workers: list[Worker]) -> None:
    """SIGTERM every worker first, then wait for each: their shutdowns overlap instead of adding up."""
    for worker in workers:
        if worker.proc is not None and worker.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.proc.pid, signal.SIGTERM)
    for worker in workers:
        worker.stop()  # waits out the grace, then SIGKILLs
