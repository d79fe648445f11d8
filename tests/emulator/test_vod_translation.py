"""AI translation: state machine, utterances <-> clips by ClipId, Additions filtering, listing."""

from __future__ import annotations

import httpx
import pytest

from emulator.config import DEMO_VID
from emulator.testing import EmulatorHandle
from tests.emulator.helpers import call, error_code, result, wait_for

ALL = "Speakers,SourceUtterances,SourceTracks,SourceClips,TargetUtterances,TargetTracks,TargetClips,BackgroundClip"


@pytest.fixture(autouse=True)
def _no_quotas(emu: EmulatorHandle) -> None:
    emu.configure(quotas_enabled=False)  # these tests poll faster than 10 QPS; throttling has its own tests


def submit(vod: httpx.Client, target: str = "en", **extra: object) -> str:
    body = {"SpaceName": "demo", "Vid": DEMO_VID,
            "TranslationConfig": {"SourceLanguage": "zh", "TargetLanguage": target,
                                  "TranslationTypeList": ["SubtitleTranslation", "VoiceTranslation"]},
            "OperatorConfig": {"SubtitleRecognitionConfig": {"RecognitionType": "ASR"}}, **extra}
    return result(call(vod, "SubmitAITranslationWorkflow", "2025-01-01", body=body))["ProjectBaseInfo"]["ProjectId"]


def get(vod: httpx.Client, project_id: str, additions: str | None = None, method: str = "GET") -> dict:
    query = {"SpaceName": "demo", "ProjectId": project_id, **({"Additions": additions} if additions else {})}
    if method == "GET":
        return result(call(vod, "GetAITranslationProject", "2025-01-01", method="GET", query=query))["ProjectInfo"]
    return result(call(vod, "GetAITranslationProject", "2025-01-01", body=query))["ProjectInfo"]


def test_project_lines_up_utterances_and_clips(emu: EmulatorHandle, vod: httpx.Client) -> None:
    project_id = submit(vod)
    assert get(vod, project_id)["Status"] == "InProcessing"
    info = wait_for(lambda: (i := get(vod, project_id, ALL))["Status"] == "ProcessSucceed" and i)
    assert info["ErrorCode"] == 0 and info["OperatorConfig"]["SubtitleRecognitionConfig"]["RecognitionType"] == "ASR"
    assert info["SourceBlueprints"][0]["Language"] == "zh" and info["TargetBlueprints"][0]["Language"] == "en"
    assert info["OutputVideo"]["Vid"].startswith("v0") and info["OutputVideo"]["Url"]
    assert httpx.get(info["OutputVideo"]["Url"]).status_code == 200
    assert info["VoiceTranslationVideo"] and info["FacialTranslationVideo"] is None
    speakers = {s["Id"] for s in info["Speakers"]}
    for side in ("Source", "Target"):
        clips = {c["Id"]: c for c in info[f"{side}Clips"]}
        tracks = {t["Id"] for t in info[f"{side}Tracks"]}
        utterances = info[f"{side}Utterances"]
        assert utterances and len(utterances) == len(clips)
        last_end = 0
        for utterance in utterances:
            clip = clips[utterance["ClipId"]]  # every utterance has its clip
            assert clip["TrackId"] in tracks and utterance["SpeakerId"] in speakers
            assert last_end <= clip["Trim"]["Start"] < clip["Trim"]["End"] <= 3100
            last_end = clip["Trim"]["End"]
    source, target = info["SourceUtterances"], info["TargetUtterances"]
    for s, t in zip(source, target, strict=True):
        assert t["Text"] == f"[en] {s['Text']}" and t["SourceId"] == s["Id"]
        assert info["SourceClips"][source.index(s)]["Trim"] == info["TargetClips"][target.index(t)]["Trim"]
    assert info["BackgroundClip"]["TranslationType"] == "background"


def test_additions_select_the_lists(emu: EmulatorHandle, vod: httpx.Client) -> None:
    project_id = submit(vod)
    emu.advance(200)
    bare = get(vod, project_id)
    assert "Speakers" not in bare and "TargetUtterances" not in bare and "SourceBlueprints" in bare
    some = get(vod, project_id, "Speakers,TargetClips", method="POST")
    assert some["Speakers"] and some["TargetClips"]
    assert "SourceUtterances" not in some and "BackgroundClip" not in some
    bad = call(vod, "GetAITranslationProject", "2025-01-01", method="GET",
               query={"SpaceName": "demo", "ProjectId": project_id, "Additions": "Nope"})
    assert bad.status_code == 400 and error_code(bad) == "InvalidParameter"


def test_failure_and_listing(emu: EmulatorHandle, vod: httpx.Client) -> None:
    ok = submit(vod, "ja")
    failed = submit(vod, "ko", SubtitleConfig={"FontSize": 20}, ProcessConfig={"SuspensionStageList": []},
                    CallbackArgs="EMULATOR_FAIL")
    emu.advance(200)
    info = get(vod, failed)
    assert info["Status"] == "ProcessFailed" and info["ErrorCode"] == 500120 and info["OutputVideo"] is None
    listing = result(call(vod, "ListAITranslationProject", "2025-01-01", method="GET",
                          query={"SpaceName": "demo", "PageNumber": "1", "PageSize": "10"}))
    assert listing["TotalCount"] == 2 and [p["ProjectId"] for p in listing["Projects"]] == [failed, ok]
    only_ok = result(call(vod, "ListAITranslationProject", "2025-01-01", method="GET",
                          query={"SpaceName": "demo", "StatusFilter": "ProcessSucceed", "PageSize": "1"}))
    assert [p["ProjectId"] for p in only_ok["Projects"]] == [ok]
    by_id = result(call(vod, "ListAITranslationProject", "2025-01-01", method="GET",
                        query={"SpaceName": "demo", "ProjectIdOrTitleFilter": failed[:10]}))
    assert [p["ProjectId"] for p in by_id["Projects"]] == [failed]


@pytest.mark.parametrize("patch,status", [
    ({"TranslationConfig": {"SourceLanguage": "ja", "TargetLanguage": "en"}}, 400),
    ({"TranslationConfig": {"SourceLanguage": "zh", "TargetLanguage": "xx"}}, 400),
    ({"TranslationConfig": {"SourceLanguage": "zh", "TargetLanguage": "zh"}}, 400),
    ({"TranslationConfig": {"SourceLanguage": "zh", "TargetLanguage": "en",
                            "TranslationTypeList": ["FacialTranslation"]}}, 400),
    ({"OperatorConfig": {"SubtitleRecognitionConfig": {"RecognitionType": "OTHER"}}}, 400),
    ({"Vid": "v0unknown"}, 404),
    ({"SpaceName": "nope"}, 404),
    ({"TranslationConfig": None}, 400),
])
def test_submit_validation(emu: EmulatorHandle, vod: httpx.Client, patch: dict, status: int) -> None:
    body = {"SpaceName": "demo", "Vid": DEMO_VID,
            "TranslationConfig": {"SourceLanguage": "zh", "TargetLanguage": "en"}, **patch}
    body = {k: v for k, v in body.items() if v is not None}
    response = call(vod, "SubmitAITranslationWorkflow", "2025-01-01", body=body)
    assert response.status_code == status, response.text
    assert emu.ledger() == []


def test_unknown_project(vod: httpx.Client) -> None:
    response = call(vod, "GetAITranslationProject", "2025-01-01", method="GET",
                    query={"SpaceName": "demo", "ProjectId": "nope"})
    assert response.status_code == 404 and error_code(response) == "ResourceNotFound"
