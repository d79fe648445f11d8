"""Run the emulator in a background thread for tests: ``with running_emulator(time_scale=0.01) as emu: ...``."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

from emulator.app import create_app
from emulator.config import EmulatorConfig, FaultRule

TEST_TIME_SCALE = 0.005  # the test fixtures' emulator runs 200x faster than the real providers


class EmulatorHandle:
    """What a test needs: endpoints, credentials, and the admin API as methods."""

    def __init__(self, base_url: str, config: EmulatorConfig) -> None:
        self.base_url = base_url
        self.config = config
        self._admin = httpx.Client(base_url=base_url, timeout=10.0)

    # Same port for everything; the aliases say which client takes which.
    @property
    def vod_endpoint(self) -> str:
        return self.base_url

    @property
    def visual_endpoint(self) -> str:
        return self.base_url

    @property
    def gateway_base_url(self) -> str:
        return self.base_url

    @property
    def access_key(self) -> str:
        return self.config.access_key

    @property
    def secret_key(self) -> str:
        return self.config.secret_key

    @property
    def gateway_key(self) -> str:
        return self.config.gateway_key

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._admin.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def ledger(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_emulator/ledger")

    def reset(self) -> None:
        self._call("POST", "/_emulator/reset")

    def set_faults(self, rules: list[FaultRule | dict[str, Any]] | dict[str, Any] | None = None,
                   **by_action: dict[str, Any]) -> list[dict[str, Any]]:
        """``set_faults([{"action": "StartWorkflow", "error_rate": 1, "count": 1}])`` or
        ``set_faults(StartWorkflow={"latency": 0.2})``. Replaces all rules; ``set_faults([])`` clears."""
        if rules is None:
            rules = {}
        if isinstance(rules, dict):
            rules = {**rules, **by_action}
        payload: Any = (
            [r.model_dump(mode="json") if isinstance(r, FaultRule) else r for r in rules]
            if isinstance(rules, list) else rules
        )
        return self._call("PUT", "/_emulator/faults", json=payload)

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_emulator/faults")

    def configure(self, **patch: Any) -> dict[str, Any]:
        """Change run-time settings (qps, callback_url, time_scale...) until the next reset()."""
        return self._call("PATCH", "/_emulator/config", json=patch)

    def advance(self, seconds: float) -> float:
        """Move the emulated clock forward by ``seconds`` *nominal* seconds (e.g. 3600 = Jimeng URL TTL)."""
        return self._call("POST", "/_emulator/clock/advance", json={"seconds": seconds})["offset"]

    def callbacks(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_emulator/callbacks")

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/_emulator/health")

    def close(self) -> None:
        self._admin.close()


@contextlib.contextmanager
def running_emulator(config: EmulatorConfig | None = None, **overrides: Any) -> Iterator[EmulatorHandle]:
    """Serve the emulator on a free loopback port in a daemon thread; stop it on exit."""
    config = (config or EmulatorConfig()).model_copy(update=overrides) if overrides else (config or EmulatorConfig())
    config = EmulatorConfig.model_validate(config.model_dump())  # validate overrides
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets whose proto says TCP (else ~40 ms per answer)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # bound before the thread starts: no port race
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(
        create_app(config), log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=1,
    ))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="clipflow-emulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("emulator did not start")
        time.sleep(0.01)
    handle = EmulatorHandle(f"http://127.0.0.1:{port}", config)
    try:
        yield handle
    finally:
        handle.close()
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()
