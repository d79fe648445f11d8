"""Staged AI translation on the wire: UpdateAITranslationUtterances, ContinueAITranslationWorkflow,
RefreshAITranslationProject (what is sent, how a lost answer is classified), the paused state, and the typed
view of a project's utterances (timing, speaker, marks) and outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from providers.errors import (
    InvalidRequestError,
    OutcomeUnknownError,
    RequestValidationError,
    ServerError,
)
from providers.quotas import VOD_QPS
from providers.states import JobState, translation_state
from providers.vod import (
    AITranslationProject,
    SubmitAITranslationWorkflowRequest,
    UpdateAITranslationUtterancesRequest,
    VodClient,
    leading_marks,
)
from providers.vod.paid import PAID_ACTIONS, PAID_PROJECT_ACTIONS, is_paid, safe_to_repeat
from tests.providers.support import NoNetwork

WIRE = Path(__file__).parent / "wire"
BASE = {"ProjectId": "684038d6b71c9005b266fefe", "ProjectVersion": "v2"}


def ok(result: Any) -> dict[str, Any]:
    return {"ResponseMetadata": {"RequestId": "r"}, "Result": result}


def lone(route: respx.Route, action: str) -> dict[str, Any]:
    assert route.call_count == 1
    request = route.calls.last.request
    assert request.method == "POST" and request.headers["Content-Type"] == "application/json"
    assert (request.url.params["Action"], request.url.params["Version"]) == (action, "2025-01-01")
    return json.loads(request.content)


# --- what is sent --------------------------------------------------------------------------------------------


async def test_update_by_utterance_sends_the_edits_verbatim(api: respx.MockRouter, vod: VodClient) -> None:
    r = api.route(params={"Action": "UpdateAITranslationUtterances"}).respond(200, json=ok({"ProjectBaseInfo": BASE}))
    edited = "<v Speaker 2><a UseOriginal>Welcome back."
    info = await vod.update_ai_translation_utterances(UpdateAITranslationUtterancesRequest(
        space_name="test", project_id=BASE["ProjectId"], update_type="Utterances",
        utterances=[{"Id": "u1", "Text": edited, "SpeakerId": "s2"}, {"Id": "u2", "Start": 100, "End": 900,
                                                                       "Volume": 0}]))
    assert info is not None and info.project_version == "v2"
    assert lone(r, "UpdateAITranslationUtterances") == {
        "SpaceName": "test", "ProjectId": BASE["ProjectId"], "UpdateType": "Utterances",
        "Utterances": [{"Id": "u1", "Text": edited, "SpeakerId": "s2"}, {"Id": "u2", "Start": 100, "End": 900,
                                                                        "Volume": 0}]}


async def test_update_by_file_and_an_empty_result(api: respx.MockRouter, vod: VodClient) -> None:
    r = api.route(params={"Action": "UpdateAITranslationUtterances"}).respond(200, json=ok({}))
    info = await vod.update_ai_translation_utterances(UpdateAITranslationUtterancesRequest(
        space_name="test", project_id="p", update_type="OutputSubtitleFile",
        output_subtitle_file_name="your_target_subtitle_file.vtt"))
    assert info is None  # the page documents no result fields
    assert lone(r, "UpdateAITranslationUtterances") == {  # the vendor guide's example body
        "SpaceName": "test", "ProjectId": "p", "UpdateType": "OutputSubtitleFile",
        "OutputSubtitleFileName": "your_target_subtitle_file.vtt"}


async def test_continue_and_refresh_send_the_vendor_examples(api: respx.MockRouter, vod: VodClient) -> None:
    c = api.route(params={"Action": "ContinueAITranslationWorkflow"}).respond(200, json=ok({"ProjectBaseInfo": BASE}))
    f = api.route(params={"Action": "RefreshAITranslationProject"}).respond(200, json=ok({"ProjectBaseInfo": BASE}))
    assert (await vod.continue_ai_translation_workflow("test", BASE["ProjectId"])).project_id == BASE["ProjectId"]
    assert (await vod.refresh_ai_translation_project("test", BASE["ProjectId"])).project_version == "v2"
    assert lone(c, "ContinueAITranslationWorkflow") == {"SpaceName": "test", "ProjectId": BASE["ProjectId"]}
    assert lone(f, "RefreshAITranslationProject") == {"SpaceName": "test", "ProjectId": BASE["ProjectId"],
                                                      "RefreshType": "whole"}


async def test_submit_sends_is_vision_and_defaults_recognition_to_ocr(api: respx.MockRouter, vod: VodClient) -> None:
    r = api.route(params={"Action": "SubmitAITranslationWorkflow"}).respond(200, json=ok({"ProjectBaseInfo": BASE}))
    await vod.submit_ai_translation_workflow(SubmitAITranslationWorkflowRequest(
        space_name="s", vid="v", translation_config={"SourceLanguage": "zh", "TargetLanguage": "en"},
        operator_config={"SubtitleRecognitionConfig": {"IsVision": True}, "VoiceCloneConfig": {"BackgroundVolume": 0}},
        process_config={"SuspensionStageList": ["SubtitleRecognition"]}))
    sent = lone(r, "SubmitAITranslationWorkflow")
    assert sent["OperatorConfig"] == {"SubtitleRecognitionConfig": {"RecognitionType": "OCR", "IsVision": True},
                                      "VoiceCloneConfig": {"BackgroundVolume": 0}}


# --- refused before the network ------------------------------------------------------------------------------


@pytest.mark.parametrize("fields,field,rule", [
    ({"utterances": []}, "Utterances", "at least one edit"),
    ({"utterances": [{"Id": "u"}]}, "Utterances[0].Id", "at least one of"),
    ({"utterances": [{"Id": "u", "Text": "<v A><a MuteSpeech>  "}]}, "Utterances[0].Text", "some text"),
    ({"utterances": [{"Id": "u", "Start": 900, "End": 100}]}, "Utterances[0].End", "later than Start"),
    ({"utterances": [{"Id": "u", "Volume": 101}]}, "Utterances[0].Volume", "0-100"),
    ({"utterances": [{"Id": "u", "Start": -1}]}, "Utterances[0].Start", ">= 0"),
    ({"utterances": [{"Id": "u", "Text": "a"}, {"Id": "u", "Text": "b"}]}, "Utterances", "same Id twice"),
    ({"update_type": "Subtitles"}, "UpdateType", "must be one of"),
    ({"update_type": "OutputSubtitleFile"}, "OutputSubtitleFileName", "required"),
    ({"update_type": "InputSubtitleFile", "input_subtitle_file_name": "a.txt"}, "InputSubtitleFileName", "SRT or"),
    ({"update_type": "InputSubtitleFile", "output_subtitle_file_name": "a.vtt"}, "OutputSubtitleFileName", "not be"),
    ({"update_type": "BilingualSubtitleFile", "bilingual_subtitle_file_name": "b.srt",
      "utterances": [{"Id": "u", "Text": "x"}]}, "Utterances", "must not be set"),
])
def test_update_request_rules(fields: dict[str, Any], field: str, rule: str) -> None:
    with pytest.raises(RequestValidationError) as info:
        UpdateAITranslationUtterancesRequest(space_name="s", project_id="p", **fields)
    assert info.value.field == field and rule in info.value.rule


async def test_bad_input_never_leaves_the_process() -> None:
    transport = NoNetwork()
    async with VodClient("AK", "SK", transport=transport) as client:
        with pytest.raises(RequestValidationError) as a:
            await client.refresh_ai_translation_project("s", "p", refresh_type="partial")
        with pytest.raises(RequestValidationError) as b:
            await client.continue_ai_translation_workflow("s", " ")
        with pytest.raises(RequestValidationError) as c:
            await client.submit_ai_translation_workflow(SubmitAITranslationWorkflowRequest(
                space_name="s", vid="v", translation_config={"SourceLanguage": "zh", "TargetLanguage": "en"},
                operator_config={"VoiceCloneConfig": {"BackgroundVolume": 150}}))
    assert (a.value.field, b.value.field) == ("RefreshType", "ProjectId")
    assert c.value.field == "OperatorConfig.VoiceCloneConfig.BackgroundVolume"
    assert transport.calls == 0


# --- lost answers --------------------------------------------------------------------------------------------


PROJECT_CALLS = {
    "ContinueAITranslationWorkflow": lambda c: c.continue_ai_translation_workflow("s", "p"),
    "RefreshAITranslationProject": lambda c: c.refresh_ai_translation_project("s", "p"),
}


def test_the_paid_table_covers_the_project_actions() -> None:
    assert set(PROJECT_CALLS) == set(PAID_PROJECT_ACTIONS) and not set(PAID_ACTIONS) & set(PAID_PROJECT_ACTIONS)
    assert all(is_paid(a) and not safe_to_repeat(a, {"ProjectId": "p"}) for a in PAID_PROJECT_ACTIONS)
    assert safe_to_repeat("UpdateAITranslationUtterances") and not is_paid("UpdateAITranslationUtterances")
    assert all(VOD_QPS[a] == 10 for a in ("UpdateAITranslationUtterances", *PAID_PROJECT_ACTIONS))


@pytest.mark.parametrize("lost", [
    httpx.Response(504, json={"ResponseMetadata": {"Error": {"Code": "InternalServiceTimeout", "Message": "m"}}}),
    httpx.Response(500, json={"ResponseMetadata": {"Error": {"Code": "InternalError", "Message": "m"}}}),
    httpx.ReadTimeout("slow"),
    httpx.RemoteProtocolError("cut"),
], ids=["504", "500", "read-timeout", "dropped"])
@pytest.mark.parametrize("action", list(PROJECT_CALLS))
async def test_lost_answer_on_continue_or_refresh_is_outcome_unknown(
    api: respx.MockRouter, vod: VodClient, action: str, lost: Any
) -> None:
    route = api.route().mock(side_effect=lost if isinstance(lost, Exception) else (lambda request: lost))
    with pytest.raises(OutcomeUnknownError) as info:
        await PROJECT_CALLS[action](vod)
    assert route.call_count == 1 and info.value.retryable is False and info.value.action == action


async def test_server_error_on_update_stays_retryable(api: respx.MockRouter, vod: VodClient) -> None:
    api.route().respond(503, json={"ResponseMetadata": {"Error": {"Code": "ServiceUnavailable", "Message": "m"}}})
    with pytest.raises(ServerError) as info:
        await vod.update_ai_translation_utterances(UpdateAITranslationUtterancesRequest(
            space_name="s", project_id="p", utterances=[{"Id": "u", "Text": "t"}]))
    assert type(info.value) is ServerError and info.value.retryable is True


async def test_a_refused_continue_is_a_definite_error(api: respx.MockRouter, vod: VodClient) -> None:
    api.route().respond(400, json={"ResponseMetadata": {"Error": {"Code": "InvalidParameter", "Message": "busy"}}})
    with pytest.raises(InvalidRequestError):
        await vod.continue_ai_translation_workflow("s", "p")


# --- the typed project ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status,state", [
    ("ProcessSuspended", JobState.PAUSED), ("InExporting", JobState.RUNNING), ("ExportSucceed", JobState.SUCCEEDED),
    ("ExportFailed", JobState.FAILED), ("InProcessing", JobState.RUNNING),
])
def test_review_states(status: str, state: JobState) -> None:
    assert translation_state(status) is state
    assert not JobState.PAUSED.is_terminal


PAUSED = {
    "ProjectId": "p", "Status": "ProcessSuspended",
    "Speakers": [{"Id": "s1", "Name": "Speaker 1"}, {"Id": "s2", "Name": "Narrator"}],
    "SourceUtterances": [{"Id": "a", "ClipId": "ca", "SpeakerId": "s1", "Text": "你好"}],
    "SourceClips": [{"Id": "ca", "Trim": {"Start": "200", "End": 1100}}],
    "TargetUtterances": [{"Id": "b", "ClipId": "cb", "SpeakerId": "s2", "SourceId": "a",
                          "Text": "<v Narrator><a MuteSpeech>Hello"}],
    "TargetClips": [{"Id": "cb", "Trim": {"Start": 200, "End": 1300}}],
    "InputSubtitle": {"Uri": "tos-x/p-source.vtt", "Url": "https://e/p-source.vtt?auth_key=1", "Format": "vtt"},
    "OutputSubtitle": {"Uri": "tos-x/p-target.vtt", "Url": "https://e/p-target.vtt?auth_key=1"},
}


def test_paused_project_lines_carry_timing_speaker_and_marks() -> None:
    project = AITranslationProject.model_validate(PAUSED)
    assert project.is_paused and project.state is JobState.PAUSED
    source, target = project.source_utterances[0], project.target_utterances[0]
    assert (source.start, source.end, source.speaker_name) == (200, 1100, "Speaker 1")
    assert (target.start, target.end, target.speaker_name, target.source_id) == (200, 1300, "Narrator", "a")
    assert target.marks == "<v Narrator><a MuteSpeech>" and target.text == "<v Narrator><a MuteSpeech>Hello"
    assert project.input_subtitle is not None and project.input_subtitle.file_name == "p-source.vtt"
    assert [o.kind for o in project.outputs] == ["input_subtitle", "output_subtitle"]
    assert leading_marks("<a UseOriginal>x") == "<a UseOriginal>" and leading_marks("plain <v A>") == ""


def test_every_output_of_the_vendor_example() -> None:
    example = json.loads((WIRE / "vod_GetAITranslationProject.json").read_text())  # the vendor page's answer
    project = AITranslationProject.model_validate(example["response"]["Result"]["ProjectInfo"])
    outputs = {o.kind: o for o in project.outputs}
    assert list(outputs) == ["output_video", "voice_translation_video", "facial_translation_video", "preview_video",
                             "preview_video_muted", "foreground_audio", "background_audio"]
    assert outputs["output_video"].vid == "v0d99fg10064d10435qljht287ouip70"
    assert outputs["output_video"].file_name == "a2cfad5e718b42c58561f867a76b4b61-facial.mp4"
    assert outputs["voice_translation_video"].file_name == "7cac1ff9584e41d7b079b20ffbc78e42-whole.mp4"
    assert outputs["background_audio"].is_audio and outputs["background_audio"].vid is None
    assert project.output("input_subtitle") is None
    with pytest.raises(KeyError):
        project.output("nope")
