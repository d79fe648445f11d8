"""Every SubmitAITranslationWorkflow option reaches the wire, and every output is recorded (real Prefect API,
emulator over HTTP, moto S3). What was sent is read from the emulator's ledger: each billed entry carries the
fingerprint of the parameters the emulator received, compared with the request written out literally here."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from emulator.config import DEMO_VID
from emulator.params import fingerprint as wire_fingerprint
from flows.models import BlockRefs, ProductionRequest, SubtitleStyle, TranslateSpec
from providers.states import JobState
from tests.harness import Pipeline

pytestmark = pytest.mark.slow


def sent(pipeline: Pipeline, action: str) -> list[str]:
    return [e["fingerprint"] for e in pipeline.emulator.ledger() if e["action"] == action]


async def test_every_option_is_on_the_wire(pipeline: Pipeline) -> None:
    from flows.stages.translate import ai_translate

    glossary = f"tb-{uuid.uuid4().hex[:8]}"  # unique: the submit is cached by what it buys
    spec = TranslateSpec(
        source_language="zh", target_languages=["en"],
        translation_types=["SubtitleTranslation", "VoiceTranslation", "FacialTranslation"],
        recognition="ASR", is_vision=True, termbase_ids=[glossary, "tb-brand"], background_volume=35,
        subtitles=SubtitleStyle(hard_subtitle=True, erase_source=False, font_size=42, margin_l=10, margin_r=12,
                                margin_v=30, show_lines=2),
    )
    [result] = (await ai_translate(DEMO_VID, "demo", spec, BlockRefs())).languages

    assert result.status is JobState.SUCCEEDED
    expected = {
        "SpaceName": "demo", "Vid": DEMO_VID,
        "TranslationConfig": {
            "SourceLanguage": "zh", "TargetLanguage": "en",
            "TranslationTypeList": ["SubtitleTranslation", "VoiceTranslation", "FacialTranslation"],
            "TermbaseConfig": {"TranslationTermbaseIds": [glossary, "tb-brand"]},
        },
        "OperatorConfig": {
            "SubtitleRecognitionConfig": {"RecognitionType": "ASR", "IsVision": True},
            "VoiceCloneConfig": {"BackgroundVolume": 35},
        },
        "SubtitleConfig": {"IsHardSubtitle": True, "IsEraseSource": False, "FontSize": 42, "MarginL": 10,
                           "MarginR": 12, "MarginV": 30, "ShowLines": 2},
    }
    assert sent(pipeline, "SubmitAITranslationWorkflow") == [wire_fingerprint(expected)]


async def test_defaults_are_the_vendors_and_unset_options_are_not_sent(pipeline: Pipeline) -> None:
    from flows.stages.translate import ai_translate

    spec = TranslateSpec(target_languages=["ko"], translation_types=["SubtitleTranslation"])
    assert spec.recognition == "OCR"  # the vendor's default
    marker = uuid.uuid4().hex[:6]
    [result] = (await ai_translate(DEMO_VID, "demo", spec.model_copy(update={"termbase_ids": [f"d-{marker}"]}), BlockRefs())).languages
    assert result.status is JobState.SUCCEEDED
    expected: dict[str, Any] = {
        "SpaceName": "demo", "Vid": DEMO_VID,
        "TranslationConfig": {"SourceLanguage": "zh", "TargetLanguage": "ko",
                              "TranslationTypeList": ["SubtitleTranslation"],
                              "TermbaseConfig": {"TranslationTermbaseIds": [f"d-{marker}"]}},
        "OperatorConfig": {"SubtitleRecognitionConfig": {"RecognitionType": "OCR"}},
    }
    assert sent(pipeline, "SubmitAITranslationWorkflow") == [wire_fingerprint(expected)]


async def test_every_output_is_recorded_by_vid_and_file_never_by_url(pipeline: Pipeline) -> None:
    from prefect.client.orchestration import get_client

    from flows.outputs.artifacts import artifact_key
    from flows.stages.translate import ai_translate

    tag = uuid.uuid4().hex[:6]
    spec = TranslateSpec(
        target_languages=["fr"], translation_types=["SubtitleTranslation", "VoiceTranslation", "FacialTranslation"],
        termbase_ids=[f"o-{tag}"], export_outputs=True,
    )
    [result] = (await ai_translate(DEMO_VID, "demo", spec, BlockRefs())).languages

    assert result.status is JobState.SUCCEEDED
    kinds = {o.kind: o for o in result.outputs}
    assert {"output_video", "voice_translation_video", "facial_translation_video", "foreground_audio",
            "background_audio"} <= set(kinds)
    assert kinds["output_video"].vid == result.output_vid and kinds["output_video"].file_name
    assert all(o.file_name for o in result.outputs)
    for kind in ("output_video", "voice_translation_video", "facial_translation_video"):
        exported = kinds[kind]
        assert exported.key and exported.key.startswith("translations/") and exported.sha256
        head = pipeline.s3_client.head_object(Bucket=pipeline.bucket, Key=exported.key)
        assert head["ContentLength"] == exported.size
    for key in (result.srt_key, result.vtt_key, result.source_srt_key, result.source_vtt_key):
        body = pipeline.s3_client.get_object(Bucket=pipeline.bucket, Key=key)["Body"].read().decode()
        assert " --> " in body
    assert result.source_srt_key.endswith("zh.source.srt")
    dumped = result.model_dump_json()
    assert "http://" not in dumped and "https://" not in dumped  # no signed (expiring) URL kept

    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    key = artifact_key(f"translate-{DEMO_VID}", "languages")
    async with get_client() as client:  # by key: the session's server holds more than one unfiltered page
        artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    mine = [a for a in artifacts if a.key == key and result.project_id in str(a.data)]
    assert mine, "a translate-video run publishes its languages table"
    assert all("http" not in str(a.data) for a in mine)
    assert kinds["voice_translation_video"].file_name in str(mine[-1].data)


def test_the_form_refuses_bad_options_before_anything_is_paid() -> None:
    schema = TranslateSpec.model_json_schema()
    props = schema["properties"]
    assert props["review"]["enum"] == ["none", "after_recognition", "after_translation"]
    assert props["on_review_timeout"]["enum"] == ["fail", "approve"]
    assert props["background_volume"]["anyOf"][0]["maximum"] == 100
    assert schema["additionalProperties"] is False
    with pytest.raises(ValidationError, match="background_volume"):
        TranslateSpec(background_volume=101)
    with pytest.raises(ValidationError, match="background_volume: needs VoiceTranslation"):
        TranslateSpec(translation_types=["SubtitleTranslation"], background_volume=20)
    with pytest.raises(ValidationError, match="font_size"):
        SubtitleStyle(font_size=0)
    with pytest.raises(ValidationError, match="termbase_ids"):
        TranslateSpec(termbase_ids=["a", "a"])
    with pytest.raises(ValidationError, match="Extra inputs"):
        ProductionRequest.model_validate({"translate": {"subtitles": {"colour": "red"}}})


async def test_a_language_that_fails_after_it_was_bought_names_its_project(pipeline: Pipeline) -> None:
    """The submit and the wait are one task run: the failed language's project comes from the journal, so the
    result still says which paid project to look at (and a re-run resumes on it)."""
    from flows.stages.translate import ai_translate

    pipeline.emulator.set_faults([{"action": "GetAITranslationProject", "error_rate": 1,
                                   "error": {"code": "InvalidParameter", "status": 400, "message": "refused"}}])
    spec = TranslateSpec(target_languages=["en"], termbase_ids=[f"tb-{uuid.uuid4().hex[:8]}"])
    [result] = (await ai_translate(DEMO_VID, "demo", spec, BlockRefs())).languages
    [billed] = [e for e in pipeline.emulator.ledger() if e["action"] == "SubmitAITranslationWorkflow"]
    assert result.status is JobState.FAILED and "InvalidParameter" in (result.error or ""), result
    assert result.project_id and result.project_id == billed["job_id"], (result.project_id, billed)
