"""Batch items by meaning: the canonical form of an item, its title, and what it would buy.

Two manifest rows that mean the same request must be one item: a CSV cell left empty or set to the default
(``clip.seed`` empty vs ``-1``), a number spelled ``5`` or ``5.0``, a JSONL row that leaves the target languages to
the defaults or repeats them. So an item's default title (``<defaults.title>-<6 hex>``) is a digest of what the
validated request *changes* relative to the defaults (``canonical_overrides``), not of the row as written; a row
already written that way (only values that differ from the defaults) keeps the title it always had, so its
purchases keep their fingerprints. Duplicates are then found on ``purchase_key``: every provider request the
item's stages would send (``flows.stages.requests``), with the deliberate re-buy knobs and the blocks (the
account), i.e. on the fingerprints of what each stage would buy.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from flows.models import ProductionRequest
from flows.models.rules import TITLE_MAX_CHARS
from flows.outputs.manifest import ItemProblem, RawItem, ValidItem, build_request
from flows.stages.requests import plan_production

DIGEST_CHARS = 6
_SAME = object()


def _diff(value: Any, base: Any) -> Any:
    """What ``value`` changes relative to ``base`` (``_SAME`` when nothing), as JSON values. Nested models are
    compared field by field; a model where the base has none (or another clip provider) counts with the fields
    it sets away from its own defaults."""
    if isinstance(value, BaseModel):
        if type(base) is type(value):
            out = {}
            for name in type(value).model_fields:
                if (changed := _diff(getattr(value, name), getattr(base, name))) is not _SAME:
                    out[name] = changed
            return out or _SAME
        own = value.model_dump(mode="json", exclude_defaults=True)
        if "provider" in type(value).model_fields:  # another clip provider than the defaults': it is the change
            own = {"provider": getattr(value, "provider"), **own}
        return own
    json_value, json_base = to_jsonable_python(value), to_jsonable_python(base)
    return _SAME if json_value == json_base else json_value


def canonical_overrides(request: ProductionRequest, defaults: ProductionRequest) -> dict[str, Any]:
    """The fields ``request`` sets away from ``defaults`` (title aside), whatever spelling produced them."""
    changed = _diff(request.model_copy(update={"title": defaults.title}), defaults)
    return {} if changed is _SAME else changed


def canonical_title(request: ProductionRequest, defaults: ProductionRequest) -> str:
    """``<defaults.title>-<6 hex>`` of the canonical overrides (the defaults' title shortened if the suffix
    would not fit the title's limit)."""
    canonical = json.dumps(canonical_overrides(request, defaults), sort_keys=True, default=str)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:DIGEST_CHARS]
    return f"{defaults.title[:TITLE_MAX_CHARS - DIGEST_CHARS - 1]}-{digest}"


def build_item(raw: RawItem, defaults: ProductionRequest) -> ProductionRequest | list[ItemProblem]:
    """The item's request (``manifest.build_request``) with its default title taken from its meaning."""
    if "title" in raw.overrides:
        return build_request(raw, defaults)
    # Validated once under a stand-in title (not one derived from the row's spelling), then named.
    found = build_request(raw.model_copy(update={"overrides": {**raw.overrides, "title": defaults.title}}), defaults)
    if isinstance(found, list):
        return found
    return ProductionRequest.model_validate({**found.model_dump(), "title": canonical_title(found, defaults)})


def purchase_key(request: ProductionRequest) -> str:
    """A digest of everything the item's stages would buy: each provider request as sent (placeholders for ids
    an earlier stage gives), the re-buy knobs (clip and translation takes, the workflow run, a new review), what
    only changes where outputs go (export), and the blocks (whose account pays). Two items with the same key would buy exactly the same things."""
    plan = plan_production(request)
    bought = {
        "clip": plan.clip.to_wire(),
        "first_frame": getattr(plan.clip, "first_frame_ref", None),
        "take": request.clip.take,
        "upload": plan.upload.to_wire(),
        "project": _without_stamps(plan.project.to_wire()),
        "render": request.edit.render,
        "workflow": plan.workflow.to_wire(),
        "run": request.transcode.run,
        "translations": {language: r.to_wire() for language, r in sorted(plan.translations.items())},
        "translate_take": getattr(request.translate, "take", 0),
        "review_again": getattr(request.translate, "review_again", False),
        "export_outputs": request.translate.export_outputs,
        "blocks": request.blocks.model_dump(mode="json"),
    }
    encoded = json.dumps(bought, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


def _without_stamps(wire: dict[str, Any]) -> dict[str, Any]:
    project = dict(wire.get("EditParam", {}).get("Project", {}))
    project.pop("CreateTime", None)
    project.pop("UpdateTime", None)
    return {**wire, "EditParam": {**wire.get("EditParam", {}), "Project": project}}


def duplicates_by_purchase(items: list[ValidItem]) -> dict[int, int]:
    """Item number -> the earlier item that buys exactly the same (that one runs; these are duplicates)."""
    first: dict[str, int] = {}
    dupes: dict[int, int] = {}
    for valid in sorted(items, key=lambda v: v.item):
        key = purchase_key(valid.request)
        if key in first:
            dupes[valid.item] = first[key]
        else:
            first[key] = valid.item
    return dupes
