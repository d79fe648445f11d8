"""Batch items are one per meaning: manifest rows that spell the same request differently run once, and are billed
once (the emulator's ledger), the others reported as duplicates of it. Against the emulator, moto S3 and a real
Prefect API (the harness of tests/flows/stages/test_batch.py)."""

from __future__ import annotations

import json
import uuid
from collections import Counter

import pytest

from flows.models import ProductionRequest, TranslateSpec
from flows.outputs.manifest import RawItem, parse_csv, parse_jsonl
from flows.stages.batch_rows import ItemStatus
from flows.stages.batch import produce_batch
from flows.stages.canonical import build_item, canonical_title, purchase_key
from tests.harness import Pipeline

DEFAULTS = ProductionRequest(title="dedupe", translate=TranslateSpec(target_languages=["en"]))


def billed(pipeline: Pipeline, since: int = 0) -> Counter[str]:
    return Counter(entry["action"] for entry in pipeline.emulator.ledger()[since:])


# --- offline: the canonical form ---------------------------------------------------------------------------


def _built(raw: RawItem) -> ProductionRequest:
    request = build_item(raw, DEFAULTS)
    assert isinstance(request, ProductionRequest), request
    return request


def test_csv_spellings_of_one_request_are_one_request() -> None:
    raws, problems = parse_csv(
        "clip.prompt,clip.seed,edit.fps,translate.target_languages\n"
        "A kite,,,\nA kite,-1,,\nA kite,-1,25,en\nA kite,-1.0,25.0,\n"  # all the defaults, spelled four ways
        "A kite,5,,\nA kite,5.0,,\n"  # one seed, two spellings
        "A boat,,,\n"  # another request
    )
    assert problems == []
    keys = [purchase_key(_built(raw)) for raw in raws]
    titles = [_built(raw).title for raw in raws]
    assert len(set(keys[0:4])) == 1 and len(set(titles[0:4])) == 1
    assert keys[4] == keys[5] and titles[4] == titles[5]
    assert len({keys[0], keys[4], keys[6]}) == 3


def test_a_row_written_canonically_keeps_the_title_it_always_had() -> None:
    """Only values that differ from the defaults: the title (and so every purchase's fingerprint) is unchanged."""
    from flows.outputs.manifest import item_title

    for overrides in ({"clip": {"prompt": "A kite"}}, {"clip": {"prompt": "A kite", "seed": 5}, "edit": {"fps": 30}},
                      {"clip": {"provider": "gateway", "prompt": "A kite", "model": "sora-2", "aspect_ratio": "16:9"}}):
        assert _built(RawItem(item=1, overrides=overrides)).title == item_title(DEFAULTS, overrides)


def test_a_different_request_stays_a_different_item() -> None:
    base = {"clip": {"prompt": "A kite"}}
    others = [
        {"clip": {"prompt": "A kite", "take": 1}},  # a deliberate new take
        {"clip": {"prompt": "A kite"}, "transcode": {"run": 1}},  # a deliberate new workflow run
        {"clip": {"prompt": "A kite"}, "translate": {"take": 1}},  # deliberately new translations
        {"clip": {"prompt": "A kite"}, "translate": {"target_languages": ["ja"]}},
        {"clip": {"prompt": "A kite"}, "title": "my-own-title"},
        {"clip": {"prompt": "A kite"}, "blocks": {"volcengine": "other-account"}},
    ]
    keys = {purchase_key(_built(RawItem(item=n, overrides=o))) for n, o in enumerate([base, *others], start=1)}
    assert len(keys) == 1 + len(others)


def test_the_item_title_fits_whatever_the_defaults_title() -> None:
    from flows.models.rules import TITLE_MAX_CHARS

    defaults = DEFAULTS.model_copy(update={"title": "d" * TITLE_MAX_CHARS})
    request = _built(RawItem(item=1, overrides={"clip": {"prompt": "A kite"}}))
    title = canonical_title(request, defaults)
    assert len(title) == TITLE_MAX_CHARS and title.startswith("d") and title[-7] == "-"


# --- against the emulator: one item, one bill ----------------------------------------------------------------


@pytest.mark.slow
async def test_spelling_variant_rows_are_one_item_and_one_bill(pipeline: Pipeline) -> None:
    t = uuid.uuid4().hex[:8]
    kite, boat = f"A kite over the harbour take {t}", f"A boat at dusk take {t}"
    key = f"manifests/dedupe-{t}.csv"
    csv_text = (
        "clip.prompt,clip.seed,edit.fps\n"
        f"{kite},,\n{kite},-1,\n{kite},-1,25.0\n"  # one request: seed empty / -1 / and the default fps written out
        f"{boat},5,\n{boat},5.0,\n"  # another: 5 vs 5.0
    )
    pipeline.s3_client.put_object(Bucket=pipeline.bucket, Key=key, Body=csv_text.encode())
    mark = len(pipeline.emulator.ledger())

    result = await produce_batch(manifest_key=key, defaults=DEFAULTS)

    assert (result.total, result.succeeded, result.duplicates, result.invalid) == (5, 2, 3, 0)
    rows = {row.item: row for row in result.items}
    assert [(n, rows[n].status, rows[n].duplicate_of) for n in (2, 3, 5)] == [
        (2, ItemStatus.DUPLICATE, 1), (3, ItemStatus.DUPLICATE, 1), (5, ItemStatus.DUPLICATE, 4)
    ]
    assert rows[2].title == rows[3].title == rows[1].title and rows[5].title == rows[4].title
    assert "item 1" in (rows[2].error or "")
    assert billed(pipeline, mark) == Counter({
        "CVSync2AsyncSubmitTask": 2, "UploadMediaByUrl": 2, "CreateProject": 2, "StartWorkflow": 2,
        "SubmitAITranslationWorkflow": 2,
    })
    projects = [e for e in pipeline.emulator.ledger()[mark:] if e["action"] == "CreateProject"]
    assert len({e["fingerprint"] for e in projects}) == 2  # two different requests reached the provider

    # The same requests spelled yet another way, as JSONL with the defaults written out: nothing new is bought.
    jsonl = "\n".join(json.dumps(row) for row in (
        {"clip": {"prompt": kite}, "translate": {"target_languages": ["en"]}},
        {"clip": {"prompt": boat, "seed": 5.0, "frames": 121}},
    )) + "\n"
    again = f"manifests/dedupe-{t}.jsonl"
    pipeline.s3_client.put_object(Bucket=pipeline.bucket, Key=again, Body=jsonl.encode())
    mark = len(pipeline.emulator.ledger())
    second = await produce_batch(manifest_key=again, defaults=DEFAULTS)
    assert (second.total, second.succeeded) == (2, 2)
    assert {r.title for r in second.items} == {rows[1].title, rows[4].title}
    assert billed(pipeline, mark) == Counter()


@pytest.mark.slow
async def test_jsonl_default_and_explicit_languages_are_one_item(pipeline: Pipeline) -> None:
    t = uuid.uuid4().hex[:8]
    items = [
        {"clip": {"prompt": f"A lighthouse, take {t}"}},
        {"clip": {"prompt": f"A lighthouse, take {t}"}, "translate": {"target_languages": ["en"]}},
    ]
    raws, problems = parse_jsonl("\n".join(json.dumps(i) for i in items))
    assert problems == [] and len(raws) == 2
    mark = len(pipeline.emulator.ledger())

    result = await produce_batch(items=items, defaults=DEFAULTS)

    assert (result.total, result.succeeded, result.duplicates) == (2, 1, 1)
    assert billed(pipeline, mark)["CreateProject"] == 1 and billed(pipeline, mark)["CVSync2AsyncSubmitTask"] == 1
