"""The audit trail of operator actions on the journal: who changed which record, when, and from what to what.

An entry is one small JSON object of its own, kept beside the journal in the same storage (Prefect's default
result storage), at ``clipflow-journal-audit/<YYYY-MM-DD>/<timestamp>-<fingerprint prefix>-<action>-<nonce>.json``.
One object per action means appending never races and never rewrites what is there: entries are created
(create-if-absent where the storage can), never replaced. ``clipflow journal audit`` lists them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import getpass
import json
import logging
import socket
import uuid
from typing import Any

from pydantic import BaseModel, Field

from flows.runtime import shared_files

AUDIT_PREFIX = "clipflow-journal-audit"
logger = logging.getLogger(__name__)


class AuditEntry(BaseModel):
    at: dt.datetime
    action: str = Field(description="The operator command: release, attach, …")
    fingerprint: str
    provider: str
    provider_action: str = Field(description="The paid action of the record (e.g. CVSync2AsyncSubmitTask).")
    user: str = Field(description="The OS user who ran the command.")
    host: str
    previous_state: str
    new_state: str
    previous_job_id: str | None = None
    job_id: str | None = None
    forced: bool = False
    detail: dict[str, Any] = Field(default_factory=dict)


def operator() -> tuple[str, str]:
    """(OS user, host) of this process; never fails (a container may have no passwd entry for its uid)."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - getpass raises OSError/KeyError when the uid has no name
        import os

        user = f"uid:{os.getuid()}"
    return user, socket.gethostname()


def entry_path(entry: AuditEntry) -> str:
    stamp = entry.at.astimezone(dt.timezone.utc)
    return (
        f"{AUDIT_PREFIX}/{stamp:%Y-%m-%d}/{stamp:%Y%m%dT%H%M%S%fZ}-{entry.fingerprint[:12]}-{entry.action}"
        f"-{uuid.uuid4().hex[:8]}.json"
    )


async def append(storage: Any, entry: AuditEntry) -> str:
    """Store ``entry`` as a new object; returns its path."""
    return await asyncio.to_thread(_append_sync, storage, entry)


def _append_sync(storage: Any, entry: AuditEntry) -> str:
    content = entry.model_dump_json().encode()
    for _ in range(3):  # a name collision needs the same microsecond and nonce: practically never
        path = entry_path(entry)
        try:
            if shared_files.create_bytes(storage, path, content):
                return path
        except shared_files.UnconditionalStorageError:
            shared_files.write_bytes(storage, path, content)  # the nonce keeps names apart
            return path
    raise RuntimeError(f"could not find a free name for an audit entry under {AUDIT_PREFIX}/")


async def entries(storage: Any, *, fingerprint: str = "", since: dt.date | None = None) -> list[AuditEntry]:
    """Every entry (oldest first), optionally only one fingerprint's (a prefix is enough) or those from ``since``."""
    return await asyncio.to_thread(_entries_sync, storage, fingerprint, since)


def _entries_sync(storage: Any, fingerprint: str, since: dt.date | None) -> list[AuditEntry]:
    found: list[AuditEntry] = []
    for path, raw in shared_files.scan(storage, AUDIT_PREFIX):
        day = path.split("/")[1] if path.count("/") >= 2 else ""
        if since is not None and day < since.isoformat():
            continue
        try:
            entry = AuditEntry.model_validate(json.loads(raw))
        except ValueError as exc:  # torn by a crash, or written by a newer clipflow: say so, list the rest
            logger.warning("unreadable audit entry %s (%s)", path, type(exc).__name__)
            continue
        if fingerprint and not entry.fingerprint.startswith(fingerprint):
            continue
        found.append(entry)
    return sorted(found, key=lambda e: e.at)
