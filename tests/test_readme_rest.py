"""The README's REST helpers (``post``, ``wait_run``) against a server that is busy first.

A Prefect server on SQLite answers 503 ("Service Unavailable": try again) when its database is locked, and a
busy local stack does so now and then. The Prefect client retries; a reader's shell snippet must too, and must
not print the 503's body in front of the real answer (two JSON documents break the ``python3 -c`` parser).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.readme import bash_block, shell_functions

README = Path(__file__).resolve().parents[1] / "README.md"
BUSY = {"exception_message": "Service Unavailable"}

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (make e2e-deps)")


def _readme_helpers() -> str:
    return shell_functions(bash_block(README.read_text(encoding="utf-8"), "**Over REST**"), "post", "wait_run")


class _BusyThenAnswer(BaseHTTPRequestHandler):
    """Each path answers 503 on its first ``busy`` requests, then its scripted answer; the requests are recorded."""

    answers: dict[str, tuple[int, dict]] = {}
    busy = 1
    seen: list[tuple[str, str, str]] = []

    def _answer(self, method: str) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.seen.append((method, self.path, body))
        tries = sum(1 for _, path, _ in self.seen if path == self.path)
        code, payload = (503, BUSY) if tries <= self.busy else self.answers[self.path]
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def busy_api() -> Iterator[tuple[str, type[_BusyThenAnswer]]]:
    handler = type("Handler", (_BusyThenAnswer,), {"answers": {}, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api", handler
    finally:
        server.shutdown()
        server.server_close()


def _run(api: str, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", f"API={api}\n{_readme_helpers()}\n{script}"],
                          capture_output=True, text=True, timeout=60)


def test_post_repeats_a_busy_answer_and_prints_only_the_real_one(busy_api) -> None:
    api, handler = busy_api
    refusal = {"detail": "Validation failed for field 'request.translate.target_languages.1'"}
    handler.answers["/api/deployments/D/create_flow_run"] = (409, refusal)
    done = _run(api, """post /deployments/D/create_flow_run '{"parameters": {}}'""")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == refusal  # one document: the 503s' bodies were not printed
    assert handler.seen == [("POST", "/api/deployments/D/create_flow_run", '{"parameters": {}}')] * 2


def test_wait_run_rides_over_a_busy_server(busy_api) -> None:
    api, handler = busy_api
    handler.answers["/api/flow_runs/R"] = (200, {"state": {"type": "COMPLETED", "state_details": {}, "message": ""}})
    done = _run(api, "wait_run R")
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert len(handler.seen) == 2

