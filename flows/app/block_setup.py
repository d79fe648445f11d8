"""Create or update every block clipflow needs from environment variables (non-interactive setup)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from prefect_aws import AwsClientParameters, AwsCredentials, S3Bucket

from blocks.credentials import VideoGatewayCredentials, VolcengineCredentials
from blocks.prices import ClipflowPrices
from flows.runtime.settings import SETUP_VARIABLES as ENV_VARS
from flows.runtime.settings import setup_variable
from providers.pricing import DEFAULT_PRICES

DEFAULT_BLOCK_NAME = "clipflow"


class MissingSettingError(ValueError):
    pass


def _need(env: Mapping[str, str], name: str) -> str:
    """A required variable (``setup_variable`` name); ``build_blocks`` has refused every missing one at once."""
    return env[setup_variable(name)].strip()


def _get(env: Mapping[str, str], name: str) -> str:
    """An optional variable (``setup_variable`` name), "" when unset."""
    return env.get(setup_variable(name)) or ""


def missing_settings(env: Mapping[str, str]) -> list[str]:
    """Every required variable that is unset, so one run of setup names them all."""
    required = ["volc_access_key", "volc_secret_key", "s3_access_key", "s3_secret_key", "s3_bucket"]
    if _get(env, "gateway_url"):
        required.append("gateway_key")
    return [setup_variable(name) for name in required if not _get(env, name).strip()]


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
            access_key_id=_need(env, "volc_access_key"),
            secret_access_key=_need(env, "volc_secret_key"),
            session_token=_get(env, "volc_session_token") or None,
            region=_get(env, "volc_region") or "cn-north-1",
            vod_endpoint=_get(env, "vod_endpoint") or "https://vod.volcengineapi.com",
            visual_endpoint=_get(env, "visual_endpoint") or "https://visual.volcengineapi.com",
        )
    }
    if _get(env, "gateway_url"):
        models = [m.strip() for m in _get(env, "gateway_models").split(",") if m.strip()]
        built["gateway"] = VideoGatewayCredentials(
            base_url=_get(env, "gateway_url"), api_key=_need(env, "gateway_key"),
            **({"models": models} if models else {}),
        )
    endpoint = _get(env, "s3_endpoint") or None
    aws = AwsCredentials(
        aws_access_key_id=_need(env, "s3_access_key"),
        aws_secret_access_key=_need(env, "s3_secret_key"),
        region_name=_get(env, "s3_region") or "us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=endpoint),
    )
    built["bucket"] = S3Bucket(bucket_name=_need(env, "s3_bucket"), credentials=aws)
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
    env: Mapping[str, str] | None = None, name: str = DEFAULT_BLOCK_NAME, *, keep_existing: bool = False,
    example_prices: bool = False,
) -> list[str]:
    """Save every block under ``name`` (overwriting), returning the saved slugs. Idempotent. With
    ``keep_existing`` a block already saved under ``name`` is left as it is (listed as ``slug/name (kept)``):
    the local stack must not put its demo settings over what a person saved. ``example_prices`` (the local
    stack) saves the emulator's example prices instead of the all-unknown defaults."""
    saved = []
    for block in build_blocks(os.environ if env is None else env).values():
        slug = f"{block.get_block_type_slug()}/{name}"  # type: ignore[attr-defined]
        if example_prices and isinstance(block, ClipflowPrices):
            saved.append(await save_example_prices(name, reset=not keep_existing))
            continue
        keep = keep_existing or isinstance(block, ClipflowPrices)  # prices are edited by hand, not from env
        if keep and await block_exists(block.get_block_type_slug(), name):  # type: ignore[attr-defined]
            saved.append(f"{slug} (kept)")
            continue
        await block.asave(name, overwrite=True)  # type: ignore[attr-defined]
        saved.append(slug)
    return saved


async def save_example_prices(name: str, *, reset: bool = False) -> str:
    """Save ``EXAMPLE_PRICES`` as the ``clipflow-prices`` block ``name`` (the local stack's setup), returning the
    ``slug/name`` line setup prints. A saved block a person edited is kept unless ``reset``; one still at the
    defaults (every price unknown, as ``clipflow setup`` saves it) was never edited and gets the example table."""
    from emulator.example_prices import EXAMPLE_PRICES  # the local extra: only the local stack asks for them

    slug = f"{ClipflowPrices.get_block_type_slug()}/{name}"
    try:
        saved = await ClipflowPrices.aload(name)  # type: ignore[misc]
    except ValueError:  # none saved under this name
        saved = None
    if saved is not None and not reset and saved.table() != DEFAULT_PRICES:
        return f"{slug} (kept)"
    await ClipflowPrices(**EXAMPLE_PRICES.model_dump()).asave(name, overwrite=True)
    return f"{slug} (example prices)"
