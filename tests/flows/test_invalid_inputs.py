"""Invalid inputs, table-driven: each is refused naming the field and the rule, and nothing is paid.

Every case goes through
  (a) the parameter models (what the worker validates a run's parameters with, and what batch items are built with),
  (b) the schema Prefect stores on the deployment, with the server's own validator (``create_flow_run`` calls
      ``prefect.utilities.schema_tools.validation.validate(..., raise_on_error=True)`` and answers HTTP 409): the
      check the UI and REST apply at Submit. Rules a JSON schema cannot carry (cross-field, per-model) are marked
      and refused by the models and ``validate_production`` instead, still before any paid call,
  (c) a JSONL manifest row and, where a CSV row can say the same thing, a CSV row, through ``flows.outputs.manifest``,
and, all at once, as the items of one ``produce_batch`` run against the emulator, whose ledger must stay empty.

Unknown spaces, templates, models, buckets and credentials against live services are the preflight's
(tests for flows/stages/preflight.py), not rules of the inputs themselves.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import struct
from dataclasses import dataclass, field
from typing import Any

import pytest
from jsonschema.exceptions import ValidationError as SchemaError
from prefect.utilities.callables import parameter_schema
from prefect.utilities.schema_tools.validation import ValidationError as PrefectValidationError
from prefect.utilities.schema_tools.validation import validate
from pydantic import ValidationError

from flows.models import IMAGE_BASE64_MAX_CHARS, ProductionRequest, TranslateSpec
from flows.models.rules import TITLE_MAX_CHARS
from flows.outputs.manifest import ManifestError, build_request, field_paths, parse_csv, parse_jsonl, problem_path
from flows.stages.pipeline import produce_video

DEFAULTS = ProductionRequest(title="promo", translate=TranslateSpec(target_languages=["en"]))
NOT_IN_SCHEMA = None  # a rule a JSON schema cannot carry: refused by the model (and validate_production)

# What pydantic says for each JSON-schema keyword (the rule, as the item problem / error names it).
PYDANTIC_RULE = {
    "additionalProperties": "unknown field",
    "maxLength": "at most",
    "minLength": "at least",
    "pattern": "should match pattern",
    "enum": "Input should be",
    "const": "provider must be 'jimeng' or 'gateway'",
    "maximum": "less than or equal",
    "minimum": "greater than or equal",
    "uniqueItems": "must not repeat",
    "minItems": "at least",
    "maxItems": "at most",
    "type": "valid",
}


@dataclass(frozen=True)
class Case:
    name: str
    request: dict[str, Any]
    field: str  # dotted path as a person wrote it (no union tag)
    keyword: str | None  # the JSON-schema rule that refuses it at Submit; None: not expressible in a schema
    rule: str = ""  # what the model's error says; default: from the keyword
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def model_rule(self) -> str:
        return self.rule or PYDANTIC_RULE[self.keyword or ""]


def clip(**fields: Any) -> dict[str, Any]:
    return {"clip": {"prompt": "a kite over the harbour", **fields}}


def gw(**fields: Any) -> dict[str, Any]:
    return {"clip": {"provider": "gateway", "prompt": "a kite over the harbour", **fields}}


def tr(**fields: Any) -> dict[str, Any]:
    return {"translate": fields}


def C(name: str, request: dict[str, Any], field_: str, keyword: str | None, rule: str = "") -> Case:  # noqa: N802
    return Case(name, request, field_, keyword, rule)


# A 640x360 PNG header: all a first-frame check reads (magic bytes and IHDR dimensions).
SMALL_PNG = base64.b64encode(
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + struct.pack(">II", 640, 360) + b"\x08\x02\x00\x00\x00"
).decode()


CASES: list[Case] = [
    # --- unknown fields, at every level (typos included) ---------------------------------------------------
    C("top-level extra key", {"colour": "red"}, "colour", "additionalProperties"),
    C("top-level misplaced target_languages", {"target_languages": ["en"]}, "target_languages", "additionalProperties"),
    C("top-level wrong case", {"Title": "x"}, "Title", "additionalProperties"),
    C("top-level prompt", {"prompt": "a kite"}, "prompt", "additionalProperties"),
    C("clip typo frame", clip(frame=241), "clip.frame", "additionalProperties"),
    C("clip typo promt", {"clip": {"promt": "x"}}, "clip.promt", "additionalProperties"),
    C("jimeng clip with a gateway model", clip(model="sora-2"), "clip.model", "additionalProperties"),
    C("jimeng clip with a gateway size", clip(size="720P"), "clip.size", "additionalProperties"),
    C("gateway clip with image_base64", gw(image_base64="aGVsbG8="), "clip.image_base64", "additionalProperties"),
    C("gateway clip with frames", gw(frames=241), "clip.frames", "additionalProperties"),
    C("gateway clip with seed", gw(seed=7), "clip.seed", "additionalProperties"),
    C("translate typo target_language", tr(target_language=["en"]), "translate.target_language", "additionalProperties"),
    C("translate unknown key", tr(voice="alto"), "translate.voice", "additionalProperties"),
    C("edit typo fpss", {"edit": {"fpss": 30}}, "edit.fpss", "additionalProperties"),
    C("transcode typo template", {"transcode": {"template": "t"}}, "transcode.template", "additionalProperties"),
    C("blocks unknown block", {"blocks": {"s3": "x"}}, "blocks.s3", "additionalProperties"),
    # --- title --------------------------------------------------------------------------------------------
    C("title empty", {"title": ""}, "title", "pattern"),
    C("title with slash", {"title": "a/b"}, "title", "pattern"),
    C("title path traversal", {"title": "../x"}, "title", "pattern"),
    C("title with space", {"title": "my clip"}, "title", "pattern"),
    C("title too long", {"title": "x" * 129}, "title", "maxLength"),
    C("title with no room for the project tag", {"title": "x" * (TITLE_MAX_CHARS + 1)}, "title", "maxLength"),
    C("title formula", {"title": "=HYPERLINK(1)"}, "title", "pattern"),
    C("title with dot", {"title": "clip.mp4"}, "title", "pattern"),
    C("title not a string", {"title": 123}, "title", "type"),
    C("title null", {"title": None}, "title", "type"),
    # --- space name ---------------------------------------------------------------------------------------
    C("space path traversal", {"space_name": "../other-space"}, "space_name", "pattern"),
    C("space empty", {"space_name": ""}, "space_name", "pattern"),
    C("space with space", {"space_name": "my space"}, "space_name", "pattern"),
    C("space leading dash", {"space_name": "-demo"}, "space_name", "pattern"),
    C("space too long", {"space_name": "s" * 65}, "space_name", "pattern"),
    C("space with slash", {"space_name": "demo/x"}, "space_name", "pattern"),
    C("space CJK", {"space_name": "空间"}, "space_name", "pattern"),
    C("space not a string", {"space_name": 5}, "space_name", "type"),
    # --- provider -----------------------------------------------------------------------------------------
    C("provider unknown", clip(provider="kling"), "clip.provider", "const"),
    C("provider capitalised", clip(provider="Jimeng"), "clip.provider", "const"),
    C("provider empty", clip(provider=""), "clip.provider", "const"),
    C("clip not an object", {"clip": "a kite"}, "clip", "type", "valid"),
    # --- Jimeng rules ---------------------------------------------------------------------------------------
    C("jimeng prompt 801 chars", clip(prompt="x" * 801), "clip.prompt", "maxLength"),
    C("jimeng prompt 801 CJK chars", clip(prompt="中" * 801), "clip.prompt", "maxLength"),
    C("jimeng prompt 2000 chars", clip(prompt="a" * 2000), "clip.prompt", "maxLength"),
    C("jimeng prompt not a string", clip(prompt=42), "clip.prompt", "type"),
    C("jimeng aspect 16:10", clip(aspect_ratio="16:10"), "clip.aspect_ratio", "enum"),
    C("jimeng aspect 2:3 (gateway only)", clip(aspect_ratio="2:3"), "clip.aspect_ratio", "enum"),
    C("jimeng aspect 16x9", clip(aspect_ratio="16x9"), "clip.aspect_ratio", "enum"),
    C("jimeng aspect empty", clip(aspect_ratio=""), "clip.aspect_ratio", "enum"),
    C("jimeng frames 120", clip(frames=120), "clip.frames", "enum"),
    C("jimeng frames 242", clip(frames=242), "clip.frames", "enum"),
    C("jimeng frames 0", clip(frames=0), "clip.frames", "enum"),
    C("jimeng frames 10 (seconds)", clip(frames=10), "clip.frames", "enum"),
    C("jimeng frames text", clip(frames="241 frames"), "clip.frames", "enum"),
    C("seed 2**70", clip(seed=2**70), "clip.seed", "maximum"),
    C("seed 2**63", clip(seed=2**63), "clip.seed", "maximum"),
    C("seed 2**32", clip(seed=2**32), "clip.seed", "maximum"),
    C("seed -2", clip(seed=-2), "clip.seed", "minimum"),
    C("seed -2**70", clip(seed=-(2**70)), "clip.seed", "minimum"),
    C("seed text", clip(seed="lucky"), "clip.seed", "type"),
    C("seed fraction", clip(seed=1.5), "clip.seed", "type"),
    C("take negative", clip(take=-1), "clip.take", "minimum"),
    C("take too large", clip(take=1001), "clip.take", "maximum"),
    C("image_url ftp", clip(image_url="ftp://host/a.png"), "clip.image_url", "pattern"),
    C("image_url relative path", clip(image_url="../a.png"), "clip.image_url", "pattern"),
    C("image_url absolute path", clip(image_url="/tmp/a.png"), "clip.image_url", "pattern"),
    C("image_url s3 without key", clip(image_url="s3://bucket"), "clip.image_url", "pattern"),
    C("image_url s3 bad bucket", clip(image_url="s3://My_Bucket/a.png"), "clip.image_url", "pattern"),
    C("image_url data URI", clip(image_url="data:image/png;base64,aGk="), "clip.image_url", "pattern"),
    C("image_base64 over 350 KB", clip(image_base64="A" * (IMAGE_BASE64_MAX_CHARS + 4)), "clip.image_base64",
      "maxLength", "350 KB"),
    C("image_base64 not an image", clip(image_base64="aGVsbG8="), "clip.image_base64", NOT_IN_SCHEMA,
      "image must be JPEG or PNG"),
    C("image_url no host", clip(image_url="https://"), "clip.image_url", "pattern"),
    C("image_url file", clip(image_url="file:///etc/passwd"), "clip.image_url", "pattern"),
    C("image_url with spaces", clip(image_url="https://host/a b.png"), "clip.image_url", "pattern"),
    C("image_url and image_base64", clip(image_url="https://h/a.png", image_base64=SMALL_PNG), "clip.image_base64",
      NOT_IN_SCHEMA, "not both"),
    # --- gateway rules --------------------------------------------------------------------------------------
    C("gateway model unknown", gw(model="kling-2"), "clip.model", "enum"),
    C("gateway model grok-video-4", gw(model="grok-video-4"), "clip.model", "enum"),
    C("gateway model empty", gw(model=""), "clip.model", "enum"),
    C("gateway model upper case", gw(model="GROK-VIDEO-3"), "clip.model", "enum"),
    C("gateway aspect 4:3", gw(aspect_ratio="4:3"), "clip.aspect_ratio", "enum"),
    C("gateway aspect 21:9", gw(aspect_ratio="21:9"), "clip.aspect_ratio", "enum"),
    C("gateway size 480P", gw(size="480P"), "clip.size", "enum"),
    C("gateway size 4K", gw(size="4K"), "clip.size", "enum"),
    C("gateway prompt too long", gw(prompt="p" * 4001), "clip.prompt", "maxLength"),
    C("gateway image_url data-less", gw(image_url="s3://bucket/a.png"), "clip.image_url", "pattern"),
    C("gateway take negative", gw(take=-5), "clip.take", "minimum"),
    C("grok-video-3 at 16:9", gw(model="grok-video-3", aspect_ratio="16:9"), "clip.aspect_ratio", NOT_IN_SCHEMA,
      "grok-video-3 supports"),
    C("grok-video-3 at 9:16", gw(aspect_ratio="9:16"), "clip.aspect_ratio", NOT_IN_SCHEMA, "grok-video-3 supports"),
    C("grok-video-3 at 1080P", gw(size="1080P"), "clip.size", NOT_IN_SCHEMA, "grok-video-3 supports"),
    C("sora-2 at 1:1", gw(model="sora-2", aspect_ratio="1:1"), "clip.aspect_ratio", NOT_IN_SCHEMA, "sora-2 supports"),
    C("veo3.1 at 3:2", gw(model="veo3.1", aspect_ratio="3:2"), "clip.aspect_ratio", NOT_IN_SCHEMA, "veo3 supports"),
    C("veo3.1-components at 2:3", gw(model="veo3.1-components", aspect_ratio="2:3"), "clip.aspect_ratio",
      NOT_IN_SCHEMA, "veo3.1-components supports"),
    # --- translation ----------------------------------------------------------------------------------------
    C("language 'english'", tr(target_languages=["english"]), "translate.target_languages.0", "enum"),
    C("language upper case", tr(target_languages=["EN"]), "translate.target_languages.0", "enum"),
    C("language unknown xx", tr(target_languages=["en", "xx"]), "translate.target_languages.1", "enum"),
    C("language empty string", tr(target_languages=[""]), "translate.target_languages.0", "enum"),
    C("language region tag", tr(target_languages=["zh-CN"]), "translate.target_languages.0", "enum"),
    C("language number", tr(target_languages=[1]), "translate.target_languages.0", "enum"),
    C("languages duplicate", tr(target_languages=["en", "en"]), "translate.target_languages", "uniqueItems"),
    C("languages duplicate among three", tr(target_languages=["ja", "de", "ja"]), "translate.target_languages",
      "uniqueItems"),
    C("languages a string", tr(target_languages="en"), "translate.target_languages", "type"),
    C("source language ja", tr(source_language="ja"), "translate.source_language", "enum"),
    C("source language english", tr(source_language="english"), "translate.source_language", "enum"),
    C("translation type unknown", tr(translation_types=["Subtitle"]), "translate.translation_types.0", "enum"),
    C("translation types empty", tr(translation_types=[]), "translate.translation_types", "minItems"),
    C("translation types duplicate", tr(translation_types=["VoiceTranslation", "VoiceTranslation"]),
      "translate.translation_types", "uniqueItems"),
    C("translation types a string", tr(translation_types="SubtitleTranslation"), "translate.translation_types",
      "type"),
    C("into the source language", tr(target_languages=["en", "zh"]), "translate.target_languages", NOT_IN_SCHEMA,
      "must not include the source language"),
    C("voice without subtitles", tr(translation_types=["VoiceTranslation"]), "translate.translation_types",
      NOT_IN_SCHEMA, "voice needs subtitles"),
    C("veo3-frames without a first frame", gw(model="veo3-frames", aspect_ratio="16:9"), "clip.image_url",
      NOT_IN_SCHEMA, "first-frame image"),
    C("recognition lower case", tr(recognition="asr"), "translate.recognition", "enum"),
    C("recognition unknown", tr(recognition="OCRR"), "translate.recognition", "enum"),
    C("translate a list", {"translate": ["en"]}, "translate", "type"),
    # --- edit -----------------------------------------------------------------------------------------------
    C("edit width too small", {"edit": {"width": 15}}, "edit.width", "minimum"),
    C("edit width too large", {"edit": {"width": 4097}}, "edit.width", "maximum"),
    C("edit width text", {"edit": {"width": "wide"}}, "edit.width", "type"),
    C("edit height 0", {"edit": {"height": 0}}, "edit.height", "minimum"),
    C("edit fps 0", {"edit": {"fps": 0}}, "edit.fps", "minimum"),
    C("edit fps 121", {"edit": {"fps": 121}}, "edit.fps", "maximum"),
    C("edit crf -1", {"edit": {"crf": -1}}, "edit.crf", "minimum"),
    C("edit crf 52", {"edit": {"crf": 52}}, "edit.crf", "maximum"),
    C("edit codec vp9", {"edit": {"video_codec": "vp9"}}, "edit.video_codec", "enum"),
    C("edit codec upper case", {"edit": {"video_codec": "H264"}}, "edit.video_codec", "enum"),
    C("edit render maybe", {"edit": {"render": "maybe"}}, "edit.render", "type"),
    # --- transcode ------------------------------------------------------------------------------------------
    C("template empty", {"transcode": {"template_id": ""}}, "transcode.template_id", "pattern"),
    C("template path", {"transcode": {"template_id": "../t"}}, "transcode.template_id", "pattern"),
    C("template with space", {"transcode": {"template_id": "my template"}}, "transcode.template_id", "pattern"),
    C("priority 6", {"transcode": {"priority": 6}}, "transcode.priority", "maximum"),
    C("priority -6", {"transcode": {"priority": -6}}, "transcode.priority", "minimum"),
    C("clip start negative", {"transcode": {"clip_start_ms": -1}}, "transcode.clip_start_ms", "minimum"),
    C("clip end negative", {"transcode": {"clip_end_ms": -5}}, "transcode.clip_end_ms", "minimum"),
    C("clip end 2**70", {"transcode": {"clip_end_ms": 2**70}}, "transcode.clip_end_ms", "maximum"),
    C("clip end before start", {"transcode": {"clip_start_ms": 3000, "clip_end_ms": 1000}}, "transcode.clip_end_ms",
      NOT_IN_SCHEMA, "must be after clip_start_ms"),
    C("watermark too long", {"transcode": {"watermark_text": "w" * 201}}, "transcode.watermark_text", "maxLength"),
    C("low priority text", {"transcode": {"low_priority": "sometimes"}}, "transcode.low_priority", "type"),
    C("transcode audio clip end not after start",
      {"transcode": {"audio": {"clip_start_ms": 2000, "clip_end_ms": 2000}}},
      "transcode.audio.clip_end_ms", NOT_IN_SCHEMA, "must be after clip_start_ms"),
    C("transcode video unknown key", {"transcode": {"video": {"bitrate": 800}}}, "transcode.video.bitrate",
      "additionalProperties"),
    C("transcode snapshot unknown key", {"transcode": {"snapshot": {"interval": 1}}}, "transcode.snapshot.interval",
      "additionalProperties"),
    C("transcode video file name absolute", {"transcode": {"video": {"file_name": "/etc/x"}}},
      "transcode.video.file_name", "pattern"),
    C("transcode video file name unknown variable", {"transcode": {"video": {"file_name": "{{title}}.mp4"}}},
      "transcode.video.file_name", "pattern"),
    C("transcode audio file name with space", {"transcode": {"audio": {"file_name": "my audio"}}},
      "transcode.audio.file_name", "pattern"),
    C("transcode snapshot width 4097", {"transcode": {"snapshot": {"width": 4097}}}, "transcode.snapshot.width",
      "maximum"),
    C("transcode audio no templates", {"transcode": {"audio": {"template_ids": []}}}, "transcode.audio.template_ids",
      "minItems"),
    C("transcode video repeated template", {"transcode": {"video": {"template_ids": ["All", "All"]}}},
      "transcode.video.template_ids", "uniqueItems"),
    C("transcode run negative", {"transcode": {"run": -1}}, "transcode.run", "minimum"),
    C("transcode source file absolute", {"transcode": {"source_file": "/etc/passwd"}}, "transcode.source_file",
      "pattern"),
    C("transcode source file climbs out", {"transcode": {"source_file": "x/../../other/a.mp4"}},
      "transcode.source_file", NOT_IN_SCHEMA, "'..'"),
    C("transcode eleven video items", {"transcode": {"more_video": [{"template_ids": [f"v{n}"]} for n in range(11)]}},
      "transcode.more_video", "maxItems"),
    C("transcode watermark text too long", {"transcode": {"watermarks": [{"texts": {"caption": "w" * 201}}]}},
      "transcode.watermarks.0.texts.caption", "maxLength"),
    C("transcode callback args too long", {"transcode": {"callback_args": "c" * 513}}, "transcode.callback_args",
      "maxLength"),
    # --- blocks ---------------------------------------------------------------------------------------------
    C("block name upper case", {"blocks": {"volcengine": "Clipflow"}}, "blocks.volcengine", "pattern"),
    C("block name path", {"blocks": {"bucket": "../x"}}, "blocks.bucket", "pattern"),
    C("block name empty", {"blocks": {"gateway": ""}}, "blocks.gateway", "pattern"),
    C("block name with space", {"blocks": {"bucket": "my bucket"}}, "blocks.bucket", "pattern"),
    C("block name underscore", {"blocks": {"gateway": "a_b"}}, "blocks.gateway", "pattern"),
]

VALID: list[tuple[str, dict[str, Any]]] = [
    ("800-character CJK prompt", clip(prompt="港" * 800)),
    ("800-character prompt", clip(prompt="x" * 800)),
    ("241 frames at 21:9", clip(frames=241, aspect_ratio="21:9")),
    ("largest seed", clip(seed=2**32 - 1)),
    ("random seed", clip(seed=-1)),
    ("a clip without provider is Jimeng", {"clip": {"prompt": "a kite"}}),
    ("gateway defaults", gw()),
    ("sora-2 portrait", gw(model="sora-2", aspect_ratio="9:16")),
    ("veo3.1-fast landscape", gw(model="veo3.1-fast", aspect_ratio="16:9")),
    ("every other language once", tr(target_languages=["en", "ja", "ko", "de", "fr", "ru", "es", "pt", "it", "id",
                                                       "vi", "th", "ar", "tr"])),
    ("no translations", tr(target_languages=[])),
    ("CJK title", {"title": "港口风筝_v2-最终"}),
    ("longest title (the project tag takes the rest of 128)", {"title": "t" * TITLE_MAX_CHARS}),
    ("space with - and _", {"space_name": "my-space_2"}),
    ("image-to-video by URL", clip(prompt="", image_url="https://example.com/first-frame.png")),
    ("every transcode override", {"transcode": {
        "watermark_text": "港口", "clip_start_ms": 0, "clip_end_ms": 2000, "callback_args": "order-1", "run": 2,
        "video": {"file_name": "out/{{fileTitle}}_{{templateId}}.{{outFormat}}", "logo_template_id": "logo-1"},
        "audio": {"template_ids": ["audio-1"], "clip_start_ms": 500, "clip_end_ms": 900, "file_name": "a/{{vid}}"},
        "snapshot": {"sample_offsets_s": [0.5, 1], "width": 0, "height": 4096, "file_name": "s/{{count}}"},
    }}),
    ("a file of the space, several items and watermark variables", {"transcode": {
        "source_file": "uploads/港口 intro.mp4",
        "watermarks": [{"logo_template_id": "logo-1", "texts": {"caption": "港口", "date": "2026-12-07"}},
                       {"logo_template_id": "logo-2", "texts": {"label": "NEW"}}],
        "video": {"template_ids": ["v-480"], "file_name": "r/{{fileTitle}}_s"},
        "more_video": [{"template_ids": ["v-720"], "clip_start_ms": 0, "clip_end_ms": 900, "logo_template_id": "logo-2"}],
        "more_audio": [{"template_ids": ["a-1"], "file_name": "a/{{vid}}"}, {"template_ids": ["a-2"]}],
        "more_snapshot": [{"template_ids": ["s-1"], "width": 320}],
    }}),
    ("image-to-video by bucket key", clip(prompt="", image_url="frames/first-frame.png")),
    ("image-to-video by s3 URI", clip(prompt="", image_url="s3://my-bucket/frames/first-frame.png")),
]

SCHEMA = parameter_schema(produce_video).model_dump(exclude_unset=True)  # what the deployment stores


def ids(cases: list[Case]) -> list[str]:
    return [c.name for c in cases]


def test_there_are_enough_cases_across_every_field_class() -> None:
    assert len(CASES) >= 100 and len({c.name for c in CASES}) == len(CASES)
    classes = {c.field.split(".")[0] for c in CASES}
    assert {"title", "space_name", "clip", "translate", "edit", "transcode", "blocks"} <= classes
    assert sum(c.keyword == "additionalProperties" for c in CASES) >= 10


# --- (a) the models ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_the_model_refuses_naming_the_field_and_the_rule(case: Case) -> None:
    with pytest.raises(ValidationError) as info:
        ProductionRequest.model_validate(case.request)
    named = [problem_path(e["loc"], e["msg"], e["type"]) for e in info.value.errors()]
    assert any(f == case.field and case.model_rule in rule for f, rule in named), named


@pytest.mark.parametrize(("name", "request_"), VALID, ids=[n for n, _ in VALID])
def test_valid_edge_cases_are_accepted(name: str, request_: dict[str, Any]) -> None:
    ProductionRequest.model_validate(request_)
    assert validate({"request": request_}, SCHEMA) == []
    raws, problems = parse_jsonl(json.dumps(request_))
    assert problems == [] and isinstance(build_request(raws[0], DEFAULTS), ProductionRequest)


# --- (b) the deployment's schema, validated the way the server does at create_flow_run ------------------


def _leaves(error: SchemaError) -> list[SchemaError]:
    """The error and every sub-error of oneOf / anyOf branches (the rule that actually failed is deepest)."""
    found = [error]
    for sub in error.context or []:
        found += _leaves(sub)
    return found


def _names_field(error: SchemaError, case: Case) -> bool:
    path = [str(p) for p in error.absolute_path][1:]  # drop "request"
    target = case.field.split(".")
    if error.validator != case.keyword:
        return False
    if case.keyword == "additionalProperties":
        return path == target[:-1] and repr(target[-1]) in error.message
    return path == target


SCHEMA_CASES = [c for c in CASES if c.keyword is not NOT_IN_SCHEMA]


@pytest.mark.parametrize("case", SCHEMA_CASES, ids=ids(SCHEMA_CASES))
def test_the_server_refuses_at_submit_naming_the_field_and_the_rule(case: Case) -> None:
    parameters = {"request": case.request}
    with pytest.raises(PrefectValidationError, match="Validation failed for field 'request"):
        validate(parameters, SCHEMA, raise_on_error=True)  # what create_flow_run turns into HTTP 409
    errors = [leaf for error in validate(parameters, SCHEMA) for leaf in _leaves(error)]
    assert any(_names_field(e, case) for e in errors), [(list(e.absolute_path), e.validator, e.message) for e in errors]


def test_rules_the_schema_cannot_carry_are_few_and_named() -> None:
    assert sum(c.keyword is NOT_IN_SCHEMA for c in CASES) <= 15  # cross-field and per-model rules only


# --- (c) manifests: JSONL and CSV rows ---------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_a_jsonl_row_is_refused_naming_item_line_field_and_rule(case: Case) -> None:
    text = json.dumps({"title": "fine"}) + "\n\n" + json.dumps(case.request) + "\n"
    raws, problems = parse_jsonl(text)
    assert problems == [] and [(r.item, r.line) for r in raws] == [(1, 1), (2, 3)]
    assert isinstance(build_request(raws[0], DEFAULTS), ProductionRequest)
    found = build_request(raws[1], DEFAULTS)
    assert isinstance(found, list), f"accepted: {case.request}"
    assert all((p.item, p.line) == (2, 3) for p in found)
    assert any(p.field == case.field and case.model_rule in p.rule for p in found), [str(p) for p in found]
    assert any(str(p).startswith(f"item 2 (line 3): {case.field}: ") for p in found)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _csv(flat: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(list(flat))
    writer.writerow([_cell(v) for v in flat.values()])
    return out.getvalue()


def test_csv_rows_are_refused_naming_item_line_field_and_rule() -> None:
    """Every case a CSV row can express (same values after parsing; unknown columns refuse the header)."""
    known, rows, headers = field_paths(), 0, 0
    for case in CASES:
        flat = _flatten(case.request)
        if any(path not in known for path in flat):
            with pytest.raises(ManifestError, match="unknown column") as info:
                parse_csv(_csv(flat))
            assert any(path in str(info.value) for path in flat if path not in known), case.name
            headers += 1
            continue
        raws, problems = parse_csv(_csv(flat))
        if problems or not raws or _flatten(raws[0].overrides) != flat:
            continue  # a CSV row cannot say this (an empty cell keeps the default, a list cell is text)
        found = build_request(raws[0], DEFAULTS)
        assert isinstance(found, list), f"{case.name}: accepted"
        assert all((p.item, p.line) == (1, 2) for p in found)
        assert any(p.field == case.field and case.model_rule in p.rule for p in found), (case.name, found)
        rows += 1
    assert rows >= 60 and headers >= 10, (rows, headers)


# --- nothing is paid: every case as an item of one batch, against the emulator -----------------------------


@pytest.mark.slow
async def test_a_batch_of_every_invalid_case_pays_nothing(pipeline: Any) -> None:
    from flows.stages.batch_rows import ItemStatus
    from flows.stages.batch import produce_batch

    from flows.stages.entry import oversized_integer

    # Integers past 64 bits keep the batch run itself from being created (tests/flows/test_strict_values.py).
    cases = [case for case in CASES if oversized_integer(case.request) is None]
    result = await produce_batch(items=[case.request for case in cases], defaults=DEFAULTS)
    assert (result.total, result.invalid, result.succeeded) == (len(cases), len(cases), 0)
    for case, row in zip(cases, sorted(result.items, key=lambda r: r.item), strict=True):
        assert row.status is ItemStatus.INVALID and case.field in (row.error or ""), (case.name, row.error)
    assert pipeline.emulator.ledger() == []


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES[::10], ids=ids(CASES[::10]))
async def test_produce_video_refuses_before_paying(pipeline: Any, case: Case) -> None:
    with pytest.raises(Exception) as info:  # noqa: PT011 - Prefect's parameter error or pydantic's
        await produce_video(request=case.request)
    assert case.field.split(".")[-1] in str(info.value)
    assert pipeline.emulator.ledger() == []
