"""Every GetAITranslationProject field is recorded in a translation's result (``LanguageResult.project``), with
ErrorCode's meaning from the vendor's list; the tracks and background clip are asked for when the project dubs.

The fast tests read the vendor page's own example (plus the Additions its field tables describe); the slow ones
run translate-video against the emulator over HTTP, moto S3 and a real Prefect API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from emulator.config import DEMO_VID
from flows.models import BlockRefs, TranslateSpec
from flows.stages.translation_outputs import _failure, collect_additions, project_record
from providers.states import JobState
from providers.vod.models_translation import ERROR_CODES, AITranslationProject
from tests.harness import Pipeline

UTC = dt.timezone.utc
# The page's example ProjectInfo (files left out: they are ``outputs``), with one of each Addition its tables list.
PAGE_PROJECT: dict[str, Any] = {
    "ProjectId": "684038d6b71c9005b266fefe", "ProjectVersion": "978d8d56c48542d8be61d899129c48df",
    "WorkflowId": "684038d6b71c9005b266fefd", "CreatedAt": "1749039318", "UpdatedAt": "1749041560",
    "Status": "ProcessSucceed", "InputVideoTitle": "败给月光1.mp4",
    "TranslationTypeList": ["SubtitleTranslation", "VoiceTranslation", "FacialTranslation"],
    "Speakers": [{"Id": "68403b65ef364cc4835c80f4", "Name": "Speaker 1", "Voice": "DiT_9e673c550103",
                  "ProjectId": "684038d6b71c9005b266fefe"}],
    "SourceTracks": [{"Id": "68403b65ef364cc4835c80f9", "BlueprintId": "684038d6b71c9005b266feff",
                      "SpeakerId": "68403b65ef364cc4835c80f4", "TranslationType": "source"}],
    "TargetTracks": [{"Id": "68403b65ef364cc4835c80fa", "BlueprintId": "684038d6b71c9005b266ff00",
                      "SpeakerId": "68403b65ef364cc4835c80f4", "TranslationType": "target"}],
    "SourceBlueprints": [{"Id": "684038d6b71c9005b266feff", "Language": "zh",
                          "ProjectId": "684038d6b71c9005b266fefe", "TranslationType": "source"}],
    "TargetBlueprints": [{"Id": "684038d6b71c9005b266ff00", "Language": "en",
                          "ProjectId": "684038d6b71c9005b266fefe", "TranslationType": "target"}],
    "BackgroundClip": {"Id": "68403b65ef364cc4835c810c", "Trim": {"Start": 0, "End": 159100}, "Volume": 80,
                       "ClipAudio": {"IsAudio": True, "Uri": "tos-vod-cn-v-f724fac4091119c6/77b2_others.aac",
                                     "Vid": "", "DurationSecond": 159.1, "Url": "https://example.volcvideo.com/x"},
                       "TranslationType": "background", "TrackId": "68403b65ef364cc4835c80fb"},
    "OperatorConfig": {"SubtitleRecognitionConfig": {"RecognitionType": "OCR"}},
    "ErrorMsg": "", "ErrorCode": 0,
}


def test_every_project_field_is_recorded() -> None:
    record = project_record(AITranslationProject.model_validate(PAGE_PROJECT))
    assert record.project_version == "978d8d56c48542d8be61d899129c48df"
    assert record.workflow_id == "684038d6b71c9005b266fefd"
    assert record.created_at == dt.datetime(2025, 6, 4, 12, 15, 18, tzinfo=UTC)
    assert record.updated_at == dt.datetime(2025, 6, 4, 12, 52, 40, tzinfo=UTC)
    assert record.input_video_title == "败给月光1.mp4" and len(record.translation_types) == 3
    assert record.recognition_type == "OCR"
    assert (record.error_code, record.error_meaning, record.error_msg) == (0, "任务执行成功 (succeeded)", None)
    assert [(s.id, s.name, s.voice) for s in record.speakers] == [
        ("68403b65ef364cc4835c80f4", "Speaker 1", "DiT_9e673c550103")]
    assert [(t.side, t.id, t.blueprint_id) for t in record.tracks] == [
        ("source", "68403b65ef364cc4835c80f9", "684038d6b71c9005b266feff"),
        ("target", "68403b65ef364cc4835c80fa", "684038d6b71c9005b266ff00"),
    ]
    assert [(b.side, b.language) for b in record.blueprints] == [("source", "zh"), ("target", "en")]
    clip = record.background_clip
    assert clip is not None and (clip.start_ms, clip.end_ms, clip.volume) == (0, 159100, 80)
    assert clip.audio_file_name == "77b2_others.aac" and clip.audio_vid is None
    assert "http" not in record.model_dump_json()  # signed URLs expire: never kept


@pytest.mark.parametrize("code", sorted(ERROR_CODES))
def test_each_error_code_of_the_page_says_what_it_means(code: int) -> None:
    project = AITranslationProject.model_validate(
        {**PAGE_PROJECT, "Status": "ProcessFailed" if code else "ProcessSucceed", "ErrorCode": code,
         "ErrorMsg": "boom" if code else ""})
    assert project_record(project).error_meaning == ERROR_CODES[code]
    if code:
        assert _failure(project) == f"ProcessFailed: ErrorCode {code} ({ERROR_CODES[code]}): boom"


def test_an_unlisted_code_is_said_to_be_unlisted() -> None:
    project = AITranslationProject.model_validate({**PAGE_PROJECT, "ErrorCode": 599999})
    assert project.error_meaning == "not in the vendor's list of codes (599999)"
    assert AITranslationProject.model_validate({"ProjectId": "p"}).error_meaning is None


def test_tracks_and_background_are_asked_for_only_when_the_project_dubs() -> None:
    subtitles = collect_additions(TranslateSpec(translation_types=["SubtitleTranslation"]))
    assert "Speakers" in subtitles and not {"SourceTracks", "TargetTracks", "BackgroundClip"} & set(subtitles)
    voice = collect_additions(TranslateSpec(translation_types=["SubtitleTranslation", "VoiceTranslation"]))
    assert {"Speakers", "SourceTracks", "TargetTracks", "BackgroundClip"} <= set(voice)


# --- through translate-video --------------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_dubbed_translation_records_its_project(pipeline: Pipeline) -> None:
    from flows.stages.translate import ai_translate

    spec = TranslateSpec(source_language="zh", target_languages=["ja"], recognition="ASR",
                         translation_types=["SubtitleTranslation", "VoiceTranslation"],
                         termbase_ids=[f"tb-{uuid.uuid4().hex[:8]}"])  # unique: a new purchase
    [result] = (await ai_translate(DEMO_VID, "demo", spec, BlockRefs())).languages
    assert result.status is JobState.SUCCEEDED
    record = result.project
    assert record is not None and record.project_version and record.workflow_id
    assert record.created_at and record.updated_at and record.updated_at >= record.created_at
    assert record.recognition_type == "ASR" and record.error_code == 0 and record.error_meaning
    assert record.translation_types == ["SubtitleTranslation", "VoiceTranslation"]
    assert len(record.speakers) == 2 and all(s.voice for s in record.speakers)
    speakers = {s.id for s in record.speakers}
    assert {t.side for t in record.tracks} == {"source", "target"}  # SourceTracks and TargetTracks asked for
    assert all(t.speaker_id in speakers for t in record.tracks)
    assert [(b.side, b.language) for b in record.blueprints] == [("source", "zh"), ("target", "ja")]
    assert record.background_clip is not None and record.background_clip.audio_file_name  # BackgroundClip too
    output = next(o for o in result.outputs if o.kind == "output_video")
    assert output.vid and output.duration_seconds and output.duration_seconds > 0


@pytest.mark.slow
async def test_a_failed_translation_says_what_its_error_code_means(pipeline: Pipeline) -> None:
    from flows.stages.translate import ai_translate

    spec = TranslateSpec(target_languages=["ko"], translation_types=["SubtitleTranslation"],
                         termbase_ids=[f"EMULATOR_FAIL-{uuid.uuid4().hex[:8]}"])  # the emulator fails this job
    [result] = (await ai_translate(DEMO_VID, "demo", spec, BlockRefs())).languages
    assert result.status is JobState.FAILED
    meaning = "字幕文本翻译失败 (subtitle text translation failed)"
    assert f"ErrorCode 500120 ({meaning})" in (result.error or ""), result.error
