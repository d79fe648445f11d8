"""``clipflow journal``: the operator's side of lost answers, so nobody edits journal files by hand.

A Jimeng or gateway submit whose answer was lost cannot be found through the provider (no idempotency token, no
task listing): clipflow stops that item without paying again and leaves an unresolved record. The operator looks
in the provider's console for the job the record describes, then either attaches its id (the next run resumes
that job) or releases the record (the next run pays for a new one, deliberately).

Neither command can pay by mistake: ``release`` acts only on an unresolved lost answer unless ``--force``, says
what the next run will buy and asks first (``--yes`` for scripts; no terminal and no ``--yes``: refused);
``attach`` records only a job the provider's status call knows. Both change the record with a compare-and-swap
on the version they read, so a state a worker wrote meanwhile is never overwritten, and both leave an audit
entry (``flows.engine.audit``) and a ``clipflow.journal.<action>`` Prefect event.

The journal is read from Prefect's default result storage, as the flows write it: run these commands with the
same ``PREFECT_API_URL`` and result-storage settings as the workers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flows.models import BlockRefs
from flows.engine import audit, incidents
from flows.engine.journal import SKEW_MARGIN_SECONDS
from flows.engine.journal import send_in_flight as in_flight  # the engine's own test: one answer to "is it over?"
from flows.engine.journal import Journal, JournalRecord, now

FINGERPRINT_CHARS = 64
EXIT_REFUSED = 2
EXIT_CHANGED = 3  # the record changed between our read and our write: nothing written, look again
OPERATOR_ACTIONS = ("release", "attach")  # every command that changes a record: audited, a clipflow.journal.<action> event

Confirm = Callable[[str], bool]


class JournalCommandError(Exception):
    """A refusal with the reason and what to do instead."""


class AuditWriteError(Exception):
    """The record was changed but its audit entry could not be stored."""


class RecordChangedError(JournalCommandError):
    """The record changed after it was read (a worker answered, another operator acted): nothing was written."""


@dataclass(frozen=True)
class Options:
    force: bool = False
    refs: BlockRefs = field(default_factory=BlockRefs)
    space: str = ""


async def list_records(*, include_resolved: bool = False) -> list[JournalRecord]:
    records = await (await Journal.default()).scan()
    chosen = [r for r in records if include_resolved or r.unresolved]
    return sorted(chosen, key=lambda r: r.sent_at or r.at)


def _check_fingerprint(fp: str) -> None:
    if len(fp) != FINGERPRINT_CHARS or any(c not in "0123456789abcdef" for c in fp):
        raise JournalCommandError(f"{fp!r} is not a request fingerprint (64 lower-case hex characters)")


async def _existing(journal: Journal, fp: str) -> tuple[JournalRecord, str | None]:
    _check_fingerprint(fp)
    record, version = await journal.read_versioned(fp)
    if record is None:
        raise JournalCommandError(f"no journal record for fingerprint {fp}; `clipflow journal list` shows the open ones")
    return record, version


def _describe(record: JournalRecord) -> str:
    what = f"{record.provider or '?'} {record.action or '?'}"
    return what + (f" (job {record.job_id})" if record.job_id else "")


def release_plan(record: JournalRecord) -> str:
    """What the next run will pay for once the record is released."""
    given_up = (
        f"the job {record.job_id} that was already paid for is given up, and " if record.job_id else ""
    )
    return (
        f"Releasing {record.fingerprint} ({record.state}): {given_up}the next run of this request buys a NEW "
        f"{record.provider or 'provider'} {record.action or 'job'}, billed again.\n"
        f"    provider: {record.provider or '? (unreadable record)'}\n"
        f"    action:   {record.action or '?'}\n"
        f"    request:  {record.look_for or '-'}\n"
        f"    sent:     {(record.sent_at or record.at).isoformat()}"
    )


def _release_refusal(record: JournalRecord) -> str | None:
    """Why releasing this record needs ``--force`` (None: it is an unresolved lost answer, release is its way out)."""
    fp = record.fingerprint
    if record.state == "submitted":
        return (
            f"fingerprint {fp} is submitted: {_describe(record)} exists and was paid for, and the next run resumes "
            "it. Releasing it would pay for a second job; pass --force only if that job is truly unusable"
        )
    if record.state == "refused":
        return (
            f"fingerprint {fp} was refused by the provider (nothing was created or billed): the next run sends it "
            "again by itself, there is nothing to release"
        )
    if record.state == "released":
        return f"fingerprint {fp} is already released: the next run pays for a new job"
    if record.job_id:
        return f"fingerprint {fp} already has job {record.job_id}: the next run resumes it"
    if in_flight(record):
        return (
            f"fingerprint {fp} was sent at {(record.sent_at or record.at).isoformat()} and its sender waits for the "
            f"answer until {record.answer_by.isoformat() if record.answer_by else '?'}: the answer may still come. "
            f"Look again {SKEW_MARGIN_SECONDS:.0f} s after that (the margin for clocks that disagree)"
        )
    return None


async def release(fp: str, *, confirm: Confirm, options: Options = Options()) -> JournalRecord:
    """Let the next run pay again for this request, after the operator confirmed what that will buy."""
    journal = await Journal.default()
    record, version = await _existing(journal, fp)
    refusal = _release_refusal(record)
    if refusal and not options.force:
        raise JournalCommandError(refusal + " (nothing changed)")
    if not confirm(release_plan(record)):
        raise JournalCommandError("not confirmed: nothing changed")
    updated = record.model_copy(
        update={"state": "released", "job_id": None, "at": now(), "note": "released by an operator: pay again"}
    )
    await _swap(journal, record, updated, version)
    await _audited(journal, "release", record, updated, forced=refusal is not None, detail={"plan": record.look_for})
    return updated


async def attach(fp: str, job_id: str, *, options: Options = Options()) -> JournalRecord:
    """Record the job id an operator found in the console, once the provider confirms the job exists: the next
    run resumes that job instead of paying."""
    from flows.app.journal_jobs import JobCheckError, UnknownJobError, check_job

    job_id = job_id.strip()
    if not job_id:
        raise JournalCommandError("JOB_ID: must be the non-empty id of the job found in the provider console")
    journal = await Journal.default()
    record, version = await _existing(journal, fp)
    if record.state == "submitted" and record.job_id == job_id:
        return record  # already so: nothing to write or audit
    if record.state == "submitted" and record.job_id and not options.force:
        raise JournalCommandError(
            f"fingerprint {fp} is already resolved to job {record.job_id} (paid for); pass --force to replace it "
            f"with {job_id} (nothing changed)"
        )
    if not record.provider or not record.action:
        raise JournalCommandError(
            f"the record of {fp} is unreadable: it does not say which provider's job to check; release it instead"
        )
    try:
        status = await check_job(record.provider, record.action, job_id, refs=options.refs, space=options.space)
    except UnknownJobError as exc:
        raise JournalCommandError(f"job {job_id} was not attached: {exc}. Check the id in the console") from None
    except JobCheckError as exc:
        raise JournalCommandError(f"job {job_id} was not attached: {exc}") from None
    updated = record.model_copy(update={
        "state": "submitted", "job_id": job_id, "at": now(),
        "note": f"attached by an operator ({status.status_action}: {status.state})",
    })
    await _swap(journal, record, updated, version)
    await _audited(
        journal, "attach", record, updated, forced=bool(record.job_id),
        detail={"job_state": status.state, "checked_with": status.status_action},
    )
    return updated


async def _swap(journal: Journal, record: JournalRecord, updated: JournalRecord, version: str | None) -> None:
    if not await journal.replace(updated, version):
        current = await journal.read(record.fingerprint)
        now_state = _describe(current) + f", {current.state}" if current else "gone"
        raise RecordChangedError(
            f"the record of {record.fingerprint} changed meanwhile (it was {record.state}, it is now {now_state}): "
            "nothing written. Look again with `clipflow journal list --all` before deciding"
        )


async def _audited(
    journal: Journal, action: str, before: JournalRecord, after: JournalRecord, *, forced: bool,
    detail: dict[str, Any],
) -> None:
    assert action in OPERATOR_ACTIONS, action
    user, host = audit.operator()
    entry = audit.AuditEntry(
        at=after.at, action=action, fingerprint=after.fingerprint, provider=after.provider,
        provider_action=after.action, user=user, host=host, previous_state=before.state, new_state=after.state,
        previous_job_id=before.job_id, job_id=after.job_id, forced=forced, detail=detail,
    )
    try:
        await audit.append(journal.storage, entry)
    except Exception as exc:
        raise AuditWriteError(
            f"the record of {after.fingerprint} is now {after.state}, but its audit entry could not be stored "
            f"({type(exc).__name__}: {exc}); the clipflow.journal.{action} event still records it"
        ) from exc
    finally:  # the event goes out even if the audit store failed: someone must hear of the change
        incidents.operator_action(
            action, fingerprint=after.fingerprint, provider=after.provider, provider_action=after.action,
            user=user, host=host, previous_state=before.state, new_state=after.state,
            previous_job_id=before.job_id, job_id=after.job_id, forced=forced,
        )


async def audit_entries(fingerprint: str = "", since: dt.date | None = None) -> list[audit.AuditEntry]:
    return await audit.entries((await Journal.default()).storage, fingerprint=fingerprint, since=since)


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


def terminal_confirm(*, yes: bool) -> Confirm:
    """Show the plan on stderr; ``--yes`` accepts it, a terminal asks, no terminal refuses (never hangs)."""

    def confirm(plan: str) -> bool:
        print(plan, file=sys.stderr)
        if yes:
            return True
        if not sys.stdin.isatty():
            raise JournalCommandError("no terminal to confirm on: pass --yes to release from a script (nothing changed)")
        answer = input("Pay for a new job on the next run? [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    return confirm


def _print_list(rows: list[dict[str, Any]], include_all: bool) -> None:
    if not rows:
        print("no unresolved lost answers" if not include_all else "the journal is empty")
    for row in rows:
        print(f"{row['fingerprint']}  {row['state']:<9} {row['provider']}:{row['action']}  sent {row['at']}")
        print(f"    look for: {row['look_for'] or '-'}" + (f"; job {row['job_id']}" if row["job_id"] else ""))


def _print_audit(entries: list[audit.AuditEntry], as_json: bool) -> None:
    if as_json:
        print(json.dumps([e.model_dump(mode="json") for e in entries], ensure_ascii=False))
        return
    if not entries:
        print("no operator actions recorded")
    for e in entries:
        change = f"{e.previous_state}{f' ({e.previous_job_id})' if e.previous_job_id else ''} -> {e.new_state}"
        change += f" ({e.job_id})" if e.job_id else ""
        print(f"{e.at.isoformat()}  {e.action:<7} {e.fingerprint}  {e.provider}:{e.provider_action}  {change}"
              f"  by {e.user}@{e.host}" + ("  FORCED" if e.forced else ""))


def run(
    command: str, *, fingerprint: str = "", job_id: str = "", as_json: bool = False, include_all: bool = False,
    force: bool = False, yes: bool = False, block: str = "clipflow", space: str = "", since: str = "",
) -> int:
    """Entry point for the CLI: prints what it did; exits 2 on a refusal, 3 when the record changed meanwhile."""
    try:
        if command == "list":
            records = asyncio.run(list_records(include_resolved=include_all))
            rows = [_row(r) for r in records]
            print(json.dumps(rows, ensure_ascii=False)) if as_json else _print_list(rows, include_all)
            return 0
        if command == "audit":
            try:
                day = dt.date.fromisoformat(since) if since else None
            except ValueError:
                raise JournalCommandError(f"--since: {since!r} is not a date (YYYY-MM-DD)") from None
            _print_audit(asyncio.run(audit_entries(fingerprint, day)), as_json)
            return 0
        try:
            refs = BlockRefs(volcengine=block, gateway=block)
        except ValueError:
            raise JournalCommandError(f"--block: {block!r} is not a block name (lower-case letters, digits, dashes)") from None
        options = Options(force=force, refs=refs, space=space)
        if command == "attach":
            record = asyncio.run(attach(fingerprint, job_id, options=options))
        else:
            record = asyncio.run(release(fingerprint, confirm=terminal_confirm(yes=yes), options=options))
    except RecordChangedError as exc:
        print(f"clipflow journal {command}: {exc}", file=sys.stderr)
        return EXIT_CHANGED
    except AuditWriteError as exc:
        print(f"clipflow journal {command}: {exc}", file=sys.stderr)
        return 1
    except JournalCommandError as exc:
        print(f"clipflow journal {command}: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    print(json.dumps(_row(record), ensure_ascii=False) if as_json else f"{record.fingerprint}: {record.state}"
          + (f" (job {record.job_id})" if record.job_id else "") + f" — {record.note}")
    return 0
