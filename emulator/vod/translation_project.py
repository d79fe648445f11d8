"""State of one emulated AI translation project: the staged run (pauses at SuspensionStageList stages), the
utterances a person edits, and re-exports. Progress is computed lazily from timestamps, like every emulator job.

A run is ``processing_s`` of work. Recognition is done at 25 % of it, translation at 50 %; a project submitted
with a suspension stage stops there (``ProcessSuspended``) until ContinueAITranslationWorkflow, which resumes the
remaining work from that point. RefreshAITranslationProject on a finished project is an export of its own
(``InExporting`` -> ``ExportSucceed`` | ``ExportFailed``) that produces a new output Vid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emulator.state import VodMedia

STAGE_DONE_AT = {"SubtitleRecognition": 0.25, "SubtitleTranslation": 0.5}  # fraction of the run
STAGE_ORDER = ("SubtitleRecognition", "SubtitleTranslation")
FINISHED = ("ProcessSucceed", "ExportSucceed", "ExportFailed")  # a finished project can be edited and re-exported
EXPORT_SHARE = 0.25  # a re-export takes this share of a full run


@dataclass
class Export:
    started: float
    duration_s: float
    fails: bool

    @property
    def end_time(self) -> float:
        return self.started + self.duration_s

    def status(self, now: float) -> str:
        if now < self.end_time:
            return "InExporting"
        return "ExportFailed" if self.fails else "ExportSucceed"


@dataclass
class Outputs:
    """What one finished run or export produced: an output Vid, files by name (media-store keys), the exported
    subtitles (a snapshot: later edits show only after the next export) and when they became available."""

    vid: str
    files: dict[str, str]
    available_at: float
    version: str


@dataclass
class TranslationProject:
    project_id: str
    version: str
    workflow_id: str
    ak: str
    space: str
    input: VodMedia | None
    input_vid: str
    title: str
    source_language: str
    target_language: str
    types: list[str]
    recognition: str
    created: float
    processing_s: float
    fails: bool
    stops: list[str] = field(default_factory=list)  # suspension stages still ahead, in workflow order
    run_from: float = 0.0  # emulated time the current run segment began (submit or the last Continue)
    done_before: float = 0.0  # fraction of the run done at ``run_from``
    export: Export | None = None
    outputs: list[Outputs] = field(default_factory=list)  # one per finished run / successful export
    updated: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)  # Speakers, utterances, tracks, clips, blueprints

    def __post_init__(self) -> None:
        self.run_from = self.run_from or self.created
        self.updated = self.updated or self.created
        self.stops = [s for s in STAGE_ORDER if s in self.stops]

    # --- progress ------------------------------------------------------------------------------------------

    def _raw_progress(self, now: float) -> float:
        if self.processing_s <= 0:
            return 1.0
        return self.done_before + max(0.0, now - self.run_from) / self.processing_s

    def progress(self, now: float) -> float:
        """Fraction of the run done, held at the next suspension stage."""
        done = min(1.0, self._raw_progress(now))
        if self.stops:
            done = min(done, STAGE_DONE_AT[self.stops[0]])
        return done

    def reached(self, stage: str, now: float) -> bool:
        return self.progress(now) >= STAGE_DONE_AT[stage]

    @property
    def end_time(self) -> float | None:
        """When the current run finishes; None while a suspension stage is still ahead."""
        if self.stops:
            return None
        if self.processing_s <= 0:
            return self.run_from
        return self.run_from + (1.0 - self.done_before) * self.processing_s

    def process_status(self, now: float) -> str:
        if self.stops and self._raw_progress(now) >= STAGE_DONE_AT[self.stops[0]]:
            return "ProcessSuspended"
        end = self.end_time
        if end is None or now < end:
            return "InProcessing"
        return "ProcessFailed" if self.fails else "ProcessSucceed"

    def status(self, now: float) -> str:
        return self.export.status(now) if self.export is not None else self.process_status(now)

    def suspended_at(self, now: float) -> str | None:
        return self.stops[0] if self.process_status(now) == "ProcessSuspended" else None

    def resume(self, now: float) -> None:
        """Continue from the stage the project sits at."""
        stage = self.stops.pop(0)
        self.done_before = STAGE_DONE_AT[stage]
        self.run_from = now
        self.updated = now

    def visible_outputs(self, now: float) -> Outputs | None:
        """The latest outputs already produced (during a re-export the previous ones stay visible)."""
        ready = [o for o in self.outputs if o.available_at <= now]
        return ready[-1] if ready else None

    def updated_at(self, now: float) -> float:
        ends = [self.updated]
        if self.export is not None:
            ends.append(min(now, self.export.end_time))
        elif self.end_time is not None:
            ends.append(min(now, self.end_time))
        if self.stops and self.process_status(now) == "ProcessSuspended" and self.processing_s > 0:
            ends.append(self.run_from + (STAGE_DONE_AT[self.stops[0]] - self.done_before) * self.processing_s)
        return max(ends)

    # --- utterances ----------------------------------------------------------------------------------------

    def utterances(self, side: str) -> list[dict[str, Any]]:
        return self.extras["SourceUtterances" if side == "source" else "TargetUtterances"]

    def clips(self, side: str) -> list[dict[str, Any]]:
        return self.extras["SourceClips" if side == "source" else "TargetClips"]

    def clip_of(self, utterance: dict[str, Any], side: str) -> dict[str, Any] | None:
        return next((c for c in self.clips(side) if c["Id"] == utterance["ClipId"]), None)

    def find_utterance(self, utterance_id: str) -> tuple[str, dict[str, Any]] | None:
        for side in ("source", "target"):
            for utterance in self.utterances(side):
                if utterance["Id"] == utterance_id:
                    return side, utterance
        return None

    def lines(self, side: str) -> list[tuple[int, int, str]]:
        """(start ms, end ms, text) of one side, in order."""
        out = []
        for utterance in self.utterances(side):
            clip = self.clip_of(utterance, side) or {"Trim": {"Start": 0, "End": 0}}
            out.append((int(clip["Trim"]["Start"]), int(clip["Trim"]["End"]), str(utterance["Text"])))
        return out
