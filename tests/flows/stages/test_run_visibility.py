"""What a user sees of a production in the UI: the parent run's log says which stage runs and what was paid,
and every task run has a name that says what it did."""

from __future__ import annotations

import uuid

import pytest
from prefect import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter, FlowRunFilterId, FlowRunFilterParentFlowRunId, LogFilter, LogFilterFlowRunId, TaskRunFilter,
)
from prefect.logging.handlers import APILogHandler

from flows.models import JimengClipSpec, ProductionRequest, TranslateSpec
from flows.stages.pipeline import produce_video
from providers.states import JobState
from tests.harness import Pipeline

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


async def test_stage_lines_and_task_names(pipeline: Pipeline) -> None:
    tag = uuid.uuid4().hex[:8]
    request = ProductionRequest(
        title=f"seen-{tag}", clip=JimengClipSpec(prompt=f"A lantern on a pier, take {tag}"),
        translate=TranslateSpec(target_languages=["en"]),
    )
    state = await produce_video(request, return_state=True)
    assert (await state.result()).status is JobState.SUCCEEDED
    run_id = state.state_details.flow_run_id
    await APILogHandler.aflush()

    async with get_client() as client:
        parent_logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
        children = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run_id]))
        )
        # subflow runs are linked to the parent through a task run; read every run of this production
        ids = [run_id, *[c.id for c in children]]
        tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
        all_logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)))

    lines = [log.message for log in parent_logs if log.name == "clipflow.progress"]  # the stages: on the parent
    paid = [log.message for log in all_logs if log.name == "clipflow.progress"]  # paid: in each stage's run
    for stage in ("preflight", "generate", "edit", "transcode", "translate"):
        assert any(line.startswith(f"stage {stage}: started ({request.title}") for line in lines), (stage, lines)
        assert any(line.startswith(f"stage {stage}: finished in ") for line in lines), (stage, lines)
    for action in ("jimeng CVSync2AsyncSubmitTask", "vod UploadMediaByUrl", "vod CreateProject",
                   "vod StartWorkflow", "vod SubmitAITranslationWorkflow"):
        assert any(line.startswith(f"paid: {action} -> job ") for line in paid), (action, paid)

    # One task run per paid job (submit to collected), named by what it buys; nothing else is a task run here.
    wrappers = {c.parent_task_run_id for c in children}  # the task run standing for each stage's subflow run
    names = sorted(t.name for t in tasks if t.id not in wrappers)
    assert names == sorted(["clip-jimeng", "import_clip-demo", "create_project", "transcode-demo-transcode-template",
                            "translation-en"]), names


async def test_a_stage_run_on_its_own_publishes_its_ids_and_a_subflow_does_not(pipeline: Pipeline) -> None:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from flows.outputs.artifacts import artifact_key
    from flows.stages.edit import create_edit_project
    from flows.stages.generate import generate_clip

    tag = uuid.uuid4().hex[:8]
    state = await generate_clip(JimengClipSpec(prompt=f"A heron at dawn, take {tag}"), return_state=True)
    clip = await state.result()
    edit_state = await create_edit_project(f"alone-{tag}", clip.imported, return_state=True)
    edit = await edit_state.result()

    async with get_client() as client:
        async def table(run_id: object) -> dict[str, str]:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
            )
            [artifact] = found
            assert artifact.key in (artifact_key("clip", "clip", of=clip.imported.vid),
                                    artifact_key(f"alone-{tag}", "edit", of=clip.imported.vid)), artifact.key
            import json

            rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
            return {r["field"]: str(r["value"]) for r in rows}

        ids = await table(state.state_details.flow_run_id)
        assert ids["vid"] == clip.imported.vid and ids["key"] == clip.stored.key and ids["job_id"] == clip.job_id
        assert not any("http" in v for v in ids.values())
        assert (await table(edit_state.state_details.flow_run_id))["project_id"] == edit.project_id
