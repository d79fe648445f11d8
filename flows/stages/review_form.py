"""The Resume form of a translation review, opened with the draft lines already in it.

Prefect shows a paused run's form from the JSON schema it stores with the pause; ``RunInput.with_initial_data``
puts the drafts in that schema as the ``lines`` field's default, so the UI opens with every line (id, text,
speaker, timing, volume) ready to be corrected in place. The same schema carries this run's own rules, which the
server checks on ``POST /flow_runs/{id}/resume`` (an answer that breaks one is refused with ``REJECT`` naming
the field, and the run stays paused):

- every line stays, in order, with its id (``lines[i].id``); speakers are the project's; timings inside the video;
- approve / reject leave the lines as drafted (a changed line under approve would be dropped silently);
- edit changes something: a line, an entry of ``edits`` (by id, for REST callers), or a corrected file.

What JSON schema cannot say (a line ending before it starts, lines overlapping, a line edited twice in
contradictory ways) is checked by the flow before any call (``flows.stages.review_edits``).
An answer without ``lines`` (a REST caller's ``{"action": "approve"}``) is read with the drafts as they are.
"""

from __future__ import annotations

from typing import Any

from prefect.artifacts import acreate_table_artifact
from prefect.input.run_input import RunInput, run_input_subclass_from_type
from pydantic import ConfigDict, Field, model_validator

from flows.models import ReviewDecision, TranslateSpec, UtteranceEdit
from flows.models.translate import DECISION_RULES
from flows.outputs.artifacts import in_batch_item, utterance_rows
from flows.runtime import compat

LINE_FIELDS = ("text", "speaker_id", "start_ms", "end_ms", "volume")
MAX_FORM_LINES = 2000


class ReviewInputError(ValueError):
    """A reviewer's answer that cannot be applied (unknown utterance id, unreadable file): nothing was paid."""


class ReviewForm(ReviewDecision):
    """The Resume form: the decision, plus the reviewed lines to correct in place."""

    lines: list[UtteranceEdit] = Field(
        default_factory=list, max_length=MAX_FORM_LINES,
        description="The draft lines: correct text, speaker, timing (ms) or volume in place, keep every line.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ReviewForm:  # replaces ReviewDecision's: changed lines are edits too
        if self.action != "edit" and (self.edits or self.subtitle_key):
            field = "edits" if self.edits else "subtitle_key"
            raise ValueError(f"{field}: {self.action} takes no {field}; choose edit")
        if self.action == "reject" and not self.reason.strip():
            raise ValueError("reason: a reject needs a reason")
        if self.subtitle_key and ".." in self.subtitle_key.split("/"):
            raise ValueError("subtitle_key: must not contain '..' path parts")
        return self


# --- the draft lines ------------------------------------------------------------------------------------------


def reviewed_side(project: Any, spec: TranslateSpec) -> tuple[str, list[Any], list[Any]]:
    """The lines a reviewer corrects: the target ones after translation, the source ones after recognition."""
    if spec.review == "after_translation" and project.target_utterances:
        return "target", list(project.target_utterances), list(project.target_clips)
    return "source", list(project.source_utterances), list(project.source_clips)


def project_lines(utterances: list[Any], clips: list[Any]) -> list[UtteranceEdit]:
    """Each utterance as a line (text, speaker, timing and volume from its clip), in time order."""
    volumes = {c.id: c.volume for c in clips if c.id}
    lines = []
    for u in utterances:
        values = {"text": u.text or None, "speaker_id": u.speaker_id or None, "start_ms": u.start,
                  "end_ms": u.end, "volume": volumes.get(u.clip_id or "")}
        if (values["start_ms"] is not None and values["end_ms"] is not None
                and values["end_ms"] <= values["start_ms"]):
            values["start_ms"] = values["end_ms"] = None  # an untimed line: its timing is not offered
        if any(v is not None for v in values.values()):
            lines.append(UtteranceEdit.model_construct(id=u.id, **values))
    return sorted(lines, key=lambda x: (x.start_ms is None, x.start_ms or 0, x.end_ms or 0))


def published_lines(project: Any) -> list[UtteranceEdit]:
    """The target lines of a finished project, with their ids: what revise-translation edits by id."""
    return project_lines(list(project.target_utterances or []), list(project.target_clips or []))


def video_ms(project: Any) -> int | None:
    video = project.input_video
    seconds = video.duration_second if video is not None else None
    return round(seconds * 1000) if seconds else None


# --- the form ---------------------------------------------------------------------------------------------------


def _unchanged(drafts: list[UtteranceEdit]) -> dict[str, Any]:
    """Schema: ``lines`` (when sent) repeats every draft value. An absent key or null counts as unchanged."""
    return {"properties": {"lines": {"prefixItems": [
        {"properties": {f: {"enum": [None] if getattr(d, f) is None else [getattr(d, f), None]}
                        for f in LINE_FIELDS}} for d in drafts
    ]}}}


def form_rules(drafts: list[UtteranceEdit], speakers: list[str], length_ms: int | None) -> list[dict[str, Any]]:
    """DECISION_RULES with this run's drafts: the edit rule counts changed lines as edits."""
    edit_without_file = {
        "required": ["action"],
        "properties": {"action": {"const": "edit"}, "subtitle_key": {"not": {"type": "string"}}},
    }
    rules = [r for r in DECISION_RULES if r.get("if") != edit_without_file]
    assert len(rules) == len(DECISION_RULES) - 1, "DECISION_RULES' edit rule changed: update form_rules"
    timing: dict[str, Any] = {"minimum": 0, **({"maximum": length_ms} if length_ms else {})}
    each = [{"properties": {"id": {"const": d.id}, "speaker_id": {"enum": [*speakers, None]},
                            "start_ms": timing, "end_ms": timing}} for d in drafts]
    rules.append({"properties": {"lines": {"minItems": len(drafts), "maxItems": len(drafts), "prefixItems": each}}})
    rules.append({"if": {"properties": {"action": {"enum": ["approve", "reject"]}}}, "then": _unchanged(drafts)})
    rules.append({
        "if": {"allOf": [edit_without_file, _unchanged(drafts)]},
        "then": {"required": ["edits"], "properties": {"edits": {"minItems": 1}}},
    })
    return rules


def form_description(project_id: str, side: str, speakers: dict[str, str], length_ms: int | None) -> str:
    names = ", ".join(f"{sid} = {name}" for sid, name in speakers.items()) or "none listed"
    video = f"{length_ms:,} ms" if length_ms else "the video's length"
    return (
        f"Review of translation {project_id}: the {side} lines are below. Correct a line in place (text, "
        f"speaker_id, start_ms/end_ms, volume 0-100) and choose **edit**; or **approve** the drafts as they are; "
        f"or **reject** with a reason. Keep every line and its id. Lines stay in order without overlapping, "
        f"within 0-{video}. Speakers: {names}."
    )


def review_form(project: Any, spec: TranslateSpec) -> tuple[type[RunInput], list[UtteranceEdit]]:
    """This pause's Resume form (ReviewForm with the drafts as initial data and this run's rules), and the drafts."""
    side, utterances, clips = reviewed_side(project, spec)
    drafts = project_lines(utterances, clips)
    speakers = {s.id: s.name or s.id for s in project.speakers or []}
    length_ms = video_ms(project)
    description = form_description(project.project_id, side, speakers, length_ms)
    seeded = run_input_subclass_from_type(ReviewForm).with_initial_data(description=description, lines=drafts)
    rules = form_rules(drafts, sorted({*speakers, *(d.speaker_id for d in drafts if d.speaker_id)}), length_ms)
    form = type(seeded.__name__, (seeded,), {
        "__module__": __name__, "model_config": ConfigDict(json_schema_extra={"allOf": rules}),
    })
    compat.set_run_input_description(form, description)  # what the UI shows above the form
    return form, drafts


def answer_to_decision(answer: ReviewForm, drafts: list[UtteranceEdit]) -> ReviewDecision:
    """The form's answer as a ReviewDecision: each changed line becomes an edit by id (only what changed)."""
    if answer.lines and len(answer.lines) != len(drafts):
        raise ReviewInputError(f"lines: keep every draft line ({len(drafts)}), in order; got {len(answer.lines)}")
    edits = list(answer.edits)
    explicit = {e.id: (n, e) for n, e in enumerate(edits)}
    for i, (line, draft) in enumerate(zip(answer.lines, drafts)):
        if line.id != draft.id:
            raise ReviewInputError(f"lines[{i}].id: must stay {draft.id!r} (lines keep their ids and order)")
        changed = {f: getattr(line, f) for f in LINE_FIELDS
                   if getattr(line, f) is not None and getattr(line, f) != getattr(draft, f)}
        if not changed:
            continue
        if answer.action != "edit":
            raise ReviewInputError(f"lines[{i}].{next(iter(changed))}: {answer.action} keeps the drafts; choose edit")
        if line.id in explicit:
            n, edit = explicit[line.id]
            for f, value in changed.items():
                if getattr(edit, f) is not None and getattr(edit, f) != value:
                    raise ReviewInputError(f"lines[{i}].{f}: contradicts edits[{n}].{f} for line {line.id}")
            edits[n] = edit.model_copy(update={**changed, **edit.model_dump(exclude_none=True)})
            continue
        edits.append(UtteranceEdit(id=line.id, **changed))
    if answer.action == "edit" and not edits and not answer.subtitle_key:
        raise ReviewInputError("lines: an edit changes at least one line (or gives edits or a subtitle_key)")
    return ReviewDecision(action=answer.action, edits=edits, subtitle_key=answer.subtitle_key, reason=answer.reason)


async def publish_lines(project_id: str, language: str, project: Any) -> list[UtteranceEdit]:
    """A finished project's target lines with their ids, as a table artifact (``lines-<project>``) and for the
    result: revise-translation edits a line by its id, reviewed or not."""
    lines = published_lines(project)
    rows = [{f: ("" if v is None else v) for f, v in line.model_dump().items()} for line in lines]
    if lines and not in_batch_item():  # a batch's items table carries its items; the lines are in each result
        await acreate_table_artifact(
            table=utterance_rows(rows),
            key=f"lines-{project_id.lower()}",
            description=(f"Lines of translation {project_id} ({language}) by utterance id. To correct one after the "
                         "fact, run revise-translation with edits [{id, text / speaker_id / start_ms / end_ms / "
                         "volume}]."),
        )
    return lines
