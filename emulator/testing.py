"""Run the emulator for tests: in a background thread (``running_emulator``) or in its own process
(``emulator_process``), both yielding an ``EmulatorHandle``.

A thread starts in well under a second and shares nothing but the port. Its own process is what a remote
provider is: it does not share this process's GIL (benchmarks) and survives, or can be killed, independently of
the code under test (chaos tests).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from emulator.app import create_app
from emulator.cli import bind
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

    def advance(self, seconds: float = 0.0, *, real_seconds: float = 0.0) -> float:
        """Move the emulated clock forward by ``seconds`` *nominal* seconds (job phases: scaled) plus
        ``real_seconds`` wall-clock ones (lifetimes such as the Jimeng URL's hour are not scaled)."""
        body = {"seconds": seconds, "real_seconds": real_seconds}
        return self._call("POST", "/_emulator/clock/advance", json=body)["offset"]

    def expire(self, job_id: str | None = None) -> list[str]:
        """End the result URL of Jimeng/gateway task ``job_id`` now (every task's when None)."""
        return self._call("POST", "/_emulator/expire", json={} if job_id is None else {"job_id": job_id})["expired"]

    def callbacks(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_emulator/callbacks")

    def calls(self) -> dict[str, int]:
        """Authenticated Volcengine calls answered, by action (status calls included)."""
        return self._call("GET", "/_emulator/calls")

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/_emulator/health")

    def close(self) -> None:
        self._admin.close()


@contextlib.contextmanager
def running_emulator(config: EmulatorConfig | None = None, **overrides: Any) -> Iterator[EmulatorHandle]:
    """Serve the emulator on a free loopback port in a daemon thread; stop it on exit."""
    config = _merged(config, overrides)
    sock = bind("127.0.0.1", 0)  # bound before the thread starts: no port race
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


def _merged(config: EmulatorConfig | None, overrides: dict[str, Any]) -> EmulatorConfig:
    base = config or EmulatorConfig()
    # Through validation: overrides may be plain data (faults as dicts or {"Action": {...}}).
    return EmulatorConfig.model_validate({**base.model_dump(), **overrides})


class EmulatorProcess(EmulatorHandle):
    """An ``EmulatorHandle`` for an emulator in its own process; ``process`` is its ``Popen``."""

    def __init__(self, base_url: str, config: EmulatorConfig, process: subprocess.Popen[bytes], log: Path) -> None:
        super().__init__(base_url, config)
        self.process = process
        self.log_path = log

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        """What the emulator printed so far (start banner, warnings, tracebacks)."""
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def emulator_process(
    config: EmulatorConfig | None = None,
    *,
    port: int = 0,
    env: Mapping[str, str] | None = None,
    log_file: Path | None = None,
    startup_timeout: float = 60.0,
    stop_timeout: float = 10.0,
    log_level: str = "warning",
    **overrides: Any,
) -> Iterator[EmulatorProcess]:
    """Run ``python -m emulator`` as a subprocess (like a remote provider) and yield its handle.

    ``config`` and ``overrides`` (``time_scale=...``, ``faults=[...]``, ``fault_seed=...``, any
    ``EmulatorConfig`` field) go to the child as a JSON config file. ``port=0`` lets the child bind a free port
    and report it back, so no other process can take a port picked here in between. ``env``: the child's
    environment (default: this process's). ``log_file``: where its output goes (default: a temp file; keep one
    to read after a failed run). The child gets its own session, so a Ctrl-C meant for the tests does not kill
    the "provider" first. Ready means ``GET /_emulator/health`` answered 200. On exit: terminate, then kill if
    it has not stopped within ``stop_timeout`` seconds.
    """
    config = _merged(config, overrides)
    with tempfile.TemporaryDirectory(prefix="clipflow-emulator-") as tmp:
        folder = Path(tmp)
        config_file, port_file = folder / "config.json", folder / "port"
        log_file = log_file or folder / "emulator.log"
        # The config holds the emulator's keys: it lives in a private temp dir, removed on exit.
        config_file.write_text(config.model_dump_json(), encoding="utf-8")
        root = Path(__file__).resolve().parents[1]
        base_env = dict(os.environ if env is None else env)
        child_env = {**base_env, "PYTHONUNBUFFERED": "1",
                     "PYTHONPATH": os.pathsep.join(filter(None, [str(root), base_env.get("PYTHONPATH")]))}
        command = [sys.executable, "-m", "emulator", "--host", "127.0.0.1", "--port", str(port),
                   "--port-file", str(port_file), "--config", str(config_file), "--log-level", log_level]
        with log_file.open("wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       cwd=root, env=child_env, start_new_session=True)
        try:
            handle = _wait_ready(process, port_file, log_file, config, startup_timeout)
            try:
                yield handle
            finally:
                handle.close()
        finally:
            _stop(process, stop_timeout)


def _wait_ready(
    process: subprocess.Popen[bytes], port_file: Path, log_file: Path, config: EmulatorConfig, timeout: float
) -> EmulatorProcess:
    deadline = time.monotonic() + timeout
    base_url: str | None = None
    while True:
        if base_url is None and port_file.exists():
            base_url = f"http://127.0.0.1:{int(port_file.read_text(encoding='utf-8'))}"
        if base_url is not None:
            try:
                if httpx.get(f"{base_url}/_emulator/health", timeout=1.0).status_code == 200:
                    return EmulatorProcess(base_url, config, process, log_file)
            except httpx.TransportError:
                pass
        if process.poll() is not None or time.monotonic() > deadline:
            output = log_file.read_text(encoding="utf-8", errors="replace")[-2000:]
            state = f"exited with {process.returncode}" if process.returncode is not None else "not ready in time"
            raise RuntimeError(f"the emulator process {state}; its output:\n{output}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)
