"""The audit trail's storage and the operator commands' refusals, on a real local result storage (no server)."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from prefect.filesystems import LocalFileSystem

from flows.app.journal_cli import (
    OPERATOR_ACTIONS,
    JournalCommandError,
    _release_refusal,
    release_plan,
    terminal_confirm,
)
from flows.engine import audit
from flows.engine.journal import JournalRecord, now

ROOT = Path(__file__).resolve().parents[3]
FP_A = "a" * 64
FP_B = "b" * 64


def entry(fp: str, at: dt.datetime, action: str = "release") -> audit.AuditEntry:
    return audit.AuditEntry(
        at=at, action=action, fingerprint=fp, provider="jimeng", provider_action="CVSync2AsyncSubmitTask",
        user="ops", host="box", previous_state="sent", new_state="released",
    )


def record(state: str, **extra: object) -> JournalRecord:
    return JournalRecord.model_validate({
        "state": state, "provider": "gateway", "action": "create", "fingerprint": FP_A, "at": now(),
        "look_for": "a grok-video-3 task with the prompt 'cat'", **extra,
    })


async def test_entries_are_separate_objects_listed_oldest_first_and_filtered(tmp_path: Path) -> None:
    storage = LocalFileSystem(basepath=str(tmp_path))
    day1 = dt.datetime(2026, 12, 6, 23, 59, tzinfo=dt.timezone.utc)
    day2 = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.timezone.utc)
    late = await audit.append(storage, entry(FP_A, day2, "attach"))
    early = await audit.append(storage, entry(FP_B, day1))
    twin = await audit.append(storage, entry(FP_B, day1))  # same instant, fingerprint and action: still kept

    assert early.startswith("clipflow-journal-audit/2026-12-06/20261206T235900000000Z-bbbbbbbbbbbb-release-")
    assert late.startswith("clipflow-journal-audit/2026-12-07/") and late.endswith(".json")
    assert len({early, twin, late}) == 3
    listed = await audit.entries(storage)
    assert [(e.fingerprint, e.action) for e in listed] == [(FP_B, "release"), (FP_B, "release"), (FP_A, "attach")]
    assert [e.action for e in await audit.entries(storage, fingerprint=FP_A[:12])] == ["attach"]
    assert [e.fingerprint for e in await audit.entries(storage, since=dt.date(2026, 12, 7))] == [FP_A]


async def test_a_torn_entry_is_skipped_and_the_rest_listed(tmp_path: Path) -> None:
    storage = LocalFileSystem(basepath=str(tmp_path))
    await audit.append(storage, entry(FP_A, now()))
    torn = tmp_path / "clipflow-journal-audit" / "2026-01-01" / "torn.json"
    torn.parent.mkdir(parents=True)
    torn.write_bytes(b'{"at": "2026-')

    assert [e.fingerprint for e in await audit.entries(storage)] == [FP_A]


def test_only_an_unresolved_lost_answer_is_released_without_force() -> None:
    assert _release_refusal(record("sent")) is None
    submitted = _release_refusal(record("submitted", job_id="grok:1"))
    assert submitted and "grok:1" in submitted and "paid" in submitted and "--force" in submitted
    assert "nothing was created or billed" in (_release_refusal(record("refused")) or "")
    assert "already released" in (_release_refusal(record("released")) or "")
    in_flight = _release_refusal(record("sent", answer_by=now() + dt.timedelta(minutes=5)))
    assert in_flight and "may still come" in in_flight


def test_the_plan_says_what_the_next_run_buys() -> None:
    plan = release_plan(record("submitted", job_id="grok:1"))
    assert "NEW gateway create" in plan and "billed again" in plan
    assert "grok-video-3 task with the prompt 'cat'" in plan and "the job grok:1 that was already paid for" in plan


def test_without_a_terminal_or_yes_the_release_is_refused_not_waited_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # piped input is not a confirmation
    with pytest.raises(JournalCommandError, match="--yes"):
        terminal_confirm(yes=False)("plan")
    assert terminal_confirm(yes=True)("plan") is True


def test_every_operator_event_is_documented() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text()
    for action in OPERATOR_ACTIONS:
        assert f"clipflow.journal.{action}" in guide, f"clipflow.journal.{action} is emitted but not documented"
