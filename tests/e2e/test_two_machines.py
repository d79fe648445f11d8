"""Workers on two "machines": nothing local is shared, the results and the journal are in the bucket.

Each of the two workers has its own PREFECT_HOME, ``CLIPFLOW_LOCK_DIR`` and local result storage; both run with
``PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK=s3-bucket/clipflow`` (results, cache records and the submission journal in
the bucket). No lock is shared (there is no cache lock at all): the journal's conditional writes in the bucket
alone decide who pays. They serve their own work pool (copies of the session stack's deployments), so the stack's two
one-machine workers take none of these runs. The same production, then the same small batch, is started twice
at once: each of the two runs lands on its own worker, both complete, and the emulator bills every paid action once.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flows.app.block_setup import DEFAULT_BLOCK_NAME
from tests.e2e.api import FINAL
from tests.e2e.conftest import Stack, stop_together
from tests.e2e.services import Worker, tail
from tests.e2e.test_deployments import production_parameters
from tests.e2e.test_workers import ONE_PRODUCTION, assert_billed_once, worker_of

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

POOL = "clipflow-two-machines"
SUFFIX = "-two-machines"
MACHINES = ("machine-a", "machine-b")
RUN_SECONDS = 150.0  # watchdog per pair of runs (a pair takes ~30-60 s on a quiet 2-core machine)


@dataclass
class Machines:
    stack: Stack
    workers: list[Worker]
    local: list[Path]  # each machine's own result storage directory: must stay unused
    deployments: dict[str, dict[str, Any]]  # flow name -> the copy of its deployment on POOL

    def logs(self) -> str:
        return "\n".join(f"--- {w.name} (log tail)\n{tail(w.log, 40)}" for w in self.workers)


def copy_deployment(stack: Stack, flow_name: str, name: str) -> dict[str, Any]:
    """The stack's deployment ``flow_name/name`` again, on POOL and without concurrency limit or schedule."""
    source = stack.api.deployment(flow_name, name)
    body = {
        key: source[key]
        for key in ("flow_id", "entrypoint", "path", "pull_steps", "parameter_openapi_schema", "job_variables",
                    "tags", "enforce_parameter_schema")
        if source.get(key) is not None
    }
    body.update(name=name + SUFFIX, work_pool_name=POOL, parameters={})
    response = stack.api.http.post("/deployments/", json=body)
    response.raise_for_status()
    return response.json()


@pytest.fixture(scope="module")
def machines(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machines]:
    root = tmp_path_factory.mktemp("two-machines")
    with contextlib.ExitStack() as stop:
        template = stack.api.http.get("/work_pools/clipflow").json()["base_job_template"]
        stack.api.http.post("/work_pools/", json={"name": POOL, "type": "process",
                                                  "base_job_template": template}).raise_for_status()
        # removed after the workers stopped: later tests see the stack as prefect.yaml made it
        stop.callback(stack.api.http.delete, f"/work_pools/{POOL}")
        deployments = {
            "produce-video": copy_deployment(stack, "produce-video", "produce-video"),
            "produce-batch": copy_deployment(stack, "produce-batch", "nightly-batch"),
        }
        for deployment in deployments.values():
            stop.callback(stack.api.http.delete, f"/deployments/{deployment['id']}")
        workers: list[Worker] = []
        local: list[Path] = []
        stop.callback(stop_together, workers)  # the workers SIGTERMed together: their shutdowns overlap
        for name in MACHINES:
            home = root / name
            env = {
                **stack.env,
                "PREFECT_HOME": str(home / "prefect"),
                "CLIPFLOW_LOCK_DIR": str(home / "locks"),
                "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),
                "PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK": f"s3-bucket/{DEFAULT_BLOCK_NAME}",
            }
            worker = Worker(name, POOL, env, home / "cwd")
            workers.append(worker)
            worker.start()
            local.append(home / "storage")
        stack.api.wait_workers_online(POOL, list(MACHINES))
        yield Machines(stack, workers, local, deployments)


def race(machines: Machines, flow_name: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    """Two runs of the same thing created at the same moment; both final states, or a watchdog failure that
    says which runs were stuck and what the workers were doing."""
    api = machines.stack.api
    deployment = machines.deployments[flow_name]
    created = [api.create_flow_run(deployment["id"], parameters) for _ in range(2)]
    deadline = time.monotonic() + RUN_SECONDS
    while True:
        runs = [api.flow_run(c["id"]) for c in created]
        if all(r["state"]["type"] in FINAL for r in runs):
            break
        if time.monotonic() > deadline:
            stuck = "\n".join(api.describe(r) for r in runs if r["state"]["type"] not in FINAL)
            pytest.fail(f"watchdog: not final after {RUN_SECONDS:.0f} s:\n{stuck}\n{machines.logs()}")
        time.sleep(1)
    for run in runs:
        assert run["state"]["type"] == "COMPLETED", api.describe(run) + "\n" + machines.logs()
    assert {worker_of(machines.stack, run) for run in runs} == set(MACHINES), "both runs on one machine"
    return runs


def read_bucket_result(stack: Stack, run: dict[str, Any]) -> Any:
    """A run's return value from the bucket (where the result storage block put it)."""
    from prefect.results import ResultRecordMetadata

    meta = ResultRecordMetadata.model_validate(run["state"]["data"])
    assert meta.storage_key and meta.storage_block_id, f"{run['name']}: result not in a storage block: {meta}"
    body = stack.s3.get_object(Bucket=stack.bucket, Key=meta.storage_key)["Body"].read()
    return meta.serializer.loads(body)


def assert_nothing_local(machines: Machines) -> None:
    written = [p for d in machines.local if d.exists() for p in d.rglob("*") if p.is_file()]
    assert not written, f"results written to a machine's local storage instead of the bucket: {written[:5]}"


@pytest.mark.timeout(600)
def test_same_production_on_two_machines(machines: Machines) -> None:
    stack = machines.stack
    _, parameters = production_parameters(["en", "ja"])
    mark = len(stack.emulator.ledger())

    runs = race(machines, "produce-video", parameters)

    first, second = (read_bucket_result(stack, run) for run in runs)
    assert first.clip.job_id == second.clip.job_id and first.transcode.run_id == second.transcode.run_id
    assert [lang.project_id for lang in first.languages] == [lang.project_id for lang in second.languages]
    billed = stack.ledger_since(mark)
    assert Counter(e["action"] for e in billed) == Counter({**ONE_PRODUCTION, "SubmitAITranslationWorkflow": 2})
    assert_billed_once(billed)
    assert_nothing_local(machines)


@pytest.mark.timeout(600)
def test_same_batch_on_two_machines(machines: Machines) -> None:
    stack = machines.stack
    tag = uuid.uuid4().hex[:8]
    items = [
        {"title": f"two-machines-{tag}-{n}", "clip": {"prompt": f"Item {n} of {tag}: a ferry in the fog"},
         "translate": {"target_languages": ["en"]}}
        for n in (1, 2)
    ]
    mark = len(stack.emulator.ledger())

    runs = race(machines, "produce-batch", {"items": items})

    results = [read_bucket_result(stack, run) for run in runs]
    for result in results:
        assert (result.total, result.succeeded) == (2, 2), result
    assert [i.clip_job_id for i in results[0].items] == [i.clip_job_id for i in results[1].items]
    billed = stack.ledger_since(mark)
    assert Counter(e["action"] for e in billed) == Counter(
        {action: 2 * n for action, n in {**ONE_PRODUCTION, "SubmitAITranslationWorkflow": 1}.items()}
    )
    assert_billed_once(billed)
    assert_nothing_local(machines)
