"""The chaos tests' stack and tools: every service in its own process, the batch too, so it can be SIGKILLed.

- the package's PostgreSQL + ``prefect server start`` (tests.harness ``production_server``), with the repossessor
  visiting every 5 s so the concurrency leases of a killed process are reclaimed soon after they expire;
- the emulator (``python -m emulator``) and moto S3 (``moto_server``), each its own process group;
- blocks and quota limits from ``clipflow setup`` (``save_blocks_from_env`` + ``ensure_limits``) with
  ``CLIPFLOW_*`` pointing at the emulator and moto;
- ``Workspace``: one result storage + ``CLIPFLOW_LOCK_DIR`` shared by every run of one test, ``run()`` starts
  ``tests/chaos/run_batch.py`` in its own process group, kills it when ``kill_when`` says so, and is the
  watchdog: past the deadline it fails the test listing the runs and task runs not in a final state, the
  registered quota slots and busy concurrency limits, and the child's log tail.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.testing import EmulatorHandle, emulator_process
from flows.app.demo import demo_env
from tests.e2e import services
from tests.e2e.api import PrefectApi
from tests.e2e.services import BIN, PrefectServer, clean_env, free_port, run_cli, tail

REPO = Path(__file__).resolve().parents[2]
TIME_SCALE = 0.004  # emulator and flows: a nominal 65 s Jimeng job takes ~0.26 s
BUCKET = "clipflow-chaos"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
NOT_FINAL = ["SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING"]
CLIP_SUBMITS = {("jimeng", "CVSync2AsyncSubmitTask"), ("gateway", "create")}  # (provider, ledger/journal action)
VOD_PAID = ("UploadMediaByUrl", "CreateProject", "StartWorkflow", "SubmitAITranslationWorkflow")
# Limits a process holds with a lease across calls: killed while holding one, the next run waits for the lease.
LEASED_JIMENG_LIMITS = ("clipflow-jimeng-jobs", "clipflow-jimeng-cvsync2asyncsubmittask-rate")


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{tail(log)}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} not answering {url} after {timeout:.0f} s:\n{tail(log)}")


def _start(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, env=env or clean_env(), cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    services._stop_group(proc, grace=10)


def start_emulator(time_scale: float, workdir: Path) -> contextlib.AbstractContextManager[EmulatorHandle]:
    """The emulator in its own process, like a remote provider. The fault RNG is seeded (printed) so a failing
    run's fault pattern can be replayed."""
    seed = int.from_bytes(os.urandom(4), "big")
    print(f"chaos: emulator fault_seed={seed}")
    return emulator_process(time_scale=time_scale, fault_seed=seed, env=clean_env(), log_file=workdir / "emulator.log")


@contextlib.contextmanager
def moto_subprocess(workdir: Path) -> Iterator[str]:
    """``moto_server`` from the venv on a free port; yields its endpoint URL."""
    port = free_port()
    log = workdir / "moto.log"
    proc = _start([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], log)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        _wait_http(f"{endpoint}/moto-api/", proc, log, "moto_server")
        yield endpoint
    finally:
        _stop(proc)


def s3_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="chaos", aws_secret_access_key="chaos",
                        region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))


@dataclass
class ChaosStack:
    server: PrefectServer
    api: PrefectApi
    emulator: EmulatorHandle
    s3: Any
    s3_endpoint: str
    bucket: str
    env: dict[str, str]  # PREFECT_API_URL + CLIPFLOW_* (what `clipflow setup` ran with)
    root: Path

    def workspace(self, name: str) -> Workspace:
        """A fresh result storage / journal / lock directory, shared by every run of one test."""
        root = self.root / name
        shared = root / "shared"
        env = dict(
            self.env,
            PREFECT_HOME=str(root / "home"),
            PREFECT_RESULTS_PERSIST_BY_DEFAULT="true",
            PREFECT_LOCAL_STORAGE_PATH=str(shared / "storage"),
            CLIPFLOW_LOCK_DIR=str(shared / "locks"),
            CLIPFLOW_TIME_SCALE=str(TIME_SCALE),
            PYTHONUNBUFFERED="1",
        )
        (root / "runs").mkdir(parents=True, exist_ok=True)
        return Workspace(self, root, env)

    def twin(self, of: Workspace, name: str) -> Workspace:
        """Another worker of ``of``'s cluster: the same result storage, journal and bucket, but its own
        ``PREFECT_HOME`` and ``CLIPFLOW_LOCK_DIR`` (its registry of quota slots), as on another machine."""
        twin = self.workspace(name)
        twin.env["PREFECT_LOCAL_STORAGE_PATH"] = of.env["PREFECT_LOCAL_STORAGE_PATH"]
        return twin

    # --- what the server knows ---------------------------------------------------------------------------

    def limits(self) -> list[dict[str, Any]]:
        response = self.api.http.post("/v2/concurrency_limits/filter", json={"limit": 200})
        response.raise_for_status()
        return response.json()

    def busy_limits(self) -> dict[str, int]:
        return {lim["name"]: lim["active_slots"] for lim in self.limits() if lim.get("active_slots")}

    def wait_limits_free(self, timeout: float) -> dict[str, int]:
        """Wait until no concurrency limit has an active slot (a killed process's leases run out); returns what
        is still busy at the timeout."""
        deadline = time.monotonic() + timeout
        while (busy := self.busy_limits()) and time.monotonic() < deadline:
            time.sleep(2)
        return busy

    def stuck_runs(self, since: dt.datetime) -> str:
        """Flow runs created since ``since`` and their task runs that are not in a final state."""
        after = since.isoformat()  # the killed runs before it stay RUNNING forever: leave them out
        flows = self.api._json("POST", "/flow_runs/filter", json={
            "flow_runs": {"expected_start_time": {"after_": after}}, "sort": "EXPECTED_START_TIME_ASC", "limit": 200,
        })
        names = {f["id"]: f["name"] for f in flows}
        lines = [f"flow runs not final ({sum(f['state_type'] not in FINAL for f in flows)} of {len(flows)}):"]
        lines += [f"  {f['name']}: {f['state_type']} {f['state_name']} ({f['id']})" for f in flows
                  if f["state_type"] not in FINAL]
        tasks: list[dict[str, Any]] = []
        if names:
            for offset in range(0, 2000, 200):
                page = self.api._json("POST", "/task_runs/filter", json={
                    "flow_runs": {"id": {"any_": list(names)}},
                    "task_runs": {"state": {"type": {"any_": NOT_FINAL}}},
                    "sort": "EXPECTED_START_TIME_ASC", "limit": 200, "offset": offset,
                })
                tasks += page
                if len(page) < 200:
                    break
        now = dt.datetime.now(dt.timezone.utc)
        lines.append(f"task runs not final ({len(tasks)}):")
        for t in tasks:
            state = t.get("state") or {}
            ts = state.get("timestamp")
            age = (now - dt.datetime.fromisoformat(ts)).total_seconds() if ts else float("nan")
            lines.append(f"  {names.get(t['flow_run_id'], t['flow_run_id'])} / {t['name']}: {t['state_type']} "
                         f"{t['state_name']} for {age:.0f} s {state.get('message') or ''}".rstrip())
        return "\n".join(lines)

    def clip_sha256(self, uri: str) -> str:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return hashlib.sha256(body).hexdigest()


@contextlib.contextmanager
def chaos_stack(root: Path, server: PrefectServer) -> Iterator[ChaosStack]:
    """``server``: the package's PostgreSQL-backed Prefect server (``postgres_prefect``), whose
    repossessor visits every 5 s."""
    with contextlib.ExitStack() as stack:
        api = PrefectApi(server.api_url)
        stack.callback(api.close)
        emulator = stack.enter_context(start_emulator(TIME_SCALE, root))
        s3_endpoint = stack.enter_context(moto_subprocess(root))
        s3 = s3_client(s3_endpoint)
        s3.create_bucket(Bucket=BUCKET)
        s3.head_bucket(Bucket=BUCKET)  # raises when it is not there
        env = clean_env(
            PREFECT_HOME=str(root / "setup-home"),
            PREFECT_API_URL=server.api_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            **demo_env(emulator, s3_endpoint),
        )
        env.update(CLIPFLOW_S3_ACCESS_KEY="chaos", CLIPFLOW_S3_SECRET_KEY="chaos", CLIPFLOW_S3_BUCKET=BUCKET)
        run_cli([str(BIN / "clipflow"), "setup", "--work-pool", ""], env, REPO)  # blocks + quota limits
        yield ChaosStack(server=server, api=api, emulator=emulator, s3=s3, s3_endpoint=s3_endpoint, bucket=BUCKET,
                         env=env, root=root)


# --- runs of the batch ---------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """What the kill rule sees: the ledger since the test began, this run's part of it, the journal."""

    ledger: list[dict[str, Any]]
    run_ledger: list[dict[str, Any]]
    journal: list[dict[str, Any]]
    stack: ChaosStack

    def billed(self, action: str, *, this_run: bool = False) -> int:
        return sum(e["action"] == action for e in (self.run_ledger if this_run else self.ledger))

    def clip_submits(self, stale_after: float = 10.0) -> tuple[int, int, int]:
        """Journaled clip submits: (answered, lost, in flight). A record without a job id whose call left more
        than ``stale_after`` s ago is lost (its item stopped), a younger one may still be answered."""
        answered = lost = flying = 0
        now = dt.datetime.now(dt.timezone.utc)
        for r in self.journal:
            if (r.get("provider"), r.get("action")) not in CLIP_SUBMITS or r.get("state") in ("refused", "released"):
                continue
            if r.get("job_id"):
                answered += 1
                continue
            sent = dt.datetime.fromisoformat(str(r.get("sent_at") or r.get("at")).replace("Z", "+00:00"))
            if (now - sent).total_seconds() > stale_after:
                lost += 1
            else:
                flying += 1
        return answered, lost, flying

    def counts(self) -> dict[str, int]:
        return dict(Counter(e["action"] for e in self.ledger))


@dataclass
class RunOutcome:
    label: str
    returncode: int | None
    killed: bool
    seconds: float
    result: dict[str, Any] | None
    log: Path
    kill_note: str = ""

    def rows(self) -> list[dict[str, Any]]:
        assert self.result is not None, f"{self.label}: no BatchResult (exit {self.returncode}):\n{tail(self.log)}"
        return self.result["items"]

    def statuses(self) -> dict[int, str]:
        return {row["item"]: row["status"] for row in self.rows()}


KillRule = Callable[[Snapshot], str | None]  # a reason to kill now, or None


@dataclass
class Workspace:
    stack: ChaosStack
    root: Path
    env: dict[str, str]
    ledger_mark: int = 0  # ledger length when the test began
    runs: list[RunOutcome] = field(default_factory=list)

    @property
    def lock_dir(self) -> Path:
        return Path(self.env["CLIPFLOW_LOCK_DIR"])

    @property
    def journal_dir(self) -> Path:
        return Path(self.env["PREFECT_LOCAL_STORAGE_PATH"]) / "clipflow-journal"

    def ledger(self) -> list[dict[str, Any]]:
        return self.stack.emulator.ledger()[self.ledger_mark:]

    def journal(self) -> list[dict[str, Any]]:
        records = []
        for path in sorted(self.journal_dir.glob("*/*.json")):
            try:
                records.append(json.loads(path.read_text()))
            except (OSError, ValueError):  # being written right now
                continue
        return records

    def lock_files(self) -> str:
        registry = self.lock_dir / "leases"
        found = sorted(registry.glob("*")) if registry.exists() else []
        lines = [f"quota slots registered in {registry} ({len(found)}):"]
        for path in found:
            try:
                lines.append(f"  {path.name}: {path.read_text()[:200]}")
            except OSError:
                pass
        return "\n".join(lines)

    def cli(self, *args: str) -> str:
        return run_cli([str(BIN / "clipflow"), *args], self.env, REPO, timeout=120)

    def run(self, items: list[dict[str, Any]], label: str, *, concurrency: int = 8, deadline: float = 240,
            kill_when: KillRule | None = None) -> RunOutcome:
        """One child run of the batch. With ``kill_when``, SIGKILL its process group as soon as the rule gives a
        reason; the run must then be killed before it finishes (else the test fails: the chaos did not happen).
        Past ``deadline`` seconds the watchdog fails the test with what is stuck."""
        runs_dir = self.root / "runs"
        items_file = runs_dir / "items.json"
        items_file.write_text(json.dumps(items))
        result_file = runs_dir / f"{label}.json"
        log = runs_dir / f"{label}.log"
        run_mark = len(self.stack.emulator.ledger())
        started = dt.datetime.now(dt.timezone.utc)
        t0 = time.monotonic()
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.chaos.run_batch", str(items_file), str(result_file), str(concurrency)],
                env=self.env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        killed, note = False, ""
        try:
            while proc.poll() is None:
                if time.monotonic() - t0 > deadline:
                    pytest.fail(self._watchdog_report(label, started, deadline, log), pytrace=False)
                if kill_when is not None:
                    full = self.stack.emulator.ledger()
                    snap = Snapshot(full[self.ledger_mark:], full[run_mark:], self.journal(), self.stack)
                    reason = kill_when(snap)
                    if reason:
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait(timeout=30)
                        killed, note = True, f"{reason}; billed so far {snap.counts()}"
                        print(f"chaos: {label} SIGKILLed after {time.monotonic() - t0:.1f} s: {note}")
                        break
                time.sleep(0.25)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        result = json.loads(result_file.read_text()) if result_file.exists() and not killed else None
        outcome = RunOutcome(label, proc.returncode, killed, time.monotonic() - t0, result, log, note)
        self.runs.append(outcome)
        if kill_when is not None and not killed:
            pytest.fail(f"{label}: the run ended (exit {proc.returncode}) before the kill rule fired; billed "
                        f"{dict(Counter(e['action'] for e in self.ledger()))}\n{tail(log)}", pytrace=False)
        if not killed and result is None:
            pytest.fail(f"{label}: the batch exited {proc.returncode} without a BatchResult:\n{tail(log, 60)}",
                        pytrace=False)
        print(f"chaos: {label} {'killed' if killed else 'finished'} in {outcome.seconds:.1f} s"
              + ("" if killed else f": {Counter(outcome.statuses().values())}"))
        return outcome

    def _watchdog_report(self, label: str, started: dt.datetime, deadline: float, log: Path) -> str:
        parts = [f"WATCHDOG: {label} still running after {deadline:.0f} s"]
        for what, get in (("runs", lambda: self.stack.stuck_runs(started)),
                          ("limits", lambda: f"busy concurrency limits: {self.stack.busy_limits()}"),
                          ("locks", self.lock_files)):
            try:
                parts.append(get())
            except Exception as exc:  # noqa: BLE001 - the report must come out whatever is broken
                parts.append(f"({what} unavailable: {type(exc).__name__}: {exc})")
        parts.append(f"billed: {dict(Counter(e['action'] for e in self.ledger()))}")
        parts.append("earlier runs:\n" + (self.summary() or "  (none)"))
        parts.append(f"--- {log.name} (tail)\n{tail(log, 40)}")
        return "\n".join(parts)

    def summary(self) -> str:
        lines = []
        for r in self.runs:
            what = (f"killed: {r.kill_note}" if r.killed
                    else f"exit {r.returncode}, {dict(Counter(r.statuses().values()))}" if r.result
                    else f"exit {r.returncode}, no result")
            lines.append(f"  {r.label}: {r.seconds:.0f} s, {what}")
        return "\n".join(lines)

    # --- what a finished run recorded ----------------------------------------------------------------------

    def recorded_clip_sha256(self, row: dict[str, Any]) -> tuple[str | None, str]:
        """The sha256 the pipeline recorded for a row's clip (the row's ``clip_sha256``: the stored clip's, as
        the item's ProductionResult has it), else the content-addressed key's name."""
        if row.get("clip_sha256"):
            return row["clip_sha256"], "row clip_sha256"
        key = (row.get("clip") or "").rsplit("/", 1)[-1]
        return (key.removesuffix(".mp4") or None), "key name (row has no clip_sha256)"


def duplicate_bills(ledger: list[dict[str, Any]]) -> dict[tuple[str, str], list[str]]:
    """(action, fingerprint) pairs billed more than once, with their job ids."""
    jobs: dict[tuple[str, str], list[str]] = {}
    for entry in ledger:
        jobs.setdefault((entry["action"], entry["fingerprint"]), []).append(entry["job_id"])
    return {pair: ids for pair, ids in jobs.items() if len(ids) > 1}
