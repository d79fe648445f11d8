"""Where the local stack listens and keeps its state (``StackSettings``), and the rule that keeps it on this
machine: the emulator and moto take any key, so they only ever listen on loopback.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path

from emulator.config import DEMO_ACCESS_KEY, DEMO_GATEWAY_KEY, DEMO_SECRET_KEY

S3_KEYS = "local"  # moto accepts any key pair
SERVER_AUTH, CLIENT_AUTH = "PREFECT_SERVER_API_AUTH_STRING", "PREFECT_API_AUTH_STRING"
BUCKET = "clipflow-local"
NIGHTLY = "produce-batch/nightly-batch"
LOOPBACK = "127.0.0.1"  # the emulator (admin routes, any key) and moto (any key) never listen beyond this machine
CALLBACK_KEY = "LocalStack-Callback-Key-1"  # the emulator signs its callbacks with it (loopback, like the demo keys)
ROOT = Path(__file__).resolve().parents[2]  # the checkout: prefect.yaml and the default state directory


@dataclass(frozen=True)
class StackSettings:
    """Where the stack lives and listens. Defaults work with nothing set; ``CLIPFLOW_UP_<FIELD>`` overrides."""

    state_dir: Path = ROOT / ".clipflow"
    host: str = "127.0.0.1"
    prefect_port: int = 4200
    emulator_port: int = 8765
    s3_port: int = 5055
    callbacks_port: int = 8766
    time_scale: float = 0.01  # the emulator runs 100x fast, and so must the worker's waits
    bucket: str = BUCKET
    start_timeout: float = 180.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> StackSettings:
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {}
        for name, kind in (
            ("state_dir", Path), ("host", str), ("prefect_port", int), ("emulator_port", int), ("s3_port", int),
            ("callbacks_port", int), ("time_scale", float), ("bucket", str), ("start_timeout", float),
        ):
            raw = env.get(f"CLIPFLOW_UP_{name.upper()}")
            if raw:
                try:
                    values[name] = kind(raw)
                except ValueError:
                    raise SystemExit(f"clipflow up: CLIPFLOW_UP_{name.upper()}={raw!r} is not a valid {kind.__name__}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def recorded(cls, fallback: StackSettings) -> StackSettings:
        """The settings ``up`` recorded in the state directory (``down`` and ``status`` use the same ports)."""
        try:
            raw = json.loads((fallback.state_dir / "stack.json").read_text())
        except (OSError, ValueError):
            return fallback
        return cls(**{**raw, "state_dir": fallback.state_dir})

    def record(self) -> None:
        values = {k: v for k, v in self.__dict__.items() if k != "state_dir"}
        (self.state_dir / "stack.json").write_text(json.dumps(values, indent=1))

    @property
    def api_host(self) -> str:
        """Where this machine's clients reach the Prefect server (bound to ``host``)."""
        return _client_host(self.host)

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.prefect_port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://{self.api_host}:{self.prefect_port}"

    @property
    def emulator_url(self) -> str:
        return f"http://{LOOPBACK}:{self.emulator_port}"

    @property
    def callbacks_url(self) -> str:
        return f"http://{LOOPBACK}:{self.callbacks_port}"

    @property
    def s3_url(self) -> str:
        return f"http://{LOOPBACK}:{self.s3_port}"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    def client_env(self) -> dict[str, str]:
        """The environment every clipflow/Prefect command of this stack runs with (printed by ``up``)."""
        return {
            "PREFECT_API_URL": self.api_url,
            "PREFECT_HOME": str((self.state_dir / "prefect").resolve()),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "CLIPFLOW_TIME_SCALE": str(self.time_scale),
            "CLIPFLOW_CALLBACKS": "true",  # waits end on the emulator's callbacks (through the receiver)
            "CLIPFLOW_LOCK_DIR": str((self.state_dir / "locks").resolve()),
            "CLIPFLOW_VOLC_ACCESS_KEY": DEMO_ACCESS_KEY,
            "CLIPFLOW_VOLC_SECRET_KEY": DEMO_SECRET_KEY,
            "CLIPFLOW_VOD_ENDPOINT": self.emulator_url,
            "CLIPFLOW_VISUAL_ENDPOINT": self.emulator_url,
            "CLIPFLOW_GATEWAY_URL": self.emulator_url,
            "CLIPFLOW_GATEWAY_KEY": DEMO_GATEWAY_KEY,
            "CLIPFLOW_S3_ENDPOINT": self.s3_url,
            "CLIPFLOW_S3_BUCKET": self.bucket,
            "CLIPFLOW_S3_REGION": "us-east-1",
            "CLIPFLOW_S3_ACCESS_KEY": S3_KEYS,
            "CLIPFLOW_S3_SECRET_KEY": S3_KEYS,
        }


def _client_host(host: str) -> str:
    bare = host.strip().strip("[]")
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        return bare or LOOPBACK
    if address.is_unspecified:
        return LOOPBACK  # bound to every interface: this machine reaches it on loopback
    return f"[{bare}]" if address.version == 6 else bare


def is_loopback(host: str) -> bool:
    bare = host.strip().strip("[]").lower().rstrip(".")
    if bare == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def exposure_problem(host: str, env: dict[str, str] | None = None) -> str | None:
    """Why ``up --host host`` must not start: a Prefect API reachable from other machines without API auth
    hands every block's secrets to anyone who can reach it. None for loopback, or with auth configured."""
    if is_loopback(host):
        return None
    env = dict(os.environ if env is None else env)
    missing = [name for name in (SERVER_AUTH, CLIENT_AUTH) if not env.get(name)]
    if missing:
        return (
            f"--host {host} would expose the Prefect API beyond this machine, and anyone who reaches it can read "
            "every block's secrets (the Volcengine keys, the gateway key, the S3 keys) and start paid runs. Set "
            f"{' and '.join(missing)} (both to the same user:password) first, and put a TLS reverse proxy in front "
            "(docs/operations.md, production setup). The emulator and S3 stay on 127.0.0.1 either way."
        )
    if env[SERVER_AUTH] != env[CLIENT_AUTH]:
        return f"{SERVER_AUTH} and {CLIENT_AUTH} differ: the worker and clipflow's own calls would be refused"
    return None


def auth_headers() -> dict[str, str]:
    """Basic auth for clipflow's own REST calls when the stack's API requires it (as Prefect's client sends)."""
    import base64

    auth = os.environ.get(CLIENT_AUTH)
    return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}

