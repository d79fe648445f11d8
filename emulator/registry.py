"""Volcengine actions (routed by Action + Version on ``/``) and the per-request context handlers receive."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from emulator.config import EmulatorConfig
from emulator.params import Params, fingerprint
from emulator.pricing import priced
from emulator.state import EmulatorState


@dataclass
class Ctx:
    state: EmulatorState
    action: str
    version: str
    provider: str  # "vod" | "jimeng" | "gateway"
    request_id: str
    ak: str
    base_url: str
    params: Params
    now: float

    @property
    def config(self) -> EmulatorConfig:
        return self.state.config

    def fingerprint(self) -> str:
        return fingerprint(self.params.values)

    def bill(self, job_id: str, fp: str | None = None) -> None:
        self.state.ledger.record(
            provider=self.provider, action=self.action, fingerprint=fp or self.fingerprint(), job_id=job_id,
            ak=self.ak, request_id=self.request_id, emulated_time=self.now,
            priced=priced(self.state, self.provider, self.action, self.params.values),
        )

    def scaled(self, name: str) -> float:
        return self.config.scaled(name)

    def lifetime(self, name: str) -> float:
        return self.config.lifetime(name)

    def media_base(self) -> str:
        return (self.config.public_base_url or self.base_url).rstrip("/")


Handler = Callable[[Ctx], Awaitable[Any]]


@dataclass(frozen=True)
class ActionSpec:
    name: str
    version: str
    service: str  # credential-scope service: "vod" or "cv"
    provider: str  # ledger/fault provider: "vod" or "jimeng"
    handler: Handler


REGISTRY: dict[str, ActionSpec] = {}


def action(name: str, version: str, *, service: str = "vod") -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        provider = "jimeng" if service == "cv" else service
        REGISTRY[name] = ActionSpec(name, version, service, provider, handler)
        return handler

    return register
