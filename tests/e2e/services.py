"""Real processes for the end-to-end tests: PostgreSQL, `prefect server start`, process workers.

Each is started in its own process group (so stopping it stops its children too) and logs to a file whose tail
goes into the error when it fails to start.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent  # the project's virtualenv: prefect, clipflow
SERVER_STARTUP_SECONDS = 240.0  # 20-30 s on an idle 2-core machine, much more while other tests run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def postgres_bindir() -> Path | None:
    """Debian's server binaries (package postgresql); the highest version when several are installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _stop_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the process group we started, SIGKILL it after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


@dataclass
class Postgres:
    """A throwaway cluster on loopback (trust auth, fsync off). As root it runs as the ``postgres`` user:
    initdb refuses to run as root."""

    bindir: Path
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="clipflow-pg-")))
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "prefect") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr or done.stdout}")

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        os.chmod(self.root, 0o700)
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-sync")
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"),
                      "-w", "-t", "60", "start")
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{tail(self.root / 'log')}") from None
        self._run(str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "-q", "-c", "CREATE DATABASE prefect")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without its Prefect/clipflow settings (tests/conftest.py sets a private
    PREFECT_HOME for in-process tests), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CLIPFLOW_"))}
    env.update(extra)
    return env


@dataclass
class PrefectServer:
    """`prefect server start` on a free loopback port, its database in PostgreSQL."""

    database_url: str
    home: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)  # more server settings

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def log(self) -> Path:
        return self.home / "server.log"

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        env = clean_env(
            PREFECT_HOME=str(self.home),
            PREFECT_API_DATABASE_CONNECTION_URL=self.database_url,
            PREFECT_UI_API_URL=self.api_url,  # the UI's default is port 4200
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            # the deployment scheduler visits every 60 s by default: a schedule made by a test fires sooner
            PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5",
            **self.extra_env,
        )
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        deadline = time.monotonic() + SERVER_STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prefect server exited with {self.proc.returncode}:\n{tail(self.log)}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"prefect server not healthy after {SERVER_STARTUP_SECONDS:.0f} s:\n{tail(self.log)}")

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc, grace=30)


@dataclass
class Worker:
    """`prefect worker start --pool POOL --limit 1` in a directory outside the checkout (the deployment's pull
    step has to find the code), logging to ``log``."""

    name: str
    pool: str
    env: dict[str, str]
    cwd: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.cwd / f"{self.name}.log"

    def start(self) -> None:
        self.cwd.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "prefect"), "worker", "start", "--pool", self.pool, "--name", self.name, "--limit", "1"],
                env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc, grace=20)


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> str:
    """Run a CLI to completion; its output is in the error when it fails."""
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done.stdout
