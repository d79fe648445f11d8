"""Load blocks once per task and hand out provider clients and the bucket."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect_aws import S3Bucket

from blocks.credentials import VideoGatewayCredentials, VolcengineCredentials
from flows.models import BlockRefs


async def volcengine(refs: BlockRefs) -> VolcengineCredentials:
    return await VolcengineCredentials.aload(refs.volcengine)  # type: ignore[return-value]


async def gateway(refs: BlockRefs) -> VideoGatewayCredentials:
    return await VideoGatewayCredentials.aload(refs.gateway)  # type: ignore[return-value]


@dataclass
class Bucket:
    name: str
    client: Any  # boto3 S3 client


async def bucket(refs: BlockRefs) -> Bucket:
    block: S3Bucket = await S3Bucket.aload(refs.bucket)  # type: ignore[assignment]
    return Bucket(name=block.bucket_name, client=block.credentials.get_s3_client())


def account_id(creds: VolcengineCredentials | VideoGatewayCredentials) -> str:
    """A non-secret identity of the paying account for fingerprints: a hash, never the key itself."""
    import hashlib

    if isinstance(creds, VolcengineCredentials):
        raw = creds.access_key_id.get_secret_value() + creds.vod_endpoint + creds.visual_endpoint
    else:
        raw = creds.api_key.get_secret_value() + creds.base_url
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


async def client(provider: str, refs: BlockRefs) -> Any:
    """A new (not yet entered) client for ``provider`` ("vod", "jimeng" or "gateway") from its block."""
    if provider == "vod":
        return (await volcengine(refs)).get_vod_client()
    if provider == "jimeng":
        return (await volcengine(refs)).get_jimeng_client()
    if provider == "gateway":
        return (await gateway(refs)).get_client()
    raise ValueError(f"unknown provider {provider!r}")
