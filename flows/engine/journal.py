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

Every state change that allows a send is a write only one process can win: the ``sent`` record is created
only if absent, and ``refused``/``released``/a stale ``sent`` are taken over by compare-and-swap. That write,
not any lock, decides who pays. A ``sent`` record names its owner and the time by which the owner stops waiting
for the answer (``answer_by``); until then (or until the owner is seen dead) others wait for its outcome.

The journal lives in Prefect's default result storage (local disk on one machine, the bucket in production), so
every worker sees it. ``clipflow journal`` lists, attaches and releases records.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import uuid
from typing import Any, Literal

from prefect.results import aget_default_result_storage
from pydantic import BaseModel, Field, ValidationError

from flows.runtime import shared_files
from flows.runtime.settings import settings, variable
from providers.errors import ProviderError

logger = logging.getLogger("clipflow.journal")

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
    owner: dict[str, Any] = Field(
        default_factory=dict, description="The process that sent it (host, pid, start): a dead one's send is over."
    )
    answer_by: dt.datetime | None = Field(
        None, description="The sender gives up waiting for the answer by then: after it the send is over, whoever sent it."
    )

    @property
    def unresolved(self) -> bool:
        return self.state == "sent" and not self.job_id

    @property
    def bought(self) -> bool:
        return self.state == "submitted" and bool(self.job_id)


SKEW_MARGIN_SECONDS = 30.0  # two machines' clocks may disagree this much about a send's answer_by


def send_in_flight(record: JournalRecord) -> bool:
    """Whether the process that sent ``record`` may still get its answer and record it: then nobody else may
    reconcile, re-send or release it. A record without ``answer_by`` (its sender gave up waiting, an older
    clipflow's, an unreadable one) belongs to a send that is over; so does one whose owner is seen dead."""
    from flows.runtime.processes import Liveness, ProcessIdentity, process_state

    if record.state != "sent" or record.answer_by is None:
        return False
    owner = ProcessIdentity.from_json(record.owner)
    if owner is not None and process_state(owner) is Liveness.DEAD:
        return False
    return now() < record.answer_by + dt.timedelta(seconds=SKEW_MARGIN_SECONDS)


class DuplicateSubmitRiskError(ProviderError):
    """An earlier attempt of this exact paid request may have been accepted and its answer was lost, and the
    provider offers no way to find the job: refusing to pay a second time. An operator resolves it with
    ``clipflow journal attach`` (the job id found in the console) or ``clipflow journal release`` (pay again)."""

    def __init__(self, message: str, *, record: JournalRecord | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.record = record



class Journal:
    """Records in the result storage, each state change a write only one process can win.

    ``create`` is a create-if-absent and ``replace`` a compare-and-swap on the version read (see
    ``shared_files``): of two processes about to send the same request, exactly one writes its ``sent`` record;
    the other re-reads and waits on the winner's job. A storage that cannot write conditionally (neither local
    disk nor S3) is refused unless ``CLIPFLOW_JOURNAL_SINGLE_PROCESS`` accepts plain writes, and one that
    silently ignores the conditions is caught by ``verify_conditional_writes`` (setup and preflight).
    """

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
        storage is down could pay twice. A record that cannot be parsed reads as an unresolved ``sent``."""
        record, _version = await self.read_versioned(fp)
        return record

    async def read_versioned(self, fp: str) -> tuple[JournalRecord | None, str | None]:
        path = self.path(fp)
        try:
            raw, version = await asyncio.to_thread(shared_files.read_versioned, self._storage, path)
        except shared_files.UnconditionalStorageError:
            raw, version = await self._plain_read(path), UNVERSIONED
        if raw is None:
            return None, None
        return _parse(raw, fp, path), version

    async def create(self, record: JournalRecord) -> str | None:
        """Write ``record`` only if there is none for its fingerprint. Of racing writers exactly one gets the
        new version (truthy); the others get None."""
        content = record.model_dump_json().encode()
        try:
            return await asyncio.to_thread(shared_files.create_bytes, self._storage, self.path(record.fingerprint), content)
        except shared_files.UnconditionalStorageError:
            _single_process_only(self._storage)
            if await self._plain_read(self.path(record.fingerprint)) is not None:
                return None
            await self._plain_write(self.path(record.fingerprint), content)
            return UNVERSIONED

    async def replace(self, record: JournalRecord, version: str | None) -> str | None:
        """Write ``record`` only if the stored one is still at ``version`` (from ``read_versioned``): the new
        version, or None when it changed meanwhile."""
        content = record.model_dump_json().encode()
        if version in (None, UNVERSIONED):
            _single_process_only(self._storage)
            await self._plain_write(self.path(record.fingerprint), content)
            return UNVERSIONED
        return await asyncio.to_thread(
            shared_files.replace_bytes, self._storage, self.path(record.fingerprint), content, version
        )

    async def write(self, record: JournalRecord) -> None:
        """Unconditional (and atomic): for a state only this writer can know, e.g. the job id it was answered."""
        content = record.model_dump_json().encode()
        try:
            await asyncio.to_thread(shared_files.write_bytes, self._storage, self.path(record.fingerprint), content)
        except shared_files.UnconditionalStorageError:
            await self._plain_write(self.path(record.fingerprint), content)

    async def _plain_read(self, path: str) -> bytes | None:
        try:
            reader = getattr(self._storage, "aread_path", None) or self._storage.read_path
            return await reader(path)
        except Exception as exc:
            if _is_missing(exc):
                return None
            raise

    async def _plain_write(self, path: str, content: bytes) -> None:
        writer = getattr(self._storage, "awrite_path", None) or self._storage.write_path
        await writer(path, content)

    async def scan(self) -> list[JournalRecord]:
        """Every record, for the operator CLI. Local disk and S3 buckets can be listed."""
        return await asyncio.to_thread(self._scan_sync)

    def _scan_sync(self) -> list[JournalRecord]:
        try:
            return [
                _parse(raw, path.rsplit("/", 1)[-1].removesuffix(".json"), path)
                for path, raw in shared_files.scan(self._storage, JOURNAL_PREFIX)
            ]
        except shared_files.UnlistableStorageError:
            raise TypeError(f"cannot list a journal kept in {type(self._storage).__name__}") from None


class UnconditionalJournalError(RuntimeError):
    """The journal's storage cannot make a write only one process wins, so it cannot keep two workers from
    paying for the same request."""


def _single_process_only(storage: Any) -> None:
    if not settings().journal_single_process:
        raise UnconditionalJournalError(
            f"the result storage {_storage_name(storage)} cannot write conditionally (only local disk and S3 can), "
            "so the journal cannot decide which worker pays; use one of those, or set "
            f"{variable('journal_single_process')}=true if only one process ever runs clipflow flows"
        )


def _storage_name(storage: Any) -> str:
    name = getattr(storage, "bucket_name", None) or getattr(storage, "basepath", None) or ""
    return f"{type(storage).__name__}({name})" if name else type(storage).__name__


async def verify_conditional_writes(storage: Any) -> None:
    """Write a probe record twice with create-if-absent and once with a stale version: a storage that lets the
    second create or the stale swap through ignores the conditions (some S3-compatible servers do) and would
    let two workers pay for one request. Raises ``UnconditionalJournalError`` naming the storage; accepted
    only with ``CLIPFLOW_JOURNAL_SINGLE_PROCESS``."""
    if settings().journal_single_process:
        return
    path = f"{JOURNAL_PREFIX}-probe/{uuid.uuid4().hex}.json"

    def probe() -> bool:
        try:
            if not shared_files.create_bytes(storage, path, b"{}"):
                return False
            if shared_files.create_bytes(storage, path, b"{\"second\": true}"):
                return False
            _raw, version = shared_files.read_versioned(storage, path)
            stale = (version or "") + "0"
            return not shared_files.replace_bytes(storage, path, b"{\"stale\": true}", stale)
        finally:
            shared_files.delete(storage, path)

    try:
        honoured = await asyncio.to_thread(probe)
    except (shared_files.UnconditionalStorageError, shared_files.UnlistableStorageError):
        _single_process_only(storage)
        return
    if not honoured:
        raise UnconditionalJournalError(
            f"the result storage {_storage_name(storage)} ignores conditional writes (If-None-Match / If-Match): "
            "two workers could both pay for one request. Use storage that honours them, or set "
            f"{variable('journal_single_process')}=true if only one process ever runs clipflow flows"
        )


def _parse(raw: bytes, fp: str = "", path: str = "") -> JournalRecord:
    """A record; one that cannot be parsed (a torn write of an older clipflow, a disk fault) is an unresolved
    ``sent``: the request may have left, so it is reconciled or handed to an operator, never taken as absent."""
    try:
        data = json.loads(raw)
        if data.get("state") == "submitting":  # written by clipflow before the journal had the `sent` state
            data["state"] = "sent"
        return JournalRecord.model_validate(data)
    except (ValueError, AttributeError, ValidationError) as exc:
        logger.warning("Journal record %s cannot be read (%s): treating it as a request whose outcome is unknown",
                       path or fp, type(exc).__name__)
        return JournalRecord(
            state="sent", provider="", action="", fingerprint=fp, at=UNKNOWN_TIME,
            note=f"unreadable record at {path or fp}: treated as a request whose outcome is unknown",
        )


UNKNOWN_TIME = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
UNVERSIONED = "unversioned"  # a storage without conditional writes, accepted in single-process mode


def _is_missing(exc: Exception) -> bool:
    """Each storage says "no such object" its own way: LocalFileSystem a ValueError, S3 a 404 ClientError."""
    if isinstance(exc, FileNotFoundError) or (isinstance(exc, ValueError) and "does not exist" in str(exc)):
        return True
    error = getattr(exc, "response", {}).get("Error", {}) if hasattr(exc, "response") else {}
    return str(error.get("Code")) in ("NoSuchKey", "404", "NotFound")


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
