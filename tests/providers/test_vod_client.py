"""Every VodClient method against recorded wire examples: the request that leaves, and the parsed answer."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from providers.signing import compute_signature, parse_authorization
from providers.states import JobState
from providers.vod import (
    CreateProjectRequest,
    EditParam,
    StartWorkflowRequest,
    SubmitAITranslationWorkflowRequest,
    SubmitDirectEditTaskRequest,
    UploadMediaByUrlRequest,
    VodClient,
    single_clip_edit_param,
)

ENDPOINT = "https://vod.volcengineapi.com"
AK, SK = "AKLTtestaccesskey", "c2VjcmV0LXNlY3JldC1zZWNyZXQ="
WIRE = Path(__file__).parent / "wire"


def wire(name: str) -> dict[str, Any]:
    return json.loads((WIRE / f"vod_{name}.json").read_text())


@pytest.fixture(scope="module")
async def vod() -> AsyncIterator[VodClient]:
    # One client for the module: building an AsyncClient (TLS context) costs ~80 ms; respx mocks the transport.
    async with VodClient(AK, SK, session_token="sts-token") as client:
        yield client


def route(api: respx.MockRouter, method: str, action: str, response: dict[str, Any]) -> respx.Route:
    return api.route(method=method, params={"Action": action}).respond(200, json=response)


def sent(r: respx.Route, method: str, action: str, version: str) -> httpx.Request:
    """The one request the route saw, with the checks every call shares."""
    assert r.call_count == 1
    request = r.calls.last.request
    assert request.method == method
    assert request.url.params["Action"] == action
    assert request.url.params["Version"] == version
    assert request.headers["Authorization"].startswith(f"HMAC-SHA256 Credential={AK}/")
    assert request.headers["X-Security-Token"] == "sts-token"
    assert request.headers["X-Content-Sha256"] == hashlib.sha256(request.content).hexdigest()
    if method == "GET":
        assert request.content == b""
    else:
        assert request.headers["Content-Type"] == "application/json"
    return request


def body(request: httpx.Request) -> dict[str, Any]:
    return json.loads(request.content)


async def test_signature_verifies_and_keys_stay_out_of_repr(api: respx.MockRouter, vod: VodClient) -> None:
    r = route(api, "POST", "StartWorkflow", wire("StartWorkflow")["response"])
    await vod.start_workflow(StartWorkflowRequest(vid="v1", template_id="t1"))
    request = r.calls.last.request
    auth = parse_authorization(request.headers["Authorization"])
    assert auth is not None and (auth.region, auth.service) == ("cn-north-1", "vod")
    assert "content-type" in auth.signed_headers
    signature, _, _ = compute_signature(
        secret_key=SK, method="POST", path="/", query_items=request.url.params.multi_items(),
        signed_headers={h: request.headers[h] for h in auth.signed_headers},
        body_sha256=request.headers["X-Content-Sha256"], x_date=request.headers["X-Date"],
        region="cn-north-1", service="vod",
    )
    assert signature == auth.signature
    assert SK not in repr(vod) and AK not in repr(vod) and SK not in str(vars(vod))


async def test_create_project_vendor_example(api: respx.MockRouter, vod: VodClient) -> None:
    example = wire("CreateProject")
    r = route(api, "POST", "CreateProject", example["response"])
    vendor = example["request"]
    req = CreateProjectRequest(
        project_name=vendor["ProjectName"], space=vendor["Space"],
        edit_param=EditParam.model_validate(vendor["EditParam"]),
    )
    result = await vod.create_project(req)
    assert (result.project_id, result.group_id) == ("p0ccxxxxxxxxxx", "g0c9xxxxxxxxxx")
    out = body(sent(r, "POST", "CreateProject", "2018-01-01"))
    assert out == vendor  # byte-for-byte the vendor's example, EditParam as an object
    assert isinstance(out["EditParam"], dict)
    assert list(out["EditParam"]) == ["Project", "Upload", "Output", "Canvas"]


async def test_create_project_with_builder(api: respx.MockRouter, vod: VodClient) -> None:
    r = route(api, "POST", "CreateProject", wire("CreateProject")["response"])
    param = single_clip_edit_param(name="clip_1", space_name="test", vid="v0abc", duration_ms=5000, now_ms=1)
    await vod.create_project(CreateProjectRequest(project_name="clip_1", space="test", edit_param=param))
    out = body(sent(r, "POST", "CreateProject", "2018-01-01"))
    assert out["ProjectType"] == "track"
    assert out["EditParam"]["Track"][0][0]["Source"] == "vid://v0abc"


async def test_search_global_project(api: respx.MockRouter, vod: VodClient) -> None:
    r = route(api, "POST", "SearchGlobalProject", wire("SearchGlobalProject")["response"])
    result = await vod.search_global_project("test", offset=0, limit=18)
    assert body(sent(r, "POST", "SearchGlobalProject", "2018-01-01")) == {
        "Space": "test", "Offset": 0, "Limit": 18, "SortBy": "updated_at"
    }
    assert result.total == 2
    assert [p.project_id for p in result.detail] == ["p02a100d3maelb8u65acmusxxxx", "p2"]
    # LatestEditParam arrives as a JSON string in one item and as an object in the other
    assert result.detail[0].latest_edit_param == {"Canvas": {"Width": 1920, "Height": 1080}}
    assert result.detail[1].latest_edit_param == {"Canvas": {"Width": 1280, "Height": 720}}
    assert result.detail[0].model_extra == {"CreatedAt": 1749039318}


async def test_submit_direct_edit_task_async(api: respx.MockRouter, vod: VodClient) -> None:
    r = route(api, "POST", "SubmitDirectEditTaskAsync", wire("SubmitDirectEditTaskAsync")["response"])
    param = single_clip_edit_param(name="clip", space_name="edit_tob", vid="v0abc", duration_ms=3000, now_ms=1)
    req = SubmitDirectEditTaskRequest(uploader="edit_tob", edit_param=param, priority=0, callback_args="x")
    assert await vod.submit_direct_edit_task_async(req) == "3b5fece1a47a4d3e8443a6aeea5abc01"
    out = body(sent(r, "POST", "SubmitDirectEditTaskAsync", "2018-01-01"))
    assert out["Application"] == "VideoTrackToB" and out["Uploader"] == "edit_tob"
    assert out["EditParam"]["Canvas"] == {"Width": 1920, "Height": 1080, "BackgroundColor": "#000000FF"}


async def test_get_direct_edit_progress_bare_integer(api: respx.MockRouter, vod: VodClient) -> None:
    r = route(api, "GET", "GetDirectEditProgress", wire("GetDirectEditProgress")["response"])
    assert await vod.get_direct_edit_progress("req-1") == 42
    assert sent(r, "GET", "GetDirectEditProgress", "2018-01-01").url.params["ReqId"] == "req-1"


async def test_get_direct_edit_result_array(api: respx.MockRouter, vod: VodClient) -> None:
    r = route(api, "POST", "GetDirectEditResult", wire("GetDirectEditResult")["response"])
    results = await vod.get_direct_edit_result(["3b5fece1a47a4d3e8443a6aeea5abc01", "r2", "r3"])
    assert body(sent(r, "POST", "GetDirectEditResult", "2018-01-01")) == {
        "ReqIds": ["3b5fece1a47a4d3e8443a6aeea5abc01", "r2", "r3"]
    }
    assert [x.state for x in results] == [JobState.SUCCEEDED, JobState.FAILED, JobState.RUNNING]
    assert results[0].output_vid == "v0d399g10001csunlgaljhtddi6hgvn1"
    assert results[0].edit_param == {"Canvas": {"Width": 1920, "Height": 1080}}
    assert results[1].message == "source not found"


async def test_start_workflow_direct_url_vendor_example(api: respx.MockRouter, vod: VodClient) -> None:
    example = wire("StartWorkflow")
    r = route(api, "POST", "StartWorkflow", example["response"])
    req = StartWorkflowRequest(
        direct_url={"FileName": "vodtest.mp4", "SpaceName": "test-jinling"},
        template_id="c3841b3122fd460db2bc99a6ec131cb8",
    )
    assert await vod.start_workflow(req) == "lb:0f557116******059cedf92f1bd"
    out = body(sent(r, "POST", "StartWorkflow", "2020-08-01"))
    assert out == example["request_direct_url"]
    assert isinstance(out["DirectUrl"], str)  # a JSON-encoded string, not an object


async def test_start_workflow_input_is_a_json_string(api: respx.MockRouter, vod: VodClient) -> None:
    example = wire("StartWorkflow")
    r = route(api, "POST", "StartWorkflow", example["response"])
    vendor = example["request_snapshot"]
    # The model takes the vendor's string form and holds it typed.
    req = StartWorkflowRequest.model_validate(vendor)
    snapshot = req.input.override_params.snapshot[0]  # type: ignore[union-attr]
    assert snapshot.template_id == ["94c8d47c4c39440b8e6b4e0ce7a96776"]
    await vod.start_workflow(req.model_copy(update={}))
    out = body(sent(r, "POST", "StartWorkflow", "2020-08-01"))
    assert out["Vid"] == vendor["Vid"] and "DirectUrl" not in out
    assert isinstance(out["Input"], str)
    assert json.loads(out["Input"]) == json.loads(vendor["Input"])


async def test_start_workflow_sends_all_options(api: respx.MockRouter, vod: VodClient) -> None:
    r = route(api, "POST", "StartWorkflow", wire("StartWorkflow")["response"])
    req = StartWorkflowRequest(
        vid="v1", template_id="t1", priority=-5, callback_args="订单-17", enable_low_priority=True,
        client_token="QqS3o5L4BLFCDxGZ&b",
        input={"OverrideParams": {"Logo": [{"TemplateId": "All", "Vars": {"input_text": "文字水印测试"}}]}},
    )
    await vod.start_workflow(req)
    out = body(sent(r, "POST", "StartWorkflow", "2020-08-01"))
    assert out == {
        "Vid": "v1", "TemplateId": "t1", "Priority": -5, "CallbackArgs": "订单-17", "EnableLowPriority": True,
        "ClientToken": "QqS3o5L4BLFCDxGZ&b",
        "Input": '{"OverrideParams":{"Logo":[{"TemplateId":"All","Vars":{"input_text":"文字水印测试"}}]}}',
    }


async def test_get_workflow_execution(api: respx.MockRouter, vod: VodClient) -> None:
    r = route(api, "GET", "GetWorkflowExecution", wire("GetWorkflowExecution")["response"])
    execution = await vod.get_workflow_execution("lb:0f557116a7b5059cedf92f1bd")
    assert sent(r, "GET", "GetWorkflowExecution", "2020-08-01").url.params["RunId"] == "lb:0f557116a7b5059cedf92f1bd"
    assert execution.state is JobState.RUNNING
    assert execution.callback_args == "order-17"
    assert [t.progress for t in execution.tasks_detail] == [40, 100]


async def test_get_workflow_execution_result(api: respx.MockRouter, vod: VodClient) -> None:
    r = route(api, "GET", "GetWorkflowExecutionResult", wire("GetWorkflowExecutionResult")["response"])
    result = await vod.get_workflow_execution_result("lb:0f557116a7b5059cedf92f1bd")
    sent(r, "GET", "GetWorkflowExecutionResult", "2022-12-01")
    assert result.state is JobState.SUCCEEDED
    info = result.transcode_infos[0]
    assert (info.format, info.duration, info.size) == ("mp4", 12.04, 2364812)
    assert info.store_uri == "tos-cn-v-abc/6b7e4b0d_720p.mp4"
    assert info.video_stream_meta is not None and info.video_stream_meta.width == 1280
    assert result.snapshots[0]["Type"] == "Poster"


async def test_upload_media_by_url(api: respx.MockRouter, vod: VodClient) -> None:
    r = route(api, "POST", "UploadMediaByUrl", wire("UploadMediaByUrl")["response"])
    req = UploadMediaByUrlRequest(
        space_name="test",
        url_sets=[
            {"SourceUrl": "https://example.com/clip-1.mp4", "FileName": "clips/1.mp4", "Title": "一"},
            {"SourceUrl": "https://example.com/clip-2.mp4", "CallbackArgs": "c2", "StorageClass": 1},
        ],
    )
    jobs = await vod.upload_media_by_url(req)
    assert [j.job_id for j in jobs] == ["d8a9c2a1f0e04f3b9c2d9f0a1b2c3d4e", "e9b0d3b2a1f05a4cad3eaf1b2c3d4e5f"]
    out = body(sent(r, "POST", "UploadMediaByUrl", "2020-08-01"))
    assert out["SpaceName"] == "test"
    assert isinstance(out["URLSets"], str)  # JSON-encoded string of the array
    assert json.loads(out["URLSets"]) == [
        {"SourceUrl": "https://example.com/clip-1.mp4", "FileName": "clips/1.mp4", "Title": "一"},
        {"SourceUrl": "https://example.com/clip-2.mp4", "CallbackArgs": "c2", "StorageClass": 1},
    ]


async def test_query_upload_task_info(api: respx.MockRouter, vod: VodClient) -> None:
    r = route(api, "GET", "QueryUploadTaskInfo", wire("QueryUploadTaskInfo")["response"])
    ids = ["d8a9c2a1f0e04f3b9c2d9f0a1b2c3d4e", "e9b0d3b2a1f05a4cad3eaf1b2c3d4e5f", "0000000000000000000000000000dead"]
    result = await vod.query_upload_task_info(ids)
    assert sent(r, "GET", "QueryUploadTaskInfo", "2020-08-01").url.params["JobIds"] == ",".join(ids)
    done, pending = result.media_info_list
    assert (done.state, pending.state) == (JobState.SUCCEEDED, JobState.RUNNING)
    assert done.vid == "v0d399g10001csunlgaljhtddi6hgvn2"
    assert done.source_info is not None
    assert (done.source_info.duration, done.source_info.size, done.source_info.height) == (5.04, 1048576, 1080)
    assert pending.source_info is None
    assert result.not_exist_job_ids == ["0000000000000000000000000000dead"]
    assert set(result.by_job_id()) == set(ids[:2])


async def test_submit_ai_translation_workflow(api: respx.MockRouter, vod: VodClient) -> None:
    r = route(api, "POST", "SubmitAITranslationWorkflow", wire("SubmitAITranslationWorkflow")["response"])
    req = SubmitAITranslationWorkflowRequest(
        space_name="test", vid="v0299fg10064d103gsqljht10tatbreg",
        translation_config={
            "SourceLanguage": "zh", "TargetLanguage": "en",
            "TranslationTypeList": ["VoiceTranslation", "SubtitleTranslation"],  # any order; sent in doc order
            "TermbaseConfig": {"TranslationTermbaseIds": ["tb1"]},
        },
        operator_config={"SubtitleRecognitionConfig": {"RecognitionType": "ASR"},
                         "VoiceCloneConfig": {"BackgroundVolume": 80}},
        subtitle_config={"IsHardSubtitle": True, "FontSize": 40, "MarginL": 10, "MarginR": 10, "MarginV": 20,
                         "ShowLines": 2},
        process_config={"SuspensionStageList": ["SubtitleTranslation"]},
    )
    info = await vod.submit_ai_translation_workflow(req)
    assert (info.project_id, info.project_version) == ("684038d6b71c9005b266fefe", "01c4fa5da3d648a588a46f81e282b100")
    out = body(sent(r, "POST", "SubmitAITranslationWorkflow", "2025-01-01"))
    assert out == {
        "SpaceName": "test", "Vid": "v0299fg10064d103gsqljht10tatbreg",
        "TranslationConfig": {"SourceLanguage": "zh", "TargetLanguage": "en",
                              "TranslationTypeList": ["SubtitleTranslation", "VoiceTranslation"],
                              "TermbaseConfig": {"TranslationTermbaseIds": ["tb1"]}},
        "OperatorConfig": {"SubtitleRecognitionConfig": {"RecognitionType": "ASR"},
                           "VoiceCloneConfig": {"BackgroundVolume": 80}},
        "SubtitleConfig": {"IsHardSubtitle": True, "FontSize": 40, "MarginL": 10, "MarginR": 10, "MarginV": 20,
                           "ShowLines": 2},
        "ProcessConfig": {"SuspensionStageList": ["SubtitleTranslation"]},
    }


async def test_get_ai_translation_project_vendor_example(api: respx.MockRouter, vod: VodClient) -> None:
    example = wire("GetAITranslationProject")
    r = route(api, "GET", "GetAITranslationProject", example["response"])
    additions = ["Speakers", "SourceUtterances", "SourceTracks", "SourceClips", "TargetUtterances", "TargetTracks",
                 "TargetClips", "BackgroundClip"]
    project = await vod.get_ai_translation_project("video-edit-space", "684038d6b71c9005b266fefe", additions)
    params = sent(r, "GET", "GetAITranslationProject", "2025-01-01").url.params
    vendor_params = httpx.URL(example["request_url"]).params
    for key in ("SpaceName", "ProjectId", "Additions"):
        assert params[key] == vendor_params[key]
    assert project.state is JobState.SUCCEEDED
    assert (project.created_at, project.updated_at) == (1749039318, 1749041560)
    assert project.translation_type_list == ["SubtitleTranslation", "VoiceTranslation", "FacialTranslation"]
    assert project.input_video is not None and project.input_video.vid == "v0299fg10064d103gsqljht10tatbreg"
    assert project.input_video.duration_second == 159.104 and project.input_video.is_audio is False
    assert project.background_audio is not None and project.background_audio.is_audio is True
    assert project.output_vid == "v0d99fg10064d10435qljht287ouip70"
    assert project.target_languages == ["en"]
    assert project.source_blueprints[0].language == "zh"
    assert project.speakers == [] and project.background_clip is None
    assert project.operator_config is not None
    assert project.operator_config.subtitle_recognition_config.recognition_type == "OCR"  # type: ignore[union-attr]
    assert (project.error_code, project.error_msg) == (0, "")


async def test_get_ai_translation_project_without_additions(api: respx.MockRouter, vod: VodClient) -> None:
    r = route(api, "GET", "GetAITranslationProject", wire("GetAITranslationProject")["response"])
    await vod.get_ai_translation_project("s", "p")
    assert "Additions" not in sent(r, "GET", "GetAITranslationProject", "2025-01-01").url.params


async def test_get_ai_translation_project_additions(api: respx.MockRouter, vod: VodClient) -> None:
    route(api, "GET", "GetAITranslationProject", wire("GetAITranslationProject_additions")["response"])
    p = await vod.get_ai_translation_project("s", "684038d6b71c9005b266fefe", ["Speakers", "TargetClips"])
    assert p.state is JobState.RUNNING and p.updated_at is None and p.translation_type_list == []
    assert p.speakers[0].voice == "DiT_9e673c550103"
    src, tgt = p.source_utterances[0], p.target_utterances[0]
    assert (src.text, src.translation_type, src.status) == ("你好，世界", "source", "online")
    assert (tgt.source_id, tgt.is_facial_translation, tgt.status) == (src.id, True, "need_update")
    assert tgt.model_extra == {"Confidence": 0.93}  # unknown fields kept
    assert p.source_tracks[0].speaker_id == p.speakers[0].id
    clip = p.source_clips[0]
    assert clip.trim is not None and (clip.trim.start, clip.trim.end, clip.trim.duration_ms) == (200, 1100, 900)
    assert clip.clip_audio is not None and clip.clip_audio.url == "https://example.volcvideo.com/s1.aac"
    target = p.target_clips[0]  # numbers sent as strings
    assert target.trim is not None and (target.trim.start, target.trim.end, target.volume) == (200, 1300, 80)
    assert target.clip_audio is not None and target.clip_audio.duration_second == 1.1
    assert p.background_clip is not None and p.background_clip.translation_type == "background"
    assert p.error_code == 0


async def test_list_ai_translation_project(api: respx.MockRouter, vod: VodClient) -> None:
    r = route(api, "GET", "ListAITranslationProject", wire("ListAITranslationProject")["response"])
    result = await vod.list_ai_translation_project(
        "test", page_number=2, page_size=50, status_filter=["ProcessFailed", "ExportSucceed"],
        project_id_or_title_filter="败给月光",
    )
    params = sent(r, "GET", "ListAITranslationProject", "2025-01-01").url.params
    assert dict(params) == {
        "Action": "ListAITranslationProject", "Version": "2025-01-01", "SpaceName": "test", "PageNumber": "2",
        "PageSize": "50", "StatusFilter": "ProcessFailed,ExportSucceed", "ProjectIdOrTitleFilter": "败给月光",
    }
    assert result.total_count == 2
    ok, failed = result.projects
    assert (ok.state, ok.output_vid, ok.target_languages) == (JobState.SUCCEEDED, "v0d99fg10064d10435qljht287ouip70", ["en"])
    assert (failed.state, failed.error_code, failed.speakers) == (JobState.FAILED, 500130, [])


async def test_list_ai_translation_project_defaults(api: respx.MockRouter, vod: VodClient) -> None:
    r = route(api, "GET", "ListAITranslationProject", wire("ListAITranslationProject")["response"])
    await vod.list_ai_translation_project("test")
    params = sent(r, "GET", "ListAITranslationProject", "2025-01-01").url.params
    assert (params["PageNumber"], params["PageSize"]) == ("1", "20")
    assert "StatusFilter" not in params and "ProjectIdOrTitleFilter" not in params


async def test_one_http_client_per_vod_client_and_closed_by_context() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"Result": 7}))
    async with VodClient(AK, SK, transport=transport, endpoint="http://127.0.0.1:9/") as client:
        http = client._http
        assert await client.get_direct_edit_progress("a") == 7
        assert await client.get_direct_edit_progress("b") == 7
        assert client._http is http and not http.is_closed
    assert http.is_closed
