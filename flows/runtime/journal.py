"""Paid submits that are never paid twice.

Two layers protect a paid submission:
1. The submit task is cached by the request fingerprint (Prefect cache, persisted results, serializable
   isolation with a lock), so re-runs and concurrent workers reuse the first job.
2. A journal record is written *before* the call and completed after it. It closes the window Prefect's cache
   cannot: the provider accepted the job but the answer (or the process) was lost before the result was
   persisted. A later attempt that finds an unfinished record reconciles (idempotency token, provider listing)
   or stops with the fingerprint instead of paying again.
The journal lives in Prefect's default result storage (local disk, or the bucket in production).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from prefect.logging import get_run_logger
from prefect.results import aget_default_result_storage
from pydantic import BaseModel

from flows.runtime.budget import spend
from providers.errors import OutcomeUnknownError, ProviderError

JOURNAL_PREFIX = "clipflow-journal"


def fingerprint(provider: str, action: str, request: Any, account: str = "") -> str:
    """Stable sha256 of what is being bought: provider, action, canonical request JSON and the account."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(f"{provider}\n{action}\n{account}\n{canonical}".encode()).hexdigest()


class SubmittedJob(BaseModel):
    """A provider job that has been paid for: the handle every later step (and every re-run) waits on."""

    provider: str
    action: str
    job_id: str
    fingerprint: str
    submitted_at: dt.datetime
    reused: bool = False


class JournalRecord(BaseModel):
    state: Literal["submitting", "submitted", "refused"]
    provider: str
    action: str
    fingerprint: str
    job_id: str | None = None
    at: dt.datetime


class DuplicateSubmitRiskError(ProviderError):
    """An earlier attempt of this exact paid request may have been accepted; refusing to pay a second time."""


class Journal:
    def __init__(self, storage: Any) -> None:
        self._storage = storage

    @classmethod
    async def default(cls) -> Journal:
        return cls(await aget_default_result_storage())

    @staticmethod
    def _path(fp: str) -> str:
        return f"{JOURNAL_PREFIX}/{fp[:2]}/{fp}.json"

    async def read(self, fp: str) -> JournalRecord | None:
        """The record, or None when there is none. Any other failure propagates: guessing "no record" while the
        storage is down could pay twice."""
        try:
            reader = getattr(self._storage, "aread_path", None) or self._storage.read_path
            raw = await reader(self._path(fp))
        except Exception as exc:
            if _is_missing(exc):
                return None
            raise
        return JournalRecord.model_validate_json(raw)

    async def write(self, record: JournalRecord) -> None:
        writer = getattr(self._storage, "awrite_path", None) or self._storage.write_path
        await writer(self._path(record.fingerprint), record.model_dump_json().encode())

    async def forget(self, fp: str) -> None:
        """Drop an intent whose request was definitely refused (nothing billed)."""
        await self.write(
            JournalRecord(state="refused", provider="-", action="-", fingerprint=fp, at=_now())
        )


def _is_missing(exc: Exception) -> bool:
    """Each storage says "no such object" its own way: LocalFileSystem a ValueError, S3 a 404 ClientError."""
    if isinstance(exc, FileNotFoundError) or (isinstance(exc, ValueError) and "does not exist" in str(exc)):
        return True
    error = getattr(exc, "response", {}).get("Error", {}) if hasattr(exc, "response") else {}
    return str(error.get("Code")) in ("NoSuchKey", "404", "NotFound")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


async def submit_once(
    *,
    provider: str,
    action: str,
    fp: str,
    submit: Callable[[], Awaitable[str]],
    safe_to_repeat: bool = False,
    reconcile: Callable[[], Awaitable[str | None]] | None = None,
    journal: Journal | None = None,
    before_paid_call: Callable[[], Awaitable[None]] | None = None,
) -> SubmittedJob:
    """Submit a paid job at most once per fingerprint.

    ``safe_to_repeat``: the provider deduplicates (e.g. StartWorkflow with a ClientToken derived from ``fp``).
    ``reconcile``: finds a job an earlier, answer-lost attempt created (returns its id, or None).
    ``before_paid_call``: budget guard, run right before money is spent.
    """
    journal = journal or await Journal.default()
    logger = get_run_logger()
    record = await journal.read(fp)
    if record and record.job_id:
        logger.info("Reusing %s %s job %s (fingerprint %s)", provider, action, record.job_id, fp[:12])
        return SubmittedJob(
            provider=provider, action=action, job_id=record.job_id, fingerprint=fp, submitted_at=record.at, reused=True
        )
    if record and record.state == "submitting" and not safe_to_repeat:
        found = await reconcile() if reconcile else None
        if found:
            logger.warning("Recovered %s %s job %s after a lost answer", provider, action, found)
            await journal.write(record.model_copy(update={"state": "submitted", "job_id": found}))
            return SubmittedJob(
                provider=provider, action=action, job_id=found, fingerprint=fp, submitted_at=record.at, reused=True
            )
        raise DuplicateSubmitRiskError(
            f"an earlier {action} of this exact request (fingerprint {fp}) may have been accepted at "
            f"{record.at.isoformat()} but its answer was lost; not submitting again. Check the provider console; "
            f"to pay again deliberately, change the request (e.g. the seed) or clear the journal record "
            f"{Journal._path(fp)}",
            provider=provider,
            action=action,
            retryable=False,
        )
    spend(provider, action)  # the batch budget, if any: checked only when money is about to be spent
    if before_paid_call:
        await before_paid_call()
    await journal.write(
        JournalRecord(state="submitting", provider=provider, action=action, fingerprint=fp, at=_now())
    )
    try:
        job_id = await submit()
    except OutcomeUnknownError as exc:
        exc.message = f"{exc.message} (request fingerprint {fp}; the journal keeps it so it is not paid twice)"
        exc.args = (exc.message,)
        raise
    except ProviderError:
        await journal.forget(fp)  # a definite refusal: nothing was bought
        raise
    await journal.write(
        JournalRecord(state="submitted", provider=provider, action=action, fingerprint=fp, job_id=job_id, at=_now())
    )
    logger.info("Submitted %s %s job %s (fingerprint %s)", provider, action, job_id, fp[:12])
    return SubmittedJob(provider=provider, action=action, job_id=job_id, fingerprint=fp, submitted_at=_now())
