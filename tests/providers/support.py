"""Helpers shared by the provider tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from providers.vod import (
    CreateProjectRequest,
    StartWorkflowRequest,
    SubmitAITranslationWorkflowRequest,
    SubmitDirectEditTaskRequest,
    UploadMediaByUrlRequest,
    VodClient,
    single_clip_edit_param,
)


class NoNetwork(httpx.AsyncBaseTransport):
    """A transport that fails the test if anything is sent: validation must refuse before the network."""

    def __init__(self) -> None:
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        raise AssertionError("a request was sent")


VodCall = Callable[[VodClient], Awaitable[Any]]

PARAM = single_clip_edit_param(name="p", space_name="s", vid="v", duration_ms=1000, now_ms=1)

# (action, call) for every paid VOD submit, sent without an idempotency token
PAID_SUBMITS: list[tuple[str, VodCall]] = [
    ("CreateProject", lambda c: c.create_project(CreateProjectRequest(project_name="p", space="s", edit_param=PARAM))),
    ("SubmitDirectEditTaskAsync",
     lambda c: c.submit_direct_edit_task_async(SubmitDirectEditTaskRequest(uploader="s", edit_param=PARAM))),
    ("UploadMediaByUrl", lambda c: c.upload_media_by_url(
        UploadMediaByUrlRequest(space_name="s", url_sets=[{"SourceUrl": "https://example.com/a.mp4"}]))),
    ("SubmitAITranslationWorkflow", lambda c: c.submit_ai_translation_workflow(SubmitAITranslationWorkflowRequest(
        space_name="s", vid="v", translation_config={"SourceLanguage": "zh", "TargetLanguage": "en"}))),
    ("StartWorkflow", lambda c: c.start_workflow(StartWorkflowRequest(vid="v", template_id="t"))),
]

READS: list[tuple[str, VodCall]] = [
    ("GetWorkflowExecution", lambda c: c.get_workflow_execution("r")),
    ("GetWorkflowExecutionResult", lambda c: c.get_workflow_execution_result("r")),
    ("QueryUploadTaskInfo", lambda c: c.query_upload_task_info(["j"])),
    ("GetAITranslationProject", lambda c: c.get_ai_translation_project("s", "p")),
    ("ListAITranslationProject", lambda c: c.list_ai_translation_project("s")),
    ("GetDirectEditProgress", lambda c: c.get_direct_edit_progress("r")),
    ("GetDirectEditResult", lambda c: c.get_direct_edit_result(["r"])),
    ("SearchGlobalProject", lambda c: c.search_global_project("s")),
    ("GetMediaList", lambda c: c.get_media_list("s")),
]
