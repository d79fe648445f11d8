"""From a fresh copy of the checkout: `make up`, a run started over REST completes, its results are fetched the
README's way (`clipflow result`), `make up` again is a no-op, and `make down` leaves no process and no port behind.

The copy holds exactly what a clone would (tracked and new, non-ignored files), so the test sees the README's
world: no .venv, no state. uv comes from PATH (the suite's own), as the Makefile allows.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.services import clean_env, free_port, tail

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
@pytest.mark.timeout(1500)
def test_make_up_run_over_rest_fetch_results_make_down(tmp_path: Path) -> None:
    clone = tmp_path / "clipflow"
    _copy_checkout(clone)
    ports = {"prefect": free_port(), "emulator": free_port(), "s3": free_port()}
    args = f"--prefect-port {ports['prefect']} --emulator-port {ports['emulator']} --s3-port {ports['s3']}"
    env = clean_env(PATH=f"{UV_DIR}{os.pathsep}{os.environ['PATH']}")
    api_url = f"http://127.0.0.1:{ports['prefect']}/api"
    try:
        out = _make(clone, "up", env, args)
        assert f"http://127.0.0.1:{ports['prefect']}" in out, out
        assert "nightly schedule: paused" in out, out

        # Re-running is safe: everything is found running, nothing is started twice.
        again = _make(clone, "up", env, args, timeout=600)
        assert "starting" not in again and again.count("already running") == 4, again

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
    finally:
        pids = [json.loads(p.read_text())["pid"] for p in (clone / ".clipflow").glob("*.pid")]
        down = subprocess.run(
            ["make", "--no-print-directory", "down"], cwd=clone, env=env, capture_output=True, text=True, timeout=180,
        )
    assert down.returncode == 0, down.stdout + down.stderr
    assert len(pids) == 4, pids
    still = [pid for pid in pids if _alive(pid)]
    assert not still, f"processes left behind: {still}"
    busy = [name for name, port in ports.items() if _listening(port)]
    assert not busy, f"ports still listening: {busy}"
