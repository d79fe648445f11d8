"""From a fresh copy of the checkout: `make up`, a run started over REST completes, its results are fetched the
README's way (`clipflow result`), `make up` again is a no-op, `make up` after a person changed things keeps them
(`--reset` puts the demo back and says what it overwrote), and `make down` leaves no process and no port behind.

The copy holds exactly what a clone would (tracked and new, non-ignored files), so the test sees the README's
world: no .venv, no state. uv comes from PATH (the suite's own), as the Makefile allows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.services import clean_env, free_port, tail
from tests.readme import bash_block, shell_functions

REPO = Path(__file__).resolve().parents[2]
UV_DIR = REPO / ".tools" / "bin"


def _copy_checkout(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO, check=True,
        capture_output=True,
    ).stdout.decode().split("\0")
    for name in filter(None, files):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:  # a zombie waiting for an init that does not reap counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _make(clone: Path, target: str, env: dict[str, str], args: str = "", timeout: float = 900) -> str:
    done = subprocess.run(
        ["make", "--no-print-directory", target, f"ARGS={args}"], cwd=clone, env=env, capture_output=True,
        text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )
    if done.returncode:
        logs = "\n".join(f"--- {p.name}\n{tail(p, 25)}" for p in sorted((clone / ".clipflow" / "logs").glob("*.log")))
        raise AssertionError(f"make {target} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}\n{logs}")
    return done.stdout


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_make_up_run_over_rest_fetch_results_make_down(tmp_path: Path) -> None:
    clone = tmp_path / "clipflow"
    _copy_checkout(clone)
    ports = {"prefect": free_port(), "emulator": free_port(), "s3": free_port(), "callbacks": free_port()}
    args = (f"--prefect-port {ports['prefect']} --emulator-port {ports['emulator']} --s3-port {ports['s3']} "
            f"--callbacks-port {ports['callbacks']}")
    env = clean_env(PATH=f"{UV_DIR}{os.pathsep}{os.environ['PATH']}")
    api_url = f"http://127.0.0.1:{ports['prefect']}/api"
    try:
        out = _make(clone, "up", env, args)
        assert f"http://127.0.0.1:{ports['prefect']}" in out, out
        assert "nightly schedule: paused" in out, out

        # Re-running is safe: everything is found running, nothing is started twice or written over.
        again = _make(clone, "up", env, args, timeout=600)
        assert "starting" not in again and again.count("already running") == 5, again
        assert "blocks: kept" in again and "deploy: prefect.yaml" not in again, again
        assert "nightly schedule: left as it was (paused)" in again, again

        with httpx.Client(base_url=api_url, timeout=30) as api:
            nightly = api.get("/deployments/name/produce-batch/nightly-batch").json()
            assert nightly["schedules"] and not any(s["active"] for s in nightly["schedules"]), nightly["schedules"]
            deployment = api.get("/deployments/name/produce-video/produce-video").json()
            run = api.post(f"/deployments/{deployment['id']}/create_flow_run", json={"parameters": {"request": {
                "title": "upcheck", "clip": {"prompt": "a lighthouse at dusk"},
                "translate": {"target_languages": ["en"]},
            }}})
            assert run.status_code == 201, run.text
            run_id = run.json()["id"]
            deadline = time.monotonic() + 600
            while True:
                state = api.get(f"/flow_runs/{run_id}").json()["state"]
                if state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                    break
                assert time.monotonic() < deadline, f"run {run_id} still {state['name']} after 600 s: " + tail(
                    clone / ".clipflow" / "logs" / "worker.log", 40)
                time.sleep(2)
            assert state["type"] == "COMPLETED", (state, tail(clone / ".clipflow" / "logs" / "worker.log", 60))

        fetched = subprocess.run(
            [str(clone / ".venv" / "bin" / "clipflow"), "result", run_id, "--json"], cwd=clone,
            env={**env, "PREFECT_API_URL": api_url}, capture_output=True, text=True, timeout=120,
        )
        assert fetched.returncode == 0, fetched.stderr
        result = json.loads(fetched.stdout)  # --json: only JSON on stdout
        production = result["result"]
        assert production["title"] == "upcheck" and production["status"] == "succeeded"
        assert production["clip"]["imported"]["vid"] and production["transcode"]["outputs"]
        assert [lang["language"] for lang in production["languages"]] == ["en"]
        assert production["languages"][0]["srt_key"]
        kinds = {a["key"].rsplit("-", 1)[-1] for a in result["artifacts"]}
        assert {"production", "languages", "renditions"} <= kinds, result["artifacts"]  # subflows' too
        assert all(a["key"] for a in result["artifacts"]), result["artifacts"]

        _make_up_keeps_what_a_person_set(clone, env, args, ports)
        _readme_rest_snippets(clone, env, api_url)
    finally:
        pids = [json.loads(p.read_text())["pid"] for p in (clone / ".clipflow").glob("*.pid")]
        down = subprocess.run(
            ["make", "--no-print-directory", "down"], cwd=clone, env=env, capture_output=True, text=True, timeout=180,
        )
    assert down.returncode == 0, down.stdout + down.stderr
    assert len(pids) == 5, pids  # prefect, emulator, s3, callbacks receiver, worker
    still = [pid for pid in pids if _alive(pid)]
    assert not still, f"processes left behind: {still}"
    busy = [name for name, port in ports.items() if _listening(port)]
    assert not busy, f"ports still listening: {busy}"


def _block(api: httpx.Client, slug: str) -> dict:
    answer = api.get(f"/block_types/slug/{slug}/block_documents/name/clipflow")
    answer.raise_for_status()
    return answer.json()["data"]


def _make_up_keeps_what_a_person_set(clone: Path, env: dict[str, str], args: str, ports: dict[str, int]) -> None:
    """A person saves blocks with `clipflow setup` (another bucket, other gateway models), resumes the nightly
    schedule and edits a deployment: `make up` keeps all of it and says so; `make up ARGS=--reset` restores the demo
    configuration and says what it overwrote."""
    import boto3

    from flows.app.stack_settings import StackSettings

    stack = StackSettings(state_dir=clone / ".clipflow", prefect_port=ports["prefect"],
                          emulator_port=ports["emulator"], s3_port=ports["s3"])
    boto3.client("s3", endpoint_url=stack.s3_url, region_name="us-east-1", aws_access_key_id="local",
                 aws_secret_access_key="local").create_bucket(Bucket="user-bucket")
    user_env = {**env, **stack.client_env(), "CLIPFLOW_S3_BUCKET": "user-bucket", "CLIPFLOW_GATEWAY_MODELS": "veo3.1"}
    setup = subprocess.run([str(clone / ".venv" / "bin" / "clipflow"), "setup"], cwd=clone, env=user_env,
                           capture_output=True, text=True, timeout=300)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    with httpx.Client(base_url=stack.api_url, timeout=30) as api:
        nightly = api.get("/deployments/name/produce-batch/nightly-batch").json()
        for schedule in nightly["schedules"]:
            api.patch(f"/deployments/{nightly['id']}/schedules/{schedule['id']}", json={"active": True}).raise_for_status()
        translate = api.get("/deployments/name/ai-translate/translate-video").json()
        api.patch(f"/deployments/{translate['id']}", json={"description": "edited by a person"}).raise_for_status()

    kept = _make(clone, "up", env, args, timeout=600)
    assert "blocks: kept volcengine-credentials/clipflow, video-gateway-credentials/clipflow, s3-bucket/clipflow" in kept, kept
    assert "deployments: kept produce-video" in kept and "deploy: prefect.yaml" not in kept, kept
    assert "nightly schedule: left as it was (active)" in kept and "--reset" in kept, kept
    with httpx.Client(base_url=stack.api_url, timeout=30) as api:
        assert _block(api, "s3-bucket")["bucket_name"] == "user-bucket"
        assert _block(api, "video-gateway-credentials")["models"] == ["veo3.1"]
        nightly = api.get("/deployments/name/produce-batch/nightly-batch").json()
        assert all(s["active"] for s in nightly["schedules"]), nightly["schedules"]
        assert api.get("/deployments/name/ai-translate/translate-video").json()["description"] == "edited by a person"

    reset = _make(clone, "up", env, f"{args} --reset", timeout=600)
    assert "blocks: overwrote volcengine-credentials/clipflow, video-gateway-credentials/clipflow, s3-bucket/clipflow" in reset, reset
    assert "deployments: redeployed produce-video, translate-video" in reset, reset
    assert "nightly schedule: paused again (it was active)" in reset, reset
    with httpx.Client(base_url=stack.api_url, timeout=30) as api:
        assert _block(api, "s3-bucket")["bucket_name"] == "clipflow-local"
        assert _block(api, "video-gateway-credentials")["models"] != ["veo3.1"]
        nightly = api.get("/deployments/name/produce-batch/nightly-batch").json()
        assert nightly["schedules"] and not any(s["active"] for s in nightly["schedules"]), nightly["schedules"]
        assert api.get("/deployments/name/ai-translate/translate-video").json()["description"] != "edited by a person"


def _readme_block(clone: Path, heading: str) -> str:
    """The first ```bash block of the clone's README after ``heading``: the snippet a reader copies."""
    return bash_block((clone / "README.md").read_text(encoding="utf-8"), heading)


def _bash(clone: Path, env: dict[str, str], script: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", script], cwd=clone, env=env, capture_output=True, text=True, timeout=timeout)


def _readme_rest_snippets(clone: Path, env: dict[str, str], api_url: str) -> None:
    """The README's REST snippets, run as a reader would against this stack: a refused parameter stops the
    snippet with the field; a run with a review stops the wait at PAUSED naming the review artifact; a
    contradictory answer is refused (REJECT, the field named) and the run stays paused; approve finishes it."""
    run_one = _readme_block(clone, "**Over REST**").replace("http://127.0.0.1:4200/api", api_url)
    request = '"translate": {"target_languages": ["en", "ja"]}'
    assert request in run_one, run_one

    refused = _bash(clone, env, run_one.replace(request, '"translate": {"target_languages": ["en", "xx"]}'), 120)
    assert refused.returncode == 1, (refused.stdout, refused.stderr)
    assert "refused:" in refused.stderr and "target_languages" in refused.stderr, refused.stderr

    review = '"translate": {"target_languages": ["en"], "review": "after_translation"}'
    paused = _bash(clone, env, run_one.replace(request, review) + '\necho "RUN=$RUN"')
    assert "is waiting for a person: review artifact review-" in paused.stdout, (paused.stdout, paused.stderr)
    run_id = re.search(r"^RUN=(\S+)$", paused.stdout, re.M).group(1)

    helpers = shell_functions(run_one, "post", "wait_run")
    answer = _readme_block(clone, "A person in the loop")
    edit = '{"action": "edit", "edits": [{"id": "UTTERANCE_ID", "text": "The corrected line", "volume": 80}]}'
    assert edit in answer, answer
    prelude = f"API={api_url}\nRUN={run_id}\n{helpers}\n"
    contradictory = _bash(clone, env, prelude + answer.replace(edit, edit.replace('"edit"', '"approve"')), 120)
    assert contradictory.returncode == 1 and contradictory.stdout.startswith("REJECT"), contradictory.stdout
    assert "'edits'" in contradictory.stdout, contradictory.stdout
    with httpx.Client(base_url=api_url, timeout=30) as api:
        assert api.get(f"/flow_runs/{run_id}").json()["state"]["type"] == "PAUSED"
    approved = _bash(clone, env, prelude + answer.replace(edit, '{"action": "approve"}'))
    assert approved.returncode == 0 and approved.stdout.startswith("ACCEPT"), (approved.stdout, approved.stderr)
    with httpx.Client(base_url=api_url, timeout=30) as api:
        assert api.get(f"/flow_runs/{run_id}").json()["state"]["type"] == "COMPLETED"
