"""The price table and what each paid action bills, shared by the flows and the emulator (no Prefect here).

A price is per billable unit: a generated second (Jimeng), a clip (gateway models), a started minute of video
(render, transcode, each translation type) or a call. ``None`` means nobody knows the price: an amount built
on it is unknown too, never 0. Video minutes are counted per job as started minutes (``ceil(seconds / 60)``, at
least 1): an estimate never comes out under the bill for a short clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import BaseModel, Field

TRANSLATION_TYPES = ("SubtitleTranslation", "VoiceTranslation", "FacialTranslation")


class PriceTable(BaseModel):
    """Unit prices of every paid action; ``None`` = unknown (set it in the ``clipflow-prices`` block)."""

    currency: str = Field("CNY", min_length=1, max_length=8, description="Currency of every price, e.g. CNY.")
    source: str = Field(
        "", max_length=200, description="Where these prices come from (your price list and its date); shown with "
        "every estimate.",
    )
    jimeng_per_second: float | None = Field(None, ge=0, description="Jimeng 3.0 Pro, per generated second.")
    gateway_per_clip: dict[str, float | None] = Field(
        default_factory=dict, description="Gateway model -> price per generated clip (a model not listed: unknown)."
    )
    import_per_call: float | None = Field(None, ge=0, description="VOD UploadMediaByUrl, per call.")
    edit_project_per_call: float | None = Field(None, ge=0, description="VOD CreateProject, per call.")
    render_per_minute: float | None = Field(None, ge=0, description="VOD direct-edit render, per started minute.")
    transcode_per_minute: float | None = Field(
        None, ge=0, description="VOD StartWorkflow (the template's renditions together), per started minute of video."
    )
    translation_per_minute: dict[str, float | None] = Field(
        default_factory=dict,
        description="VOD AI translation type (SubtitleTranslation, VoiceTranslation, FacialTranslation) -> price "
        "per started minute; a project with several types pays each.",
    )
    continue_per_call: float | None = Field(None, ge=0, description="VOD ContinueAITranslationWorkflow, per call.")
    refresh_per_call: float | None = Field(None, ge=0, description="VOD RefreshAITranslationProject, per call.")

    def price(self, key: str) -> float | None:
        """The unit price of a billable ``key`` (see ``Billable.key``), or None when unknown."""
        kind, _, name = key.partition(":")
        if kind == "gateway":
            return self.gateway_per_clip.get(name)
        if kind == "translation":
            return self.translation_per_minute.get(name)
        return getattr(self, _FIELDS[kind]) if kind in _FIELDS else None


_FIELDS = {
    "jimeng": "jimeng_per_second", "import": "import_per_call", "edit_project": "edit_project_per_call",
    "render": "render_per_minute", "transcode": "transcode_per_minute", "continue": "continue_per_call",
    "refresh": "refresh_per_call",
}

# Nothing in the vendors' pages reachable when this was written gives a number (docs/configuration.md#prices).
DEFAULT_PRICES = PriceTable()


@dataclass(frozen=True)
class Billable:
    """One billed quantity of a paid action: ``key`` names its price, ``units`` how many (None: unknown)."""

    key: str
    unit: str  # second | clip | minute | call
    units: float | None


def started_minutes(seconds: float | None) -> float | None:
    if seconds is None:
        return None
    return float(max(1, math.ceil(seconds / 60)))


GATEWAY_CLIP_SECONDS = 20.0  # the gateway models' clips are at most 20 s: one started minute downstream


def jimeng_seconds(frames: int | None) -> float | None:
    """Jimeng 3.0 Pro's length: 121 frames = 5 s, 241 = 10 s (24 fps plus the first frame)."""
    return None if frames is None else float(round((int(frames) - 1) / 24))


def billables(
    provider: str, action: str, *, frames: int | None = None, model: str | None = None,
    types: list[str] | None = None, video_seconds: float | None = None,
) -> list[Billable]:
    """What ``provider:action`` bills. Unknown actions bill nothing (status reads and other free calls)."""
    if provider == "jimeng":
        return [Billable("jimeng", "second", jimeng_seconds(frames))]
    if provider == "gateway":
        return [Billable(f"gateway:{model or ''}", "clip", 1.0)]
    minutes = started_minutes(video_seconds)
    per_action = {
        "UploadMediaByUrl": [Billable("import", "call", 1.0)],
        "CreateProject": [Billable("edit_project", "call", 1.0)],
        "SubmitDirectEditTaskAsync": [Billable("render", "minute", minutes)],
        "StartWorkflow": [Billable("transcode", "minute", minutes)],
        "SubmitAITranslationWorkflow": [
            Billable(f"translation:{kind}", "minute", minutes) for kind in (types or ["SubtitleTranslation"])
        ],
        "ContinueAITranslationWorkflow": [Billable("continue", "call", 1.0)],
        "RefreshAITranslationProject": [Billable("refresh", "call", 1.0)],
    }
    return per_action.get(action, []) if provider == "vod" else []


def amount(table: PriceTable, items: list[Billable]) -> float | None:
    """The price of ``items`` together; None as soon as one price or quantity is unknown."""
    total = 0.0
    for item in items:
        price = table.price(item.key)
        if price is None or item.units is None:
            return None
        total += price * item.units
    return round(total, 6)
