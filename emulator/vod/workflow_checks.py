"""StartWorkflow's inputs checked as the vendor would, before anything is billed: the workflow templates the
emulator knows (what each produces), ``DirectUrl`` (a file of a space) and ``Input.OverrideParams``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from emulator.config import DEMO_TEMPLATE, EmulatorConfig
from emulator.errors import ApiError, invalid, not_found
from emulator.registry import Ctx

# A configured template lists its outputs: "480p" is a video rendition, "audio:<name>" an audio rendition,
# "snapshot:poster|sample" a snapshot task, "logo:<key>" a variable of the text watermark every video rendition
# carries and "logo:<name>/<key>" one of a further text watermark (a rendition gets it through its TranscodeVideo
# override's LogoTemplateId). The demo
# template, when configured with renditions only, also has a poster snapshot and a text watermark whose key is
# not the vendor's example key (so a client must read it from the template).
DEMO_TEMPLATE_TASKS = ["snapshot:poster", "logo:keyword"]
OVERRIDE_KINDS = ("Logo", "Snapshot", "TranscodeAudio", "TranscodeVideo")
_ITEM_KEYS = {
    "Logo": {"TemplateId", "Vars"},
    "Snapshot": {"TemplateId", "FileName", "FileIndex", "OffsetTime", "SampleOffsets", "OffsetTimeList", "Width",
                 "Height"},
    "TranscodeAudio": {"TemplateId", "Clip", "FileName"},
    "TranscodeVideo": {"TemplateId", "Clip", "FileName", "LogoTemplateId"},
}
# Output path variables (vendor doc 4/130881); count/width/height only for snapshots.
PATHVARIABLES = {"fileName", "fileTitle", "filePrefix", "vid", "templateId", "random", "outFormat"}
SNAPSHOT_PATHVARIABLES = PATHVARIABLES | {"count", "width", "height"}
VARIABLE = re.compile(r"\{\{([^{}]*)\}\}")
_PATH_CHARS = re.compile(r"^[A-Za-z0-9_./-]*$")


@dataclass(frozen=True)
class Template:
    """What one workflow template produces, with the ids of its transcode/snapshot/logo templates."""

    template_id: str
    video: list[str]
    audio: list[str]
    snapshots: list[str]
    logo_vars: list[str]  # the variables of the watermark every video rendition carries
    other_logos: dict[str, list[str]] = field(default_factory=dict)  # further watermark template id -> variables

    @property
    def logo_id(self) -> str:
        return f"{self.template_id}-logo"

    def logo_vars_of(self, logo_id: str) -> list[str]:
        return self.logo_vars if logo_id == self.logo_id else self.other_logos.get(logo_id, [])

    @property
    def logos(self) -> dict[str, list[str]]:
        return ({self.logo_id: self.logo_vars} if self.logo_vars else {}) | self.other_logos

    def video_id(self, definition: str) -> str:
        return f"{self.template_id}-{definition}"

    def audio_id(self, name: str) -> str:
        return f"{self.template_id}-audio-{name}"

    def snapshot_id(self, kind: str) -> str:
        return f"{self.template_id}-snapshot-{kind}"

    def ids(self, kind: str) -> set[str]:
        if kind == "TranscodeVideo":
            return {self.video_id(d) for d in self.video}
        if kind == "TranscodeAudio":
            return {self.audio_id(a) for a in self.audio}
        if kind == "Snapshot":
            return {self.snapshot_id(k) for k in self.snapshots}
        return set(self.logos)


def template_of(config: EmulatorConfig, template_id: str) -> Template | None:
    entries = config.workflow_templates.get(template_id)
    if entries is None:
        return None
    if template_id == DEMO_TEMPLATE and not any(":" in e for e in entries):
        entries = [*entries, *DEMO_TEMPLATE_TASKS]
    typed: dict[str, list[str]] = {"video": [], "audio": [], "snapshot": [], "logo": []}
    others: dict[str, list[str]] = {}
    for entry in entries:
        kind, _, name = entry.rpartition(":")
        if kind == "logo" and "/" in name:
            logo, _, key = name.partition("/")
            others.setdefault(f"{template_id}-logo-{logo}", []).append(key)
            continue
        typed[kind or "video"].append(name)
    return Template(template_id, typed["video"], typed["audio"], typed["snapshot"], typed["logo"], others)


DIRECT_URL_KEYS = ("FileName", "SpaceName", "BucketName")


def space_bucket(space: str) -> str:
    """The storage bucket bound to ``space`` (what ListSpace names; the bucket of every StoreUri)."""
    return f"tos-emulator-{space}"


def check_direct_url(ctx: Ctx, direct: dict[str, Any]) -> None:
    extra = sorted(set(direct) - set(DIRECT_URL_KEYS))
    if extra:
        raise invalid(f"DirectUrl.{extra[0]} is not a parameter of DirectUrl (known: {list(DIRECT_URL_KEYS)}).")
    file_name = direct.get("FileName")
    if file_name is None or file_name == "":
        raise ApiError("MissingParameter", 400, "The request is missing DirectUrl.FileName parameter.")
    if not isinstance(file_name, str) or file_name.startswith("/") or "://" in file_name or "\\" in file_name or any(
        part in ("", ".", "..") for part in file_name.split("/")
    ):
        raise invalid("DirectUrl.FileName must be the FileName of a file in the space (a relative object key).")
    for key in ("SpaceName", "BucketName"):
        if key in direct and (not isinstance(direct[key], str) or not direct[key]):
            raise invalid(f"DirectUrl.{key} must be a non-empty string.")
    space = direct.get("SpaceName")
    if space is not None and space not in ctx.config.spaces:
        raise not_found(f"The space {space} does not exist.")
    bucket = direct.get("BucketName")
    if bucket is not None:
        owners = [space] if space else ctx.config.spaces
        if not any(bucket == space_bucket(s) for s in owners):
            raise invalid(f"DirectUrl.BucketName {bucket} is not the bucket of "
                          f"{'space ' + space if space else 'any space'}.")


def match_override(items: list[dict[str, Any]], template_id: str) -> dict[str, Any] | None:
    """The first override item that names ``template_id`` (or All)."""
    for item in items:
        ids = item.get("TemplateId")
        ids = [ids] if isinstance(ids, str) else ids or []
        if "All" in ids or template_id in ids:
            return item
    return None


def _check_path(value: Any, where: str, variables: set[str]) -> None:
    if not isinstance(value, str) or not value:
        raise invalid(f"{where} must be a non-empty string.")
    if len(value) > 1024 or value.startswith("/") or ".." in value or "//" in value:
        raise invalid(f"{where} must be a relative path of at most 1024 characters without '..' or '//'.")
    unknown = sorted(set(VARIABLE.findall(value)) - variables)
    if unknown:
        raise invalid(f"{where} uses the unknown variable {{{{{unknown[0]}}}}} (known: {sorted(variables)}).")
    if not _PATH_CHARS.match(VARIABLE.sub("", value)):
        raise invalid(f"{where} may hold only letters, digits, - _ . / and variables.")


def _check_int(item: dict[str, Any], key: str, where: str, lo: int = 0, hi: int | None = None) -> None:
    value = item.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        raise invalid(f"{where}.{key} must be an integer in [{lo}, {hi if hi is not None else 'inf'}].")


def _check_clip(clip: Any, where: str) -> None:
    if not isinstance(clip, dict) or set(clip) - {"StartTime", "EndTime"}:
        raise invalid(f"{where} must be an object with StartTime and EndTime (ms).")
    _check_int(clip, "StartTime", where)
    _check_int(clip, "EndTime", where)
    start, end = clip.get("StartTime") or 0, clip.get("EndTime") or 0
    if end and end <= start:
        raise invalid(f"{where}.EndTime ({end}) must be after StartTime ({start}); 0 means the end of the video.")


def _check_item(kind: str, item: dict[str, Any], where: str, template: Template) -> None:
    extra = sorted(set(item) - _ITEM_KEYS[kind])
    if extra:
        raise invalid(f"{where}.{extra[0]} is not a parameter of {kind} (known: {sorted(_ITEM_KEYS[kind])}).")
    ids = item.get("TemplateId")
    if kind == "Logo":
        if not isinstance(ids, str) or not ids:
            raise ApiError("MissingParameter", 400, f"The request is missing {where}.TemplateId parameter.")
        ids = [ids]
    elif not isinstance(ids, list) or not ids or not all(isinstance(t, str) and t for t in ids):
        raise invalid(f"{where}.TemplateId must be a non-empty array of template ids (or All).")
    known = template.ids(kind)
    for tid in ids:
        if tid != "All" and tid not in known:
            raise invalid(f"{where}.TemplateId {tid} is not a {kind} template of workflow {template.template_id}.")
    if "Clip" in item:
        _check_clip(item["Clip"], f"{where}.Clip")
    variables = SNAPSHOT_PATHVARIABLES if kind == "Snapshot" else PATHVARIABLES
    for key in ("FileName", "FileIndex"):
        if key in item:
            _check_path(item[key], f"{where}.{key}", variables)
    if kind == "Logo":
        variables_ = item.get("Vars") or {}
        if not isinstance(variables_, dict) or not all(isinstance(v, str) for v in variables_.values()):
            raise invalid(f"{where}.Vars must be an object of string values.")
        allowed = sorted({k for ks in template.logos.values() for k in ks}) if ids[0] == "All" else \
            template.logo_vars_of(ids[0])
        for key in variables_:
            if key not in allowed:
                raise invalid(f"{where}.Vars.{key}: watermark template {ids[0]} of workflow {template.template_id} "
                              f"has no variable {key!r} (it has: {allowed}).")
    if kind == "Snapshot":
        for key in ("Width", "Height"):
            _check_int(item, key, where, 0, 4096)
        _check_int(item, "OffsetTime", where)
        for key in ("SampleOffsets", "OffsetTimeList"):
            values = item.get(key)
            if values is not None and (not isinstance(values, list) or not all(
                    isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in values)):
                raise invalid(f"{where}.{key} must be an array of non-negative numbers.")
    if kind == "TranscodeVideo" and "LogoTemplateId" in item and item["LogoTemplateId"] not in template.ids("Logo"):
        raise invalid(f"{where}.LogoTemplateId {item['LogoTemplateId']} is not a watermark template of workflow "
                      f"{template.template_id}.")


def validate_overrides(workflow_input: dict[str, Any] | None, template: Template) -> dict[str, list[dict[str, Any]]]:
    """Input.OverrideParams checked as the vendor would, before anything is billed."""
    params = (workflow_input or {}).get("OverrideParams")
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise invalid("Input.OverrideParams must be an object.")
    unknown = sorted(set(params) - set(OVERRIDE_KINDS))
    if unknown:
        raise invalid(f"Input.OverrideParams.{unknown[0]} is not a supported override (known: {list(OVERRIDE_KINDS)}).")
    for kind, items in params.items():
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise invalid(f"Input.OverrideParams.{kind} must be an array of objects.")
        for n, item in enumerate(items):
            _check_item(kind, item, f"Input.OverrideParams.{kind}[{n}]", template)
    return params
