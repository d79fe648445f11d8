"""`clipflow journal`: an operator resolves a lost Jimeng answer through the real CLI, against the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from flows.models import ClipSpec, JimengClipSpec
from flows.engine.journal import DuplicateSubmitRiskError
from flows.stages.generate import generate_clip
from tests.harness import Pipeline

pytestmark = pytest.mark.slow

CLIPFLOW = str(Path(sys.executable).parent / "clipflow")


def cli(prefect_api: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    # stdin is no terminal: a release must be confirmed with --yes, never wait for an answer
    return subprocess.run(
        [CLIPFLOW, "journal", *args], env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )


def submits(pipeline: Pipeline) -> list[dict[str, Any]]:
    return [e for e in pipeline.emulator.ledger() if e["action"] == "CVSync2AsyncSubmitTask"]


async def lost_clip(pipeline: Pipeline) -> tuple[ClipSpec, str]:
    """A clip whose submit answer is dropped: the flow stops, billed once, and names the fingerprint."""
    pipeline.emulator.set_faults([{"action": "CVSync2AsyncSubmitTask", "drop_after_accept": True, "count": 1}])
    spec = JimengClipSpec(prompt=f"A lighthouse in fog, operator test {uuid.uuid4().hex[:8]}")
    with pytest.raises(DuplicateSubmitRiskError) as lost:
        await generate_clip(spec)
    assert lost.value.record is not None
    return spec, lost.value.record.fingerprint


@pytest.mark.timeout(300)
async def test_attach_resumes_the_job_found_in_the_console(pipeline: Pipeline, prefect_api: str) -> None:
    spec, fp = await lost_clip(pipeline)

    listed = cli(prefect_api, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = [r for r in json.loads(listed.stdout) if r["fingerprint"] == fp]
    assert row["state"] == "sent" and row["provider"] == "jimeng" and "lighthouse" in row["look_for"]

    [paid] = submits(pipeline)  # what the operator finds in the console
    attached = cli(prefect_api, "attach", fp, paid["job_id"])
    assert attached.returncode == 0, attached.stderr

    clip = await generate_clip(spec)  # resumes that job: nothing paid again

    assert clip.job_id == paid["job_id"]
    assert len(submits(pipeline)) == 1
    assert fp not in cli(prefect_api, "list", "--json").stdout


@pytest.mark.timeout(300)
async def test_release_pays_again_exactly_once(pipeline: Pipeline, prefect_api: str) -> None:
    spec, fp = await lost_clip(pipeline)
    with pytest.raises(DuplicateSubmitRiskError):
        await generate_clip(spec)  # still refused until someone decides
    assert len(submits(pipeline)) == 1

    released = cli(prefect_api, "release", fp, "--yes")
    assert released.returncode == 0, released.stderr
    assert "buys a NEW jimeng CVSync2AsyncSubmitTask" in released.stderr and "lighthouse" in released.stderr

    clip = await generate_clip(spec)

    assert [e["job_id"] for e in submits(pipeline)][1:] == [clip.job_id]
    assert Counter(e["fingerprint"] for e in submits(pipeline)).most_common(1)[0][1] == 2  # the lost one + one new


async def test_refusals_name_what_to_do(prefect_api: str) -> None:
    bad = cli(prefect_api, "attach", "not-a-fingerprint", "job-1")
    assert bad.returncode == 2 and "64 lower-case hex" in bad.stderr
    missing = cli(prefect_api, "release", "0" * 64)
    assert missing.returncode == 2 and "clipflow journal list" in missing.stderr
