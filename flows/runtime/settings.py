"""Every run-time knob of clipflow in one settings object, read from ``CLIPFLOW_*`` variables at run time.

Like prefect-aws's settings, the values are resolved when they are used, never at import, so a deployment's job
variables, a test's monkeypatch or a worker's environment all apply without ordering rules. An invalid value is
an error naming the variable and the rule. Credentials are not here: they live in blocks (``flows/app/block_setup.py``
lists the variables ``clipflow setup`` reads); ``clipflow up`` has its own ``CLIPFLOW_UP_*`` (flows/app/stack.py).
The table in docs/configuration.md is checked against these fields by the tests.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "CLIPFLOW_"


class SettingsError(ValueError):
    """A ``CLIPFLOW_*`` variable holds a value clipflow cannot use."""


class ClipflowSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True, env_ignore_empty=True)

    time_scale: float = Field(
        1.0, gt=0, allow_inf_nan=False,
        description="Wall-clock seconds per provider second: multiplies every wait and retry delay. 1 in "
        "production; 0.01 against an emulator running 100x faster.",
    )
    cache_days: float = Field(
        7.0, gt=0, allow_inf_nan=False, description="How long a paid submit's cached answer is reused by a re-run."
    )
    lock_dir: str = Field(
        "~/.clipflow/locks",
        description="This machine's registry of held quota slots, so a dead holder's slot is freed at once "
        "(one machine's local disk, not NFS).",
    )
    quota_limits: Literal["strict", "lenient", "off"] = Field(
        "strict",
        description="A missing Prefect quota limit is an error (strict), a warning and no limit (lenient), or "
        "quotas are not enforced through Prefect at all (off: tests without a Prefect API).",
    )
    lease_heartbeat_seconds: float = Field(
        5.0, gt=0, allow_inf_nan=False, description="How often a held quota slot writes its heartbeat."
    )
    lease_stale_seconds: float = Field(
        25.0, gt=0, allow_inf_nan=False,
        description="A quota slot whose heartbeat is older is taken as its holder's death (at least 3 heartbeats).",
    )
    image_buckets: str = Field(
        "", description="Comma-separated buckets clip.image_url may name as s3://bucket/key besides the "
        "production's own (its bucket block's); any other bucket is refused without being read.",
    )
    manifest_prefix: str = Field(
        "manifests/", min_length=1,
        description="A batch's manifest_key must start with this prefix (in the bucket of defaults.blocks).",
    )
    max_batch_items: int = Field(
        10_000, ge=1, description="Most items one batch takes (manifest rows or inline items); more is refused "
        "with the count before any item is validated.",
    )

    journal_single_process: bool = Field(
        False,
        description="Accept a result storage that cannot write conditionally (or ignores If-None-Match/If-Match) "
        "for the journal: safe only when a single process ever runs clipflow flows.",
    )
    retry_policy: Literal["vendor", "strict"] = Field(
        "vendor",
        description="A paid submit answered with a code the vendor documents as retryable (its own error body): "
        "retried in place (vendor), or handed to an operator like every other 5xx (strict).",
    )
    send_deadline_seconds: float = Field(
        120.0, gt=0, allow_inf_nan=False,
        description="Wall-clock seconds a paid submit waits for its answer before its outcome is unknown; other "
        "workers wait this long (plus a margin) on a send in flight before reconciling it.",
    )
    max_successors: int = Field(
        3, ge=0,
        description="Successor runs a crashed production gets, counted over its whole chain; then it gives up "
        "(a clipflow.production.gave-up event). 0: crashed runs are never resumed automatically.",
    )
    heartbeat_timeout_seconds: int = Field(
        90, ge=45,
        description="clipflow setup: a running flow run with no heartbeat for this long is marked Crashed (flow "
        "runs send one every 30 s).",
    )
    cancelling_timeout_seconds: int = Field(
        30, ge=5,
        description="clipflow setup: a run still Cancelling after this long (its process is gone) is marked "
        "Cancelled.",
    )
    fetch_allow_hosts: str = Field(
        "", description="Comma-separated host names and addresses/CIDR networks (127.0.0.1, 10.0.0.0/8, "
        "images.internal) a user URL (clip.image_url) may reach although they are not public, and over plain "
        "http. Empty: https to public addresses only.",
    )
    fetch_deadline_seconds: float = Field(
        60.0, gt=0, allow_inf_nan=False,
        description="Wall-clock seconds for the whole download of a user URL: lookup, redirects and body.",
    )
    fetch_concurrency: int = Field(
        4, ge=1, le=64, description="Most downloads of user URLs at once in one process; the others wait."
    )
    callbacks: bool = Field(
        False,
        description="Transcode and translation waits end on VOD's completion callback (the receiver's "
        "clipflow.callback.* event) and poll only every callback_poll_seconds as a fallback.",
    )
    callback_poll_seconds: float = Field(
        900.0, ge=30, allow_inf_nan=False,
        description="With callbacks on: provider seconds between fallback status calls of a wait.",
    )
    callback_key: SecretStr | None = Field(
        None, description="The callback authentication key set in the VOD console; the receiver refuses every "
        "callback whose X-VOD-SIGNATURE does not match it.",
    )
    callback_url: str = Field(
        "", description="The callback URL exactly as set in the VOD console (it is part of the signature); "
        "empty: the URL the receiver was called on.",
    )

    @field_validator("quota_limits", "retry_policy", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() or None if isinstance(value, str) else value

    @field_validator("lock_dir", "image_buckets", "manifest_prefix", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @classmethod
    def variables(cls) -> dict[str, str]:
        """``CLIPFLOW_<FIELD>`` → description, for docs and ``--help``."""
        return {f"{ENV_PREFIX}{name.upper()}": f.description or "" for name, f in cls.model_fields.items()}

    @classmethod
    def variable(cls, field: str) -> str:
        """The variable of ``field`` (``CLIPFLOW_<FIELD>``), for messages and child environments, so a name is
        spelled only here."""
        if field not in cls.model_fields:
            raise KeyError(f"no clipflow setting {field!r}")
        return f"{ENV_PREFIX}{field.upper()}"


# The variables ``clipflow setup`` builds the blocks from (credentials live in blocks, not in the settings).
SETUP_VARIABLES: dict[str, str] = {
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
# Read by one program each, never by a flow: the checkout a worker's pull step enters (deployments/steps.py),
# the prefix of ``clipflow up``'s own settings (flows/app/stack.py), where a benchmark child writes its profile.
HOME_VARIABLE = "CLIPFLOW_HOME"
UP_PREFIX = "CLIPFLOW_UP_"
BENCH_PROFILE_VARIABLE = "CLIPFLOW_BENCH_PROFILE"


def variable(field: str) -> str:
    """``CLIPFLOW_<FIELD>`` of a ``ClipflowSettings`` field (KeyError for an unknown one)."""
    return ClipflowSettings.variable(field)


def setup_variable(name: str) -> str:
    """``CLIPFLOW_<NAME>`` of a variable ``clipflow setup`` reads (``volc_access_key`` …; KeyError otherwise)."""
    full = f"{ENV_PREFIX}{name.upper()}"
    if full not in SETUP_VARIABLES:
        raise KeyError(f"no clipflow setup variable {name!r}")
    return full


def settings() -> ClipflowSettings:
    """The settings of this moment's environment (empty variables count as unset)."""
    try:
        return ClipflowSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{str(e['loc'][0]).upper()}={e.get('input')!r}: {e['msg']}" for e in exc.errors()
        )
        raise SettingsError(problems) from None


def time_scale() -> float:
    return settings().time_scale


def cache_expiration() -> dt.timedelta:
    return dt.timedelta(days=settings().cache_days)


def lock_directory() -> str:
    return os.path.expanduser(settings().lock_dir)


def image_buckets() -> frozenset[str]:
    """The extra buckets first-frame images may come from (``CLIPFLOW_IMAGE_BUCKETS``)."""
    return frozenset(b.strip() for b in settings().image_buckets.split(",") if b.strip())
