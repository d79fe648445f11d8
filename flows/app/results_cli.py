"""``clipflow result RUN_ID``: a finished run's result and artifacts, read from the Prefect API.

A run's ``state.data`` over REST is only a reference to where its result was persisted (the worker's result
storage: a local path on one machine, the bucket in production). This command resolves it with Prefect's own
result machinery, so it prints the ``ProductionResult`` (or whatever the flow returned) wherever it ran, and lists
the run's artifacts (their keys find them in the UI's Artifacts page and over REST).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any
from uuid import UUID

from pydantic_core import to_jsonable_python


async def fetch(run_id: UUID) -> dict[str, Any]:
    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter, FlowRunFilterParentFlowRunId,
    )

    async with get_client() as client:
        run = await client.read_flow_run(run_id)
        state = run.state
        out: dict[str, Any] = {
            "flow_run_id": str(run.id), "name": run.name, "state": state.type.value if state else None,
            "state_name": state.name if state else None,
        }
        if state is not None and state.is_completed():
            out["result"] = to_jsonable_python(await state.result(raise_on_failure=False), fallback=str)
        elif state is not None:
            out["message"] = state.message
        # the stages' own runs (subflows) publish too, e.g. the transcode renditions
        children = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run.id]))
        )
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id, *(c.id for c in children)]))
        )
        out["artifacts"] = [  # keyless, typeless ones are Prefect's own result records, not outputs
            {"key": a.key, "type": a.type, "description": a.description} for a in artifacts if a.key or a.type
        ]
        return out


def run(run_id: str, as_json: bool) -> int:
    try:
        parsed = UUID(run_id)
    except ValueError:
        print(f"clipflow result: RUN_ID must be a flow run id (a UUID), got {run_id!r}", file=sys.stderr)
        return 2
    try:
        found = asyncio.run(fetch(parsed))
    except Exception as exc:  # noqa: BLE001 - one line naming what failed beats a traceback here
        print(f"clipflow result: cannot read flow run {run_id}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(found, indent=2, default=str))
        return 0 if found["state"] == "COMPLETED" else 1
    print(f"{found['name']} ({found['flow_run_id']}): {found['state_name']}")
    if "result" in found:
        print(json.dumps(found["result"], indent=2, default=str))
    elif found.get("message"):
        print(found["message"])
    for artifact in found["artifacts"]:
        print(f"artifact {artifact['key'] or '(no key)'} [{artifact['type']}] {artifact['description'] or ''}")
    return 0 if found["state"] == "COMPLETED" else 1
