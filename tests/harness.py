"""Session-scoped harness: Prefect API and S3 (moto server).

Fixtures (all opt-in: nothing starts unless a test asks for it):

- ``s3_server`` (session): a moto S3 server on 127.0.0.1, yields ``S3Server`` (endpoint URL, dummy credentials,
  ``client()`` for a new path-style boto3 client).
- ``s3`` (function): yields ``S3Env(client, bucket, server)`` with a fresh, empty bucket made for the test.
- ``prefect_api`` (session): a temporary Prefect server (its own PostgreSQL cluster, or SQLite in a temp dir
  without the server binaries) via ``prefect_test_harness``; yields its API URL. PREFECT_API_URL points at it for
  the rest of the session.
- ``production_server()``: PostgreSQL and ``prefect server start`` on it, the production-like server of the e2e
  and chaos stacks; each of those packages holds one as its package-scoped ``postgres_prefect`` fixture (20-40 s
  to start on a small machine).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

S3_REGION = "us-east-1"
S3_ACCESS_KEY = "testing"
S3_SECRET_KEY = "testing"


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key: str = S3_ACCESS_KEY
    secret_key: str = S3_SECRET_KEY
    region: str = S3_REGION

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            # Path-style like MinIO/TOS setups; bigger pool because copies upload parts in parallel threads.
            config=Config(s3={"addressing_style": "path"}, max_pool_connections=16),
        )


@dataclass(frozen=True)
class S3Env:
    client: Any
    bucket: str
    server: S3Server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    from flows.app.demo import moto_s3  # the demo's S3: one way to run moto for the demo, tests and benches

    with moto_s3() as endpoint_url:
        yield S3Server(endpoint_url=endpoint_url)


@pytest.fixture
def s3(s3_server: S3Server) -> Iterator[S3Env]:
    client = s3_server.client()
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    try:
        yield S3Env(client=client, bucket=bucket, server=s3_server)
    finally:
        _empty_and_delete(client, bucket)  # moto keeps objects in memory: free them per test


def _empty_and_delete(client: Any, bucket: str) -> None:
    try:
        for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=obj["Key"])
        client.delete_bucket(Bucket=bucket)
    except Exception:  # noqa: BLE001 - teardown must not hide the test's own result
        pass


# Loop services of the session's server: the repossessor (every RECOMMENDED_REPOSSESSOR_LOOP_SECONDS), so a slot whose lease
# nobody renews (an acquire whose answer was lost, a holder killed mid-test) is revoked ~65 s after it was last
# renewed, as on a production server; the rest stay off like on Prefect's own test server. The triggers service
# too: no test on this server fires an Automation (healing's are proven on the e2e stack's server), and its
# periodic evaluation was a third of an idle server's CPU, with one server per xdist worker.
SESSION_SERVER_SERVICES = {
    "PREFECT_SERVER_SERVICES_REPOSSESSOR_ENABLED": "true",
    **{f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false" for name in (
        "SCHEDULER", "LATE_RUNS", "FOREMAN", "CANCELLATION_CLEANUP", "PAUSE_EXPIRATIONS", "CLEANUP_RECONCILER",
        "TRIGGERS",
    )},
}


def server_with_repossessor(database_url: str | None = None) -> type:
    """Prefect's test server (``SubprocessASGIServer``, started by ``prefect_test_harness``) without its
    ``PREFECT__SERVER_EPHEMERAL`` flag: an ephemeral server runs no repossessor, so an orphaned concurrency slot
    would stay taken for the whole session and hang every later test that needs it. ``database_url``: its
    database instead of the harness's SQLite file. ``_run_uvicorn_command`` is Prefect's private method;
    tests/test_session_server.py fails when it changes."""
    import subprocess
    import sys

    import prefect
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import get_current_settings

    from flows.coordination.leases import RECOMMENDED_REPOSSESSOR_LOOP_SECONDS

    class ServerWithRepossessor(SubprocessASGIServer):
        def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
            return subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent), "--factory",
                 "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
                 "--log-level", "error", "--lifespan", "on"],
                env={**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_FINAL": "1",
                     **get_current_settings().to_environment_variables(exclude_unset=True),
                     **SESSION_SERVER_SERVICES,
                     "PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS": str(RECOMMENDED_REPOSSESSOR_LOOP_SECONDS),
                     **({"PREFECT_SERVER_DATABASE_CONNECTION_URL": database_url} if database_url else {})},
            )

    return ServerWithRepossessor


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """A real Prefect API server for the session (20-30 s to start on a small machine, hence one per session):
    Prefect's ``prefect_test_harness`` on a server that runs the repossessor (``server_with_repossessor``), its
    database in PostgreSQL when the server binaries are installed (``make test`` installs them), as in
    production. On SQLite, concurrent writers under load stalled the whole server for up to a minute (Prefect's
    60-s ``busy_timeout``, seen once or twice per suite run) and answered 503 on a busy snapshot."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing import utilities
    from prefect.testing.utilities import prefect_test_harness

    from tests.e2e.services import Postgres, postgres_bindir

    with pytest.MonkeyPatch.context() as patch, contextlib.ExitStack() as stack:
        bindir = postgres_bindir()
        database_url = None
        if bindir is not None:
            postgres = Postgres(bindir)
            stack.callback(postgres.stop)
            postgres.start()
            database_url = postgres.url()
        patch.setattr(utilities, "SubprocessASGIServer", server_with_repossessor(database_url))
        with prefect_test_harness(server_startup_timeout=120):
            yield str(PREFECT_API_URL.value())
            from flows.coordination.pacing import hand_back_all

            hand_back_all()  # while the server still answers: no turn's timer fires at a stopped server at exit


@contextlib.contextmanager
def production_server() -> Iterator[Any]:
    """PostgreSQL and ``prefect server start`` on it with its loop services (the repossessor every 5 s, as clipflow
    recommends): a ``tests.e2e.services.PrefectServer``. tests/e2e and tests/chaos each hold one for the package
    (``postgres_prefect``), so it stops when the package is done and the two packages can run on two workers."""
    from tests.e2e.services import Postgres, PrefectServer, postgres_bindir

    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (Debian package postgresql; `make e2e-deps` installs it)")
    root = Path(tempfile.mkdtemp(prefix="clipflow-prefect-pg-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, root, True)
        postgres = Postgres(bindir)
        stack.callback(postgres.stop)
        postgres.start()
        server = PrefectServer(postgres.url(), home=root / "server",
                               extra_env={"PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS": "5"})
        stack.callback(server.stop)
        server.start()
        yield server


@dataclass
class Pipeline:
    """Everything a flow test needs: blocks named ``clipflow`` pointing at the emulator and the S3 server."""

    emulator: Any
    s3_client: Any
    bucket: str
    env: dict[str, str]


@pytest.fixture(scope="session")
async def pipeline_session(prefect_api: str, emulator: Any, s3_server: S3Server) -> Pipeline:
    from flows.app.block_setup import save_blocks_from_env
    from flows.app.demo import demo_env
    from flows.coordination.quotas import ensure_limits

    env = demo_env(emulator, s3_server.endpoint_url)
    env.update(
        CLIPFLOW_S3_ACCESS_KEY=s3_server.access_key, CLIPFLOW_S3_SECRET_KEY=s3_server.secret_key,
        CLIPFLOW_S3_REGION=s3_server.region, CLIPFLOW_S3_BUCKET="clipflow-pipeline-tests",
    )
    client = s3_server.client()
    client.create_bucket(Bucket=env["CLIPFLOW_S3_BUCKET"])
    await save_blocks_from_env(env)
    await ensure_limits()
    return Pipeline(emulator=emulator, s3_client=client, bucket=env["CLIPFLOW_S3_BUCKET"], env=env)


@pytest.fixture
def pipeline(pipeline_session: Pipeline, emu: Any) -> Pipeline:
    """The session pipeline with the emulator reset (jobs, ledger, faults) for this test."""
    return pipeline_session
