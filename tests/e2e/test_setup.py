"""`clipflow setup` against the in-process Prefect API (no PostgreSQL needed): the work pool step, and the
verification of what it wrote (against the emulator and moto S3)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from deployments.work_pool import WorkPoolTypeError, ensure_work_pool


async def test_work_pool_is_created_once_and_then_left_alone(prefect_api: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolUpdate

    name = f"pool-{uuid.uuid4().hex[:8]}"
    assert await ensure_work_pool(name) == f"work-pool/{name} (created)"
    async with get_client() as client:
        await client.update_work_pool(name, WorkPoolUpdate(concurrency_limit=3))  # an operator's change
        assert await ensure_work_pool(name, client) == f"work-pool/{name}"
        pool = await client.read_work_pool(name)
    assert pool.type == "process" and pool.concurrency_limit == 3
    assert "command" in pool.base_job_template["variables"]["properties"]


async def test_a_pool_of_another_type_is_refused(prefect_api: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    name = f"pool-{uuid.uuid4().hex[:8]}"
    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(name=name, type="kubernetes"))
    with pytest.raises(WorkPoolTypeError, match="kubernetes"):
        await ensure_work_pool(name)


# --- `clipflow setup` verifies what it wrote -----------------------------------------------------------------


def _setup_env(monkeypatch: pytest.MonkeyPatch, emulator: Any, s3_server: Any, **changes: str) -> str:
    from flows.app.block_setup import ENV_VARS
    from flows.app.demo import demo_env

    bucket = f"setup-{uuid.uuid4().hex[:8]}"
    s3_server.client().create_bucket(Bucket=bucket)
    env = demo_env(emulator, s3_server.endpoint_url)
    env.update(CLIPFLOW_S3_ACCESS_KEY=s3_server.access_key, CLIPFLOW_S3_SECRET_KEY=s3_server.secret_key,
               CLIPFLOW_S3_REGION=s3_server.region, CLIPFLOW_S3_BUCKET=bucket, **changes)
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return f"setup-{uuid.uuid4().hex[:8]}"


def _run_setup(name: str, *extra: str) -> int:
    from flows.app.cli import main

    return main(["setup", "--name", name, "--work-pool", "", *extra])


def test_setup_verifies_a_good_config(
    prefect_api: str, emulator: Any, s3_server: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.reset()
    name = _setup_env(monkeypatch, emulator, s3_server)
    assert _run_setup(name) == 0
    out = capsys.readouterr().out
    assert f"volcengine-credentials/{name}" in out and "verified" in out
    assert emulator.ledger() == []


def test_setup_with_a_wrong_secret_key_exits_non_zero_naming_block_and_field(
    prefect_api: str, emulator: Any, s3_server: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "not-the-secret-" + uuid.uuid4().hex
    name = _setup_env(monkeypatch, emulator, s3_server, CLIPFLOW_VOLC_SECRET_KEY=secret)
    assert _run_setup(name) == 1
    err = capsys.readouterr().err
    assert f"block volcengine-credentials/{name} field access_key_id / secret_access_key" in err
    assert "SignatureDoesNotMatch" in err and secret not in err
    # --no-verify skips the check: the blocks are saved and setup succeeds.
    assert _run_setup(name, "--no-verify") == 0
    assert "verified" not in capsys.readouterr().out


def test_setup_with_a_wrong_gateway_key_names_the_gateway_block(
    prefect_api: str, emulator: Any, s3_server: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "not-the-gateway-key-" + uuid.uuid4().hex
    name = _setup_env(monkeypatch, emulator, s3_server, CLIPFLOW_GATEWAY_KEY=secret)
    assert _run_setup(name) == 1
    err = capsys.readouterr().err
    assert f"block video-gateway-credentials/{name} field api_key" in err and secret not in err


def test_setup_with_the_providers_down_exits_non_zero_with_the_url(
    prefect_api: str, emulator: Any, s3_server: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    down = "http://127.0.0.1:9"  # discard port: nothing listens
    name = _setup_env(monkeypatch, emulator, s3_server, CLIPFLOW_VOD_ENDPOINT=down, CLIPFLOW_VISUAL_ENDPOINT=down,
                      CLIPFLOW_GATEWAY_URL=down)
    assert _run_setup(name) == 1
    err = capsys.readouterr().err
    assert f"block volcengine-credentials/{name} field vod_endpoint" in err
    assert f"block volcengine-credentials/{name} field visual_endpoint" in err
    assert f"block video-gateway-credentials/{name} field base_url" in err
    assert "127.0.0.1:9" in err and "unreachable" in err


def test_setup_with_a_missing_bucket_names_the_bucket_block(
    prefect_api: str, emulator: Any, s3_server: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _setup_env(monkeypatch, emulator, s3_server)
    monkeypatch.setenv("CLIPFLOW_S3_BUCKET", "no-such-bucket-" + uuid.uuid4().hex[:6])
    assert _run_setup(name) == 1
    assert f"block s3-bucket/{name} field bucket_name" in capsys.readouterr().err


def test_setup_help_lists_no_verify(capsys: pytest.CaptureFixture[str]) -> None:
    from flows.app.cli import main

    with pytest.raises(SystemExit):
        main(["setup", "--help"])
    assert "--no-verify" in capsys.readouterr().out
