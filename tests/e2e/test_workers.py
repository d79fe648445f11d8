"""Two process workers on one pool, the same work submitted twice at once: every paid item is bought once.

The workers share the result storage (cache records, the submission journal) and ``CLIPFLOW_LOCK_DIR`` (the
registry of quota slots), as two workers on one machine do (tests/e2e/conftest.py); no lock keeps the two runs
apart, the journal makes the second wait on what the first bought. Each runs one flow run at a time (`--limit 1`), so
two runs created together land on different workers.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from typing import Any

import pytest

from tests.e2e.api import read_result
from tests.e2e.conftest import Stack
from tests.e2e.test_deployments import production_parameters

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ONE_PRODUCTION = {"CVSync2AsyncSubmitTask": 1, "UploadMediaByUrl": 1, "CreateProject": 1, "StartWorkflow": 1}


def run_twice_at_once(
    stack: Stack, deployment: dict[str, Any], parameters: dict[str, Any]
) -> tuple[list[dict[str, Any]], set[str]]:
    """Both runs' final states (completed) and the workers that took the two simultaneous runs."""
    created = [stack.api.create_flow_run(deployment["id"], parameters) for _ in range(2)]
    runs = [stack.api.wait_final(c["id"], timeout=300) for c in created]
    workers = {worker_of(stack, run) for run in runs}
    if len(workers) < 2:  # what kept the other worker from taking one: a run it still holds?
        print("runs not final:", [(r["name"], r["state"]["type"]) for r in stack.api.http.post(
            "/flow_runs/filter", json={"flow_runs": {"state": {"type": {"any_": ["RUNNING", "PAUSED", "PENDING"]}}}},
        ).json()], "\n", stack.worker_logs())
    for run in runs:
        assert run["state"]["type"] == "COMPLETED", stack.api.describe(run) + "\n" + stack.worker_logs()
    return runs, workers


def worker_of(stack: Stack, run: dict[str, Any]) -> str:
    for message in stack.api.logs(run["id"]):
        if found := re.match(r"Worker '([^']+)' submitting flow run", message):
            return found.group(1)
    raise AssertionError(f"no worker log line for {run['name']}")


def assert_billed_once(billed: list[dict[str, Any]]) -> None:
    twice = [k for k, n in Counter((e["action"], e["fingerprint"]) for e in billed).items() if n > 1]
    assert not twice, f"billed more than once: {twice}"


def test_same_production_twice_on_two_workers(stack: Stack) -> None:
    deployment = stack.api.deployment("produce-video", "produce-video")
    _, parameters = production_parameters(["en", "ja"])
    mark = len(stack.emulator.ledger())

    runs, workers = run_twice_at_once(stack, deployment, parameters)

    assert workers == {"e2e-worker-1", "e2e-worker-2"}
    first, second = (read_result(run) for run in runs)
    assert first.clip.job_id == second.clip.job_id and first.transcode.run_id == second.transcode.run_id
    assert [lang.project_id for lang in first.languages] == [lang.project_id for lang in second.languages]
    billed = stack.ledger_since(mark)
    assert Counter(e["action"] for e in billed) == Counter({**ONE_PRODUCTION, "SubmitAITranslationWorkflow": 2})
    assert_billed_once(billed)


def test_same_clip_batch_twice_on_two_workers(stack: Stack) -> None:
    deployment = stack.api.deployment("generate-clips", "generate-clips")
    tag = uuid.uuid4().hex[:8]
    specs = [{"provider": "jimeng", "prompt": f"Clip {n} of batch {tag}: lanterns over a river"} for n in range(3)]
    mark = len(stack.emulator.ledger())

    runs, workers = run_twice_at_once(stack, deployment, {"specs": specs})

    assert workers == {"e2e-worker-1", "e2e-worker-2"}
    results = [read_result(run) for run in runs]
    for result in results:
        assert (result.total, result.succeeded) == (3, 3), result
    assert [c.job_id for c in results[0].clips] == [c.job_id for c in results[1].clips]
    billed = stack.ledger_since(mark)
    assert Counter(e["action"] for e in billed) == Counter({"CVSync2AsyncSubmitTask": 3, "UploadMediaByUrl": 3})
    assert_billed_once(billed)


def test_nightly_batch_reads_its_manifest_from_the_bucket(stack: Stack) -> None:
    deployment = stack.api.deployment("produce-batch", "nightly-batch")
    tag = uuid.uuid4().hex[:8]
    items = [
        {"title": f"night-{tag}-{n}", "clip": {"prompt": f"Night item {n} of {tag}: a tram in the snow"},
         "translate": {"target_languages": ["en"]}}
        for n in (1, 2)
    ]
    key = deployment["parameters"]["manifest_key"]
    stack.s3.put_object(Bucket=stack.bucket, Key=key, Body="\n".join(json.dumps(i) for i in items).encode())
    mark = len(stack.emulator.ledger())

    # concurrency_limit 1: the second run waits for the first, then reuses everything it paid for
    runs, _ = run_twice_at_once(stack, deployment, {})

    for run in runs:
        result = read_result(run)
        assert (result.total, result.succeeded) == (2, 2), result
    billed = stack.ledger_since(mark)
    assert Counter(e["action"] for e in billed) == Counter(
        {action: 2 * n for action, n in {**ONE_PRODUCTION, "SubmitAITranslationWorkflow": 1}.items()}
    )
    assert_billed_once(billed)
