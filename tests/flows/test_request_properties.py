"""Property: any request the form accepts builds every provider request offline, before anything is paid.

Requests are generated from the deployment's parameter schema itself (``parameter_schema(produce_video)``, what
``prefect deploy`` stores and what the UI form and REST ``create_flow_run`` validate against): objects with any
subset of their optional properties, strings from their patterns (stretched to their maximum length too, where
the boundary bugs live), integers and numbers across their ranges, enums, lists with their item counts. Each
request the server's own validator accepts must then

- be accepted by the models, or refused only by a rule the schema cannot carry (a cross-field rule, named by
  its field): never a type, length, range or pattern the form let through;
- build every provider request with ``plan_production`` (Jimeng/gateway submit, UploadMediaByUrl with its UrlSet
  title, CreateProject with the tagged name, the render, StartWorkflow, one SubmitAITranslationWorkflow per
  language, the subtitle keys), refused at most by the one provider rule a schema cannot say: a clip needs a
  prompt (Jimeng's text-to-video, every gateway model).

So a value the form accepts can never be refused by a provider after the first paid call (a 113-character title
once passed the form and then broke CreateProject, after the clip and the import were paid).
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools.validation import preprocess_schema, validate
from pydantic import ValidationError

from flows.models import ProductionRequest
from flows.models.rules import PROJECT_NAME_MAX_CHARS, TITLE_MAX_CHARS
from flows.stages.pipeline import produce_video
from flows.stages.requests import plan_production
from providers.errors import RequestValidationError

SCHEMA = parameter_schema(produce_video).model_dump(exclude_unset=True)
CHECKED = preprocess_schema(SCHEMA)  # what the server validates with
TEXT_MAX = 300  # free text is generated this long at most (plus the stretched-to-the-limit variant)


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _stretched(base: st.SearchStrategy[str], pattern: str | None, max_length: int) -> st.SearchStrategy[str]:
    """Values of ``base`` repeated up to exactly ``max_length`` characters, where they still match."""

    def stretch(value: str) -> str:
        return (value * (max_length // max(len(value), 1) + 1))[:max_length] if value else value

    return base.map(stretch).filter(lambda v: pattern is None or re.search(pattern, v) is not None)


def _string(node: dict[str, Any]) -> st.SearchStrategy[str]:
    pattern, low, high = node.get("pattern"), node.get("minLength", 0), node.get("maxLength")
    free = st.text(min_size=low, max_size=min(high or TEXT_MAX, TEXT_MAX))
    base = st.from_regex(pattern, fullmatch=True) if pattern else free
    if high is not None:
        base = st.one_of(base, _stretched(base, pattern, high))
    return base.filter(lambda v: low <= len(v) <= (high if high is not None else len(v)))


def _number(node: dict[str, Any], integer: bool) -> st.SearchStrategy[Any]:
    low, high = node.get("minimum"), node.get("maximum")
    if integer:
        ints = st.integers(min_value=low, max_value=high)
        edges = [v for v in (low, high) if v is not None]
        return st.one_of(ints, st.sampled_from(edges)) if edges else ints
    floor = node.get("exclusiveMinimum", low)
    return st.floats(min_value=floor, max_value=high, exclude_min="exclusiveMinimum" in node, allow_nan=False,
                     allow_infinity=False)


def from_schema(node: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A strategy for the values ``node`` (a JSON schema of this deployment's kind) describes."""
    node = _resolve(node)
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "anyOf" in node:
        return st.one_of(*(from_schema(option) for option in node["anyOf"]))
    kind = node.get("type")
    if kind == "object" and "patternProperties" in node:  # a map (e.g. watermark variable -> text)
        [(key_pattern, value)] = node["patternProperties"].items()
        return st.dictionaries(st.from_regex(key_pattern, fullmatch=True), from_schema(value),
                               min_size=node.get("minProperties", 0), max_size=min(node.get("maxProperties", 5), 5))
    if kind == "object":
        required = set(node.get("required", [])) | (ALWAYS_GENERATED & set(node.get("properties", {})))
        props = node.get("properties", {})
        fields = {name: _field(name, sub) for name, sub in props.items() if name not in NOT_GENERATED}
        return st.fixed_dictionaries(
            {k: v for k, v in fields.items() if k in required},
            optional={k: v for k, v in fields.items() if k not in required},
        )
    if kind == "array":
        items = from_schema(node.get("items", {}))
        high = node.get("maxItems", 5)
        return st.lists(items, min_size=node.get("minItems", 0), max_size=min(high, 6),
                        unique_by=(lambda v: json.dumps(v, sort_keys=True)) if node.get("uniqueItems") else None)
    if kind == "string":
        return _string(node)
    if kind in ("integer", "number"):
        return _number(node, kind == "integer")
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    raise AssertionError(f"a schema construct the generator does not know: {node}")


# Values whose validity no schema can say, steered so that most examples get past them to the plan: a prompt
# with something in it (blank prompts are refused naming the field: checked below), and no inline image (its
# bytes must be a real JPEG/PNG; tests/flows/test_invalid_inputs.py covers it).
NOT_GENERATED = {"image_base64"}
ALWAYS_GENERATED = {"clip", "prompt"}


def _field(name: str, node: dict[str, Any]) -> st.SearchStrategy[Any]:
    if name == "prompt":
        return _string({**_resolve(node), "minLength": 1}).filter(lambda v: bool(v.strip()))
    return from_schema(node)


REQUESTS = from_schema(SCHEMA["properties"]["request"])


def _refused_only_by_rules_the_schema_cannot_carry(exc: ValidationError) -> None:
    for error in exc.errors():
        assert error["type"] == "value_error", f"the form accepted what the model refuses: {error}"
        assert error["loc"] or ":" in error["msg"], f"a refusal that names no field: {error}"


def _without_prompt(request: ProductionRequest) -> bool:
    """The clip has no prompt: Jimeng needs one for text-to-video, a gateway always (refused naming it)."""
    clip = request.clip
    blank = not (clip.prompt or "").strip()
    if clip.provider == "gateway":
        return blank
    return blank and not clip.image_url and not getattr(clip, "image_base64", None)


SETTINGS = settings(
    max_examples=300, derandomize=True, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


def check_request(data: dict[str, Any]) -> ProductionRequest | None:
    """The property for one generated request; the request when every provider request was built."""
    errors = validate({"request": data}, CHECKED, preprocess=False)
    assert errors == [], [e.message[:200] for e in errors]  # the generator follows the schema

    try:
        request = ProductionRequest.model_validate(data)
    except ValidationError as exc:
        _refused_only_by_rules_the_schema_cannot_carry(exc)
        return None
    try:
        plan = plan_production(request)
    except RequestValidationError as exc:
        assert (exc.field, _without_prompt(request)) == ("prompt", True), str(exc)
        return None

    name = plan.project.project_name
    assert len(name) <= PROJECT_NAME_MAX_CHARS and name.startswith(request.title)
    assert re.search(r"-cf[0-9a-f]{12}$", name)
    assert plan.upload.url_sets[0].title and plan.upload.to_wire()["SpaceName"] == request.space_name
    assert sorted(plan.translations) == sorted(request.translate.target_languages)
    assert (plan.render is not None) == request.edit.render
    for built in (plan.clip, plan.upload, plan.project, plan.workflow, *plan.translations.values()):
        json.dumps(built.to_wire(), ensure_ascii=False)  # what goes on the wire serialises
    assert all(len(key.encode()) <= 1024 for key in plan.subtitle_keys)
    return request


def test_any_request_the_form_accepts_builds_every_provider_request_offline() -> None:
    built: list[ProductionRequest] = []

    @SETTINGS
    @given(REQUESTS)
    # The coverage asserted below, whatever the draws: a render and translations (rare among random requests
    # since the sources rules refuse most combinations).
    @example({"title": "rendered", "clip": {"prompt": "a kite"}, "edit": {"render": True},
              "translate": {"target_languages": ["en", "fr"]}})
    # Found by this test: a cover time at the end of the longest gateway clip passed the form, then the plan.
    @example({"clip": {"provider": "gateway", "prompt": "0"}, "edit": {"cover_times_ms": [20000]}})
    def prop(data: dict[str, Any]) -> None:
        if (request := check_request(data)) is not None:
            built.append(request)

    prop()
    # The property is only as good as its inputs: the longest title, both providers, every stage built.
    assert any(len(r.title) == TITLE_MAX_CHARS for r in built)
    assert {r.clip.provider for r in built} == {"jimeng", "gateway"}
    assert any(r.edit.render for r in built) and any(r.translate.target_languages for r in built)
    assert len(built) >= 50, len(built)


def test_a_title_one_over_the_limit_is_refused_by_the_form_and_named_by_the_plan() -> None:
    """The concrete bug: the form's limit leaves room for the tag, and a title changed in code is named too."""
    too_long = {"title": "t" * (TITLE_MAX_CHARS + 1), "clip": {"prompt": "a kite"}}
    assert validate({"request": too_long}, CHECKED, preprocess=False)
    valid = ProductionRequest.model_validate({**too_long, "title": "t"})
    request = valid.model_copy(update={"title": too_long["title"]})  # changed in code: skips the form
    try:
        plan_production(request)
    except RequestValidationError as exc:
        assert exc.field == "title" and f"at most {TITLE_MAX_CHARS}" in exc.rule, str(exc)
    else:
        raise AssertionError("a 114-character title built a CreateProject request")
    longest = ProductionRequest.model_validate({**too_long, "title": "t" * TITLE_MAX_CHARS})
    assert len(plan_production(longest).project.project_name) == PROJECT_NAME_MAX_CHARS
