"""``clipflow journal``: the operator's side of lost answers, so nobody edits journal files by hand.

A Jimeng or gateway submit whose answer was lost cannot be found through the provider (no idempotency token, no
task listing): clipflow stops that item without paying again and leaves an unresolved record. The operator looks
in the provider's console for the job the record describes, then either attaches its id (the next run resumes
that job) or releases the record (the next run pays for a new one, deliberately).

The journal is read from Prefect's default result storage, as the flows write it: run these commands with the
same ``PREFECT_API_URL`` and result-storage settings as the workers.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from flows.runtime import incidents
from flows.runtime.journal import Journal, JournalRecord, now

FINGERPRINT_CHARS = 64


class JournalCommandError(Exception):
    """A refusal with the reason and what to do instead."""


async def list_records(*, include_resolved: bool = False) -> list[JournalRecord]:
    records = await (await Journal.default()).scan()
    chosen = [r for r in records if include_resolved or r.unresolved]
    return sorted(chosen, key=lambda r: r.sent_at or r.at)


async def _existing(journal: Journal, fp: str) -> JournalRecord:
    if len(fp) != FINGERPRINT_CHARS or any(c not in "0123456789abcdef" for c in fp):
        raise JournalCommandError(f"{fp!r} is not a request fingerprint (64 lower-case hex characters)")
    record = await journal.read(fp)
    if record is None:
        raise JournalCommandError(f"no journal record for fingerprint {fp}; `clipflow journal list` shows the open ones")
    return record


async def attach(fp: str, job_id: str) -> JournalRecord:
    """Record the job id an operator found in the console: the next run resumes that job instead of paying."""
    job_id = job_id.strip()
    if not job_id:
        raise JournalCommandError("JOB_ID: must be the non-empty id of the job found in the provider console")
    journal = await Journal.default()
    record = await _existing(journal, fp)
    if record.state == "submitted" and record.job_id and record.job_id != job_id:
        raise JournalCommandError(
            f"fingerprint {fp} is already resolved to job {record.job_id}; release it first to change it"
        )
    updated = record.model_copy(
        update={"state": "submitted", "job_id": job_id, "at": now(), "note": "attached by an operator"}
    )
    await journal.write(updated)
    incidents.paid_request("attached", fingerprint=fp, provider=record.provider, action=record.action, job_id=job_id)
    return updated


async def release(fp: str) -> JournalRecord:
    """Let the next run pay again for this request (the earlier job, if any, is given up)."""
    journal = await Journal.default()
    record = await _existing(journal, fp)
    updated = record.model_copy(
        update={"state": "released", "job_id": None, "at": now(), "note": "released by an operator: pay again"}
    )
    await journal.write(updated)
    incidents.paid_request("released", fingerprint=fp, provider=record.provider, action=record.action)
    return updated


def _row(record: JournalRecord) -> dict[str, Any]:
    return {
        "fingerprint": record.fingerprint,
        "provider": record.provider,
        "action": record.action,
        "state": record.state,
        "at": (record.sent_at or record.at).isoformat(),
        "job_id": record.job_id,
        "look_for": record.look_for,
    }


def run(command: str, *, fingerprint: str = "", job_id: str = "", as_json: bool = False, include_all: bool = False) -> int:
    """Entry point for the CLI: prints what it did, exits 2 on a refusal."""
    try:
        if command == "list":
            records = asyncio.run(list_records(include_resolved=include_all))
            rows = [_row(r) for r in records]
            if as_json:
                print(json.dumps(rows, ensure_ascii=False))
            elif not rows:
                print("no unresolved lost answers" if not include_all else "the journal is empty")
            else:
                for row in rows:
                    print(f"{row['fingerprint']}  {row['state']:<9} {row['provider']}:{row['action']}  sent {row['at']}")
                    print(f"    look for: {row['look_for'] or '-'}" + (f"; job {row['job_id']}" if row["job_id"] else ""))
            return 0
        record = asyncio.run(attach(fingerprint, job_id) if command == "attach" else release(fingerprint))
    except JournalCommandError as exc:
        print(f"clipflow journal {command}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(_row(record), ensure_ascii=False) if as_json else f"{record.fingerprint}: {record.state}"
          + (f" (job {record.job_id})" if record.job_id else "") + f" — {record.note}")
    return 0
