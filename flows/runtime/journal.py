"""The submission journal: what clipflow has bought, or may have bought, per request fingerprint.

A record is written *right before* a paid request leaves (after its quota slot is held: a process killed while
queueing leaves nothing behind) and completed when the answer arrives. It closes the window Prefect's cache
cannot: the provider accepted the job but the answer, or the process, was lost before the result was persisted.

States of a record:
- ``sent``: the request left; no answer yet. Found by a later attempt, it means "outcome unknown": the engine
  reconciles it (idempotency token, provider listing) or hands it to an operator.
- ``submitted``: the provider answered with a job id (or an operator attached the id found in the console).
- ``refused``: the provider definitely refused (nothing created, nothing billed): a later attempt may send.
- ``released``: an operator decided to pay again for this request: the next attempt sends a new one.

The journal lives in Prefect's default result storage (local disk on one machine, the bucket in production), so
every worker sees it. ``clipflow journal`` lists, attaches and releases records.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from typing import Any, Literal

from prefect.results import aget_default_result_storage
from pydantic import BaseModel, Field

from providers.errors import ProviderError

JOURNAL_PREFIX = "clipflow-journal"

RecordState = Literal["sent", "submitted", "refused", "released"]


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
    detail: dict[str, Any] = Field(default_factory=dict, description="Other ids the submit answered with.")


class JournalRecord(BaseModel):
    state: RecordState
    provider: str
    action: str
    fingerprint: str
    job_id: str | None = None
    at: dt.datetime = Field(description="When the request left (sent) or was answered.")
    sent_at: dt.datetime | None = Field(None, description="When the request that may have been accepted left.")
    look_for: str = Field("", description="What to search for in the provider's console (never a secret).")
    detail: dict[str, Any] = Field(default_factory=dict)
    note: str = ""

    @property
    def unresolved(self) -> bool:
        return self.state == "sent" and not self.job_id


class DuplicateSubmitRiskError(ProviderError):
    """An earlier attempt of this exact paid request may have been accepted and its answer was lost, and the
    provider offers no way to find the job: refusing to pay a second time. An operator resolves it with
    ``clipflow journal attach`` (the job id found in the console) or ``clipflow journal release`` (pay again)."""

    def __init__(self, message: str, *, record: JournalRecord | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.record = record



class Journal:
    def __init__(self, storage: Any) -> None:
        self._storage = storage

    @classmethod
    async def default(cls) -> Journal:
        from flows.runtime.resources import per_run

        # the result storage block, resolved once per flow run (a server round trip per paid submit otherwise)
        return cls(await per_run("result-storage", "", aget_default_result_storage))

    @property
    def storage(self) -> Any:
        return self._storage

    @staticmethod
    def path(fp: str) -> str:
        return f"{JOURNAL_PREFIX}/{fp[:2]}/{fp}.json"

    async def read(self, fp: str) -> JournalRecord | None:
        """The record, or None when there is none. Any other failure propagates: guessing "no record" while the
        storage is down could pay twice."""
        try:
            reader = getattr(self._storage, "aread_path", None) or self._storage.read_path
            raw = await reader(self.path(fp))
        except Exception as exc:
            if _is_missing(exc):
                return None
            raise
        return _parse(raw)

    async def write(self, record: JournalRecord) -> None:
        writer = getattr(self._storage, "awrite_path", None) or self._storage.write_path
        await writer(self.path(record.fingerprint), record.model_dump_json().encode())

    async def scan(self) -> list[JournalRecord]:
        """Every record, for the operator CLI. Local disk and S3 buckets can be listed."""
        return await asyncio.to_thread(self._scan_sync)

    def _scan_sync(self) -> list[JournalRecord]:
        from flows.runtime import shared_files

        try:
            return [_parse(raw) for _path, raw in shared_files.scan(self._storage, JOURNAL_PREFIX)]
        except shared_files.UnlistableStorageError:
            raise TypeError(f"cannot list a journal kept in {type(self._storage).__name__}") from None


def _parse(raw: bytes) -> JournalRecord:
    data = json.loads(raw)
    if data.get("state") == "submitting":  # written by clipflow before the journal had the `sent` state
        data["state"] = "sent"
    return JournalRecord.model_validate(data)


def _is_missing(exc: Exception) -> bool:
    """Each storage says "no such object" its own way: LocalFileSystem a ValueError, S3 a 404 ClientError."""
    if isinstance(exc, FileNotFoundError) or (isinstance(exc, ValueError) and "does not exist" in str(exc)):
        return True
    error = getattr(exc, "response", {}).get("Error", {}) if hasattr(exc, "response") else {}
    return str(error.get("Code")) in ("NoSuchKey", "404", "NotFound")


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
