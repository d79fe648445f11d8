"""Every local validation rule: RequestValidationError names the wire field and the rule, and nothing is sent.

Each bad request is made with ``model_copy(update=...)``/``model_construct`` (which skip validation) so the
client's own check is what stops it; the constructors are tested separately.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import respx

from providers.errors import InvalidRequestError, RequestValidationError
from providers.vod import (
    Canvas,
    Codec,
    CreateProjectRequest,
    DirectUrl,
    OperatorConfig,
    ProcessConfig,
    StartWorkflowRequest,
    SubmitAITranslationWorkflowRequest,
    SubmitDirectEditTaskRequest,
    SubtitleRecognitionConfig,
    TrackElement,
    TranslationConfig,
    UploadMediaByUrlRequest,
    UrlSet,
    VodClient,
    single_clip_edit_param,
)

ENDPOINT = "https://vod.volcengineapi.com"


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=ENDPOINT, assert_all_called=False) as router:
        router.route().respond(500)  # would be hit by anything that leaves
        yield router


@pytest.fixture(scope="module")
async def vod() -> AsyncIterator[VodClient]:
    async with VodClient("AK", "SK") as client:
        yield client


PARAM = single_clip_edit_param(name="clip", space_name="s", vid="v0abc", duration_ms=5000, now_ms=1)


def workflow() -> StartWorkflowRequest:
    return StartWorkflowRequest(vid="v0abc", template_id="tpl")


def project() -> CreateProjectRequest:
    return CreateProjectRequest(project_name="新建项目-test", space="s", edit_param=PARAM)


def translation() -> SubmitAITranslationWorkflowRequest:
    return SubmitAITranslationWorkflowRequest(
        space_name="s", vid="v", translation_config={"SourceLanguage": "zh", "TargetLanguage": "en"}
    )


def upload() -> UploadMediaByUrlRequest:
    return UploadMediaByUrlRequest(space_name="s", url_sets=[{"SourceUrl": "https://example.com/a.mp4"}])


def direct_edit() -> SubmitDirectEditTaskRequest:
    return SubmitDirectEditTaskRequest(uploader="s", edit_param=PARAM)


def tc(**kw: Any) -> TranslationConfig:
    base = {"source_language": "zh", "target_language": "en", "translation_type_list": ["SubtitleTranslation"]}
    return TranslationConfig.model_construct(**{**base, **kw})


def urls(n: int, url: str = "https://example.com/{i}.mp4") -> list[UrlSet]:
    return [UrlSet.model_construct(source_url=url.format(i=i)) for i in range(n)]


def edit(**update: Any) -> Any:
    return PARAM.model_copy(update=update)


# id: (valid request factory, update, client method, field, words the rule must contain)
MODEL_CASES: dict[str, tuple[Callable[[], Any], dict[str, Any], str, str, str]] = {
    "wf-both-vid-and-directurl": (workflow, {"direct_url": DirectUrl(file_name="a.mp4")}, "start_workflow",
                                  "Vid/DirectUrl", "exactly one of Vid and DirectUrl"),
    "wf-neither": (workflow, {"vid": None}, "start_workflow", "Vid/DirectUrl", "exactly one of Vid and DirectUrl"),
    "wf-directurl-filename-empty": (workflow, {"vid": None, "direct_url": DirectUrl.model_construct(file_name="")},
                                    "start_workflow", "DirectUrl.FileName", "non-empty"),
    "wf-priority-high": (workflow, {"priority": 6}, "start_workflow", "Priority", "[-5, 5]"),
    "wf-priority-low": (workflow, {"priority": -6}, "start_workflow", "Priority", "[-5, 5]"),
    "wf-callbackargs-513-bytes": (workflow, {"callback_args": "字" * 171}, "start_workflow", "CallbackArgs",
                                  "512 bytes"),
    "wf-clienttoken-65": (workflow, {"client_token": "a" * 65}, "start_workflow", "ClientToken",
                          "1-64 printable ASCII"),
    "wf-clienttoken-non-ascii": (workflow, {"client_token": "令牌"}, "start_workflow", "ClientToken",
                                 "printable ASCII"),
    "wf-clienttoken-control": (workflow, {"client_token": "a\nb"}, "start_workflow", "ClientToken",
                               "printable ASCII"),
    "wf-clienttoken-empty": (workflow, {"client_token": ""}, "start_workflow", "ClientToken", "printable ASCII"),
    "wf-templateid-empty": (workflow, {"template_id": " "}, "start_workflow", "TemplateId", "non-empty"),
    "cp-name-empty": (project, {"project_name": ""}, "create_project", "ProjectName", "1-128 characters"),
    "cp-name-129": (project, {"project_name": "a" * 129}, "create_project", "ProjectName", "1-128 characters"),
    "cp-name-space": (project, {"project_name": "my project"}, "create_project", "ProjectName", "CJK ideographs"),
    "cp-name-dot": (project, {"project_name": "a.b"}, "create_project", "ProjectName", "'-' or '_'"),
    "cp-name-emoji": (project, {"project_name": "clip😀"}, "create_project", "ProjectName", "ASCII letters, digits"),
    "cp-name-fullwidth-punct": (project, {"project_name": "项目，一"}, "create_project", "ProjectName",
                                "1-128 characters"),
    "cp-space-empty": (project, {"space": ""}, "create_project", "Space", "non-empty"),
    "cp-type-not-track": (project, {"project_type": "timeline"}, "create_project", "ProjectType", "'track'"),
    "cp-canvas-width": (project, {"edit_param": edit(canvas=Canvas.model_construct(width=0, height=1080))},
                        "create_project", "EditParam.Canvas.Width", "> 0"),
    "cp-crf": (project, {"edit_param": edit(output=PARAM.output.model_copy(
        update={"codec": Codec.model_construct(crf=60)}))}, "create_project", "EditParam.Output.Codec.Crf",
               "[0, 51]"),
    "cp-target-time-order": (project, {"edit_param": edit(track=[[TrackElement.model_construct(
        type="video", source="vid://v", target_time=(5000, 1000))]])}, "create_project",
                             "EditParam.Track[0][0].TargetTime", "start < end"),
    "de-uploader-empty": (direct_edit, {"uploader": ""}, "submit_direct_edit_task_async", "Uploader", "non-empty"),
    "de-callbackargs-too-big": (direct_edit, {"callback_args": "x" * (64 * 1024 + 1)},
                                "submit_direct_edit_task_async", "CallbackArgs", "64 KB"),
    "tr-source-ja": (translation, {"translation_config": tc(source_language="ja")}, "submit_ai_translation_workflow",
                     "TranslationConfig.SourceLanguage", "one of zh, en"),
    "tr-target-unknown": (translation, {"translation_config": tc(target_language="xx")},
                          "submit_ai_translation_workflow", "TranslationConfig.TargetLanguage",
                          "one of zh en ja ko de fr ru es pt it id vi th ar tr"),
    "tr-target-equals-source": (translation, {"translation_config": tc(target_language="zh")},
                                "submit_ai_translation_workflow", "TranslationConfig.TargetLanguage",
                                "differ from SourceLanguage"),
    "tr-types-empty": (translation, {"translation_config": tc(translation_type_list=[])},
                       "submit_ai_translation_workflow", "TranslationConfig.TranslationTypeList", "non-empty"),
    "tr-types-unknown": (translation, {"translation_config": tc(translation_type_list=["Dubbing"])},
                         "submit_ai_translation_workflow", "TranslationConfig.TranslationTypeList", "unknown type"),
    "tr-types-voice-alone": (translation, {"translation_config": tc(translation_type_list=["VoiceTranslation"])},
                             "submit_ai_translation_workflow", "TranslationConfig.TranslationTypeList",
                             "allowed combinations"),
    "tr-types-facial-without-voice": (
        translation, {"translation_config": tc(translation_type_list=["SubtitleTranslation", "FacialTranslation"])},
        "submit_ai_translation_workflow", "TranslationConfig.TranslationTypeList", "allowed combinations"),
    "tr-types-duplicate": (
        translation, {"translation_config": tc(translation_type_list=["SubtitleTranslation"] * 2)},
        "submit_ai_translation_workflow", "TranslationConfig.TranslationTypeList", "allowed combinations"),
    "tr-recognition": (translation, {"operator_config": OperatorConfig.model_construct(
        subtitle_recognition_config=SubtitleRecognitionConfig.model_construct(recognition_type="STT"))},
                       "submit_ai_translation_workflow", "OperatorConfig.SubtitleRecognitionConfig.RecognitionType",
                       "OCR or ASR"),
    "tr-suspension-stage": (translation, {"process_config": ProcessConfig.model_construct(
        suspension_stage_list=["Export"])}, "submit_ai_translation_workflow", "ProcessConfig.SuspensionStageList",
                            "unknown stage"),
    "tr-vid-empty": (translation, {"vid": ""}, "submit_ai_translation_workflow", "Vid", "non-empty"),
    "tr-space-empty": (translation, {"space_name": ""}, "submit_ai_translation_workflow", "SpaceName", "non-empty"),
    "up-no-urls": (upload, {"url_sets": []}, "upload_media_by_url", "URLSets", "1-20 URLs"),
    "up-21-urls": (upload, {"url_sets": urls(21)}, "upload_media_by_url", "URLSets", "1-20 URLs"),
    "up-ftp-url": (upload, {"url_sets": urls(1, "ftp://example.com/a.mp4")}, "upload_media_by_url",
                   "URLSets[0].SourceUrl", "http(s) URL"),
    "up-relative-url": (upload, {"url_sets": [*urls(1), *urls(1, "/a.mp4")]}, "upload_media_by_url",
                        "URLSets[1].SourceUrl", "http(s) URL"),
    "up-space-empty": (upload, {"space_name": ""}, "upload_media_by_url", "SpaceName", "non-empty"),
}


@pytest.mark.parametrize("case", list(MODEL_CASES))
async def test_request_model_rule_stops_before_sending(api: respx.MockRouter, vod: VodClient, case: str) -> None:
    factory, update, method, field, rule = MODEL_CASES[case]
    bad = factory().model_copy(update=update)
    with pytest.raises(RequestValidationError) as info:
        await getattr(vod, method)(bad)
    err = info.value
    assert err.field == field and rule in err.rule
    assert str(err).startswith(f"[vod:{type(bad).action}] {field}: ") and rule in str(err)
    assert isinstance(err, InvalidRequestError) and isinstance(err, ValueError) and not err.retryable
    assert not api.routes[0].called


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_request_model_rule_fails_at_construction(case: str) -> None:
    factory, update, _, field, rule = MODEL_CASES[case]
    bad = factory().model_copy(update=update)
    wire = bad.model_dump(by_alias=True, round_trip=True)
    with pytest.raises(RequestValidationError) as info:
        type(bad).model_validate(wire)
    assert info.value.field == field and rule in info.value.rule


# id: (call, field, words the rule must contain)
CALL_CASES: dict[str, tuple[Callable[[VodClient], Awaitable[Any]], str, str]] = {
    "query-no-ids": (lambda c: c.query_upload_task_info([]), "JobIds", "1-20 ids"),
    "query-21-ids": (lambda c: c.query_upload_task_info([f"j{i}" for i in range(21)]), "JobIds", "1-20 ids"),
    "query-comma-in-id": (lambda c: c.query_upload_task_info(["a,b"]), "JobIds", "without commas"),
    "query-empty-id": (lambda c: c.query_upload_task_info(["a", ""]), "JobIds", "non-empty"),
    "query-string-not-list": (lambda c: c.query_upload_task_info("abc"), "JobIds", "list of ids"),
    "additions-unknown": (lambda c: c.get_ai_translation_project("s", "p", ["Speakers", "Subtitles"]), "Additions",
                          "unknown value(s) ['Subtitles']"),
    "additions-string": (lambda c: c.get_ai_translation_project("s", "p", "Speakers"), "Additions", "list of names"),
    "get-project-space": (lambda c: c.get_ai_translation_project("", "p"), "SpaceName", "non-empty"),
    "get-project-id": (lambda c: c.get_ai_translation_project("s", " "), "ProjectId", "non-empty"),
    "list-page-number": (lambda c: c.list_ai_translation_project("s", page_number=0), "PageNumber", ">= 1"),
    "list-page-size": (lambda c: c.list_ai_translation_project("s", page_size=0), "PageSize", ">= 1"),
    "list-space": (lambda c: c.list_ai_translation_project(""), "SpaceName", "non-empty"),
    "edit-result-no-ids": (lambda c: c.get_direct_edit_result([]), "ReqIds", "at least 1"),
    "edit-progress-empty": (lambda c: c.get_direct_edit_progress(""), "ReqId", "non-empty"),
    "run-id-empty": (lambda c: c.get_workflow_execution(""), "RunId", "non-empty"),
    "run-id-empty-result": (lambda c: c.get_workflow_execution_result(""), "RunId", "non-empty"),
    "search-space": (lambda c: c.search_global_project(""), "Space", "non-empty"),
    "search-limit": (lambda c: c.search_global_project("s", limit=0), "Limit", ">= 1"),
    "search-offset": (lambda c: c.search_global_project("s", offset=-1), "Offset", ">= 0"),
}


@pytest.mark.parametrize("case", list(CALL_CASES))
async def test_call_argument_rule_stops_before_sending(api: respx.MockRouter, vod: VodClient, case: str) -> None:
    call, field, rule = CALL_CASES[case]
    with pytest.raises(RequestValidationError) as info:
        await call(vod)
    assert info.value.field == field and rule in info.value.rule
    assert f"{field}: " in str(info.value)
    assert not api.routes[0].called


def test_constructors_raise_request_validation_error_naming_field() -> None:
    with pytest.raises(RequestValidationError, match=r"TemplateId: required"):
        StartWorkflowRequest(vid="v")
    with pytest.raises(RequestValidationError, match=r"DirectUrl\.FileName: required"):
        StartWorkflowRequest(direct_url={"SpaceName": "s"}, template_id="t")
    with pytest.raises(RequestValidationError, match=r"priorty: Extra inputs are not permitted"):
        StartWorkflowRequest(vid="v", template_id="t", priorty=1)  # a typo must not vanish on a paid call
    with pytest.raises(RequestValidationError, match=r"Input: must be a JSON object"):
        StartWorkflowRequest(vid="v", template_id="t", input="{not json")
    with pytest.raises(RequestValidationError, match=r"TranslationConfig\.TargetLanguage: must differ"):
        SubmitAITranslationWorkflowRequest(
            space_name="s", vid="v", translation_config=TranslationConfig.model_construct(
                source_language="en", target_language="en", translation_type_list=["SubtitleTranslation"])
        )
    with pytest.raises(RequestValidationError, match=r"TargetLanguage: must be one of"):
        TranslationConfig(source_language="zh", target_language="klingon")
    with pytest.raises(RequestValidationError, match=r"Application: Input should be 'VideoTrackToB'"):
        SubmitDirectEditTaskRequest(uploader="s", edit_param=PARAM, application="Other")
    with pytest.raises(RequestValidationError, match=r"duration_ms: must be > 0"):
        single_clip_edit_param(name="n", space_name="s", vid="v", duration_ms=0)


def test_boundaries_that_are_allowed() -> None:
    assert workflow().model_copy(update={"priority": 5}).revalidated().priority == 5
    assert workflow().model_copy(update={"priority": -5}).revalidated().priority == -5
    assert workflow().model_copy(update={"callback_args": "字" * 170 + "ab"}).revalidated()  # 512 bytes
    assert workflow().model_copy(update={"client_token": "~ !" + "a" * 61}).revalidated()  # 64 printable
    assert project().model_copy(update={"project_name": "汉" * 128}).revalidated()
    assert project().model_copy(update={"project_name": "Clip_01-新建項目"}).revalidated()
    assert upload().model_copy(update={"url_sets": urls(20)}).revalidated()
    for types in (["SubtitleTranslation"], ["SubtitleTranslation", "VoiceTranslation"],
                  ["FacialTranslation", "VoiceTranslation", "SubtitleTranslation"]):
        config = TranslationConfig(source_language="en", target_language="ar", translation_type_list=types)
        assert config.translation_type_list[0] == "SubtitleTranslation"
    assert StartWorkflowRequest(vid="v", template_id="t", client_token="x").idempotent
    assert not StartWorkflowRequest(vid="v", template_id="t").idempotent
