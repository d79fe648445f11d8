"""Blocks pass Prefect's standard suite, keep secrets secret, and build working clients."""

from __future__ import annotations

from typing import Any

import pytest
from prefect.testing.standard_test_suites import BlockStandardTestSuite

from blocks import VideoGatewayCredentials, VolcengineCredentials
from flows.app.block_setup import MissingSettingError, build_blocks, save_blocks_from_env
from emulator.config import DEMO_TEMPLATE, DEMO_VID
from providers.gateway.models import GatewayVideoRequest
from providers.vod.models import StartWorkflowRequest


class TestVolcengineCredentialsStandard(BlockStandardTestSuite):
    @pytest.fixture
    def block(self) -> type[VolcengineCredentials]:
        return VolcengineCredentials


class TestVideoGatewayCredentialsStandard(BlockStandardTestSuite):
    @pytest.fixture
    def block(self) -> type[VideoGatewayCredentials]:
        return VideoGatewayCredentials


def test_secrets_are_masked_in_repr_and_dumps() -> None:
    creds = VolcengineCredentials(access_key_id="AKTESTID", secret_access_key="very-secret", session_token="sts-tok")
    gateway = VideoGatewayCredentials(base_url="http://gw", api_key="gw-secret")
    for text in (repr(creds), str(creds.model_dump()), repr(gateway), str(gateway.model_dump())):
        assert "very-secret" not in text and "sts-tok" not in text and "gw-secret" not in text
    assert "very-secret" not in repr(creds.get_vod_client())


def test_missing_env_names_the_variable() -> None:
    with pytest.raises(MissingSettingError, match="CLIPFLOW_VOLC_SECRET_KEY"):
        build_blocks({"CLIPFLOW_VOLC_ACCESS_KEY": "ak"})


def test_every_missing_variable_is_named_at_once() -> None:
    with pytest.raises(MissingSettingError) as caught:
        build_blocks({"CLIPFLOW_VOLC_ACCESS_KEY": "ak", "CLIPFLOW_GATEWAY_URL": "http://gw"})
    named = [v for v in ("CLIPFLOW_VOLC_SECRET_KEY", "CLIPFLOW_S3_ACCESS_KEY", "CLIPFLOW_S3_SECRET_KEY",
                         "CLIPFLOW_S3_BUCKET", "CLIPFLOW_GATEWAY_KEY") if v in str(caught.value)]
    assert len(named) == 5, caught.value
    assert "CLIPFLOW_VOLC_ACCESS_KEY" not in str(caught.value)


def test_gateway_block_is_optional() -> None:
    env = {
        "CLIPFLOW_VOLC_ACCESS_KEY": "ak", "CLIPFLOW_VOLC_SECRET_KEY": "sk", "CLIPFLOW_S3_ACCESS_KEY": "a",
        "CLIPFLOW_S3_SECRET_KEY": "b", "CLIPFLOW_S3_BUCKET": "bucket",
    }
    assert set(build_blocks(env)) == {"volcengine", "bucket", "prices"}
    assert set(build_blocks({**env, "CLIPFLOW_GATEWAY_URL": "http://gw", "CLIPFLOW_GATEWAY_KEY": "k"})) == {
        "volcengine", "bucket", "gateway", "prices",
    }


async def test_saved_blocks_load_and_build_clients_that_work(prefect_api: str, emulator: Any, s3_server: Any) -> None:
    from flows.app.demo import demo_env

    env = demo_env(emulator, s3_server.endpoint_url)
    saved = await save_blocks_from_env(env, name="blocks-test")
    again = await save_blocks_from_env(env, name="blocks-test")  # idempotent: same slugs, overwritten
    assert [slug.removesuffix(" (kept)") for slug in again] == saved
    assert "clipflow-prices/blocks-test (kept)" in again  # prices are a person's edits: never overwritten

    creds = await VolcengineCredentials.aload("blocks-test")
    async with creds.get_vod_client() as vod:  # a signed call the emulator verifies
        execution_id = await vod.start_workflow(StartWorkflowRequest(vid=DEMO_VID, template_id=DEMO_TEMPLATE))
    assert execution_id
    gateway = await VideoGatewayCredentials.aload("blocks-test")
    async with gateway.get_client() as client:
        task = await client.create_video(
            GatewayVideoRequest(model="grok-video-3", prompt="a cat", aspect_ratio="1:1", size="720P")
        )
    assert task.id


async def test_keep_existing_leaves_saved_blocks_as_they_are(prefect_api: str, emulator: Any, s3_server: Any) -> None:
    """What `clipflow up` runs: a block a person saved (another bucket, other models) is not overwritten; a
    missing one is created."""
    from prefect_aws import S3Bucket

    from flows.app.demo import demo_env

    env = demo_env(emulator, s3_server.endpoint_url)
    person = {**env, "CLIPFLOW_S3_BUCKET": "their-bucket", "CLIPFLOW_GATEWAY_MODELS": "veo3.1"}
    await save_blocks_from_env(person, name="keep-test")
    await VideoGatewayCredentials.adelete("keep-test")  # gone: created again

    saved = await save_blocks_from_env(env, name="keep-test", keep_existing=True)

    assert saved == ["volcengine-credentials/keep-test (kept)", "video-gateway-credentials/keep-test",
                     "s3-bucket/keep-test (kept)", "clipflow-prices/keep-test (kept)"]
    assert (await S3Bucket.aload("keep-test")).bucket_name == "their-bucket"
    assert (await VideoGatewayCredentials.aload("keep-test")).models != ["veo3.1"]  # the demo's list
    await save_blocks_from_env(env, name="keep-test")  # without keep_existing: overwritten
    assert (await S3Bucket.aload("keep-test")).bucket_name == env["CLIPFLOW_S3_BUCKET"]


def test_prefect_block_register_finds_both_blocks(prefect_api: str) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    prefect = Path(sys.executable).with_name("prefect")
    result = subprocess.run(
        [str(prefect), "block", "register", "-m", "blocks"],
        env={**os.environ, "PREFECT_API_URL": prefect_api}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Volcengine Credentials" in result.stdout and "Video Gateway Credentials" in result.stdout
