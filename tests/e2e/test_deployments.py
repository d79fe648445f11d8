"""Deployments from prefect.yaml on a real server: triggered through the REST API, and fired by a schedule."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from typing import Any

import pytest

from flows.outputs.artifacts import artifact_key

from tests.e2e.api import read_result
from tests.e2e.conftest import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DEMO_VID = "v02democlipflowsamplevideo0000"  # seeded by the emulator in space "demo"


def production_parameters(languages: list[str]) -> tuple[str, dict[str, Any]]:
    """A ProductionRequest as JSON that no earlier run has paid for (cache records outlive a run on purpose)."""
    tag = uuid.uuid4().hex[:8]
    request = {
        "title": f"e2e-{tag}",
        "clip": {"provider": "jimeng", "prompt": f"A paper boat on a rainy street, take {tag}"},
        "translate": {"source_language": "zh", "target_languages": languages},
    }
    return tag, {"request": request}


def test_deployments_from_prefect_yaml(stack: Stack) -> None:
    deployed = {d["name"]: d for d in stack.api.deployments()}
    assert set(deployed) == {
        "produce-video", "translate-video", "generate-clips", "nightly-batch", "review-translation", "revise-translation",
        "heal-crashed-run",
    }
    for deployment in deployed.values():
        assert deployment["work_pool_name"] == "clipflow"
        assert deployment["pull_steps"] == [{"deployments.steps.enter_project": {}}]
    # the UI renders a form from this schema: one nested `request` object, and the run's cost cap
    assert list(deployed["produce-video"]["parameter_openapi_schema"]["properties"]) == ["request", "max_cost"]


def test_produce_video_through_the_rest_api(stack: Stack) -> None:
    deployment = stack.api.deployment("produce-video", "produce-video")
    tag, parameters = production_parameters(["en", "ja"])
    mark = len(stack.emulator.ledger())

    created = stack.api.create_flow_run(deployment["id"], parameters)
    run = stack.api.wait_final(created["id"])

    assert run["state"]["type"] == "COMPLETED", stack.api.describe(run) + "\n" + stack.worker_logs()
    assert run["work_pool_name"] == "clipflow"
    result = read_result(run)
    assert result.status.value == "succeeded"
    assert result.title == f"e2e-{tag}"
    assert [lang.language for lang in result.languages] == ["en", "ja"]
    head = stack.s3.head_object(Bucket=stack.bucket, Key=result.clip.stored.key)
    assert head["ContentLength"] == result.clip.stored.size
    for lang in result.languages:
        assert lang.status.value == "succeeded" and lang.output_vid
        assert stack.s3.get_object(Bucket=stack.bucket, Key=lang.vtt_key)["Body"].read().startswith(b"WEBVTT")

    billed = stack.ledger_since(mark)
    assert Counter(e["action"] for e in billed) == Counter(
        {"CVSync2AsyncSubmitTask": 1, "UploadMediaByUrl": 1, "CreateProject": 1, "StartWorkflow": 1,
         "SubmitAITranslationWorkflow": 2}
    )
    billed_jobs = {e["job_id"] for e in billed}
    assert {result.clip.job_id, result.transcode.run_id, *(lang.project_id for lang in result.languages)} <= billed_jobs

    keys = {a["key"] for a in stack.api.artifacts(run["id"])}
    vid = result.clip.imported.vid  # keys are unique per production: the same title twice keeps both
    assert {artifact_key(f"e2e-{tag}", "production", of=vid), artifact_key(f"e2e-{tag}", "languages", of=vid)} <= keys


def test_a_schedule_fires_and_a_worker_runs_it(stack: Stack) -> None:
    deployment = stack.api.deployment("ai-translate", "translate-video")
    before = {r["id"] for r in stack.api.flow_runs(deployment["id"])}
    mark = len(stack.emulator.ledger())
    # An hourly interval anchored a few seconds ahead: exactly one run inside the test's window.
    anchor = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=15)
    schedule = {
        "schedule": {"interval": 3600, "anchor_date": anchor.isoformat(), "timezone": "UTC"},
        "active": True,
        "parameters": {"vid": DEMO_VID, "spec": {"target_languages": ["ko"]}},
    }
    response = stack.api.http.post(f"/deployments/{deployment['id']}/schedules", json=[schedule])
    response.raise_for_status()
    schedule_id = response.json()[0]["id"]
    try:
        fired = _wait_for_scheduled_run(stack, deployment["id"], before, anchor)
        run = stack.api.wait_final(fired["id"])
    finally:
        stack.api.http.delete(f"/deployments/{deployment['id']}/schedules/{schedule_id}").raise_for_status()

    assert run["state"]["type"] == "COMPLETED", stack.api.describe(run) + "\n" + stack.worker_logs()
    assert run["parameters"]["vid"] == DEMO_VID
    translated = read_result(run)
    languages = translated.languages
    assert translated.cost is not None  # translate-video's own estimate and spend
    assert [(lang.language, lang.status.value) for lang in languages] == [("ko", "succeeded")]
    assert [e["action"] for e in stack.ledger_since(mark)] == ["SubmitAITranslationWorkflow"]


def test_nightly_batch_has_its_cron(stack: Stack) -> None:
    nightly = {d["name"]: d for d in stack.api.deployments()}["nightly-batch"]
    [schedule] = nightly["schedules"]
    assert schedule["schedule"]["cron"] == "0 2 * * *"
    assert schedule["schedule"]["timezone"]
    assert nightly["parameters"]["manifest_key"].endswith(".jsonl")


def _wait_for_scheduled_run(stack: Stack, deployment_id: str, before: set[str], anchor: dt.datetime) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for run in stack.api.flow_runs(deployment_id):
            if run["id"] not in before and run["auto_scheduled"]:
                expected = dt.datetime.fromisoformat(run["expected_start_time"].replace("Z", "+00:00"))
                assert abs((expected - anchor).total_seconds()) < 1, run["expected_start_time"]
                return run
        time.sleep(1)
    raise AssertionError("the scheduler created no run from the new schedule within 120 s")
