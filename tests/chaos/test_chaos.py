"""Chaos: produce_batch against faults, dropped answers and SIGKILLs, on a real Prefect server (PostgreSQL), with
the emulator and moto S3 in their own processes and the batch in a child process (stack.py).

``test_batch_survives_faults_and_kills``: 12 items x 2 languages (Jimeng and gateway clips), 20 % errors on every
action, answers dropped on UploadMediaByUrl, CreateProject, StartWorkflow and SubmitAITranslationWorkflow; the
batch's process is SIGKILLed twice while VOD paid calls are in flight and the same batch is run again after each
kill. Every item must succeed within 3 re-runs after the last kill, nothing may be billed twice, every clip must be
in the bucket with its recorded sha256, and no run may stall (the watchdog lists what is stuck).

``test_lost_clip_answers_stop_and_are_resolved``: Jimeng and gateway submit answers dropped: those items stop
without paying again, the batch reports them (``BatchResult.lost_answers``), and ``clipflow journal`` attaches the
job found in the console (resumed, not paid) or releases the record (paid exactly once more).

Run: ``.tools/bin/uv run pytest tests/chaos -m slow -s`` (``CLIPFLOW_CHAOS_KEEP=1`` keeps the logs).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from tests.chaos.stack import (
    LEASED_JIMENG_LIMITS,
    VOD_PAID,
    ChaosStack,
    RunOutcome,
    Snapshot,
    duplicate_bills,
)

pytestmark = [pytest.mark.slow]

LANGUAGES = ["en", "ja"]
ERROR_RATE = 0.2
DROPS_PER_ACTION = 2
MAX_RERUNS = 3
RUN_DEADLINE = 240.0  # s per run; nothing of a killed run may hold a re-run up for more than 60 s of that
LEASE_GRACE = 150.0  # s to wait for a previous test's leaked leases before starting


def _item(n: int, provider: str) -> dict[str, Any]:
    clip: dict[str, Any] = {"provider": provider, "prompt": f"chaos item {n}: a lighthouse in a storm, take {n}"}
    if provider == "gateway":
        clip.update(model="grok-video-3", aspect_ratio="3:2", size="720P")
    return {"title": f"chaos-{n:02d}", "clip": clip,
            "translate": {"source_language": "zh", "target_languages": LANGUAGES}}


def _expected_bills(items: list[dict[str, Any]]) -> dict[str, int]:
    """Ledger actions each item buys exactly once (the gateway's create is billed as action ``create``)."""
    n = len(items)
    providers = Counter(i["clip"]["provider"] for i in items)
    return {
        "CVSync2AsyncSubmitTask": providers["jimeng"], "create": providers["gateway"],
        "UploadMediaByUrl": n, "CreateProject": n, "StartWorkflow": n,
        "SubmitAITranslationWorkflow": n * len(LANGUAGES),
    }


def _clips_safe(snap: Snapshot, n_clips: int) -> str | None:
    """Every item's clip submit made and answered (journaled with its job id; one lost to a fault long ago
    counts as done: its item has stopped): a kill now loses no clip submit's answer (those only an operator can
    resolve). Jimeng slots and turns may be held: the re-run must get them back from the dead process."""
    answered, lost, flying = snap.clip_submits()
    if flying or answered + lost < n_clips:
        return None
    held = {k: v for k, v in snap.stack.busy_limits().items() if k in LEASED_JIMENG_LIMITS}
    return (f"clip submits: {answered} answered" + (f", {lost} lost before the kill" if lost else "")
            + (f"; slots held by the killed run: {held}" if held else ""))


@pytest.mark.timeout(1500)
def test_batch_survives_faults_and_kills(stack: ChaosStack) -> None:
    busy = stack.wait_limits_free(LEASE_GRACE)
    assert not busy, f"concurrency slots still held before the test: {busy}"
    stack.emulator.reset()
    items = [_item(n, "gateway" if n % 3 == 0 else "jimeng") for n in range(1, 13)]  # 8 Jimeng, 4 gateway
    expected = _expected_bills(items)
    n_items, n_clips = len(items), len(items)
    stack.emulator.set_faults(
        [{"action": a, "drop_after_accept": True, "count": DROPS_PER_ACTION} for a in VOD_PAID]
        # Every action's default fault is the vendor's own retryable error before anything is created (Jimeng
        # 50500 in its envelope, the gateway's 503 saturation, VOD InternalError): retried in place on submit.
        + [{"action": "*", "error_rate": ERROR_RATE}]
    )
    ws = stack.workspace("faults-and-kills")

    def kill_1(snap: Snapshot) -> str | None:
        """VOD paid calls of run 1 under way: some billed, others still to come."""
        safe = _clips_safe(snap, n_clips)
        if safe is None:
            return None
        billed = {a: snap.billed(a) for a in VOD_PAID}
        if not billed["UploadMediaByUrl"] + billed["CreateProject"]:
            return None
        pending = [a for a in VOD_PAID if billed[a] < expected[a]]
        return f"{safe}; VOD paid calls pending: {pending}" if pending else None

    def kill_2(snap: Snapshot) -> str | None:
        """Run 2's translation submits started but not all made."""
        if _clips_safe(snap, n_clips) is None:
            return None
        now = snap.billed("SubmitAITranslationWorkflow", this_run=True)
        total = snap.billed("SubmitAITranslationWorkflow")
        if now >= 1 and total < expected["SubmitAITranslationWorkflow"]:
            return f"{now} SubmitAITranslationWorkflow billed in this run, {total} in all"
        return None

    ws.run(items, "run-1-killed", kill_when=kill_1, deadline=RUN_DEADLINE)
    ws.run(items, "run-2-killed", kill_when=kill_2, deadline=RUN_DEADLINE)
    final: RunOutcome | None = None
    for n in range(1, MAX_RERUNS + 1):
        final = ws.run(items, f"rerun-{n}", deadline=RUN_DEADLINE)
        if all(s == "succeeded" for s in final.statuses().values()):
            break
    assert final is not None
    print("chaos: runs\n" + ws.summary())

    problems = final_problems(ws, final, expected, n_items)
    billed = dict(Counter(e["action"] for e in ws.ledger()))
    assert not problems, "\n".join(problems) + f"\nruns:\n{ws.summary()}\nbilled: {billed}"


def final_problems(ws: Any, final: RunOutcome, expected: dict[str, int], n_items: int) -> list[str]:
    """What is wrong after the last run: items not succeeded, double bills, clips missing or not as recorded."""
    problems: list[str] = []
    rows = final.rows()
    not_done = [f"item {r['item']} {r['title']}: {r['status']} {r.get('error') or ''}" for r in rows
                if r["status"] != "succeeded"]
    if len(rows) != n_items or not_done:
        problems.append(f"{len(not_done)} of {len(rows)} item(s) not succeeded after {MAX_RERUNS} re-runs:\n  "
                        + "\n  ".join(not_done))
    ledger = ws.ledger()
    dupes = duplicate_bills(ledger)
    if dupes:
        problems.append("billed twice (action, emulator fingerprint -> job ids):\n  "
                        + "\n  ".join(f"{a} {fp[:16]}: {ids}" for (a, fp), ids in dupes.items()))
    # CreateProject's EditParam and UploadMediaByUrl's presigned URL may differ on each attempt, so a second
    # payment for those can carry a new emulator fingerprint: the count per action catches it.
    counts = Counter(e["action"] for e in ledger)
    over = {a: f"{counts[a]} billed, {want} bought" for a, want in expected.items() if counts[a] > want}
    if over:
        problems.append(f"paid more than once per purchase: {over}")
    sources: Counter[str] = Counter()
    for row in rows:
        if not row.get("clip"):
            if row["status"] == "succeeded":
                problems.append(f"item {row['item']}: succeeded without a clip location")
            continue
        recorded, source = ws.recorded_clip_sha256(row)
        sources[source.split(" (")[0]] += 1
        try:
            actual = ws.stack.clip_sha256(row["clip"])
        except Exception as exc:  # noqa: BLE001 - collected with the others
            problems.append(f"item {row['item']}: {row['clip']} not readable in the bucket: {exc}")
            continue
        if actual != recorded:
            problems.append(f"item {row['item']}: {row['clip']} sha256 {actual} != recorded {recorded} ({source})")
    print(f"chaos: clip sha256 compared with {dict(sources)}")
    return problems


# --- lost answers on the clip submits ------------------------------------------------------------------------

LOST_FIELDS = {"fingerprint", "provider", "action", "at", "item", "look_for"}
JOURNAL_FIELDS = {"fingerprint", "provider", "action", "at", "look_for", "state"}


@pytest.mark.timeout(900)
def test_lost_clip_answers_stop_and_are_resolved(stack: ChaosStack) -> None:
    busy = stack.wait_limits_free(LEASE_GRACE)
    assert not busy, f"concurrency slots still held before the test: {busy}"
    stack.emulator.reset()
    stack.emulator.set_faults([
        {"action": "CVSync2AsyncSubmitTask", "drop_after_accept": True, "count": 1},
        {"action": "gateway.create", "drop_after_accept": True, "count": 1},
    ])
    items = [_item(1, "jimeng"), _item(2, "jimeng"), _item(3, "gateway")]
    ws = stack.workspace("lost-answers")

    # 1. The lost submits stop; the other items finish; the summary names what to look for.
    first = ws.run(items, "lost-1")
    ledger = ws.ledger()
    jimeng_bills = [e for e in ledger if e["action"] == "CVSync2AsyncSubmitTask"]
    gateway_bills = [e for e in ledger if e["provider"] == "gateway" and e["action"] == "create"]
    assert len(jimeng_bills) == 2 and len(gateway_bills) == 1, \
        f"clip submits billed: {Counter(e['action'] for e in ledger)}"
    statuses = first.statuses()
    ok_jimeng = [n for n in (1, 2) if statuses[n] == "succeeded"]
    assert len(ok_jimeng) == 1 and statuses[3] != "succeeded", f"statuses {statuses}"
    lost_jimeng_item = 3 - ok_jimeng[0]
    rows = {r["item"]: r for r in first.rows()}
    assert rows[lost_jimeng_item]["status"] == "failed", rows[lost_jimeng_item]
    ok_job = rows[ok_jimeng[0]]["clip_job_id"]
    [lost_jimeng_bill] = [e for e in jimeng_bills if e["job_id"] != ok_job]
    [lost_gateway_bill] = gateway_bills

    assert "lost_answers" in first.result, f"BatchResult has no lost_answers: {sorted(first.result)}"
    lost = first.result["lost_answers"]
    assert isinstance(lost, list) and len(lost) == 2, f"lost_answers: {lost}"
    for record in lost:
        assert LOST_FIELDS <= set(record), f"lost answer lacks {LOST_FIELDS - set(record)}: {record}"
        assert record["look_for"], record
    by_item = {r["item"]: r for r in lost}
    assert set(by_item) == {lost_jimeng_item, 3}, f"lost answers for items {sorted(by_item)}"
    assert by_item[lost_jimeng_item]["provider"] == "jimeng" and by_item[3]["provider"] == "gateway", lost
    fp_jimeng, fp_gateway = by_item[lost_jimeng_item]["fingerprint"], by_item[3]["fingerprint"]
    for n, fp in ((lost_jimeng_item, fp_jimeng), (3, fp_gateway)):
        assert fp in (rows[n].get("error") or ""), f"item {n}'s error does not name fingerprint {fp}: {rows[n]}"

    # 2. The same batch again: still stopped, nothing paid again.
    mark = len(ws.ledger())
    second = ws.run(items, "lost-2-rerun")
    again = [e for e in ws.ledger()[mark:] if e["action"] in ("CVSync2AsyncSubmitTask", "create")]
    assert not again, f"a re-run paid for a clip again: {again}"
    assert second.statuses()[lost_jimeng_item] != "succeeded" and second.statuses()[3] != "succeeded"
    assert {r["fingerprint"] for r in second.result.get("lost_answers", [])} == {fp_jimeng, fp_gateway}

    # 3. The operator's view.
    listed = json.loads(ws.cli("journal", "list", "--json"))
    assert isinstance(listed, list), listed
    by_fp = {r["fingerprint"]: r for r in listed}
    assert set(by_fp) == {fp_jimeng, fp_gateway}, f"journal list: {listed}"
    for record in listed:
        assert JOURNAL_FIELDS <= set(record), f"journal record lacks {JOURNAL_FIELDS - set(record)}: {record}"

    # 4. Attach the Jimeng job found in the console; release the gateway request to pay for it again.
    ws.cli("journal", "attach", fp_jimeng, lost_jimeng_bill["job_id"])
    ws.cli("journal", "release", fp_gateway, "--yes")
    mark = len(ws.ledger())
    third = ws.run(items, "lost-3-resolved")
    new = ws.ledger()[mark:]
    statuses = third.statuses()
    assert statuses == {1: "succeeded", 2: "succeeded", 3: "succeeded"}, \
        f"{statuses}: {[(r['item'], r.get('error')) for r in third.rows() if r['status'] != 'succeeded']}"
    resumed = {r["item"]: r for r in third.rows()}[lost_jimeng_item]
    assert resumed["clip_job_id"] == lost_jimeng_bill["job_id"], resumed
    assert not [e for e in new if e["action"] == "CVSync2AsyncSubmitTask"], f"attach paid again: {new}"
    repaid = [e for e in new if e["provider"] == "gateway" and e["action"] == "create"]
    assert len(repaid) == 1 and repaid[0]["fingerprint"] == lost_gateway_bill["fingerprint"], \
        f"release: new gateway bills {repaid}, dropped one {lost_gateway_bill}"
    all_bills = Counter((e["action"], e["fingerprint"]) for e in ws.ledger())
    assert all_bills[("CVSync2AsyncSubmitTask", lost_jimeng_bill["fingerprint"])] == 1
    assert all_bills[("create", lost_gateway_bill["fingerprint"])] == 2  # the dropped one + the deliberate one
    assert json.loads(ws.cli("journal", "list", "--json")) == [], "records still unresolved after attach/release"


# --- two workers racing one batch (no lock anywhere: the journal decides who pays) ----------------------------


def _race(workspaces: list[Any], items: list[dict[str, Any]], label: str) -> list[RunOutcome]:
    """The same batch in each workspace's own process, at the same moment."""
    import threading

    outcomes: dict[int, RunOutcome] = {}
    errors: list[BaseException] = []

    def one(n: int, ws: Any) -> None:
        try:
            outcomes[n] = ws.run(items, f"{label}-{n}", deadline=RUN_DEADLINE)
        except BaseException as exc:  # noqa: BLE001 - pytest.fail in a thread: re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(n, ws)) for n, ws in enumerate(workspaces)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [outcomes[n] for n in range(len(workspaces))]


def _race_items(tag: str) -> list[dict[str, Any]]:
    items = [_item(n, "gateway" if n % 4 == 0 else "jimeng") for n in range(1, 9)]
    for item in items:
        item["title"] = f"{tag}-{item['title']}"
        item["clip"]["prompt"] += f" ({tag})"
        item["translate"]["target_languages"] = ["en"]
    return items


def _assert_paid_once(ws: Any, items: list[dict[str, Any]], outcomes: list[RunOutcome]) -> None:
    expected = _expected_bills(items)
    expected["SubmitAITranslationWorkflow"] = len(items)
    ledger = ws.ledger()
    counts = Counter(e["action"] for e in ledger)
    dupes = duplicate_bills(ledger)
    assert not dupes, f"billed twice: {dupes}\nbilled {dict(counts)}"
    assert {a: counts[a] for a in expected} == expected, f"billed {dict(counts)}, bought {expected}"
    for outcome in outcomes:
        statuses = outcome.statuses()
        assert all(s == "succeeded" for s in statuses.values()), \
            f"{outcome.label}: {[(r['item'], r['status'], r.get('error')) for r in outcome.rows() if r['status'] != 'succeeded']}"


@pytest.mark.timeout(900)
def test_two_workers_racing_one_batch_without_locks_pay_once(stack: ChaosStack) -> None:
    """Two processes run the same batch at once, each with its own PREFECT_HOME and CLIPFLOW_LOCK_DIR, sharing
    the Prefect API, result storage, journal and bucket. No cache lock keeps them apart (both may run a paid
    task's body): the journal's conditional writes alone let each request be billed once."""
    busy = stack.wait_limits_free(LEASE_GRACE)
    assert not busy, f"concurrency slots still held before the test: {busy}"
    stack.emulator.reset()
    items = _race_items("unshared")
    first = stack.workspace("unshared-a")
    second = stack.twin(first, "unshared-b")
    second.ledger_mark = first.ledger_mark

    outcomes = _race([first, second], items, "race")

    _assert_paid_once(first, items, outcomes)
