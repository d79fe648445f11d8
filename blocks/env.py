"""The variables ``clipflow setup`` builds the blocks from (no Prefect import: ``--help`` lists them before
anything configures Prefect)."""

from __future__ import annotations

ENV_VARS: dict[str, str] = {
    "CLIPFLOW_VOLC_ACCESS_KEY": "Volcengine access key id",
    "CLIPFLOW_VOLC_SECRET_KEY": "Volcengine secret access key",
    "CLIPFLOW_VOLC_SESSION_TOKEN": "optional STS session token",
    "CLIPFLOW_VOLC_REGION": "signature region (default cn-north-1)",
    "CLIPFLOW_VOD_ENDPOINT": "VOD base URL (default https://vod.volcengineapi.com)",
    "CLIPFLOW_VISUAL_ENDPOINT": "visual/Jimeng base URL (default https://visual.volcengineapi.com)",
    "CLIPFLOW_GATEWAY_URL": "video gateway base URL (optional)",
    "CLIPFLOW_GATEWAY_KEY": "video gateway API key (optional)",
    "CLIPFLOW_GATEWAY_MODELS": "comma-separated models the gateway serves (optional; default: the known models)",
    "CLIPFLOW_S3_ENDPOINT": "S3-compatible endpoint (TOS, MinIO; empty for AWS)",
    "CLIPFLOW_S3_ACCESS_KEY": "bucket access key",
    "CLIPFLOW_S3_SECRET_KEY": "bucket secret key",
    "CLIPFLOW_S3_REGION": "bucket region",
    "CLIPFLOW_S3_BUCKET": "bucket name",
}
