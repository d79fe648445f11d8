"""Response tolerance (quirks seen in VOD answers) and the ``.state`` of every job-like model."""

from __future__ import annotations

from typing import Any

import pytest
import respx

from providers.errors import UnexpectedResponseError
from providers.states import JobState
from providers.vod import (
    AITranslationProject,
    DirectEditResult,
    StartWorkflowRequest,
    UploadMediaByUrlRequest,
    UploadTaskInfo,
    VodClient,
    WorkflowExecution,
    WorkflowExecutionResult,
)

ENDPOINT = "https://vod.volcengineapi.com"


def ok(result: Any) -> dict[str, Any]:
    return {"ResponseMetadata": {"RequestId": "r"}, "Result": result}


@pytest.mark.parametrize(
    "status,state",
    [("0", JobState.SUCCEEDED), (0, JobState.SUCCEEDED), ("1001", JobState.FAILED), (2003, JobState.FAILED),
     ("PendingStart", JobState.QUEUED), ("Running", JobState.RUNNING), ("Terminated", JobState.FAILED),
     (None, JobState.RUNNING)],
)
def test_workflow_states(status: Any, state: JobState) -> None:
    assert WorkflowExecution.model_validate({"RunId": "r", "Status": status}).state is state
    assert WorkflowExecutionResult.model_validate({"Status": status}).state is state


@pytest.mark.parametrize(
    "status,state",
    [("pending", JobState.QUEUED), ("start", JobState.RUNNING), ("success", JobState.SUCCEEDED),
     ("failed_run", JobState.FAILED), ("user_canceled", JobState.FAILED)],
)
def test_direct_edit_states(status: str, state: JobState) -> None:
    assert DirectEditResult.model_validate({"ReqId": "x", "Status": status}).state is state


@pytest.mark.parametrize(
    "status,state",
    [("initial", JobState.QUEUED), ("processing", JobState.RUNNING), ("success", JobState.SUCCEEDED),
     ("failed", JobState.FAILED)],
)
def test_upload_states(status: str, state: JobState) -> None:
    item = UploadTaskInfo.model_validate({"JobId": "j", "State": status})
    assert item.state is state and item.raw_state == status


@pytest.mark.parametrize(
    "status,state",
    [("InProcessing", JobState.RUNNING), ("InExporting", JobState.RUNNING), ("ProcessSucceed", JobState.SUCCEEDED),
     ("ExportSucceed", JobState.SUCCEEDED), ("ProcessFailed", JobState.FAILED), ("ExportFailed", JobState.FAILED)],
)
def test_translation_states(status: str, state: JobState) -> None:
    assert AITranslationProject.model_validate({"ProjectId": "p", "Status": status}).state is state


def test_unknown_fields_kept_and_numbers_as_strings() -> None:
    execution = WorkflowExecution.model_validate(
        {"RunId": 123, "Priority": "2", "TasksDetail": [{"Progress": "7", "NewField": 1}], "Brand": "new"}
    )
    assert execution.run_id == "123" and execution.priority == 2
    assert execution.tasks_detail[0].progress == 7 and execution.tasks_detail[0].model_extra == {"NewField": 1}
    assert execution.model_extra == {"Brand": "new"}
    # DirectUrl/Input may come back JSON-encoded, as they are sent
    execution = WorkflowExecution.model_validate({"RunId": "r", "DirectUrl": '{"FileName":"a.mp4"}', "Input": ""})
    assert execution.direct_url == {"FileName": "a.mp4"} and execution.input is None


async def test_progress_wrapped_or_string(api: respx.MockRouter, vod: VodClient) -> None:
    api.route().mock(side_effect=[respx.MockResponse(200, json=ok({"Result": 64})),
                                  respx.MockResponse(200, json=ok("99"))])
    assert await vod.get_direct_edit_progress("a") == 64
    assert await vod.get_direct_edit_progress("a") == 99


async def test_progress_not_a_number(api: respx.MockRouter, vod: VodClient) -> None:
    api.route().respond(200, json=ok({"Unexpected": True}))
    with pytest.raises(UnexpectedResponseError, match="not an integer"):
        await vod.get_direct_edit_progress("a")


async def test_direct_edit_result_single_object(api: respx.MockRouter, vod: VodClient) -> None:
    api.route().respond(200, json=ok({"ReqId": "a", "Status": "success", "OutputVid": "v"}))
    [result] = await vod.get_direct_edit_result(["a"])
    assert result.state is JobState.SUCCEEDED and result.output_vid == "v"


async def test_upload_result_without_data_wrapper(api: respx.MockRouter, vod: VodClient) -> None:
    api.route().respond(200, json=ok([{"JobId": "j1", "SourceUrl": "https://a/b.mp4"}]))
    req = UploadMediaByUrlRequest(space_name="s", url_sets=[{"SourceUrl": "https://a/b.mp4"}])
    assert [j.job_id for j in await vod.upload_media_by_url(req)] == ["j1"]


async def test_query_upload_without_data_wrapper_and_null_lists(api: respx.MockRouter, vod: VodClient) -> None:
    api.route().respond(200, json=ok({"MediaInfoList": None, "NotExistJobIds": None}))
    result = await vod.query_upload_task_info(["j"])
    assert result.media_info_list == [] and result.not_exist_job_ids == []


async def test_missing_run_id_on_start_workflow(api: respx.MockRouter, vod: VodClient) -> None:
    api.route().respond(200, json=ok({"RunId": ""}))
    with pytest.raises(UnexpectedResponseError, match="RunId"):
        await vod.start_workflow(StartWorkflowRequest(vid="v", template_id="t"))
