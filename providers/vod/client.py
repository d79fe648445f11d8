"""Async VOD OpenAPI client: one httpx.AsyncClient per object, V4-signed, typed errors and models.

Every request is validated locally first (RequestValidationError names field and rule) so a bad paid call
never leaves the process. Whether a lost answer (5xx, read timeout, cut connection) is retryable is looked up
in one table, ``providers.vod.paid``: for a paid submit without an idempotency token it never is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from providers._http import AsyncApiClient, DEFAULT_TIMEOUT, send, tls_context
from providers.errors import RequestValidationError, UnexpectedResponseError
from providers.signing import VolcengineSigner
from providers.vod.errors import PROVIDER, unwrap
from providers.vod.lookups import VodLookups
from providers.vod.models_base import VodRequest, dumps_compact
from providers.vod.models_edit import (
    CreateProjectRequest,
    CreateProjectResult,
    DirectEditResult,
    SearchGlobalProjectRequest,
    SearchGlobalProjectResult,
    SubmitDirectEditTaskRequest,
)
from providers.vod.models_media import MEDIA_LIST_MAX_PAGE_SIZE, MediaListResult, format_media_time
from providers.vod.models_translation import (
    ADDITIONS,
    AITranslationProject,
    ContinueAITranslationWorkflowRequest,
    ListAITranslationProjectResult,
    ProjectBaseInfo,
    RefreshAITranslationProjectRequest,
    SubmitAITranslationWorkflowRequest,
    UpdateAITranslationUtterancesRequest,
)
from providers.vod.models_upload import (
    MAX_JOB_IDS,
    QueryUploadTaskInfoResult,
    UploadJob,
    UploadMediaByUrlRequest,
)
from providers.vod.models_workflow import StartWorkflowRequest, WorkflowExecution, WorkflowExecutionResult
from providers.vod.paid import safe_to_repeat

DEFAULT_ENDPOINT = "https://vod.volcengineapi.com"
DEFAULT_REGION = "cn-north-1"

V2018 = "2018-01-01"
V2020 = "2020-08-01"
V2022 = "2022-12-01"
V2023_07 = "2023-07-01"
V2025 = "2025-01-01"

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R", bound=VodRequest)
Method = Literal["GET", "POST"]


def _require(ok: bool, field: str, rule: str, action: str) -> None:
    if not ok:
        raise RequestValidationError(field, rule, provider=PROVIDER, action=action)


def _ids(values: Sequence[str], field: str, action: str, *, limit: int | None = None) -> list[str]:
    """A list of ids that will be comma-joined or sent as an array: non-empty, no commas, within ``limit``."""
    _require(not isinstance(values, str), field, "must be a list of ids, not a string", action)
    items = list(values)
    bound = f"1-{limit}" if limit else "at least 1"
    _require(bool(items) and (limit is None or len(items) <= limit), field, f"must hold {bound} ids", action)
    for item in items:
        _require(isinstance(item, str) and bool(item.strip()) and "," not in item, field,
                 "every id must be a non-empty string without commas", action)
    return items


class VodClient(VodLookups, AsyncApiClient):
    def __init__(
        self,
        access_key: str,
        secret_key: str,
        *,
        session_token: str | None = None,
        region: str = DEFAULT_REGION,
        endpoint: str = DEFAULT_ENDPOINT,
        timeout: httpx.Timeout | float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.region = region
        self.endpoint = endpoint.rstrip("/") + "/"
        # Credentials live only inside the signer, whose repr hides them.
        signer = VolcengineSigner(access_key, secret_key, region=region, service="vod", session_token=session_token)
        self._http = httpx.AsyncClient(
            auth=signer, timeout=timeout if timeout is not None else DEFAULT_TIMEOUT, transport=transport,
            verify=tls_context(),
        )

    def __repr__(self) -> str:
        return f"VodClient(endpoint={self.endpoint!r}, region={self.region!r})"

    # --- plumbing --------------------------------------------------------------------------------------------

    async def _call(
        self,
        action: str,
        version: str,
        method: Method,
        *,
        query: dict[str, str | None] | None = None,
        body: dict[str, Any] | None = None,
    ) -> tuple[Any, str | None]:
        # Decided from the request actually sent (StartWorkflow is harmless to repeat only with a ClientToken).
        repeatable = safe_to_repeat(action, body if method == "POST" else query)
        params = {"Action": action, "Version": version}
        params.update({k: v for k, v in (query or {}).items() if v is not None})
        if method == "GET":
            request = self._http.build_request("GET", self.endpoint, params=params)
        else:
            request = self._http.build_request(
                "POST",
                self.endpoint,
                params=params,
                content=dumps_compact(body or {}).encode(),
                headers={"Content-Type": "application/json"},
            )
        response = await send(self._http, request, provider=PROVIDER, action=action, idempotent=repeatable)
        return unwrap(response, action, safe_to_repeat=repeatable)

    @staticmethod
    def _parse(model: type[M], data: Any, action: str, request_id: str | None) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "Result"
            raise UnexpectedResponseError(
                f"unexpected {model.__name__}: {where}: {first['msg']}",
                provider=PROVIDER, action=action, request_id=request_id,
            ) from None

    @staticmethod
    def _checked(req: R, expected: type[R]) -> R:
        if not isinstance(req, expected):
            raise TypeError(f"expected {expected.__name__}, got {type(req).__name__}")
        return req.revalidated()

    @staticmethod
    def _field(result: Any, key: str, action: str, request_id: str | None) -> Any:
        if not isinstance(result, dict) or result.get(key) in (None, ""):
            raise UnexpectedResponseError(f"Result has no {key}", provider=PROVIDER, action=action,
                                          request_id=request_id)
        return result[key]

    # --- edit projects and direct edit -----------------------------------------------------------------------

    async def create_project(self, req: CreateProjectRequest) -> CreateProjectResult:
        req = self._checked(req, CreateProjectRequest)
        result, rid = await self._call(req.action, V2018, "POST", body=req.to_wire())
        return self._parse(CreateProjectResult, result, req.action, rid)

    async def search_global_project(
        self, space: str, *, offset: int = 0, limit: int = 20, sort_by: str = "updated_at"
    ) -> SearchGlobalProjectResult:
        req = SearchGlobalProjectRequest(space=space, offset=offset, limit=limit, sort_by=sort_by)
        result, rid = await self._call(req.action, V2018, "POST", body=req.to_wire())
        return self._parse(SearchGlobalProjectResult, result, req.action, rid)

    async def submit_direct_edit_task_async(self, req: SubmitDirectEditTaskRequest) -> str:
        req = self._checked(req, SubmitDirectEditTaskRequest)
        result, rid = await self._call(req.action, V2018, "POST", body=req.to_wire())
        return str(self._field(result, "ReqId", req.action, rid))

    async def get_direct_edit_progress(self, req_id: str) -> int:
        action = "GetDirectEditProgress"
        _require(bool(req_id and req_id.strip()), "ReqId", "must be non-empty", action)
        result, rid = await self._call(action, V2018, "GET", query={"ReqId": req_id})
        # Documented as a bare integer; the vendor SDK's model wraps it ({"Result": n}), so accept both.
        value = result.get("Result", result.get("Progress")) if isinstance(result, dict) else result
        try:
            return int(value)
        except (TypeError, ValueError):
            raise UnexpectedResponseError(f"progress is not an integer: {value!r}", provider=PROVIDER,
                                          action=action, request_id=rid) from None

    async def get_direct_edit_result(self, req_ids: Sequence[str]) -> list[DirectEditResult]:
        action = "GetDirectEditResult"
        ids = _ids(req_ids, "ReqIds", action)
        result, rid = await self._call(action, V2018, "POST", body={"ReqIds": ids})
        items = [result] if isinstance(result, dict) else result  # documented as an array
        if not isinstance(items, list):
            raise UnexpectedResponseError("Result is not an array", provider=PROVIDER, action=action,
                                          request_id=rid)
        return [self._parse(DirectEditResult, item, action, rid) for item in items]

    # --- workflows -------------------------------------------------------------------------------------------

    async def start_workflow(self, req: StartWorkflowRequest) -> str:
        req = self._checked(req, StartWorkflowRequest)
        result, rid = await self._call(req.action, V2020, "POST", body=req.to_wire())
        return str(self._field(result, "RunId", req.action, rid))

    async def get_workflow_template(self, template_id: str) -> dict[str, Any]:
        """GetWorkflowTemplate (2023-07-01, doc 4/1108513): the template, or NotFoundError when there is none."""
        action = "GetWorkflowTemplate"
        _require(bool(template_id and template_id.strip()), "TemplateId", "must be non-empty", action)
        result, rid = await self._call(action, V2023_07, "GET", query={"TemplateId": template_id})
        template = self._field(result, "WorkflowTemplate", action, rid)
        if not isinstance(template, dict):
            raise UnexpectedResponseError("WorkflowTemplate is not an object", provider=PROVIDER, action=action,
                                          request_id=rid)
        return template

    async def get_workflow_execution(self, run_id: str) -> WorkflowExecution:
        action = "GetWorkflowExecution"
        _require(bool(run_id and run_id.strip()), "RunId", "must be non-empty", action)
        result, rid = await self._call(action, V2020, "GET", query={"RunId": run_id})
        return self._parse(WorkflowExecution, result, action, rid)

    async def get_workflow_execution_result(self, run_id: str) -> WorkflowExecutionResult:
        action = "GetWorkflowExecutionResult"
        _require(bool(run_id and run_id.strip()), "RunId", "must be non-empty", action)
        result, rid = await self._call(action, V2022, "GET", query={"RunId": run_id})
        return self._parse(WorkflowExecutionResult, result, action, rid)

    # --- uploads ---------------------------------------------------------------------------------------------

    async def upload_media_by_url(self, req: UploadMediaByUrlRequest) -> list[UploadJob]:
        req = self._checked(req, UploadMediaByUrlRequest)
        result, rid = await self._call(req.action, V2020, "POST", body=req.to_wire())
        data = result.get("Data") if isinstance(result, dict) else result
        if not isinstance(data, list):
            raise UnexpectedResponseError("Result.Data is not an array", provider=PROVIDER, action=req.action,
                                          request_id=rid)
        return [self._parse(UploadJob, item, req.action, rid) for item in data]

    async def get_media_list(
        self,
        space_name: str,
        *,
        start_time: dt.datetime | None = None,
        end_time: dt.datetime | None = None,
        offset: int = 0,
        page_size: int = MEDIA_LIST_MAX_PAGE_SIZE,
        order: Literal["Asc", "Desc"] = "Desc",
        vid: str | None = None,
        status: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> MediaListResult:
        """One page of GetMediaList (2022-12-01): the space's videos by creation time. ``iter_media`` reads all."""
        action = "GetMediaList"
        _require(bool(space_name and space_name.strip()), "SpaceName", "must be non-empty", action)
        _require(offset >= 0, "Offset", "must be >= 0", action)
        _require(1 <= page_size <= MEDIA_LIST_MAX_PAGE_SIZE, "PageSize", f"must be 1-{MEDIA_LIST_MAX_PAGE_SIZE}", action)
        _require(order in ("Asc", "Desc"), "Order", "must be Asc or Desc", action)
        _require(not isinstance(tags, str), "Tags", "must be a list of tags, not a string", action)
        if start_time is not None and end_time is not None:
            _require(end_time > start_time, "EndTime", "must be later than StartTime", action)
        query = {
            "SpaceName": space_name,
            "StartTime": format_media_time(start_time) if start_time else None,
            "EndTime": format_media_time(end_time, round_up=True) if end_time else None,
            "Offset": str(offset),  # the vendor types the numbers as strings
            "PageSize": str(page_size),
            "Order": order,
            "Vid": vid or None,
            "Status": status or None,
            "Tags": ",".join(tags) if tags else None,
        }
        result, rid = await self._call(action, V2022, "GET", query=query)
        return self._parse(MediaListResult, result, action, rid)

    async def query_upload_task_info(self, job_ids: Sequence[str]) -> QueryUploadTaskInfoResult:
        action = "QueryUploadTaskInfo"
        ids = _ids(job_ids, "JobIds", action, limit=MAX_JOB_IDS)
        result, rid = await self._call(action, V2020, "GET", query={"JobIds": ",".join(ids)})
        data = result.get("Data", result) if isinstance(result, dict) else result
        return self._parse(QueryUploadTaskInfoResult, data, action, rid)

    # --- AI translation --------------------------------------------------------------------------------------

    async def submit_ai_translation_workflow(self, req: SubmitAITranslationWorkflowRequest) -> ProjectBaseInfo:
        req = self._checked(req, SubmitAITranslationWorkflowRequest)
        result, rid = await self._call(req.action, V2025, "POST", body=req.to_wire())
        return self._parse(ProjectBaseInfo, self._field(result, "ProjectBaseInfo", req.action, rid), req.action, rid)

    async def get_ai_translation_project(
        self, space_name: str, project_id: str, additions: Sequence[str] | None = None
    ) -> AITranslationProject:
        action = "GetAITranslationProject"
        _require(bool(space_name and space_name.strip()), "SpaceName", "must be non-empty", action)
        _require(bool(project_id and project_id.strip()), "ProjectId", "must be non-empty", action)
        _require(not isinstance(additions, str), "Additions", "must be a list of names, not a string", action)
        unknown = [a for a in additions or () if a not in ADDITIONS]
        _require(not unknown, "Additions", f"unknown value(s) {unknown}; allowed: {', '.join(ADDITIONS)}", action)
        query = {"SpaceName": space_name, "ProjectId": project_id, "Additions": ",".join(additions) if additions else None}
        result, rid = await self._call(action, V2025, "GET", query=query)
        return self._parse(AITranslationProject, self._field(result, "ProjectInfo", action, rid), action, rid)

    async def list_ai_translation_project(
        self,
        space_name: str,
        *,
        page_number: int = 1,
        page_size: int = 20,
        status_filter: str | Sequence[str] | None = None,
        project_id_or_title_filter: str | None = None,
    ) -> ListAITranslationProjectResult:
        action = "ListAITranslationProject"
        _require(bool(space_name and space_name.strip()), "SpaceName", "must be non-empty", action)
        _require(page_number >= 1, "PageNumber", "must be >= 1", action)
        _require(page_size >= 1, "PageSize", "must be >= 1", action)
        statuses = [status_filter] if isinstance(status_filter, str) else list(status_filter or ())
        query = {
            "SpaceName": space_name,
            "PageNumber": str(page_number),
            "PageSize": str(page_size),  # the vendor types it as a string
            "StatusFilter": ",".join(statuses) or None,
            "ProjectIdOrTitleFilter": project_id_or_title_filter or None,
        }
        result, rid = await self._call(action, V2025, "GET", query=query)
        return self._parse(ListAITranslationProjectResult, result, action, rid)

    # --- AI translation review: edit, continue, re-export (POST JSON, 10 QPS each) ---------------------------

    async def update_ai_translation_utterances(
        self, req: UpdateAITranslationUtterancesRequest
    ) -> ProjectBaseInfo | None:
        """Edit a paused or finished project. Bills nothing; repeating the same edit is harmless.

        The vendor page documents no result fields for this action; ProjectBaseInfo is returned when sent."""
        req = self._checked(req, UpdateAITranslationUtterancesRequest)
        result, rid = await self._call(req.action, V2025, "POST", body=req.to_wire())
        info = result.get("ProjectBaseInfo") if isinstance(result, dict) else None
        return self._parse(ProjectBaseInfo, info, req.action, rid) if isinstance(info, dict) else None

    async def continue_ai_translation_workflow(self, space_name: str, project_id: str) -> ProjectBaseInfo:
        """Resume a ProcessSuspended project (paid work follows). A lost answer is OutcomeUnknownError: read the
        project's Status to learn whether it resumed."""
        req = ContinueAITranslationWorkflowRequest(space_name=space_name, project_id=project_id)
        result, rid = await self._call(req.action, V2025, "POST", body=req.to_wire())
        return self._parse(ProjectBaseInfo, self._field(result, "ProjectBaseInfo", req.action, rid), req.action, rid)

    async def refresh_ai_translation_project(
        self, space_name: str, project_id: str, refresh_type: str = "whole"
    ) -> ProjectBaseInfo:
        """Re-export a finished project after edits (InExporting -> ExportSucceed | ExportFailed). Paid; a lost
        answer is OutcomeUnknownError: read the project's Status / ProjectVersion before sending it again."""
        req = RefreshAITranslationProjectRequest(space_name=space_name, project_id=project_id,
                                                 refresh_type=refresh_type)
        result, rid = await self._call(req.action, V2025, "POST", body=req.to_wire())
        return self._parse(ProjectBaseInfo, self._field(result, "ProjectBaseInfo", req.action, rid), req.action, rid)
