"""Create or update every block clipflow needs from environment variables (non-interactive setup)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from prefect_aws import AwsClientParameters, AwsCredentials, S3Bucket

from blocks.credentials import VideoGatewayCredentials, VolcengineCredentials
from blocks.env import ENV_VARS
from blocks.prices import ClipflowPrices

DEFAULT_BLOCK_NAME = "clipflow"


@dataclass(frozen=True)
class BlockNames:
    """Names of the blocks a flow loads; all default to ``clipflow``."""

    volcengine: str = DEFAULT_BLOCK_NAME
    gateway: str = DEFAULT_BLOCK_NAME
    bucket: str = DEFAULT_BLOCK_NAME




class MissingSettingError(ValueError):
    pass


def _need(env: Mapping[str, str], name: str) -> str:
    """A required variable; ``build_blocks`` has refused every missing one at once before this is asked."""
    return env[name].strip()


def missing_settings(env: Mapping[str, str]) -> list[str]:
    """Every required variable that is unset, so one run of setup names them all."""
    required = ["CLIPFLOW_VOLC_ACCESS_KEY", "CLIPFLOW_VOLC_SECRET_KEY", "CLIPFLOW_S3_ACCESS_KEY",
                "CLIPFLOW_S3_SECRET_KEY", "CLIPFLOW_S3_BUCKET"]
    if env.get("CLIPFLOW_GATEWAY_URL"):
        required.append("CLIPFLOW_GATEWAY_KEY")
    return [name for name in required if not env.get(name, "").strip()]


def build_blocks(env: Mapping[str, str]) -> dict[str, object]:
    """Build (unsaved) blocks from ``env``; gateway is included only when configured."""
    missing = missing_settings(env)
    if missing:
        raise MissingSettingError(
            "required but not set: " + ", ".join(f"{name} ({ENV_VARS[name]})" for name in missing)
            + " — or run `make up` for a local stack that needs none"
        )
    built: dict[str, object] = {
        "volcengine": VolcengineCredentials(
            access_key_id=_need(env, "CLIPFLOW_VOLC_ACCESS_KEY"),
            secret_access_key=_need(env, "CLIPFLOW_VOLC_SECRET_KEY"),
            session_token=env.get("CLIPFLOW_VOLC_SESSION_TOKEN") or None,
            region=env.get("CLIPFLOW_VOLC_REGION") or "cn-north-1",
            vod_endpoint=env.get("CLIPFLOW_VOD_ENDPOINT") or "https://vod.volcengineapi.com",
            visual_endpoint=env.get("CLIPFLOW_VISUAL_ENDPOINT") or "https://visual.volcengineapi.com",
        )
    }
    if env.get("CLIPFLOW_GATEWAY_URL"):
        models = [m.strip() for m in (env.get("CLIPFLOW_GATEWAY_MODELS") or "").split(",") if m.strip()]
        built["gateway"] = VideoGatewayCredentials(
            base_url=env["CLIPFLOW_GATEWAY_URL"], api_key=_need(env, "CLIPFLOW_GATEWAY_KEY"),
            **({"models": models} if models else {}),
        )
    endpoint = env.get("CLIPFLOW_S3_ENDPOINT") or None
    aws = AwsCredentials(
        aws_access_key_id=_need(env, "CLIPFLOW_S3_ACCESS_KEY"),
        aws_secret_access_key=_need(env, "CLIPFLOW_S3_SECRET_KEY"),
        region_name=env.get("CLIPFLOW_S3_REGION") or "us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=endpoint),
    )
    built["bucket"] = S3Bucket(bucket_name=_need(env, "CLIPFLOW_S3_BUCKET"), credentials=aws)
    built["prices"] = ClipflowPrices()  # the default table; a saved one is a person's and is kept
    return built


async def block_exists(slug: str, name: str) -> bool:
    """Is a block document ``slug/name`` saved on the server?"""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    async with get_client() as client:
        try:
            await client.read_block_document_by_name(name, block_type_slug=slug)
        except ObjectNotFound:
            return False
    return True


async def save_blocks_from_env(
    env: Mapping[str, str] | None = None, name: str = DEFAULT_BLOCK_NAME, *, keep_existing: bool = False
) -> list[str]:
    """Save every block under ``name`` (overwriting), returning the saved slugs. Idempotent. With
    ``keep_existing`` a block already saved under ``name`` is left as it is (listed as ``slug/name (kept)``):
    the local stack must not put its demo settings over what a person saved."""
    saved = []
    for block in build_blocks(os.environ if env is None else env).values():
        slug = f"{block.get_block_type_slug()}/{name}"  # type: ignore[attr-defined]
        keep = keep_existing or isinstance(block, ClipflowPrices)  # prices are edited by hand, not from env
        if keep and await block_exists(block.get_block_type_slug(), name):  # type: ignore[attr-defined]
            saved.append(f"{slug} (kept)")
            continue
        await block.asave(name, overwrite=True)  # type: ignore[attr-defined]
        saved.append(slug)
    return saved
