"""Emulator configuration: credentials, spaces/templates, job durations, quotas, faults.

All job durations are *nominal* seconds (what the real provider roughly takes); the emulator waits
``nominal * time_scale`` real seconds, so ``time_scale=0.005`` turns a 65 s Jimeng job into ~0.3 s. The lifetimes
of paid outputs (the ``*_ttl`` fields) are wall-clock seconds at every time scale, as the vendor's are: a result URL
must outlive a crash and its recovery locally just as long as in production (``POST /_emulator/expire`` ends one
early for a test).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from providers.quotas import GATEWAY_QPS, JIMENG_CONCURRENCY, JIMENG_QPS, VOD_QPS

DEMO_ACCESS_KEY = "AKDEMOCLIPFLOW0000000000"
DEMO_SECRET_KEY = "clipflow-demo-secret-key"
DEMO_GATEWAY_KEY = "clipflow-demo-gateway-key"

DEMO_SPACE = "demo"
DEMO_TEMPLATE = "demo-transcode-template"
# A ready-made video in space ``demo`` so workflows/translations can be tried without an upload first.
DEMO_VID = "v02democlipflowsamplevideo0000"

REGION = "cn-north-1"


def default_qps() -> dict[str, float]:
    """Per-AK QPS by action name; gateway routes are named ``gateway.create`` / ``gateway.query``."""
    qps: dict[str, float] = dict(VOD_QPS)
    qps.update(JIMENG_QPS)
    qps.update({f"gateway.{name}": value for name, value in GATEWAY_QPS.items()})
    return qps


# Lifetimes of paid outputs: wall-clock seconds, never multiplied by time_scale.
LIFETIMES = frozenset({"jimeng_url_ttl", "translation_url_ttl", "jimeng_task_ttl"})


class Durations(BaseModel):
    """Nominal seconds per phase (multiplied by ``time_scale``); the ``*_ttl`` lifetimes are wall-clock seconds."""

    model_config = ConfigDict(extra="forbid")

    jimeng_queue: float = 5.0
    jimeng_generate: float = 60.0
    jimeng_url_ttl: float = 3600.0  # video_url lives 1 h (vendor page)
    translation_url_ttl: float = 3600.0  # a translation project's signed output URLs (like every signed VOD URL)
    jimeng_task_ttl: float = 12 * 3600.0  # get-result answers "expired" after 12 h
    gateway_pending: float = 5.0
    gateway_processing: float = 60.0
    upload_initial: float = 1.0
    upload_processing: float = 5.0
    workflow_pending: float = 2.0
    workflow_running: float = 30.0
    direct_edit_pending: float = 2.0
    direct_edit_running: float = 30.0
    translation_processing: float = 120.0


# Answers a vendor documents as "retry, nothing was created" (api-notes sections 2, 4, 5): throttling (any 429),
# Jimeng 50429/50430/50500/50501 in the service's envelope, the gateway's saturation refusal. A fault after the
# job was created must never answer one of these: a client would rightly send the paid request again.
RETRY_SAFE_CV_CODES = frozenset({50429, 50430, 50500, 50501})
SATURATION_WORDS = ("负载已饱和", "saturated")


class FaultError(BaseModel):
    """The error a fault answers with. ``code``: VOD string code, CV int code, or gateway code string.

    ``body``: ``vendor`` renders the provider's own error envelope; ``proxy`` answers as a proxy or load balancer
    in front of the provider would (a small HTML page, no vendor envelope); ``empty`` answers with no body at all.
    The last two are what a lost answer looks like: the client cannot tell whether the job was created."""

    model_config = ConfigDict(extra="forbid")

    code: str | int | None = None
    status: int = 500
    message: str | None = None
    body: Literal["vendor", "proxy", "empty"] = "vendor"

    def promises_nothing_created(self) -> bool:
        """True when a vendor documents this answer as a refusal that is safe to send again."""
        if self.body != "vendor":
            return False
        code = str(self.code) if self.code is not None else ""
        return (
            self.status == 429
            or (code.isdigit() and int(code) in RETRY_SAFE_CV_CODES)
            or code == "upstream_saturated"
            or any(word in (self.message or "") for word in SATURATION_WORDS)
        )


class FaultRule(BaseModel):
    """One fault rule. ``action``: any VOD/CV action name (submits and reads alike), ``gateway.create``,
    ``gateway.query`` or ``*``.

    A rule is *live* while ``count`` is None or > 0; each matching call consumes one count. On a live match:
    sleep ``latency`` seconds, then answer ``error`` with probability ``error_rate`` (nothing is created), else
    handle the request and, with ``drop_after_accept``, cut the connection instead of answering.

    ``error_after_accept``: the error is answered *after* the request was handled, so the job exists and is
    billed while the client sees a failure. That is what a real provider does on InternalServiceTimeout 504
    (its gateway gave up, the backend went on). Without a named ``error`` it answers the provider's gateway
    timeout, never a throttling or saturation refusal (those promise that nothing was created). A request the
    handler refused stays refused.

    ``fail_job``: the job the call creates ends *failed*, as if the request carried ``fail_marker`` (Jimeng code
    50511, which the vendor marks retryable: a new take may pass; gateway ``failed``). Only the submits of
    Jimeng and the gateway create such jobs; on other actions it does nothing.

    A rule that names an ``error`` or sets ``error_after_accept`` but no ``error_rate`` always fires (rate 1):
    naming an error and never seeing it surprises people. An ``error_after_accept`` rule cannot name an answer a
    vendor documents as safe to retry (a 429, Jimeng 50429/50430/50500/50501, the gateway's saturation): after
    the job exists the emulator answers as a lost answer would, never with a promise that nothing was created.
    """

    model_config = ConfigDict(extra="forbid")

    action: str
    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    error: FaultError | None = None
    latency: float = Field(0.0, ge=0.0)
    drop_after_accept: bool = False
    error_after_accept: bool = False
    fail_job: bool = False
    count: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _named_error_fires(self) -> FaultRule:
        if (self.error is not None or self.error_after_accept) and "error_rate" not in self.model_fields_set:
            self.error_rate = 1.0
        if self.error_after_accept and self.error is not None and self.error.promises_nothing_created():
            raise ValueError(
                f"error: {self.error.status} {self.error.code or ''} is documented as safe to retry (nothing was "
                "created), but error_after_accept answers after the job was created; name a lost answer instead "
                '(e.g. {"status": 504, "body": "proxy"}) or drop error_after_accept'
            )
        return self


class EmulatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    access_key: str = DEMO_ACCESS_KEY
    secret_key: str = DEMO_SECRET_KEY
    extra_credentials: dict[str, str] = Field(default_factory=dict)  # more AK -> SK pairs
    gateway_key: str = DEMO_GATEWAY_KEY
    extra_gateway_keys: list[str] = Field(default_factory=list)
    region: str = REGION
    max_clock_skew: float = 900.0  # seconds between X-Date and the emulator's wall clock

    time_scale: float = Field(1.0, gt=0)
    durations: Durations = Field(default_factory=Durations)

    quotas_enabled: bool = True
    qps: dict[str, float | None] = Field(default_factory=dict)  # overrides; None or 0 disables a limit
    jimeng_concurrency: int | None = JIMENG_CONCURRENCY

    spaces: list[str] = Field(default_factory=lambda: [DEMO_SPACE])
    # template id -> output definitions (one TranscodeInfo each)
    workflow_templates: dict[str, list[str]] = Field(default_factory=lambda: {DEMO_TEMPLATE: ["480p", "720p"]})
    seed_demo_media: bool = True  # register DEMO_VID in the first space
    strict_vids: bool = True  # StartWorkflow/translation refuse Vids the emulator never produced
    # The vendor page says a StartWorkflow without ClientToken may be deduplicated; default: every call runs.
    idempotent_without_token: bool = False

    callback_url: str | None = None
    callback_key: str | None = None  # set: callbacks carry X-VOD-TIMESTAMP / X-VOD-SIGNATURE (docs/4/116752)
    public_base_url: str | None = None  # base of media URLs; default: the URL the request came in on

    faults: list[FaultRule] = Field(default_factory=list)
    fault_seed: int | None = None  # seed the error_rate RNG for reproducible runs

    fail_marker: str = "EMULATOR_FAIL"  # a request containing this string makes its job fail at the end
    banned_words: list[str] = Field(default_factory=lambda: ["EMULATOR_BANNED"])  # Jimeng 50413
    jimeng_req_keys: list[str] = Field(
        default_factory=lambda: ["jimeng_ti2v_v30_pro", "jimeng_t2v_v30", "jimeng_i2v_first_v30"]
    )
    gateway_models: list[str] = Field(
        default_factory=lambda: ["grok-video-3", "veo3", "veo3.1", "veo3.1-fast", "veo3.1-components", "veo3-frames",
                                 "veo3.1-frames", "sora-2"]
    )
    download_timeout: float = 30.0
    max_download_bytes: int = 512 * 1024 * 1024
    # The price table the ledger bills with (providers.pricing.PriceTable fields); None: the example prices.
    prices: dict[str, Any] | None = None

    @field_validator("faults", mode="before")
    @classmethod
    def _faults_from_mapping(cls, value: Any) -> Any:
        return normalize_fault_input(value)

    @property
    def credentials(self) -> dict[str, str]:
        return {self.access_key: self.secret_key, **self.extra_credentials}

    @property
    def gateway_keys(self) -> list[str]:
        return [self.gateway_key, *self.extra_gateway_keys]

    def qps_for(self, action: str) -> float | None:
        if not self.quotas_enabled:
            return None
        if action in self.qps:
            value = self.qps[action]
            return value if value else None
        return default_qps().get(action)

    def scaled(self, name: str) -> float:
        """Real seconds of the nominal duration ``name`` (a job phase, not a lifetime)."""
        if name in LIFETIMES:
            raise ValueError(f"{name} is a wall-clock lifetime: read it with lifetime()")
        return float(getattr(self.durations, name)) * self.time_scale

    def lifetime(self, name: str) -> float:
        """Real seconds an output lives (``*_ttl``): the vendor's, whatever the time scale."""
        if name not in LIFETIMES:
            raise ValueError(f"{name} is not a lifetime: read it with scaled()")
        return float(getattr(self.durations, name))


# Fields that PATCH /_emulator/config may change at run time (credentials and host stay fixed).
PATCHABLE_FIELDS = frozenset(
    {
        "time_scale", "durations", "quotas_enabled", "qps", "jimeng_concurrency", "spaces", "workflow_templates",
        "strict_vids", "idempotent_without_token", "callback_url", "callback_key", "public_base_url", "fail_marker",
        "banned_words", "jimeng_req_keys", "gateway_models", "download_timeout", "max_download_bytes",
        "max_clock_skew", "prices",
    }
)


def normalize_fault_input(value: Any) -> Any:
    """Accept ``[rule, ...]``, ``{"rules": [...]}`` or ``{"ActionName": {rule without action}, ...}``."""
    if isinstance(value, dict):
        if "rules" in value and isinstance(value["rules"], list):
            return value["rules"]
        rules = []
        for action, rule in value.items():
            if isinstance(rule, FaultRule):
                rules.append(rule.model_copy(update={"action": action}))
            else:
                rules.append({**dict(rule), "action": action})
        return rules
    return value


def load_faults_file(path: str | Path) -> list[FaultRule]:
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    return [FaultRule.model_validate(r) for r in normalize_fault_input(raw)]
