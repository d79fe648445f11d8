"""The take fields of the clip and translate specs: checked at the form, and part of the fingerprint only when set."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flows.models import GatewayClipSpec, JimengClipSpec, ProductionRequest, TranslateSpec
from flows.engine.journal import fingerprint
from flows.stages.translate import build_translation_request, translation_fingerprint

VID, SPACE, ACCOUNT = "v0123456789", "demo", "acct"


def test_translate_take_zero_keeps_the_fingerprints_of_earlier_versions() -> None:
    spec = TranslateSpec(target_languages=["en"])
    wire = build_translation_request(VID, SPACE, "en", spec).to_wire()
    assert "take" not in str(wire)  # never sent to VOD
    assert translation_fingerprint(VID, SPACE, "en", spec, ACCOUNT) == fingerprint(
        "vod", "SubmitAITranslationWorkflow", wire, ACCOUNT
    )


def test_each_translate_take_is_its_own_purchase() -> None:
    prints = {
        translation_fingerprint(VID, SPACE, "en", TranslateSpec(target_languages=["en"], take=n), ACCOUNT)
        for n in range(3)
    }
    assert len(prints) == 3
    assert build_translation_request(VID, SPACE, "en", TranslateSpec(take=2)).to_wire() == (
        build_translation_request(VID, SPACE, "en", TranslateSpec()).to_wire()
    )


@pytest.mark.parametrize(
    "request_,field",
    [
        ({"clip": {"prompt": "p", "max_takes": 0}}, ("clip", "jimeng", "max_takes")),
        ({"clip": {"prompt": "p", "max_takes": 6}}, ("clip", "jimeng", "max_takes")),
        ({"clip": {"provider": "gateway", "prompt": "p", "max_takes": 0}}, ("clip", "gateway", "max_takes")),
        ({"translate": {"take": -1}}, ("translate", "take")),
        ({"translate": {"take": 1001}}, ("translate", "take")),
    ],
)
def test_take_fields_are_checked_at_the_form(request_: dict, field: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as info:
        ProductionRequest.model_validate(request_)
    assert [e["loc"] for e in info.value.errors()] == [field]


def test_defaults() -> None:
    assert JimengClipSpec(prompt="p").max_takes == GatewayClipSpec(prompt="p").max_takes == 2
    assert TranslateSpec().take == 0
    schema = ProductionRequest.model_json_schema()["$defs"]
    assert schema["JimengClipSpec"]["properties"]["max_takes"]["maximum"] == 5
    assert "50511" in schema["JimengClipSpec"]["properties"]["max_takes"]["description"]
