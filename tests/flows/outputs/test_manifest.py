"""Manifest parsing and item validation (no Prefect, no network)."""

from __future__ import annotations

import pytest

from flows.outputs.manifest import (
    ManifestError,
    RawItem,
    ValidItem,
    build_request,
    deep_merge,
    duplicates,
    field_paths,
    format_for_key,
    from_inline,
    parse_csv,
    parse_jsonl,
)
from flows.models import GatewayClipSpec, ProductionRequest, TranslateSpec

DEFAULTS = ProductionRequest(title="promo", translate=TranslateSpec(target_languages=["en"]))


def test_jsonl_lines_numbered_blank_lines_skipped_bad_lines_reported() -> None:
    text = '{"clip": {"prompt": "a"}}\n\n  \n[1, 2]\n{"title": "x"\n{"title": "y"}\n'
    raws, problems = parse_jsonl(text)
    assert [(r.item, r.line) for r in raws] == [(1, 1), (4, 6)]
    assert [(p.item, p.line, p.field) for p in problems] == [(2, 4, "-"), (3, 5, "-")]
    assert problems[0].rule == "must be a JSON object" and problems[1].rule.startswith("invalid JSON")


def test_csv_dotted_columns_lists_quotes_empty_cells_and_line_numbers() -> None:
    text = (
        "title,clip.prompt,clip.frames,translate.target_languages,edit.render\n"
        'a,"two\nlines, with comma",241, en ; ja ;,true\n'
        "\n"
        "b,plain,,,\n"
    )
    raws, problems = parse_csv(text)
    assert problems == []
    assert [(r.item, r.line) for r in raws] == [(1, 2), (2, 5)]
    assert raws[0].overrides == {
        "title": "a",
        "clip": {"prompt": "two\nlines, with comma", "frames": 241},
        "translate": {"target_languages": ["en", "ja"]},
        "edit": {"render": True},
    }
    assert raws[1].overrides == {"title": "b", "clip": {"prompt": "plain"}}  # empty cells keep the defaults
    request = build_request(raws[0], DEFAULTS)
    assert isinstance(request, ProductionRequest)
    assert request.clip.frames == 241 and request.edit.render is True
    assert request.translate.target_languages == ["en", "ja"]


def test_csv_header_must_name_known_fields_and_rows_must_fit_it() -> None:
    with pytest.raises(ManifestError, match=r"unknown column\(s\) \['clip.promt'\]"):
        parse_csv("title,clip.promt\nx,y\n")
    with pytest.raises(ManifestError, match="repeated"):
        parse_csv("title,title\nx,y\n")
    raws, problems = parse_csv("title,clip.prompt\nx,y,z\n")
    assert raws == [] and problems[0].line == 2 and "3 cells" in problems[0].rule


def test_field_paths_mark_list_fields() -> None:
    paths = field_paths()
    assert paths["translate.target_languages"] == "list" and paths["clip.prompt"] == "str"
    assert paths["clip.provider"] == "str" and paths["clip.frames"] == "json" and paths["clip.seed"] == "json"
    assert paths["transcode.watermark_text"] == "str" and paths["transcode.clip_start_ms"] == "json"
    assert "blocks.bucket" in paths and "clip" not in paths
    # The clip is Jimeng or gateway: a CSV may name either one's fields.
    assert paths["clip.model"] == "str" and paths["clip.size"] == "str" and paths["clip.take"] == "json"


def test_unknown_fields_at_every_level_are_refused_by_the_model() -> None:
    for overrides, field in [
        ({"colour": "red"}, "colour"),
        ({"clip": {"frame": 241}}, "clip.frame"),
        ({"translate": {"target_language": ["en"]}}, "translate.target_language"),
        ({"edit": {"fpss": 30}}, "edit.fpss"),
        ({"transcode": {"template": "x"}}, "transcode.template"),
        ({"blocks": {"s3": "x"}}, "blocks.s3"),
        ({"clip": {"provider": "gateway", "image_base64": "aGk="}}, "clip.image_base64"),
    ]:
        bad = build_request(RawItem(item=2, line=3, overrides=overrides), DEFAULTS)
        assert isinstance(bad, list) and [(p.field, p.rule) for p in bad] == [(field, "unknown field")], overrides


def test_item_of_another_provider_replaces_the_defaults_clip() -> None:
    raw = RawItem(item=1, overrides={"clip": {"provider": "gateway", "prompt": "owl"}})
    request = build_request(raw, DEFAULTS)  # the defaults' Jimeng fields (frames, seed) do not leak into it
    assert isinstance(request, ProductionRequest) and request.clip.provider == "gateway"
    assert request.clip.aspect_ratio == "3:2" and request.clip.prompt == "owl"
    gateway_defaults = DEFAULTS.model_copy(update={"clip": GatewayClipSpec(model="sora-2", aspect_ratio="9:16")})
    merged = build_request(RawItem(item=2, overrides={"clip": {"prompt": "owl"}}), gateway_defaults)
    assert isinstance(merged, ProductionRequest) and merged.clip.provider == "gateway"  # merged over the defaults
    assert merged.clip.model == "sora-2" and merged.clip.aspect_ratio == "9:16"


def test_cross_field_rules_name_their_field() -> None:
    raw = RawItem(item=1, overrides={"clip": {"provider": "gateway", "aspect_ratio": "16:9", "prompt": "x"}})
    bad = build_request(raw, DEFAULTS)
    assert isinstance(bad, list) and bad[0].field == "clip.aspect_ratio" and "grok-video-3 supports" in bad[0].rule
    raw = RawItem(item=1, overrides={"translate": {"target_languages": ["en", "en"]}})
    bad = build_request(raw, DEFAULTS)
    assert isinstance(bad, list) and bad[0].field == "translate.target_languages" and "repeat" in bad[0].rule


def test_items_deep_merge_over_defaults_and_get_stable_unique_titles() -> None:
    raw = RawItem(item=1, overrides={"clip": {"prompt": "boat"}, "translate": {"target_languages": ["fr", "de"]}})
    request = build_request(raw, DEFAULTS)
    assert isinstance(request, ProductionRequest)
    assert request.clip.prompt == "boat" and request.clip.provider == "jimeng"  # merged, not replaced
    assert request.translate.target_languages == ["fr", "de"]
    assert request.translate.source_language == "zh"
    other = build_request(RawItem(item=7, overrides={"clip": {"prompt": "cat"}}), DEFAULTS)
    again = build_request(RawItem(item=9, line=3, overrides=dict(raw.overrides)), DEFAULTS)
    assert isinstance(other, ProductionRequest) and isinstance(again, ProductionRequest)
    assert request.title.startswith("promo-") and request.title != other.title
    assert again.title == request.title  # the item's content names it, not its position
    titled = build_request(RawItem(item=1, overrides={"title": "mine"}), DEFAULTS)
    assert isinstance(titled, ProductionRequest) and titled.title == "mine"
    assert deep_merge({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"b": 3}, "l": [2]}) == {"a": {"b": 3, "c": 2}, "l": [2]}


def test_item_problems_name_the_field_and_the_rule() -> None:
    bad = build_request(RawItem(item=4, line=9, overrides={"clip": {"frames": 99, "colour": "red"}}), DEFAULTS)
    assert isinstance(bad, list)
    # One mechanism (the strict model) reports the unknown field and the broken rule together.
    assert sorted((p.item, p.line, p.field, p.rule) for p in bad) == [
        (4, 9, "clip.colour", "unknown field"), (4, 9, "clip.frames", "Input should be 121 or 241"),
    ]
    bad = build_request(RawItem(item=4, line=9, overrides={"clip": {"frames": 99}, "edit": {"crf": 99}}), DEFAULTS)
    assert isinstance(bad, list)
    assert {p.field for p in bad} == {"clip.frames", "edit.crf"}
    assert "121" in next(p.rule for p in bad if p.field == "clip.frames")
    assert str(bad[0]).startswith("item 4 (line 9): ")


def test_inline_items_must_be_objects_and_duplicates_are_reported() -> None:
    raws, problems = from_inline([{"clip": {"prompt": "a"}}, "prompt: b"])  # type: ignore[list-item]
    assert len(raws) == 1 and problems[0].item == 2 and "must be an object" in problems[0].rule
    request = build_request(raws[0], DEFAULTS)
    assert isinstance(request, ProductionRequest)
    found = duplicates([ValidItem(item=1, request=request), ValidItem(item=3, request=request)])
    assert [(p.item, p.rule) for p in found] == [(3, "duplicate of item 1")]


def test_format_from_key() -> None:
    assert format_for_key("in/batch.JSONL") == "jsonl" and format_for_key("a.ndjson") == "jsonl"
    assert format_for_key("a.csv") == "csv"
    with pytest.raises(ManifestError, match="format"):
        format_for_key("a.txt")


def test_csv_cells_beyond_the_cell_limit_are_refused_naming_the_line() -> None:
    from flows.outputs.manifest import CSV_CELL_MAX_CHARS

    fits = "A" * 300_000  # an inline image's base64 is longer than the csv module's default 128 KB cell
    raws, problems = parse_csv(f"clip.prompt,clip.image_base64\nok,{fits}\n")
    assert not problems and raws[0].overrides["clip"]["image_base64"] == fits
    with pytest.raises(ManifestError, match=r"CSV line 3: .*field larger than field limit.*clip.image_url"):
        parse_csv(f"clip.prompt\nok\n{'B' * (CSV_CELL_MAX_CHARS + 1)}\n")


# --- limits and scoping (what a batch may read, how much, and what a refusal may say) ----------------------------


@pytest.mark.parametrize(
    ("key", "allowed"),
    [
        ("manifests/nightly.jsonl", True),
        ("manifests/2026/12/a.csv", True),
        ("manifests/", False),
        ("manifests/../reviews/tp-1/decision.json", False),
        ("manifests/./a.jsonl", False),
        ("manifests//a.jsonl", False),
        ("manifests\\..\\a.jsonl", False),
        ("manifests/a\x00.jsonl", False),
        ("reviews/tp-1/decision.json", False),
        ("/manifests/a.jsonl", False),
        ("manifests-x/a.jsonl", False),
    ],
)
def test_manifest_keys_only_under_the_prefix(key: str, allowed: bool) -> None:
    from flows.outputs.manifest import check_manifest_key

    if allowed:
        check_manifest_key(key)
    else:
        with pytest.raises(ManifestError, match=r"^manifest_key: must be a \.jsonl or \.csv file under manifests/"):
            check_manifest_key(key)


def test_items_are_counted_without_parsing_them() -> None:
    from flows.outputs.manifest import count_items

    assert count_items('{"a": 1}\n\n  \n{not json\n{"b": 2}', "jsonl") == 3  # blank lines are no items
    csv_text = 'clip.prompt,title\n"two\nlines",a\n\n,\nthree,b\n'
    assert count_items(csv_text, "csv") == 2  # a quoted cell spans lines; an all-empty row is no item
    assert count_items("clip.prompt\n", "csv") == 0 and count_items("", "csv") == 0
    assert len(parse_csv(csv_text)[0]) == 2 and len(parse_jsonl('{"a": 1}\n{"b": 2}')[0]) == 2


def test_inline_items_over_the_limit_are_refused_with_the_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIPFLOW_MAX_BATCH_ITEMS", "2")
    assert len(from_inline([{}, {}])[0]) == 2
    with pytest.raises(ManifestError, match=r"^items: 3 items, a batch takes at most 2 \(CLIPFLOW_MAX_BATCH_ITEMS\)"):
        from_inline([{}, {}, {}])


def test_a_csv_header_that_is_not_field_names_is_not_repeated() -> None:
    secret = '{"decision": {"action": "edit", "reason": "internal: do not share"}, "at": "2026-12-07"}'
    with pytest.raises(ManifestError) as raised:
        parse_csv(secret + "\n")
    message = str(raised.value)
    assert "column 1 (not a field name)" in message and "do not share" not in message and "decision" not in message
    with pytest.raises(ManifestError, match=r"unknown column\(s\) \['clip.promt'\]"):  # a typo is still named
        parse_csv("title,clip.promt\nx,y\n")
