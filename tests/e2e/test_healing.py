"""Runs that heal themselves, on the package's real server and process workers (tests/e2e/conftest.py).

A production whose flow process is SIGKILLed (by itself, or with its worker) is marked Crashed — by the worker, or
by the heartbeat Automation `clipflow setup` created — and the `heal-crashed-run` deployment's trigger starts one
successor that resumes the same paid jobs: the emulator's ledger bills each of them once. A run left Cancelling by
a dead process ends Cancelled; a production that crashes every time stops after CLIPFLOW_MAX_SUCCESSORS.
The test stack's Automations use short windows (60 s without heartbeat, 10 s Cancelling; conftest.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prefect.client.orchestration import PrefectClient

from flows.stages.healing import GAVE_UP, GAVE_UP_EVENT, SUCCESSOR_TAG, heal
from tests.e2e.conftest import Stack
from tests.e2e.services import Worker
from tests.e2e.test_deployments import production_parameters
from tests.e2e.test_workers import ONE_PRODUCTION, assert_billed_once

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

T = TypeVar("T")
PRODUCTION = Counter({**ONE_PRODUCTION, "SubmitAITranslationWorkflow": 1})


def wait_for(what: str, check: Callable[[], T | None], timeout: float, explain: Callable[[], str]) -> T:
    """``check()``'s first truthy answer; on timeout an error saying what was awaited and what is stuck."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}\n{explain()}")
        time.sleep(0.2)


def run_pids(run_id: str) -> list[int]:
    """Every process running flow run ``run_id`` (the runner's supervisor and the engine carry its id)."""
    marker = f"PREFECT__FLOW_RUN_ID={run_id}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.decode(errors="replace").split("=", 1) for item in raw.split(b"\0") if b"=" in item)


def kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def ancestors(pid: int) -> Iterator[int]:
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        yield pid


class Watch:
    """One test's runs: created, followed through their successors, described when something is stuck."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.api = stack.api
        self.runs: list[str] = []
        self.mark = len(stack.emulator.ledger())

    def start(self, flow: str, deployment: str, parameters: dict[str, Any]) -> dict[str, Any]:
        run = self.api.create_flow_run(self.api.deployment(flow, deployment)["id"], parameters)
        self.runs.append(run["id"])
        return run

    def explain(self) -> str:
        lines = []
        for run_id in self.runs:
            run = self.api.flow_run(run_id)
            lines.append(f"{run['name']} {run_id}: {run['state']['type']} {run['state'].get('message')!r} "
                         f"tags={run['tags']}")
        heals = self.api.flow_runs(self.api.deployment("heal-crashed-run", "heal-crashed-run")["id"])
        for run in heals[-4:]:
            lines.append(f"heal {run['name']}: {run['state']['type']} {run['parameters']}\n  "
                         + "\n  ".join(self.api.logs(run["id"])[-5:]))
        return "\n".join(lines) + "\n" + self.stack.worker_logs()

    def state(self, run_id: str) -> str:
        return str(self.api.flow_run(run_id)["state"]["type"])

    def wait_state(self, run_id: str, states: set[str], timeout: float) -> dict[str, Any]:
        return wait_for(f"run {run_id} to be {states}",
                        lambda: (run := self.api.flow_run(run_id))["state"]["type"] in states and run,
                        timeout, self.explain)

    def first_paid_submit(self, timeout: float = 60) -> None:
        wait_for("the first paid submit", lambda: self.stack.ledger_since(self.mark), timeout, self.explain)

    def kill_run(self, run_id: str, timeout: float = 30) -> None:
        pids = wait_for(f"the processes of run {run_id}", lambda: run_pids(run_id), timeout, self.explain)
        kill(pids)

    def successor(self, run_id: str, timeout: float) -> dict[str, Any]:
        body = {"flow_runs": {"tags": {"all_": [f"{SUCCESSOR_TAG}{run_id}"]}}}
        found = wait_for(f"a successor of {run_id}",
                         lambda: self.api.http.post("/flow_runs/filter", json=body).json(), timeout, self.explain)
        assert len(found) == 1, [r["name"] for r in found]
        self.runs.append(found[0]["id"])
        return found[0]

    def worker_of(self, run_id: str) -> Worker:
        pids = wait_for(f"the processes of run {run_id}", lambda: run_pids(run_id), 30, self.explain)
        lineage = {a for pid in pids for a in ancestors(pid)}
        [worker] = [w for w in self.stack.workers if w.proc is not None and w.proc.pid in lineage]
        return worker

    def kill_worker(self, worker: Worker, run_id: str) -> None:
        """SIGKILL the worker and every process of its group, and the run's processes wherever they are."""
        assert worker.proc is not None
        pids = run_pids(run_id)
        try:
            os.killpg(worker.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        kill(pids)
        worker.proc.wait(timeout=10)


def assert_successor_completes(watch: Watch, crashed_id: str, timeout: float) -> None:
    successor = watch.successor(crashed_id, timeout=timeout)
    crashed = watch.api.flow_run(crashed_id)
    assert successor["parameters"] == crashed["parameters"]
    done = watch.api.wait_final(successor["id"], timeout=180)
    assert done["state"]["type"] == "COMPLETED", watch.api.describe(done) + "\n" + watch.explain()
    # both runs name each other in an artifact
    for run_id, other in ((crashed_id, successor["id"]), (successor["id"], crashed_id)):
        texts = [a.get("data") or "" for a in watch.api.artifacts(run_id)]
        assert any(other in text and crashed_id in text for text in texts), (run_id, texts)
    billed = watch.stack.ledger_since(watch.mark)
    assert Counter(e["action"] for e in billed) == PRODUCTION, billed
    assert_billed_once(billed)


@pytest.mark.timeout(240)
def test_killed_flow_process_is_resumed_by_one_successor(stack: Stack) -> None:
    watch = Watch(stack)
    _, parameters = production_parameters(["en"])
    run = watch.start("produce-video", "produce-video", parameters)
    watch.first_paid_submit()
    # the flow runs with the deployments' heartbeat frequency (the Automation's window assumes it)
    pids = run_pids(run["id"])
    assert {environ(pid).get("PREFECT_FLOWS_HEARTBEAT_FREQUENCY") for pid in pids} == {"30"}, pids

    watch.kill_run(run["id"])

    crashed = watch.wait_state(run["id"], {"CRASHED", "COMPLETED"}, timeout=60)
    assert crashed["state"]["type"] == "CRASHED", "the run finished before it was killed: " + watch.explain()
    assert_successor_completes(watch, run["id"], timeout=90)

    # the same crash delivered twice more, at once: still the one successor
    async def heal_twice() -> list[Any]:
        async with PrefectClient(api=stack.server.api_url) as client:
            return list(await asyncio.gather(*(heal(client, uuid.UUID(run["id"]), 3) for _ in range(2))))

    successor = watch.successor(run["id"], timeout=1)
    assert {str(o.successor.id) for o in asyncio.run(heal_twice())} == {successor["id"]}
    watch.successor(run["id"], timeout=1)  # asserts there is exactly one


@pytest.mark.timeout(300)
def test_killed_worker_the_run_is_crashed_by_its_heartbeats_and_resumed(stack: Stack) -> None:
    watch = Watch(stack)
    _, parameters = production_parameters(["en"])
    run = watch.start("produce-video", "produce-video", parameters)
    watch.first_paid_submit()
    worker = watch.worker_of(run["id"])

    watch.kill_worker(worker, run["id"])
    worker.start()  # its supervisor starts it again; it knows nothing of the orphaned run

    assert watch.state(run["id"]) == "RUNNING", watch.explain()
    # last heartbeat ≤ 30 s before the kill, 60 s window, the server's 5 s evaluation
    crashed = watch.wait_state(run["id"], {"CRASHED"}, timeout=120)
    assert "heartbeat" in crashed["state"]["message"], crashed["state"]
    assert_successor_completes(watch, run["id"], timeout=90)


@pytest.mark.timeout(180)
def test_cancelling_a_run_whose_process_is_gone_ends_cancelled(stack: Stack) -> None:
    watch = Watch(stack)
    _, parameters = production_parameters(["en"])
    run = watch.start("produce-video", "produce-video", parameters)
    watch.wait_state(run["id"], {"RUNNING"}, timeout=60)
    worker = watch.worker_of(run["id"])
    watch.kill_worker(worker, run["id"])
    worker.start()

    cancelled_at = time.monotonic()
    stack.api.http.post(f"/flow_runs/{run['id']}/set_state",
                        json={"state": {"type": "CANCELLING", "message": "cancelled by the test"}}).raise_for_status()

    done = watch.wait_state(run["id"], {"CANCELLED", "CRASHED", "COMPLETED", "FAILED"}, timeout=60)
    assert done["state"]["type"] == "CANCELLED", watch.explain()
    assert time.monotonic() - cancelled_at < 60
    assert "no process answered" in done["state"]["message"], done["state"]


@pytest.fixture
def max_successors_1(stack: Stack) -> Iterator[None]:
    """CLIPFLOW_MAX_SUCCESSORS=1 in the heal deployment's job variables, as an operator would set it."""
    deployment = stack.api.deployment("heal-crashed-run", "heal-crashed-run")
    before = deployment["job_variables"]
    env = {**before.get("env", {}), "CLIPFLOW_MAX_SUCCESSORS": "1"}
    stack.api.http.patch(f"/deployments/{deployment['id']}",
                         json={"job_variables": {**before, "env": env}}).raise_for_status()
    try:
        yield
    finally:
        stack.api.http.patch(f"/deployments/{deployment['id']}", json={"job_variables": before}).raise_for_status()


@pytest.mark.timeout(240)
def test_a_production_that_always_crashes_gives_up_after_the_limit(stack: Stack, max_successors_1: None) -> None:
    watch = Watch(stack)
    since = dt.datetime.now(dt.timezone.utc).isoformat()
    _, parameters = production_parameters(["en"])
    first = watch.start("produce-video", "produce-video", parameters)
    watch.wait_state(first["id"], {"RUNNING"}, timeout=60)
    watch.kill_run(first["id"])
    second = watch.successor(first["id"], timeout=90)
    watch.wait_state(second["id"], {"RUNNING"}, timeout=60)
    watch.kill_run(second["id"])

    gave_up = wait_for(
        "the gave-up state message",
        lambda: (run := stack.api.flow_run(second["id"]))["state"]["type"] == "CRASHED"
        and (run["state"].get("message") or "").startswith(GAVE_UP) and run,
        90, watch.explain,
    )
    assert "crashed 2 times" in gave_up["state"]["message"], gave_up["state"]
    body = {"filter": {"event": {"name": [GAVE_UP_EVENT]}, "occurred": {"since": since}}, "limit": 10}
    events = wait_for("the gave-up event", lambda: [
        e for e in stack.api.http.post("/events/filter", json=body).json()["events"]
        if e["payload"].get("last_run") == second["id"]
    ], 30, watch.explain)
    assert events[0]["resource"]["prefect.resource.id"] == f"clipflow.production.{first['id']}"
    assert events[0]["payload"]["runs"] == [first["id"], second["id"]]
    body = {"flow_runs": {"tags": {"all_": [f"{SUCCESSOR_TAG}{second['id']}"]}}}
    assert stack.api.http.post("/flow_runs/filter", json=body).json() == [], "a successor past the limit"


@pytest.mark.timeout(120)
def test_a_suspended_run_marked_crashed_by_a_late_heartbeat_is_suspended_again(stack: Stack) -> None:
    """A heartbeat sent just before a run suspends can open the Automation's window: the heal run puts the run
    back to Suspended (its reviewer's answer still resumes it) instead of starting a successor."""
    watch = Watch(stack)
    _, parameters = production_parameters(["en"])
    deployment = stack.api.deployment("produce-video", "produce-video")
    suspended = {"type": "PAUSED", "name": "Suspended", "message": "waiting for a review",
                 "state_details": {"pause_reschedule": True, "pause_key": "review-1"}}
    run = stack.api.create_flow_run(deployment["id"], parameters, state=suspended)
    watch.runs.append(run["id"])
    try:
        stack.api.http.post(f"/flow_runs/{run['id']}/set_state", json={"force": True, "state": {
            "type": "CRASHED", "message": "No heartbeat for 45 s: the flow run's process is gone"}}).raise_for_status()

        again = watch.wait_state(run["id"], {"PAUSED"}, timeout=60)
        assert again["state"]["name"] == "Suspended" and again["state"]["state_details"]["pause_key"] == "review-1"
        body = {"flow_runs": {"tags": {"all_": [f"{SUCCESSOR_TAG}{run['id']}"]}}}
        assert stack.api.http.post("/flow_runs/filter", json=body).json() == []
    finally:
        stack.api.http.post(f"/flow_runs/{run['id']}/set_state",
                            json={"force": True, "state": {"type": "CANCELLED"}}).raise_for_status()


def test_setup_again_keeps_one_automation_of_each_name(stack: Stack) -> None:
    from tests.e2e.conftest import POOL, REPO
    from tests.e2e.services import BIN, run_cli

    out = run_cli([str(BIN / "clipflow"), "setup", "--no-verify", "--work-pool", POOL], stack.env, REPO)

    lines = [line for line in out.splitlines() if line.startswith("automation/")]
    assert lines == ["automation/clipflow: crash runs whose heartbeats stopped",
                     "automation/clipflow: cancel runs whose process is gone"], out
    automations = stack.api.http.post("/automations/filter", json={}).json()
    names = Counter(a["name"] for a in automations)
    assert names["clipflow: crash runs whose heartbeats stopped"] == 1
    assert names["clipflow: cancel runs whose process is gone"] == 1
    assert names["clipflow: resume crashed runs"] == 1  # prefect deploy's, owned by heal-crashed-run
    windows = {a["name"]: a["trigger"]["within"] for a in automations}
    assert windows["clipflow: crash runs whose heartbeats stopped"] == 60
    assert windows["clipflow: cancel runs whose process is gone"] == 10


@pytest.mark.timeout(120)
def test_a_crashed_run_that_was_being_cancelled_gets_no_successor(stack: Stack) -> None:
    watch = Watch(stack)
    _, parameters = production_parameters(["en"])
    deployment = stack.api.deployment("produce-video", "produce-video")
    run = stack.api.create_flow_run(deployment["id"], parameters,
                                    state={"type": "CANCELLING", "message": "cancelled by a person"})
    watch.runs.append(run["id"])
    stack.api.http.post(f"/flow_runs/{run['id']}/set_state", json={"force": True, "state": {
        "type": "CRASHED", "message": "Process exited with status code: -9"}}).raise_for_status()

    heal_deployment = stack.api.deployment("heal-crashed-run", "heal-crashed-run")
    heal = wait_for("the heal run of the crash", lambda: [
        r for r in stack.api.flow_runs(heal_deployment["id"])
        if r["parameters"].get("crashed_run") == f"prefect.flow-run.{run['id']}" and r["state"]["type"] == "COMPLETED"
    ], 60, watch.explain)[0]
    wait_for("the heal run's reason", lambda: any(
        "a deliberate cancel is never resumed" in line for line in stack.api.logs(heal["id"])), 20, watch.explain)
    body = {"flow_runs": {"tags": {"all_": [f"{SUCCESSOR_TAG}{run['id']}"]}}}
    assert stack.api.http.post("/flow_runs/filter", json=body).json() == []
