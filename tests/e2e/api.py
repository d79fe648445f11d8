"""The Prefect REST API over plain httpx: what a person scripting against the server would use."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class PrefectApi:
    def __init__(self, api_url: str) -> None:
        self.http = httpx.Client(base_url=api_url, timeout=30)

    def close(self) -> None:
        self.http.close()

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def deployment(self, flow_name: str, name: str) -> dict[str, Any]:
        return self._json("GET", f"/deployments/name/{flow_name}/{name}")

    def deployments(self) -> list[dict[str, Any]]:
        return self._json("POST", "/deployments/filter", json={})

    def create_flow_run(self, deployment_id: str, parameters: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return self._json(
            "POST", f"/deployments/{deployment_id}/create_flow_run", json={"parameters": parameters, **extra}
        )

    def post_flow_run(self, deployment_id: str, body: dict[str, Any]) -> httpx.Response:
        """``create_flow_run``'s raw answer: a refusal (HTTP 409) is an answer to look at, not an error."""
        return self.http.post(f"/deployments/{deployment_id}/create_flow_run", json=body)

    def count_flow_runs(self, deployment_id: str) -> int:
        body = {"flow_runs": {"deployment_id": {"any_": [deployment_id]}}}
        return int(self._json("POST", "/flow_runs/count", json=body))

    def flow_run(self, flow_run_id: str) -> dict[str, Any]:
        return self._json("GET", f"/flow_runs/{flow_run_id}")

    def flow_runs(self, deployment_id: str) -> list[dict[str, Any]]:
        body = {"flow_runs": {"deployment_id": {"any_": [deployment_id]}}, "sort": "EXPECTED_START_TIME_ASC"}
        return self._json("POST", "/flow_runs/filter", json=body)

    def flow_run_by_name(self, name: str) -> dict[str, Any]:
        [run] = self._json("POST", "/flow_runs/filter", json={"flow_runs": {"name": {"any_": [name]}}})
        return run

    def logs(self, flow_run_id: str) -> list[str]:
        body = {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "sort": "TIMESTAMP_ASC", "limit": 200}
        return [entry["message"] for entry in self._json("POST", "/logs/filter", json=body)]

    def artifacts(self, flow_run_id: str) -> list[dict[str, Any]]:
        body = {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}
        return self._json("POST", "/artifacts/filter", json=body)

    def wait_final(self, flow_run_id: str, timeout: float = 240) -> dict[str, Any]:
        """Poll until the run reaches a final state; on timeout the error carries its state and logs."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.flow_run(flow_run_id)
            if run["state"]["type"] in FINAL:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"flow run {run['name']} still {run['state']['type']} after {timeout:.0f} s; logs:\n"
                    + "\n".join(self.logs(flow_run_id)[-30:])
                )
            time.sleep(1)

    def wait_workers_online(self, pool: str, names: list[str], timeout: float = 180) -> None:
        """Until every worker of ``names`` has reported to ``pool`` (its first heartbeat comes just before its first
        poll): a race between workers is only a race once each of them is taking runs."""
        deadline = time.monotonic() + timeout
        while True:
            workers = self._json("POST", f"/work_pools/{pool}/workers/filter", json={})
            online = {w["name"] for w in workers if w.get("status") == "ONLINE"}
            if set(names) <= online:
                return
            if time.monotonic() > deadline:
                missing = sorted(set(names) - online)
                raise AssertionError(f"workers {missing} of {pool} not online after {timeout:.0f} s")
            time.sleep(0.5)

    def describe(self, run: dict[str, Any]) -> str:
        """State, message and logs of a run, for assertion messages."""
        state = run["state"]
        return f"{run['name']}: {state['type']} {state.get('message')}\n" + "\n".join(self.logs(run["id"])[-40:])


def read_result(run: dict[str, Any]) -> Any:
    """The run's return value from the result storage the workers share (persisted by the deployment's
    PREFECT_RESULTS_PERSIST_BY_DEFAULT; the state only holds its address and serializer)."""
    from prefect.results import ResultRecordMetadata

    meta = ResultRecordMetadata.model_validate(run["state"]["data"])
    assert meta.storage_key, f"no persisted result for {run['name']}: {run['state']['data']}"
    return meta.serializer.loads(Path(meta.storage_key).read_bytes())
