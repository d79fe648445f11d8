"""The Resume form's schema and the edit checks, offline: the schema is the one Prefect stores with the pause
(``create_v2_schema``) and answers are judged by the validator its resume endpoint uses (``schema_tools``)."""

from __future__ import annotations

from typing import Any

import pytest
from prefect._internal.pydantic.v2_schema import create_v2_schema
from prefect.utilities.schema_tools import ValidationError as SchemaError
from prefect.utilities.schema_tools import validate

from flows.models import ReviewDecision, TranslateSpec, UtteranceEdit
from flows.stages.review_edits import check_edits
from flows.stages.review_form import ReviewInputError, answer_to_decision, review_form
from providers.vod.models_translation import AITranslationProject

SPEC = TranslateSpec(target_languages=["en"], review="after_translation")


def make_project() -> AITranslationProject:
    lines = [("t1", "s1", "c1", 0, 1000, "Hello."), ("t2", "s2", "c2", 1200, 2500, "World."),
             ("t3", "s1", "c3", 3000, 4000, "Bye.")]
    return AITranslationProject.model_validate({
        "ProjectId": "p1", "Status": "ProcessSuspended", "InputVideo": {"Vid": "v1", "DurationSecond": 5.0},
        "Speakers": [{"Id": "s1", "Name": "Host"}, {"Id": "s2", "Name": "Guest"}],
        "TargetUtterances": [{"Id": i, "SpeakerId": s, "ClipId": c, "Text": t} for i, s, c, _, _, t in lines],
        "TargetClips": [{"Id": c, "Trim": {"Start": a, "End": b}, "Volume": 100} for _, _, c, a, b, _ in lines],
    })


def schema_and_drafts() -> tuple[dict[str, Any], type, list[UtteranceEdit]]:
    form, drafts = review_form(make_project(), SPEC)
    return create_v2_schema(form.__name__, model_base=form), form, drafts


def refused(schema: dict[str, Any], answer: dict[str, Any]) -> str:
    with pytest.raises(SchemaError) as exc:
        validate(answer, schema, raise_on_error=True)
    return str(exc.value)


def test_the_form_opens_with_the_draft_lines_and_its_description() -> None:
    schema, form, drafts = schema_and_drafts()
    default = schema["properties"]["lines"]["default"]
    assert [line["id"] for line in default] == ["t1", "t2", "t3"]
    assert default[1] == {"id": "t2", "text": "World.", "speaker_id": "s2", "start_ms": 1200, "end_ms": 2500,
                          "volume": 100}
    assert "s2 = Guest" in form._description and "5,000 ms" in form._description
    # A REST caller's approve without the lines is read with the drafts unchanged.
    answer = form(action="approve")
    assert answer_to_decision(answer, drafts) == ReviewDecision(action="approve")


def test_the_ui_answer_with_lines_edited_in_place_becomes_edits_of_what_changed() -> None:
    schema, form, drafts = schema_and_drafts()
    lines = [d.model_dump() for d in drafts]
    lines[0]["text"], lines[1].update(speaker_id="s1", start_ms=1100, volume=60)
    answer = {"action": "edit", "lines": lines}
    validate(answer, schema, raise_on_error=True)
    decision = answer_to_decision(form(**answer), drafts)
    assert decision.edits == [UtteranceEdit(id="t2", speaker_id="s1", start_ms=1100, volume=60)]
    # approving as it is with the lines sent back unchanged (what the UI does) is accepted
    validate({"action": "approve", "lines": [d.model_dump() for d in drafts]}, schema, raise_on_error=True)


@pytest.mark.parametrize(("change", "action", "field"), [
    ({"text": "Changed."}, "approve", "lines[0].text"),  # approve would drop the change
    ({"volume": 10}, "reject", "lines[0].volume"),
    ({"speaker_id": "nobody"}, "edit", "lines[0].speaker_id"),  # not a speaker of the project
    ({"end_ms": 9000}, "edit", "lines[0].end_ms"),  # past the video (5 s)
    ({"volume": 101}, "edit", "lines[0].volume"),
    ({"id": "t9", "text": "Other."}, "edit", "lines[0].id"),  # lines keep their ids
])
def test_the_server_refuses_contradictory_or_impossible_lines(change: dict[str, Any], action: str, field: str) -> None:
    schema, _, drafts = schema_and_drafts()
    lines = [d.model_dump() for d in drafts]
    lines[0].update(change)
    answer = {"action": action, "lines": lines, **({"reason": "no"} if action == "reject" else {})}
    assert f"'{field}'" in refused(schema, answer)


def test_an_edit_that_changes_nothing_and_a_dropped_line_are_refused() -> None:
    schema, _, drafts = schema_and_drafts()
    assert "'edits'" in refused(schema, {"action": "edit", "lines": [d.model_dump() for d in drafts]})
    shorter = [d.model_dump() for d in drafts[:2]]
    shorter[0]["text"] = "Changed."
    assert "'lines'" in refused(schema, {"action": "edit", "lines": shorter})
    validate({"action": "edit", "edits": [{"id": "t1", "text": "x"}]}, schema, raise_on_error=True)


@pytest.mark.parametrize(("edit", "message"), [
    ({"id": "t2", "start_ms": 900}, "target line 2 (id t2).start_ms: line 2 starts at 900 ms, before line 1 ends"),
    ({"id": "t1", "end_ms": 1300}, "target line 1 (id t1).end_ms: line 2 starts at 1200 ms, before line 1 ends"),
    ({"id": "t3", "start_ms": 3500, "end_ms": 3400}, "target line 3 (id t3).end_ms: must be after start_ms"),
    ({"id": "t3", "end_ms": 5001}, "target line 3 (id t3).end_ms: 5001 ms is past the end of the video"),
    ({"id": "t1", "speaker_id": "s9"}, "target line 1 (id t1).speaker_id: 's9' is not a speaker"),
])
def test_edits_the_vendor_would_refuse_are_named_by_line_and_field(edit: dict[str, Any], message: str) -> None:
    with pytest.raises(ReviewInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_edits([edit], make_project())


def test_edits_that_keep_order_pass() -> None:
    check_edits([{"id": "t2", "start_ms": 1000, "end_ms": 3000, "speaker_id": "s1", "volume": 0}], make_project())
