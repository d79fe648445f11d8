"""What each paid submit bills, written into its journal record and noted for the run that bought it.

The engine calls ``journal_detail`` when it writes a ``sent`` record (the quantities stay with the record, so
``clipflow cost`` prices the journal without asking a provider) and ``note`` for every job ``buy`` returns,
bought or reused. A run collects its notes with ``collecting()`` (a context variable: the tasks and inline
stages it awaits share the list). Video lengths are known by Vid once a stage has them (``know_length``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from providers.pricing import Billable, billables

ITEMS = {  # the line an action is in an estimate (a translation's is its language)
    "submit": "clip", "create": "clip", "CVSync2AsyncSubmitTask": "clip", "UploadMediaByUrl": "import",
    "CreateProject": "edit", "SubmitDirectEditTaskAsync": "render", "StartWorkflow": "transcode",
}
STAGES = {
    "submit": "generate", "create": "generate", "CVSync2AsyncSubmitTask": "generate",
    "UploadMediaByUrl": "import", "CreateProject": "edit", "SubmitDirectEditTaskAsync": "edit",
    "StartWorkflow": "transcode", "SubmitAITranslationWorkflow": "translate",
    "ContinueAITranslationWorkflow": "review", "RefreshAITranslationProject": "revise",
}


@dataclass(frozen=True)
class Note:
    """One paid job a run used: its stage and item, what it bills, and whether this run bought it."""

    stage: str
    item: str
    fingerprint: str
    job_id: str
    reused: bool
    items: tuple[Billable, ...]


_lengths: ContextVar[dict[str, float] | None] = ContextVar("clipflow_video_lengths", default=None)
_owner: ContextVar[dict[str, str] | None] = ContextVar("clipflow_cost_owner", default=None)
_notes: ContextVar[list[Note] | None] = ContextVar("clipflow_cost_notes", default=None)


@contextlib.contextmanager
def collecting() -> Iterator[list[Note]]:
    """Within the block every ``buy`` is noted in the yielded list (a nested block collects on its own)."""
    notes: list[Note] = []
    token_notes, token_lengths = _notes.set(notes), _lengths.set(dict(_lengths.get() or {}))
    # The run that collects owns what its stages buy (a stage running as a subflow has no deployment of its own).
    token_owner = _owner.set(_owner.get() or _run_identity())
    try:
        yield notes
    finally:
        _notes.reset(token_notes)
        _lengths.reset(token_lengths)
        _owner.reset(token_owner)


def know_length(vid: str | None, seconds: float | None) -> None:
    """The length of video ``vid``: transcodes and translations of it bill per started minute of it."""
    if not vid or seconds is None:
        return
    lengths = _lengths.get()
    if lengths is None:  # a run outside a production (translate-video): its own lengths from here on
        _lengths.set(lengths := {})
    lengths[vid] = float(seconds)


def stage_of(action: str) -> str:
    return STAGES.get(action, action)


def describe(provider: str, action: str, request: Any) -> tuple[str, str, list[Billable]]:
    """(stage, item, billables) of a provider request object as the stages build it."""
    stage = stage_of(action)
    config = getattr(request, "translation_config", None)
    item = getattr(config, "target_language", None) or ITEMS.get(action, stage)
    vid = getattr(request, "vid", None) or getattr(request, "uploader", None)
    seconds = (_lengths.get() or {}).get(vid) if isinstance(vid, str) else None
    items = billables(
        provider, action, frames=_frames(provider, request), model=getattr(request, "model", None),
        types=list(getattr(config, "translation_type_list", []) or []) or None, video_seconds=seconds,
    )
    return stage, item, items


def _frames(provider: str, request: Any) -> int | None:
    if provider != "jimeng":
        return None
    return getattr(request, "frames", None) or 121  # the vendor's default length


def journal_detail(provider: str, action: str, request: Any) -> dict[str, Any]:
    """The ``billing`` entry of a journal record: stage, item, quantities, and the run that sent it."""
    stage, item, items = describe(provider, action, request)
    return {"billing": {
        "stage": stage, "item": item, "items": [[b.key, b.unit, b.units] for b in items],
        **(_owner.get() or _run_identity()),
    }}


def _run_identity() -> dict[str, str]:
    try:
        from prefect.runtime import deployment, flow_run

        return {"flow_run": str(flow_run.id or ""), "flow": str(flow_run.flow_name or ""),
                "deployment": str(deployment.name or "")}
    except Exception:  # noqa: BLE001 - outside a run (the operator CLI, a script): nothing to name
        return {}


def note(provider: str, action: str, request: Any, job: Any) -> Any:
    """Record ``job`` (a ``SubmittedJob``) for the run collecting notes, if any; returns it unchanged."""
    notes = _notes.get()
    if notes is not None:
        billing = (job.detail or {}).get("billing") if job.reused else None
        stage, item, items = describe(provider, action, request)
        if billing and billing.get("items"):  # as recorded when it was bought
            items = [Billable(k, u, n) for k, u, n in billing["items"]]
        notes.append(Note(stage, item, job.fingerprint, job.job_id, job.reused, tuple(items)))
    return job


def current_notes() -> list[Note]:
    """The notes of the run collecting now (empty outside ``collecting``)."""
    return list(_notes.get() or [])


def in_production() -> bool:
    """Whether a production (or a batch item) collects the paid jobs here: it has estimated them already."""
    return _notes.get() is not None
