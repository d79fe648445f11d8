"""One job-state vocabulary for every provider, and the mapping from each provider's own words."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"
    # Not terminal and not running: the job waits for a person (a VOD translation project paused at a
    # ``SuspensionStageList`` stage until ContinueAITranslationWorkflow). Polling it costs nothing but time.
    PAUSED = "paused"

    @property
    def is_terminal(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.EXPIRED)


JIMENG_OK_CODE = 10000


def jimeng_state(status: str | None, code: int) -> JobState:
    """Jimeng get-result: ``done`` means finished either way; the outer ``code`` says which.

    ``not_found`` is mapped to EXPIRED: the vendor says it means "no such task or expired (12 h)", and either way
    the result can never be fetched again.
    """
    if code != JIMENG_OK_CODE:
        return JobState.FAILED
    return {
        "in_queue": JobState.QUEUED,
        "generating": JobState.RUNNING,
        "done": JobState.SUCCEEDED,
        "not_found": JobState.EXPIRED,
        "expired": JobState.EXPIRED,
    }.get(status or "", JobState.RUNNING)


def workflow_state(status: str | int | None) -> JobState:
    """VOD workflow ``Status``: "0" success, 1xxx request failures, 2xxx system failures, or a word."""
    text = str(status if status is not None else "").strip()
    if text == "0":
        return JobState.SUCCEEDED
    if text.isdigit() and 1000 <= int(text) <= 2999:
        return JobState.FAILED
    return {"PendingStart": JobState.QUEUED, "Running": JobState.RUNNING, "Terminated": JobState.FAILED}.get(
        text, JobState.RUNNING
    )


def direct_edit_state(status: str | None) -> JobState:
    return {
        "pending": JobState.QUEUED,
        "start": JobState.RUNNING,
        "success": JobState.SUCCEEDED,
        "failed_run": JobState.FAILED,
        "user_canceled": JobState.FAILED,
    }.get(status or "", JobState.RUNNING)


def translation_state(status: str | None) -> JobState:
    """``ProcessSuspended`` (not on the seed page; the vendor's own poller uses it) is a project paused for review.
    ``InExporting``/``ExportSucceed``/``ExportFailed`` are a RefreshAITranslationProject re-export."""
    return {
        "InProcessing": JobState.RUNNING,
        "ProcessSuspended": JobState.PAUSED,
        "InExporting": JobState.RUNNING,
        "ProcessSucceed": JobState.SUCCEEDED,
        "ExportSucceed": JobState.SUCCEEDED,
        "ProcessFailed": JobState.FAILED,
        "ExportFailed": JobState.FAILED,
    }.get(status or "", JobState.RUNNING)


def upload_state(state: str | None) -> JobState:
    return {
        "initial": JobState.QUEUED,
        "processing": JobState.RUNNING,
        "success": JobState.SUCCEEDED,
        "failed": JobState.FAILED,
    }.get(state or "", JobState.RUNNING)


def gateway_state(status: str | None) -> JobState:
    """Gateways disagree on words: ``completed``/``success`` are done, ``failed``/``error`` failed,
    ``pending`` queued, and anything else (``processing``, new words) still running."""
    text = (status or "").strip().lower()
    if text in ("completed", "success", "succeeded"):
        return JobState.SUCCEEDED
    if text in ("failed", "error", "failure"):
        return JobState.FAILED
    if text in ("pending", "queued"):
        return JobState.QUEUED
    return JobState.RUNNING
