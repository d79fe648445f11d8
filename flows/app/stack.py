"""``clipflow up`` / ``clipflow down``: a full local stack from a fresh clone, in one command.

``up`` starts, each only when it is not already running and healthy: a Prefect server (SQLite, UI included), the
provider emulator, an S3 server (moto) with its bucket created and checked (a probe object written and deleted),
and a process worker. Then it runs ``clipflow setup`` (blocks, quota limits, work pool, verified), deploys
``prefect.yaml`` and pauses the nightly schedule (a local stack has no manifest for it). Everything it starts is
recorded in one state directory of the checkout (``.clipflow/`` by default, git-ignored): one ``<name>.pid`` file
(pid and process start time, so a recycled pid is never taken for ours) and one ``logs/<name>.log`` per service.
``down`` stops exactly those processes (their whole process groups) and checks that their ports are free.

No variable is needed; every setting is an option or a ``CLIPFLOW_UP_*`` variable (see ``clipflow up --help``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from flows.app.stack_settings import (
    CALLBACK_KEY, LOOPBACK, NIGHTLY, ROOT, S3_KEYS, StackSettings, auth_headers, exposure_problem,
)


def _bin(name: str) -> str:
    """A program of this virtualenv (``make up`` runs without the venv on PATH)."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else name


@dataclass
class Service:
    name: str
    port: int
    argv: list[str]
    health: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    what: str = ""
    host: str = LOOPBACK  # where this machine reaches it (its port checks)


def _http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=2.0).status_code < 500
        except httpx.HTTPError:
            return False

    return check


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def services(s: StackSettings) -> list[Service]:
    env = s.client_env()
    server_env = {
        "PREFECT_HOME": env["PREFECT_HOME"],
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # the UI's default is port 4200; behind a proxy (--host with API auth) the operator's own value is kept
        "PREFECT_UI_API_URL": os.environ.get("PREFECT_UI_API_URL") or s.api_url,
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
    }
    return [
        Service(
            "prefect-server", s.prefect_port,
            [_bin("prefect"), "server", "start", "--host", s.host, "--port", str(s.prefect_port)],
            _http_ok(f"{s.api_url}/health"), server_env, f"Prefect API and UI   {s.ui_url}",
            s.api_host.strip("[]"),
        ),
        Service(
            "callbacks", s.callbacks_port,
            [_bin("clipflow"), "callbacks", "serve", "--host", LOOPBACK, "--port", str(s.callbacks_port)],
            _http_ok(f"{s.callbacks_url}/health"), {**env, "CLIPFLOW_CALLBACK_KEY": CALLBACK_KEY},
            f"callback receiver    {s.callbacks_url}/vod/callbacks",
        ),
        Service(
            "emulator", s.emulator_port,
            [_bin("clipflow"), "emulator", "--host", LOOPBACK, "--port", str(s.emulator_port),
             "--time-scale", str(s.time_scale), "--callback-url", f"{s.callbacks_url}/vod/callbacks",
             "--callback-key", CALLBACK_KEY],
            _http_ok(f"{s.emulator_url}/_emulator/health"), {}, f"provider emulator    {s.emulator_url}",
        ),
        Service(
            "s3", s.s3_port, [_bin("moto_server"), "-H", LOOPBACK, "-p", str(s.s3_port)],
            _http_ok(f"{s.s3_url}/moto-api/"), {}, f"S3 (moto)            {s.s3_url}  bucket {s.bucket}",
        ),
    ]


def worker(s: StackSettings) -> Service:
    return Service(
        "worker", 0, [_bin("prefect"), "worker", "start", "--pool", "clipflow", "--name", "clipflow-local"],
        lambda: True, s.client_env(), "process worker       pool clipflow",
    )


# --- process records ------------------------------------------------------------------------------------------

def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat), None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _pid_file(s: StackSettings, name: str) -> Path:
    return s.state_dir / f"{name}.pid"


def running_pid(s: StackSettings, name: str) -> int | None:
    """The recorded process of ``name`` when it is still that same process."""
    try:
        record = json.loads(_pid_file(s, name).read_text())
    except (OSError, ValueError):
        return None
    pid = int(record["pid"])
    return pid if _start_time(pid) == record["start"] else None


def _start(s: StackSettings, service: Service) -> int:
    s.logs.mkdir(parents=True, exist_ok=True)
    log = open(s.logs / f"{service.name}.log", "ab")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(
        service.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, **service.env}, start_new_session=True, cwd=ROOT,  # survives `make up`; stopped as a group
    )
    log.close()
    _pid_file(s, service.name).write_text(json.dumps({"pid": proc.pid, "start": _start_time(proc.pid)}))
    return proc.pid


def _wait_healthy(s: StackSettings, service: Service, pid: int) -> None:
    deadline = time.monotonic() + s.start_timeout
    while time.monotonic() < deadline:
        if _start_time(pid) is None:
            raise StackError(f"{service.name} exited while starting; see {s.logs / (service.name + '.log')}")
        if service.health():
            return
        time.sleep(0.5)
    raise StackError(
        f"{service.name} did not answer within {s.start_timeout:.0f} s; see {s.logs / (service.name + '.log')}"
    )


class StackError(RuntimeError):
    pass


def ensure_running(s: StackSettings, service: Service, say: Callable[[str], None]) -> None:
    pid = running_pid(s, service.name)
    if pid is not None and service.health():
        say(f"  {service.name}: already running (pid {pid})")
        return
    if pid is None and service.port and _port_open(service.host, service.port):
        raise StackError(
            f"port {service.port} ({service.name}) is taken by a process this stack did not start; stop it or "
            f"choose another port (clipflow up --help)"
        )
    say(f"  {service.name}: starting ...")
    pid = _start(s, service)
    _wait_healthy(s, service, pid)
    say(f"  {service.name}: up (pid {pid})")


# --- the steps after the services -----------------------------------------------------------------------------

def ensure_bucket(s: StackSettings) -> None:
    """Create the bucket and prove it is writable: a probe object written, read back and deleted."""
    import boto3

    s3 = boto3.client(
        "s3", endpoint_url=s.s3_url, region_name="us-east-1", aws_access_key_id=S3_KEYS,
        aws_secret_access_key=S3_KEYS,
    )
    names = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if s.bucket not in names:
        s3.create_bucket(Bucket=s.bucket)
    s3.put_object(Bucket=s.bucket, Key=".clipflow-up-probe", Body=b"ok")
    if s3.get_object(Bucket=s.bucket, Key=".clipflow-up-probe")["Body"].read() != b"ok":
        raise StackError(f"bucket {s.bucket} at {s.s3_url} does not return what was written")
    s3.delete_object(Bucket=s.bucket, Key=".clipflow-up-probe")


def _run(s: StackSettings, step: str, argv: list[str]) -> None:
    log = s.logs / "setup.log"
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        done = subprocess.run(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **s.client_env()}, timeout=600, cwd=ROOT,
        )
    if done.returncode != 0:
        lines = log.read_text(errors="replace").splitlines()[-15:]
        raise StackError(f"{step} failed (exit {done.returncode}); last lines of {log}:\n" + "\n".join(lines))


# A SQLite-backed server answers 503 while its database is locked (its own scheduler writing at the same
# moment); Prefect's client retries these codes, so our few direct REST calls do too.
RETRY_STATUS = frozenset({429, 502, 503})


def _call(api: httpx.Client, method: str, url: str, attempts: int = 8, **kwargs: object) -> httpx.Response:
    """``api.request`` retried with backoff while the server answers a transient status."""
    for attempt in range(attempts):
        answer = api.request(method, url, **kwargs)  # type: ignore[arg-type]
        if answer.status_code not in RETRY_STATUS or attempt == attempts - 1:
            return answer
        time.sleep(min(0.25 * 2**attempt, 4.0))
    raise AssertionError("unreachable")


def pause_schedules(s: StackSettings, deployment: str = NIGHTLY) -> int:
    """Pause ``deployment``'s schedules over the REST API; returns how many were active."""
    with httpx.Client(base_url=s.api_url, timeout=30.0, headers=auth_headers()) as api:
        found = _call(api, "GET", f"/deployments/name/{deployment}")
        if found.status_code == 404:
            return 0
        found.raise_for_status()
        body = found.json()
        paused = 0
        for schedule in body.get("schedules", []):
            if schedule.get("active"):
                _call(
                    api, "PATCH", f"/deployments/{body['id']}/schedules/{schedule['id']}", json={"active": False}
                ).raise_for_status()
                paused += 1
        # runs the scheduler created before the pause would still start at their time
        runs = _call(api, "POST", "/flow_runs/filter", json={
            "deployments": {"id": {"any_": [body["id"]]}}, "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
        })
        runs.raise_for_status()
        for run in runs.json():
            _call(api, "DELETE", f"/flow_runs/{run['id']}")
        return paused


# --- what a person may have changed since the last `up` -----------------------------------------------------

BLOCK_NAME = "clipflow"
BLOCK_SLUGS = ("volcengine-credentials", "video-gateway-credentials", "s3-bucket")  # what `clipflow setup` saves


def _api(s: StackSettings) -> httpx.Client:
    return httpx.Client(base_url=s.api_url, timeout=30.0, headers=auth_headers())


def saved_blocks(s: StackSettings) -> list[str]:
    """The blocks ``clipflow setup`` writes that are already saved (``slug/name``)."""
    found = []
    with _api(s) as api:
        for slug in BLOCK_SLUGS:
            answer = _call(api, "GET", f"/block_types/slug/{slug}/block_documents/name/{BLOCK_NAME}")
            if answer.status_code == 200:
                found.append(f"{slug}/{BLOCK_NAME}")
            elif answer.status_code != 404:
                answer.raise_for_status()
    return found


def declared_deployments() -> list[str]:
    """The deployment names ``prefect.yaml`` declares, in its order."""
    import yaml

    data = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    return [d["name"] for d in data.get("deployments") or []]


def existing_deployments(s: StackSettings, names: list[str]) -> list[str]:
    """Which of ``names`` the server has (by name: a person may have edited anything else)."""
    with _api(s) as api:
        answer = _call(api, "POST", "/deployments/filter", json={"deployments": {"name": {"any_": names}}})
        answer.raise_for_status()
        present = {d["name"] for d in answer.json()}
    return [n for n in names if n in present]


def schedule_active(s: StackSettings, deployment: str = NIGHTLY) -> bool:
    with _api(s) as api:
        found = _call(api, "GET", f"/deployments/name/{deployment}")
        if found.status_code == 404:
            return False
        found.raise_for_status()
        return any(schedule.get("active") for schedule in found.json().get("schedules", []))


def configure(s: StackSettings, say: Callable[[str], None], *, reset: bool = False) -> None:
    """Blocks, quota limits, work pool and deployments. Only what is missing is created: blocks a person saved
    (``clipflow setup`` with real credentials, another bucket), edited deployments and a resumed nightly schedule
    are left as they are. ``reset`` writes the demo configuration over all of it and says what it overwrote."""
    say("  setup: blocks, quota limits, work pool (verified) ...")
    _run(s, "prefect block register", [_bin("prefect"), "block", "register", "-m", "blocks"])
    blocks = saved_blocks(s)
    _run(s, "clipflow setup", [_bin("clipflow"), "setup", "--example-prices", *([] if reset else ["--keep-existing"])])
    created = [f"{slug}/{BLOCK_NAME}" for slug in BLOCK_SLUGS if f"{slug}/{BLOCK_NAME}" not in blocks]
    if blocks and reset:
        say(f"  blocks: overwrote {', '.join(blocks)} with the demo's (emulator keys, bucket {s.bucket})")
    elif blocks:
        say(f"  blocks: kept {', '.join(blocks)} as they were")
    created = [b for b in created if b in saved_blocks(s)]  # no gateway block when none is configured
    if created:
        say(f"  blocks: created {', '.join(created)} (demo keys, bucket {s.bucket})")

    declared = declared_deployments()
    present = existing_deployments(s, declared)
    wanted = declared if reset else [n for n in declared if n not in present]
    nightly = NIGHTLY.split("/", 1)[1]
    was_active = schedule_active(s) if nightly in present else False
    if wanted:
        say("  deploy: prefect.yaml ...")
        names = ["--all"] if wanted == declared else [arg for n in wanted for arg in ("--name", n)]
        _run(s, "prefect deploy", [_bin("prefect"), "--no-prompt", "deploy", *names])
    overwritten = [n for n in wanted if n in present]
    if overwritten:
        say(f"  deployments: redeployed {', '.join(overwritten)} from prefect.yaml (edits made since are overwritten)")
    if new := [n for n in wanted if n not in present]:
        say(f"  deployments: created {', '.join(new)}")
    if kept := [n for n in present if n not in wanted]:
        say(f"  deployments: kept {', '.join(kept)} as they were")
    if nightly in wanted:
        pause_schedules(s)
        again = " again (it was active)" if was_active and reset else ""
        say(f"  nightly schedule: paused{again} — resume it in the UI when you want it")
    else:
        say(f"  nightly schedule: left as it was ({'active' if was_active else 'paused'})")
    if not reset and (blocks or kept):
        say("  (what existed was left as it is; `make up ARGS=--reset` puts the demo configuration back over it)")


def up(s: StackSettings, say: Callable[[str], None] = print, *, reset: bool = False) -> int:
    problem = exposure_problem(s.host)
    if problem:  # before anything starts or binds
        say(f"clipflow up: {problem}")
        return 1
    s.state_dir.mkdir(parents=True, exist_ok=True)
    s.logs.mkdir(parents=True, exist_ok=True)
    previous = StackSettings.recorded(s)
    if previous != s and any(running_pid(previous, x.name) for x in [*services(previous), worker(previous)]):
        say(f"clipflow up: a stack with other settings is running from {s.state_dir}/; `clipflow down` it first")
        return 1
    s.record()
    try:
        say(f"clipflow up: state and logs in {s.state_dir}/")
        for service in services(s):
            ensure_running(s, service, say)
        ensure_bucket(s)
        say(f"  bucket {s.bucket}: exists, writable")
        configure(s, say, reset=reset)
        ensure_running(s, worker(s), say)
    except StackError as exc:
        say(f"clipflow up: {exc}")
        return 1
    say("")
    say("Running:")
    for service in [*services(s), worker(s)]:
        say(f"  {service.what}  (pid {running_pid(s, service.name)}, log {s.logs / (service.name + '.log')})")
    say("")
    say(f"Open the UI: {s.ui_url}  →  Deployments → produce-video → Run → Custom run")
    say("Use the CLI or REST against this stack:")
    say(f"  export PREFECT_API_URL={s.api_url}")
    say("Stop everything: make down   (or .venv/bin/clipflow down)")
    return 0


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop(pid: int, grace: float) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:  # reap it when it is our child (it is not after `make up` returned)
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            if not _group_alive(pid):
                return
            time.sleep(0.2)


def down(s: StackSettings, say: Callable[[str], None] = print) -> int:
    stopped = 0
    for service in [worker(s), *reversed(services(s))]:  # the worker first: it must not see its API go away
        pid = running_pid(s, service.name)
        if pid is not None:
            _stop(pid, grace=15.0)
            stopped += 1
            say(f"  {service.name}: stopped (pid {pid})")
        _pid_file(s, service.name).unlink(missing_ok=True)
    busy = [f"{x.name} port {x.port}" for x in services(s) if _port_open(x.host, x.port)]
    if busy:
        say(f"clipflow down: still listening: {', '.join(busy)} (not started by this stack, or stuck)")
        return 1
    say(f"clipflow down: {stopped} process(es) stopped; state kept in {s.state_dir}/ (delete it for a clean slate)")
    return 0


def status(s: StackSettings) -> Iterator[tuple[str, int | None]]:
    for service in [*services(s), worker(s)]:
        yield service.name, running_pid(s, service.name)

