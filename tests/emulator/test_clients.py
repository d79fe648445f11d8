"""The project's provider clients, every method, against the running emulator over real HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx
import pytest

from emulator.config import DEMO_SPACE, DEMO_TEMPLATE, DEMO_VID
from emulator.testing import EmulatorHandle
from providers.errors import (
    AuthError,
    ContentRejectedError,
    InvalidRequestError,
    NotFoundError,
    OutcomeUnknownError,
    RetryableRefusalError,
    ServerError,
    ThrottledError,
)
from providers.gateway.client import GatewayClient
from providers.gateway.models import GatewayVideoRequest
from providers.jimeng.client import JimengClient
from providers.jimeng.models import JimengVideoRequest
from providers.signing import VolcengineSigner
from providers.states import JobState
from providers.vod.client import VodClient
from providers.vod.edit_param import single_clip_edit_param
from providers.vod.models_edit import CreateProjectRequest, SubmitDirectEditTaskRequest
from providers.vod.models_translation import SubmitAITranslationWorkflowRequest, TranslationConfig
from providers.vod.models_upload import UploadMediaByUrlRequest, UrlSet
from providers.vod.models_workflow import StartWorkflowRequest

T = TypeVar("T")


async def poll(fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = 5.0) -> T:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await fetch()
        if done(value):
            return value
        assert asyncio.get_running_loop().time() < deadline, f"not done: {value!r}"
        await asyncio.sleep(0.05)


def vod_client(emu: EmulatorHandle, **kw: str) -> VodClient:
    return VodClient(kw.get("ak", emu.access_key), kw.get("sk", emu.secret_key), endpoint=emu.base_url)


def jimeng_client(emu: EmulatorHandle, **kw: str) -> JimengClient:
    return JimengClient(kw.get("ak", emu.access_key), kw.get("sk", emu.secret_key), endpoint=emu.base_url)


def gateway_client(emu: EmulatorHandle, key: str | None = None) -> GatewayClient:
    return GatewayClient(emu.base_url + "/v1", key or emu.gateway_key)


def edit_param(name: str = "clip"):
    return single_clip_edit_param(name=name, space_name=DEMO_SPACE, vid=DEMO_VID, duration_ms=3000,
                                  width=160, height=90)


@pytest.fixture
def free(emu: EmulatorHandle) -> EmulatorHandle:
    emu.configure(quotas_enabled=False)
    return emu


# --- VOD ----------------------------------------------------------------------------------------------------


async def test_vod_edit_projects_and_direct_edit(free: EmulatorHandle) -> None:
    async with vod_client(free) as vod:
        created = await vod.create_project(CreateProjectRequest(project_name="片段-1", space=DEMO_SPACE,
                                                                edit_param=edit_param()))
        assert created.project_id and created.group_id
        found = await vod.search_global_project(DEMO_SPACE)
        assert found.total == 1 and found.detail[0].project_id == created.project_id
        req_id = await vod.submit_direct_edit_task_async(
            SubmitDirectEditTaskRequest(uploader=DEMO_SPACE, edit_param=edit_param(), callback_args="x"))
        assert 1 <= await vod.get_direct_edit_progress(req_id) <= 100
        results = await poll(lambda: vod.get_direct_edit_result([req_id]), lambda r: r[0].state.is_terminal)
        assert results[0].state is JobState.SUCCEEDED and results[0].output_vid
        assert await vod.get_direct_edit_progress(req_id) == 100
    assert [e["action"] for e in free.ledger()] == ["CreateProject", "SubmitDirectEditTaskAsync"]


async def test_vod_workflow_upload_and_translation(free: EmulatorHandle) -> None:
    async with vod_client(free) as vod:
        source = f"{free.base_url}/_media/vod/{DEMO_VID}.mp4"
        jobs = await vod.upload_media_by_url(UploadMediaByUrlRequest(
            space_name=DEMO_SPACE, url_sets=[UrlSet(source_url=source, file_name="in.mp4")]))
        info = await poll(lambda: vod.query_upload_task_info([jobs[0].job_id]),
                          lambda r: r.media_info_list[0].state.is_terminal)
        item = info.by_job_id()[jobs[0].job_id]
        assert item.state is JobState.SUCCEEDED and item.vid and item.source_info
        assert item.source_info.md5 == hashlib.md5(httpx.get(source).content).hexdigest()

        run_id = await vod.start_workflow(StartWorkflowRequest(vid=item.vid, template_id=DEMO_TEMPLATE,
                                                               client_token="c-1", callback_args="a"))
        assert await vod.start_workflow(StartWorkflowRequest(vid=item.vid, template_id=DEMO_TEMPLATE,
                                                             client_token="c-1", callback_args="a")) == run_id
        execution = await poll(lambda: vod.get_workflow_execution(run_id), lambda e: e.state.is_terminal)
        assert execution.state is JobState.SUCCEEDED and execution.vid == item.vid
        outputs = await vod.get_workflow_execution_result(run_id)
        assert outputs.state is JobState.SUCCEEDED and len(outputs.transcode_infos) == 2
        assert outputs.transcode_infos[0].size and outputs.transcode_infos[0].duration

        base = await vod.submit_ai_translation_workflow(SubmitAITranslationWorkflowRequest(
            space_name=DEMO_SPACE, vid=item.vid,
            translation_config=TranslationConfig(source_language="zh", target_language="ja")))
        project = await poll(
            lambda: vod.get_ai_translation_project(DEMO_SPACE, base.project_id,
                                                   ["SourceUtterances", "TargetUtterances", "TargetClips"]),
            lambda p: p.state.is_terminal)
        assert project.state is JobState.SUCCEEDED and project.output_vid and project.target_languages == ["ja"]
        clips = {c.id: c for c in project.target_clips}
        assert all(u.clip_id in clips and u.text.startswith("[ja] ") for u in project.target_utterances)
        assert project.source_utterances and not project.speakers  # not asked for
        listing = await vod.list_ai_translation_project(DEMO_SPACE, status_filter="ProcessSucceed")
        assert [p.project_id for p in listing.projects] == [base.project_id] and listing.total_count == 1
    assert [e["action"] for e in free.ledger()] == ["UploadMediaByUrl", "StartWorkflow", "SubmitAITranslationWorkflow"]


async def test_vod_error_classes(free: EmulatorHandle) -> None:
    async with vod_client(free) as vod:
        with pytest.raises(NotFoundError) as missing:
            await vod.get_workflow_execution("lb:nope")
        assert missing.value.code == "ResourceNotFound" and missing.value.request_id
        with pytest.raises(NotFoundError):
            await vod.start_workflow(StartWorkflowRequest(vid=DEMO_VID, template_id="no-such-template"))
        with pytest.raises(NotFoundError):
            await vod.get_ai_translation_project(DEMO_SPACE, "nope")
        await vod.start_workflow(StartWorkflowRequest(vid=DEMO_VID, template_id=DEMO_TEMPLATE, client_token="t"))
        with pytest.raises(InvalidRequestError) as conflict:
            await vod.start_workflow(StartWorkflowRequest(vid=DEMO_VID, template_id=DEMO_TEMPLATE, client_token="t",
                                                          priority=3))
        assert conflict.value.code == "InvalidParameter" and not conflict.value.retryable
        free.set_faults([{"action": "GetWorkflowExecution", "error_rate": 1, "count": 1}])
        with pytest.raises(ServerError) as server:
            await vod.get_workflow_execution("lb:nope")
        assert server.value.retryable and server.value.http_status == 500


async def test_vod_throttling(emu: EmulatorHandle) -> None:
    req = SubmitAITranslationWorkflowRequest(
        space_name=DEMO_SPACE, vid=DEMO_VID, translation_config=TranslationConfig(source_language="zh",
                                                                                  target_language="en"))
    async with vod_client(emu) as vod:
        await vod.submit_ai_translation_workflow(req)
        with pytest.raises(ThrottledError) as throttled:
            await vod.submit_ai_translation_workflow(req)
    assert throttled.value.code == "FlowLimitExceeded" and throttled.value.retry_after == 1.0
    assert len(emu.ledger()) == 1


async def test_vod_auth_refusals(emu: EmulatorHandle) -> None:
    async with vod_client(emu, sk="wrong") as vod:
        with pytest.raises(AuthError) as bad_sk:
            await vod.get_workflow_execution("lb:x")
    assert bad_sk.value.code == "SignatureDoesNotMatch" and bad_sk.value.http_status == 401
    async with vod_client(emu, ak="AKNOBODY") as vod:
        with pytest.raises(AuthError) as bad_ak:
            await vod.get_workflow_execution("lb:x")
    assert bad_ak.value.code == "InvalidClientTokenId"
    stale = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    async with vod_client(emu) as vod:
        # the client builds its signer internally; swap in one with a stale clock
        vod._http.auth = VolcengineSigner(emu.access_key, emu.secret_key, region="cn-north-1", service="vod",
                                          clock=lambda: stale)
        with pytest.raises(AuthError) as old:
            await vod.get_workflow_execution("lb:x")
    assert old.value.code == "InvalidTimestamp" and old.value.http_status == 403


async def test_vod_drop_after_accept(free: EmulatorHandle) -> None:
    free.set_faults([{"action": "StartWorkflow", "drop_after_accept": True, "count": 2}])
    async with vod_client(free) as vod:
        with pytest.raises(OutcomeUnknownError) as blind:
            await vod.start_workflow(StartWorkflowRequest(vid=DEMO_VID, template_id=DEMO_TEMPLATE))
        assert not blind.value.retryable  # no ClientToken: a retry could pay twice
        with pytest.raises(OutcomeUnknownError) as tokened:
            await vod.start_workflow(StartWorkflowRequest(vid=DEMO_VID, template_id=DEMO_TEMPLATE, client_token="k"))
        assert tokened.value.retryable
        run_id = await vod.start_workflow(StartWorkflowRequest(vid=DEMO_VID, template_id=DEMO_TEMPLATE,
                                                               client_token="k"))
    ledger = free.ledger()
    assert len(ledger) == 2 and ledger[1]["job_id"] == run_id  # the retry with the token was not billed


# --- Jimeng -------------------------------------------------------------------------------------------------


async def test_jimeng_submit_poll_download_and_expiry(free: EmulatorHandle) -> None:
    async with jimeng_client(free) as jimeng:
        task_id = await jimeng.submit_task(JimengVideoRequest(prompt="a cat", seed=3, frames=121,
                                                              aspect_ratio="16:9"))
        first = await jimeng.get_result(task_id)
        assert first.state in (JobState.QUEUED, JobState.RUNNING)
        done = await poll(lambda: jimeng.get_result(task_id, req_json={"return_url": True}),
                          lambda r: r.state.is_terminal)
        assert done.state is JobState.SUCCEEDED and done.video_url
        assert httpx.get(done.video_url).status_code == 200
        free.advance(real_seconds=3600)  # lifetimes are wall-clock seconds at every time scale
        assert httpx.get(done.video_url).status_code == 403
        free.advance(real_seconds=12 * 3600)
        assert (await jimeng.get_result(task_id)).state is JobState.EXPIRED
        assert (await jimeng.get_result("0")).state is JobState.EXPIRED  # not_found


async def test_jimeng_job_failure_and_refusals(free: EmulatorHandle) -> None:
    async with jimeng_client(free) as jimeng:
        task_id = await jimeng.submit_task(JimengVideoRequest(prompt="EMULATOR_FAIL"))
        free.advance(100)
        failed = await jimeng.get_result(task_id)
        assert failed.state is JobState.FAILED and failed.code == 50511 and failed.failure_retryable
        with pytest.raises(ContentRejectedError) as rejected:
            await jimeng.submit_task(JimengVideoRequest(prompt="EMULATOR_BANNED"))
        assert rejected.value.code == 50413
        free.set_faults([{"action": "CVSync2AsyncSubmitTask", "error_rate": 1, "count": 1}])
        # 50500 in the service's own envelope: the page marks it 可重试, a refusal (nothing was created).
        with pytest.raises(RetryableRefusalError) as refused:
            await jimeng.submit_task(JimengVideoRequest(prompt="x"))
        assert refused.value.code == 50500 and refused.value.http_status == 500
        # The same 500 from a proxy in front (no envelope) proves nothing: the task may exist.
        free.set_faults([{"action": "CVSync2AsyncSubmitTask", "count": 1, "error": {"status": 502, "body": "proxy"}}])
        with pytest.raises(OutcomeUnknownError) as server:
            await jimeng.submit_task(JimengVideoRequest(prompt="x"))
        assert server.value.http_status == 502 and not server.value.retryable
        free.set_faults([{"action": "CVSync2AsyncSubmitTask", "drop_after_accept": True, "count": 1}])
        with pytest.raises(OutcomeUnknownError) as dropped:
            await jimeng.submit_task(JimengVideoRequest(prompt="x"))
        assert not dropped.value.retryable
    assert [e["action"] for e in free.ledger()] == ["CVSync2AsyncSubmitTask"] * 2


async def test_jimeng_throttling_and_concurrency(emu: EmulatorHandle) -> None:
    async with jimeng_client(emu) as jimeng:
        await jimeng.submit_task(JimengVideoRequest(prompt="1"))
        await jimeng.submit_task(JimengVideoRequest(prompt="2"))
        with pytest.raises(ThrottledError) as qps:
            await jimeng.submit_task(JimengVideoRequest(prompt="3"))
        assert qps.value.code == 50429 and qps.value.retry_after
        emu.configure(qps={"CVSync2AsyncSubmitTask": 100})
        with pytest.raises(ThrottledError) as busy:
            await jimeng.submit_task(JimengVideoRequest(prompt="3"))
        assert busy.value.code == 50430 and busy.value.http_status == 429


async def test_jimeng_auth(emu: EmulatorHandle) -> None:
    async with jimeng_client(emu, sk="wrong") as jimeng:
        with pytest.raises(AuthError) as refused:
            await jimeng.get_result("1")
    assert refused.value.code == "SignatureDoesNotMatch"


# --- gateway ------------------------------------------------------------------------------------------------

GROK = GatewayVideoRequest(model="grok-video-3", prompt="小猫在吃鱼", aspect_ratio="3:2", size="720P",
                           images=["https://example.com/cat.png"])


async def test_gateway_create_and_query(free: EmulatorHandle) -> None:
    async with gateway_client(free) as gateway:
        task = await gateway.create_video(GROK)
        assert task.id.startswith("grok:") and task.state is JobState.QUEUED and task.updated_at
        done = await poll(lambda: gateway.query_video(task.id), lambda t: t.state.is_terminal)
        assert done.state is JobState.SUCCEEDED and done.result_url
        assert httpx.get(done.result_url).status_code == 200
        failing = await gateway.create_video(GatewayVideoRequest(model="veo3.1", prompt="EMULATOR_FAIL"))
        free.advance(100)
        failed = await gateway.query_video(failing.id)
        assert failed.state is JobState.FAILED and failed.error_message


async def test_gateway_error_classes(free: EmulatorHandle) -> None:
    async with gateway_client(free) as gateway:
        with pytest.raises(NotFoundError):
            await gateway.query_video("grok:missing")
        with pytest.raises(InvalidRequestError):
            await gateway.create_video(GatewayVideoRequest(model="no-such-model", prompt="x"))
        free.set_faults([{"action": "gateway.create", "error_rate": 1, "count": 1}])
        with pytest.raises(RetryableRefusalError):  # the default injected fault is the saturation 503
            await gateway.create_video(GROK)
        free.set_faults([{"action": "gateway.query", "error_rate": 1, "count": 1,
                          "error": {"status": 500, "code": "boom", "message": "internal"}}])
        with pytest.raises(ServerError):
            await gateway.query_video("grok:x")
        free.set_faults([{"action": "gateway.create", "drop_after_accept": True, "count": 1}])
        with pytest.raises(OutcomeUnknownError):
            await gateway.create_video(GROK)
    assert len(free.ledger()) == 1
    async with gateway_client(free, key="wrong") as gateway:
        with pytest.raises(AuthError):
            await gateway.query_video("grok:x")


async def test_gateway_throttling(emu: EmulatorHandle) -> None:
    emu.configure(qps={"gateway.query": 1})
    async with gateway_client(emu) as gateway:
        with pytest.raises(NotFoundError):
            await gateway.query_video("grok:x")
        with pytest.raises(ThrottledError) as throttled:
            await gateway.query_video("grok:x")
    assert throttled.value.http_status == 429 and throttled.value.retry_after
