"""Batch manifests: items (partial ProductionRequests) read from JSONL, CSV or an inline list, checked up front.

- Inline: a list of dicts, each a partial ``ProductionRequest`` (``{"clip": {"prompt": "..."}, "title": "x"}``).
- JSONL: one such JSON object per line; blank lines are ignored.
- CSV: a header of dotted paths (``title``, ``clip.prompt``, ``clip.seed``, ``translate.target_languages``…);
  list fields take ``;``-separated values; an empty cell leaves the default.

Every item is deep-merged over the batch ``defaults``. An item without a ``title`` gets
``<defaults.title>-<6 hex digits of its own content>``: unique per item and stable when the manifest is
re-ordered (the title is part of what CreateProject buys, so a position-based title would pay again).
Problems are reported per item with its number, source line, field and rule (``ItemProblem``).

A manifest in the bucket is read only under ``CLIPFLOW_MANIFEST_PREFIX`` (``manifests/``), at most
``MAX_MANIFEST_BYTES`` (checked with a HEAD before it is read) and ``CLIPFLOW_MAX_BATCH_ITEMS`` items (counted from
its lines before any item is parsed or validated). Refusals name the field and the rule, never the object's content.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import types
import typing
from typing import Any, Literal, Union

from pydantic import BaseModel, Field, ValidationError

from flows.models import ProductionRequest
from providers.errors import RequestValidationError


class ManifestError(ValueError):
    """The manifest as a whole is unusable (unknown format, bad CSV header): nothing in it is run."""


class ItemProblem(BaseModel):
    item: int = Field(description="1-based item number in the manifest.")
    line: int | None = Field(None, description="Source line (JSONL/CSV), when the items came from a file.")
    field: str = Field(description="Dotted field path, or '-' for the item as a whole.")
    rule: str = Field(description="The rule the value broke.")

    def __str__(self) -> str:
        where = f"item {self.item}" + (f" (line {self.line})" if self.line is not None else "")
        return f"{where}: {self.field}: {self.rule}"


class RawItem(BaseModel):
    """One manifest entry before validation."""

    item: int
    line: int | None = None
    overrides: dict[str, Any] = {}


class ValidItem(BaseModel):
    item: int
    line: int | None = None
    request: ProductionRequest


# --- reading ------------------------------------------------------------------------------------------------


MAX_MANIFEST_BYTES = 16 * 1024 * 1024  # 10,000 rows of a few hundred bytes each fit many times over


def max_items() -> int:
    from flows.runtime.settings import settings

    return settings().max_batch_items


def check_item_count(count: int, source: str) -> None:
    """Refuse a batch of more items than ``CLIPFLOW_MAX_BATCH_ITEMS``, with the count, before any is validated."""
    from flows.runtime.settings import variable

    limit = max_items()
    if count > limit:
        raise ManifestError(
            f"{source}: {count:,} items, a batch takes at most {limit:,} ({variable('max_batch_items')}): split it "
            "into several batches"
        )


def from_inline(items: list[dict[str, Any]]) -> tuple[list[RawItem], list[ItemProblem]]:
    check_item_count(len(items), "items")
    raws, problems = [], []
    for n, entry in enumerate(items, start=1):
        if isinstance(entry, dict):
            raws.append(RawItem(item=n, overrides=entry))
        else:
            problems.append(ItemProblem(item=n, field="-", rule=f"must be an object, got {type(entry).__name__}"))
    return raws, problems


def parse_jsonl(text: str) -> tuple[list[RawItem], list[ItemProblem]]:
    raws, problems = [], []
    n = 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        n += 1
        try:
            entry = json.loads(line)
        except ValueError as exc:
            problems.append(ItemProblem(item=n, line=line_no, field="-", rule=f"invalid JSON: {exc}"))
            continue
        if not isinstance(entry, dict):
            problems.append(ItemProblem(item=n, line=line_no, field="-", rule="must be a JSON object"))
            continue
        raws.append(RawItem(item=n, line=line_no, overrides=entry))
    return raws, problems


def field_paths(model: type[BaseModel] = ProductionRequest, prefix: str = "") -> dict[str, str]:
    """Every leaf field of ``model`` as a dotted path -> how a CSV cell becomes its value: ``list``
    (``;``-separated strings), ``str`` (as is) or ``json`` (numbers, booleans: ``241``, ``true``).
    A union of models (the clip: Jimeng or gateway) contributes the fields of every member."""
    paths: dict[str, str] = {}
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        inner = _unwrap_optional(info.annotation)
        members = _models_of(inner)
        if members:
            for member in members:
                paths.update(field_paths(member, f"{path}."))
        elif typing.get_origin(inner) is list:
            paths[path] = "list"
        elif inner is str or (
            typing.get_origin(inner) is Literal and all(isinstance(a, str) for a in typing.get_args(inner))
        ):
            paths[path] = "str"
        else:
            paths[path] = "json"
    return paths


def _models_of(annotation: Any) -> list[type[BaseModel]]:
    """The model classes an annotation stands for: one model, or a union of (Annotated) models; else []."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _models_of(typing.get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (Union, types.UnionType):
        members = [_models_of(a) for a in typing.get_args(annotation) if a is not type(None)]
        if members and all(members):
            return [m for group in members for m in group]
    return []


def _cell_value(cell: str, kind: str) -> Any:
    if kind == "list":
        return [v.strip() for v in cell.split(";") if v.strip()]
    if kind == "json":
        try:
            return json.loads(cell)
        except ValueError:
            return cell  # pydantic names the field and the rule
    return cell


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


# The csv module refuses cells over 128 KB by default; an inline image (image_base64, at most ~470 KB of text)
# must reach the model, which names the field and its limit. Larger cells are refused naming the line.
CSV_CELL_MAX_CHARS = 1024 * 1024


def parse_csv(text: str) -> tuple[list[RawItem], list[ItemProblem]]:
    if csv.field_size_limit() < CSV_CELL_MAX_CHARS:
        csv.field_size_limit(CSV_CELL_MAX_CHARS)
    reader = csv.reader(io.StringIO(text))
    try:
        return _parse_csv_rows(reader)
    except csv.Error as exc:
        raise ManifestError(
            f"CSV line {reader.line_num}: {exc} (a cell holds at most {CSV_CELL_MAX_CHARS:,} characters; give "
            "large images by reference in clip.image_url)"
        ) from None


def _parse_csv_rows(reader: Any) -> tuple[list[RawItem], list[ItemProblem]]:
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return [], []
    known = field_paths()
    unknown = [_column_name(n, h) for n, h in enumerate(header, start=1) if h not in known]
    if unknown or len(set(header)) != len(header) or "" in header:
        rule = f"unknown column(s) {unknown}" if unknown else "empty or repeated column names"
        raise ManifestError(f"CSV header (line 1): {rule}; columns are dotted fields such as {sorted(known)[:6]}…")
    raws, problems = [], []
    n = 0
    line_no = reader.line_num + 1
    for row in reader:
        start, line_no = line_no, reader.line_num + 1  # a quoted cell may span lines
        if not any(cell.strip() for cell in row):
            continue
        n += 1
        if len(row) != len(header):
            problems.append(
                ItemProblem(item=n, line=start, field="-", rule=f"has {len(row)} cells, the header has {len(header)}")
            )
            continue
        overrides: dict[str, Any] = {}
        for path, cell in zip(header, row, strict=True):
            if cell.strip() == "":
                continue  # empty cell: keep the default
            _set_path(overrides, path.split("."), _cell_value(cell, known[path]))
        raws.append(RawItem(item=n, line=start, overrides=overrides))
    return raws, problems


# What a column name can look like; anything else is named by its position (the "header" may be the first line of
# a file that is no manifest at all, and a refusal never repeats an object's content).
_COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,63}$")


def _column_name(number: int, name: str) -> str:
    return name if _COLUMN_NAME.match(name) else f"column {number} (not a field name)"


def parse_manifest(text: str, fmt: str) -> tuple[list[RawItem], list[ItemProblem]]:
    if fmt == "jsonl":
        return parse_jsonl(text)
    if fmt == "csv":
        return parse_csv(text)
    raise ManifestError(f"unknown manifest format {fmt!r}: use jsonl or csv")


def count_items(text: str, fmt: str) -> int:
    """How many items ``text`` holds, without parsing one: non-blank lines (JSONL) or non-blank records after
    the header (CSV, whose quoted cells may span lines; the csv module only splits, it builds no item)."""
    if fmt == "jsonl":
        return sum(1 for line in text.splitlines() if line.strip())
    if fmt == "csv":
        if csv.field_size_limit() < CSV_CELL_MAX_CHARS:
            csv.field_size_limit(CSV_CELL_MAX_CHARS)
        reader = csv.reader(io.StringIO(text))
        try:
            return max(0, sum(1 for row in reader if any(cell.strip() for cell in row)) - 1)
        except csv.Error as exc:
            raise ManifestError(
                f"CSV line {reader.line_num}: {exc} (a cell holds at most {CSV_CELL_MAX_CHARS:,} characters; give "
                "large images by reference in clip.image_url)"
            ) from None
    raise ManifestError(f"unknown manifest format {fmt!r}: use jsonl or csv")


def check_manifest_key(key: str) -> None:
    """A manifest is read only under ``CLIPFLOW_MANIFEST_PREFIX``: decided by name, before S3 is asked anything, so
    a batch cannot be pointed at review decisions, subtitles or any other object."""
    from flows.outputs.storage import key_under
    from flows.runtime.settings import settings, variable

    prefix = settings().manifest_prefix
    if not key_under(key, prefix):
        raise ManifestError(
            f"manifest_key: must be a .jsonl or .csv file under {prefix} in the bucket "
            f"({variable('manifest_prefix')}), e.g. {prefix}nightly.jsonl"
        )


async def load_manifest(bucket: Any, key: str, fmt: str = "auto") -> tuple[list[RawItem], list[ItemProblem]]:
    """The items of the manifest at ``key`` in ``bucket`` (``resources.Bucket``): the key checked by name, the
    size by a HEAD (at most ``MAX_MANIFEST_BYTES`` read), the item count from its lines, then each item parsed."""
    from flows.outputs.storage import ObjectTooLargeError, read_small_object, s3_error_code

    check_manifest_key(key)
    fmt = format_for_key(key) if fmt == "auto" else fmt
    where = f"manifest_key: s3://{bucket.name}/{key}"
    try:
        raw = await read_small_object(bucket.client, bucket.name, key, max_bytes=MAX_MANIFEST_BYTES)
    except ObjectTooLargeError as exc:
        size = f"{exc.size:,} bytes" if exc.size is not None else "larger"
        raise ManifestError(f"{where} is {size}, a manifest is at most {MAX_MANIFEST_BYTES:,} bytes") from None
    except Exception as exc:  # noqa: BLE001 - boto's error types vary by endpoint; the code says enough
        raise ManifestError(f"{where} cannot be read ({s3_error_code(exc)})") from None
    try:
        text = raw.decode("utf-8-sig")  # spreadsheet exports start with a BOM
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{where} is not UTF-8 (byte {exc.start})") from None
    del raw
    check_item_count(count_items(text, fmt), where)
    return parse_manifest(text, fmt)


def format_for_key(key: str) -> str:
    lowered = key.lower()
    if lowered.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lowered.endswith(".csv"):
        return "csv"
    raise ManifestError(f"cannot tell the format of {key!r} from its name: end it in .jsonl or .csv, or set the format")


def _set_path(target: dict[str, Any], parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


# --- validation -------------------------------------------------------------------------------------------


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``; nested dicts merge, anything else (lists included) replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# Union members are tagged in pydantic's error locations (``clip.jimeng.frame``); the path a person wrote has no tag.
_UNION_TAGS = {"clip": {"jimeng", "gateway"}}
# Model-level validators (cross-field rules) say ``"<field>: <rule>"``: the field goes into the path.
_FIELD_RULE = re.compile(r"^(?:Value error, )?([a-z_][a-z0-9_]*): (.+)$", re.S)


def problem_path(loc: tuple[Any, ...] | list[Any], msg: str, kind: str) -> tuple[str, str]:
    """(dotted field path, rule) for one pydantic error, as a person would name them."""
    parts: list[str] = []
    for part in loc:
        if parts and isinstance(part, str) and part in _UNION_TAGS.get(parts[-1], ()):
            continue
        parts.append(str(part))
    parts = [p if len(p) <= 64 else f"{p[:61]}..." for p in parts]  # a key of the manifest's own, kept short
    rule = msg
    if kind == "clip_provider":  # the clip union's discriminator
        parts.append("provider")
    elif kind == "extra_forbidden":
        rule = "unknown field"
    elif kind == "value_error" and (found := _FIELD_RULE.match(msg)):
        parts.append(found.group(1))
        rule = found.group(2)
    elif kind == "value_error":
        rule = msg.removeprefix("Value error, ")
    return ".".join(parts) or "-", rule


def item_title(defaults: ProductionRequest, overrides: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(overrides, sort_keys=True, default=str).encode()).hexdigest()[:6]
    return f"{defaults.title}-{digest}"


def build_request(raw: RawItem, defaults: ProductionRequest) -> ProductionRequest | list[ItemProblem]:
    """The item's full request, or its problems: the same strict model as a flow parameter (an unknown field is
    refused by it, naming the field), so a manifest and a run form refuse exactly the same things."""
    base = defaults.model_dump(mode="json")
    clip = raw.overrides.get("clip")
    if isinstance(clip, dict) and clip.get("provider", base["clip"]["provider"]) != base["clip"]["provider"]:
        base["clip"] = {}  # another provider: the defaults' clip fields (e.g. Jimeng's frames) do not apply
    merged = deep_merge(base, raw.overrides)
    if "title" not in raw.overrides:
        merged["title"] = item_title(defaults, raw.overrides)
    try:
        return ProductionRequest.model_validate(merged)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field, rule = problem_path(err["loc"], err["msg"], err["type"])
            problems.append(ItemProblem(item=raw.item, line=raw.line, field=field, rule=rule))
        return problems


def provider_problem(raw: RawItem, exc: Exception) -> ItemProblem:
    """A provider-side rule (checked by ``validate_production``) as an item problem."""
    if isinstance(exc, RequestValidationError):
        stage = f"{exc.provider}:{exc.action}" if exc.action else exc.provider
        return ItemProblem(item=raw.item, line=raw.line, field=f"{exc.field} ({stage})", rule=exc.rule)
    if isinstance(exc, ValidationError) and exc.errors():
        err = exc.errors()[0]
        field, rule = problem_path(err["loc"], err["msg"], err["type"])
        return ItemProblem(item=raw.item, line=raw.line, field=field, rule=rule)
    return ItemProblem(item=raw.item, line=raw.line, field="-", rule=f"{type(exc).__name__}: {exc}")


def duplicates(items: list[ValidItem]) -> list[ItemProblem]:
    """Identical requests in one batch would only wait on each other's jobs: report all but the first."""
    seen: dict[str, int] = {}
    problems = []
    for valid in items:
        key = valid.request.model_dump_json()
        if key in seen:
            problems.append(
                ItemProblem(item=valid.item, line=valid.line, field="-", rule=f"duplicate of item {seen[key]}")
            )
        else:
            seen[key] = valid.item
    return problems
