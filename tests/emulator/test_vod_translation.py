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


# --- staged review: pause, edit, continue, re-export ---------------------------------------------------------

VOICE = ["SubtitleTranslation", "VoiceTranslation"]


def submit_paused(vod: httpx.Client, stage: str, types: list[str] | None = None) -> str:
    body = {"SpaceName": "demo", "Vid": DEMO_VID, "ProcessConfig": {"SuspensionStageList": [stage]},
            "TranslationConfig": {"SourceLanguage": "zh", "TargetLanguage": "en",
                                  "TranslationTypeList": types or VOICE}}
    return result(call(vod, "SubmitAITranslationWorkflow", "2025-01-01", body=body))["ProjectBaseInfo"]["ProjectId"]


def act(vod: httpx.Client, name: str, project_id: str, **body: object) -> httpx.Response:
    return call(vod, name, "2025-01-01", body={"SpaceName": "demo", "ProjectId": project_id, **body})


def update(vod: httpx.Client, project_id: str, **body: object) -> httpx.Response:
    return act(vod, "UpdateAITranslationUtterances", project_id, **body)


def text_of(url: str) -> str:
    response = httpx.get(url)
    assert response.status_code == 200, response.text
    return response.text


def billed(emu: EmulatorHandle) -> list[str]:
    return [e["action"] for e in emu.ledger()]


def test_pause_after_translation_edit_and_continue(emu: EmulatorHandle, vod: httpx.Client) -> None:
    project_id = submit_paused(vod, "SubtitleTranslation")
    emu.advance(500)  # far past the whole run: the project still waits at the stage
    paused = get(vod, project_id, ALL)
    assert paused["Status"] == "ProcessSuspended" and paused["ErrorCode"] == 0
    assert paused["SourceUtterances"] and paused["TargetUtterances"] and paused["Speakers"]
    assert paused["OutputVideo"] is None and paused["VoiceTranslationVideo"] is None
    assert paused["BackgroundAudio"] is None and paused["BackgroundClip"] is None
    first, second = paused["TargetUtterances"][:2]
    assert first["Text"] in text_of(paused["OutputSubtitle"]["Url"])
    assert paused["SourceUtterances"][0]["Text"] in text_of(paused["InputSubtitle"]["Url"])

    edited = "<v Narrator><a MuteSpeech>Welcome, edited by a person."
    other_speaker = next(s["Id"] for s in paused["Speakers"] if s["Id"] != second["SpeakerId"])
    answer = result(update(vod, project_id, UpdateType="Utterances", Utterances=[
        {"Id": first["Id"], "Text": edited},
        {"Id": second["Id"], "SpeakerId": other_speaker, "Start": 1100, "End": 1800, "Volume": 40}]))
    assert answer["ProjectBaseInfo"]["ProjectVersion"] != paused["ProjectVersion"]
    draft = get(vod, project_id, ALL)
    assert draft["TargetUtterances"][0]["Text"] == edited
    assert edited in text_of(draft["OutputSubtitle"]["Url"])  # the draft file follows the edit at once
    clip = next(c for c in draft["TargetClips"] if c["Id"] == second["ClipId"])
    assert clip["Trim"] == {"Start": 1100, "End": 1800} and clip["Volume"] == 40
    assert draft["TargetUtterances"][1]["SpeakerId"] == other_speaker
    assert billed(emu) == ["SubmitAITranslationWorkflow"]  # an edit is free

    resumed = result(act(vod, "ContinueAITranslationWorkflow", project_id))["ProjectBaseInfo"]
    assert resumed["ProjectId"] == project_id
    assert get(vod, project_id)["Status"] == "InProcessing"
    assert billed(emu) == ["SubmitAITranslationWorkflow", "ContinueAITranslationWorkflow"]
    emu.advance(500)
    done = get(vod, project_id, ALL)
    assert done["Status"] == "ProcessSucceed" and done["TargetUtterances"][0]["Text"] == edited
    assert edited in text_of(done["OutputSubtitle"]["Url"])
    video = httpx.get(done["OutputVideo"]["Url"])
    assert video.status_code == 200 and edited.encode() in video.content  # the edit reached the output video
    assert done["VoiceTranslationVideo"]["Url"] and done["BackgroundAudio"] and done["ForegroundAudio"]
    assert done["FacialTranslationVideo"] is None

    again = act(vod, "ContinueAITranslationWorkflow", project_id)
    assert again.status_code == 400 and error_code(again) == "InvalidParameter"
    assert len(emu.ledger()) == 2


def test_pause_after_recognition_translates_the_edited_source(emu: EmulatorHandle, vod: httpx.Client) -> None:
    project_id = submit_paused(vod, "SubtitleRecognition", ["SubtitleTranslation"])
    emu.advance(500)
    paused = get(vod, project_id, ALL)
    assert paused["Status"] == "ProcessSuspended"
    assert paused["SourceUtterances"] and paused["TargetUtterances"] == [] and paused["OutputSubtitle"] is None
    target_id_refused = update(vod, project_id, UpdateType="OutputSubtitleFile", OutputSubtitleFileName="x.vtt")
    assert target_id_refused.status_code in (400, 404)
    source = paused["SourceUtterances"][0]
    result(update(vod, project_id, Utterances=[{"Id": source["Id"], "Text": "<v Host>Corrected source."}],
                  UpdateType="Utterances"))
    result(act(vod, "ContinueAITranslationWorkflow", project_id))
    emu.advance(500)
    done = get(vod, project_id, ALL)
    assert done["Status"] == "ProcessSucceed"
    assert done["TargetUtterances"][0]["Text"] == "<v Host>[en] Corrected source."  # marks pass through
    assert done["TargetUtterances"][0]["SourceId"] == done["SourceUtterances"][0]["Id"]


def test_edits_refused_while_processing_and_for_unknown_ids(emu: EmulatorHandle, vod: httpx.Client) -> None:
    running = submit(vod)
    refused = update(vod, running, UpdateType="Utterances", Utterances=[{"Id": "x", "Text": "t"}])
    assert refused.status_code == 400 and "InProcessing" in refused.json()["ResponseMetadata"]["Error"]["Message"]
    assert act(vod, "ContinueAITranslationWorkflow", running).status_code == 400
    assert act(vod, "RefreshAITranslationProject", running, RefreshType="whole").status_code == 400
    paused = submit_paused(vod, "SubtitleTranslation")
    emu.advance(500)
    drafted = get(vod, paused, "TargetUtterances,TargetClips")
    utterance, second = drafted["TargetUtterances"][:2]
    first_end = next(c["Trim"]["End"] for c in drafted["TargetClips"] if c["Id"] == utterance["ClipId"])
    for edits in ([{"Id": "nope", "Text": "t"}], [{"Id": utterance["Id"]}],
                  [{"Id": utterance["Id"], "Text": "<a MuteSpeech> "}],
                  [{"Id": utterance["Id"], "Start": 2000, "End": 1000}],
                  [{"Id": utterance["Id"], "SpeakerId": "nobody"}],
                  [{"Id": utterance["Id"], "Volume": 101}],
                  [{"Id": utterance["Id"], "Text": "ok"}, {"Id": second["Id"], "Start": first_end - 1}]):
        bad = update(vod, paused, UpdateType="Utterances", Utterances=edits)
        assert bad.status_code == 400, edits
    overlap = update(vod, paused, UpdateType="Utterances", Utterances=[{"Id": second["Id"], "Start": first_end - 1}])
    assert f"{second['Id']} would start at {first_end - 1} ms" in overlap.json()["ResponseMetadata"]["Error"]["Message"]
    touching = update(vod, paused, UpdateType="Utterances", Utterances=[{"Id": second["Id"], "Start": first_end}])
    assert touching.status_code == 200, touching.text  # the next line may start where the previous ends
    assert update(vod, paused, UpdateType="Nope").status_code == 400
    assert get(vod, paused, "TargetUtterances")["TargetUtterances"][0] == utterance  # nothing half-applied
    assert billed(emu) == ["SubmitAITranslationWorkflow"] * 2


def _upload_subtitle(emu: EmulatorHandle, vod: httpx.Client, server: object, name: str, text: str) -> None:
    server.files[f"/{name}"] = text.encode()  # type: ignore[attr-defined]
    url_sets = f'[{{"SourceUrl": "{server.url}/{name}", "FileName": "{name}"}}]'  # type: ignore[attr-defined]
    job = result(call(vod, "UploadMediaByUrl", "2020-08-01", form={"SpaceName": "demo", "URLSets": url_sets}))
    job_id = job["Data"][0]["JobId"]

    def done() -> bool:
        info = result(call(vod, "QueryUploadTaskInfo", "2020-08-01", method="GET", query={"JobIds": job_id}))
        return info["Data"]["MediaInfoList"][0]["State"] == "success"

    wait_for(done)


def test_update_by_subtitle_file_in_the_space(emu: EmulatorHandle, vod: httpx.Client, local_server: object) -> None:
    project_id = submit_paused(vod, "SubtitleTranslation")
    emu.advance(500)
    before = get(vod, project_id, "TargetUtterances,TargetClips")
    count = len(before["TargetUtterances"])
    cues = "\n\n".join(f"00:00:0{i}.100 --> 00:00:0{i}.900\n<v Speaker 9>Line {i} from the file"
                       for i in range(count))
    _upload_subtitle(emu, vod, local_server, "fixed.vtt", "WEBVTT\n\n" + cues + "\n")
    missing = update(vod, project_id, UpdateType="OutputSubtitleFile", OutputSubtitleFileName="absent.vtt")
    assert missing.status_code == 404 and "absent.vtt" in missing.json()["ResponseMetadata"]["Error"]["Message"]
    result(update(vod, project_id, UpdateType="OutputSubtitleFile", OutputSubtitleFileName="fixed.vtt"))
    after = get(vod, project_id, "Speakers,TargetUtterances,TargetClips")
    assert [u["Id"] for u in after["TargetUtterances"]] == [u["Id"] for u in before["TargetUtterances"]]
    assert after["TargetUtterances"][1]["Text"] == "<v Speaker 9>Line 1 from the file"
    new_speaker = next(s for s in after["Speakers"] if s["Name"] == "Speaker 9")
    assert {u["SpeakerId"] for u in after["TargetUtterances"]} == {new_speaker["Id"]}
    assert after["TargetClips"][0]["Trim"] == {"Start": 100, "End": 900}
    assert "Line 0 from the file" in text_of(get(vod, project_id)["OutputSubtitle"]["Url"])


def test_refresh_reexports_a_finished_project(emu: EmulatorHandle, vod: httpx.Client) -> None:
    project_id = submit(vod)
    emu.advance(200)
    first = get(vod, project_id, "TargetUtterances")
    assert first["Status"] == "ProcessSucceed"
    line = first["TargetUtterances"][0]
    result(update(vod, project_id, UpdateType="Utterances", Utterances=[{"Id": line["Id"], "Text": "Re-dubbed."}]))
    edited = get(vod, project_id, "TargetUtterances")
    assert edited["TargetUtterances"][0]["Status"] == "need_update" and edited["Status"] == "ProcessSucceed"
    assert edited["OutputVideo"]["Vid"] == first["OutputVideo"]["Vid"]
    assert "Re-dubbed." not in text_of(edited["OutputSubtitle"]["Url"])  # not exported yet

    result(act(vod, "RefreshAITranslationProject", project_id, RefreshType="whole"))
    exporting = get(vod, project_id)
    assert exporting["Status"] == "InExporting"
    assert exporting["OutputVideo"]["Vid"] == first["OutputVideo"]["Vid"]  # the old output stays until done
    assert act(vod, "RefreshAITranslationProject", project_id, RefreshType="whole").status_code == 400
    emu.advance(200)
    exported = get(vod, project_id, "TargetUtterances")
    assert exported["Status"] == "ExportSucceed" and exported["ErrorCode"] == 0
    assert exported["OutputVideo"]["Vid"] not in ("", first["OutputVideo"]["Vid"])
    assert "Re-dubbed." in text_of(exported["OutputSubtitle"]["Url"])
    assert exported["TargetUtterances"][0]["Status"] == "online"
    assert billed(emu) == ["SubmitAITranslationWorkflow", "RefreshAITranslationProject"]
    bad_type = act(vod, "RefreshAITranslationProject", project_id, RefreshType="partial")
    assert bad_type.status_code == 400


def test_export_failed_keeps_the_previous_output(emu: EmulatorHandle, vod: httpx.Client) -> None:
    project_id = submit(vod)
    emu.advance(200)
    first = get(vod, project_id, "TargetUtterances")
    line = first["TargetUtterances"][0]
    result(update(vod, project_id, UpdateType="Utterances", Utterances=[{"Id": line["Id"], "Text": "EMULATOR_FAIL"}]))
    result(act(vod, "RefreshAITranslationProject", project_id, RefreshType="whole"))
    emu.advance(200)
    failed = get(vod, project_id)
    assert failed["Status"] == "ExportFailed" and failed["ErrorCode"] == 500210 and failed["ErrorMsg"]
    assert failed["OutputVideo"]["Vid"] == first["OutputVideo"]["Vid"]
    assert [e["action"] for e in emu.ledger()][-1] == "RefreshAITranslationProject"


def test_output_urls_are_signed_and_expire(emu: EmulatorHandle, vod: httpx.Client) -> None:
    project_id = submit(vod)
    emu.advance(200)
    url = get(vod, project_id)["OutputVideo"]["Url"]
    assert "X-Expires=" in url and httpx.get(url).status_code == 200
    assert httpx.get(url.split("?")[0]).status_code == 403  # unsigned
    emu.advance(3700)
    assert httpx.get(url).status_code == 200  # job time (scaled) does not shorten a URL's wall-clock hour
    emu.advance(real_seconds=3700)
    assert httpx.get(url).status_code == 403  # expired
    fresh = get(vod, project_id)["OutputVideo"]
    assert httpx.get(fresh["Url"]).status_code == 200 and fresh["Vid"]  # a new read signs a new URL


@pytest.mark.parametrize("types,present,absent", [
    (["SubtitleTranslation"], [], ["VoiceTranslationVideo", "FacialTranslationVideo", "BackgroundAudio",
                                   "ForegroundAudio"]),
    (["SubtitleTranslation", "VoiceTranslation", "FacialTranslation"],
     ["VoiceTranslationVideo", "FacialTranslationVideo", "BackgroundAudio", "ForegroundAudio"], []),
])
def test_outputs_follow_the_translation_types(emu: EmulatorHandle, vod: httpx.Client, types: list[str],
                                              present: list[str], absent: list[str]) -> None:
    body = {"SpaceName": "demo", "Vid": DEMO_VID,
            "TranslationConfig": {"SourceLanguage": "zh", "TargetLanguage": "en", "TranslationTypeList": types}}
    project_id = result(call(vod, "SubmitAITranslationWorkflow", "2025-01-01", body=body))["ProjectBaseInfo"][
        "ProjectId"]
    emu.advance(200)
    info = get(vod, project_id)
    assert info["OutputVideo"]["Vid"] and info["InputSubtitle"]["FileName"] and info["OutputSubtitle"]["Url"]
    for name in present:
        assert info[name]["Url"] and httpx.get(info[name]["Url"]).status_code == 200, name
    for name in absent:
        assert info[name] is None, name


def test_two_stages_pause_twice(emu: EmulatorHandle, vod: httpx.Client) -> None:
    body = {"SpaceName": "demo", "Vid": DEMO_VID,
            "ProcessConfig": {"SuspensionStageList": ["SubtitleTranslation", "SubtitleRecognition"]},
            "TranslationConfig": {"SourceLanguage": "en", "TargetLanguage": "ja"}}
    project_id = result(call(vod, "SubmitAITranslationWorkflow", "2025-01-01", body=body))["ProjectBaseInfo"][
        "ProjectId"]
    emu.advance(500)
    assert get(vod, project_id, "TargetUtterances")["TargetUtterances"] == []  # held at recognition first
    result(act(vod, "ContinueAITranslationWorkflow", project_id))
    emu.advance(500)
    second = get(vod, project_id, "TargetUtterances")
    assert second["Status"] == "ProcessSuspended" and second["TargetUtterances"] and second["OutputVideo"] is None
    result(act(vod, "ContinueAITranslationWorkflow", project_id))
    emu.advance(500)
    assert get(vod, project_id)["Status"] == "ProcessSucceed"
    assert billed(emu) == ["SubmitAITranslationWorkflow"] + ["ContinueAITranslationWorkflow"] * 2
    listed = result(call(vod, "ListAITranslationProject", "2025-01-01", method="GET",
                         query={"SpaceName": "demo", "StatusFilter": "ProcessSucceed"}))
    assert [p["ProjectId"] for p in listed["Projects"]] == [project_id]


def test_callbacks_after_continue_and_refresh(emu: EmulatorHandle, vod: httpx.Client, local_server: object) -> None:
    emu.configure(callback_url=f"{local_server.url}/hook")  # type: ignore[attr-defined]
    received: list[dict] = local_server.received  # type: ignore[attr-defined]
    project_id = submit_paused(vod, "SubtitleTranslation")
    emu.advance(500)
    assert get(vod, project_id)["Status"] == "ProcessSuspended"
    result(act(vod, "ContinueAITranslationWorkflow", project_id))
    emu.advance(500)
    processed = wait_for(lambda: received[:1])[0]["Data"]
    assert processed["ProjectId"] == project_id and processed["Action"] == "Process" and processed["ErrorCode"] == 0
    assert processed["TargetVid"] == get(vod, project_id)["OutputVideo"]["Vid"]
    result(act(vod, "RefreshAITranslationProject", project_id, RefreshType="whole"))
    emu.advance(500)
    exported = wait_for(lambda: received[1:2])[0]["Data"]
    assert exported["Action"] == "Export" and exported["TargetVid"] not in ("", processed["TargetVid"])
