"""Spend from journal records, priced (the pure part of `clipflow cost`)."""

from __future__ import annotations

import datetime as dt

import pytest

from flows.app.cost_cli import render
from flows.costs.spend import spend_rows, summarise
from providers.pricing import PriceTable
from flows.engine.journal import JournalRecord

PRICES = PriceTable(jimeng_per_second=0.5, import_per_call=0.01, translation_per_minute={"SubtitleTranslation": 1.0})
DAY = dt.datetime(2026, 12, 7, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))  # 15:30 UTC


def record(action: str, provider: str = "vod", state: str = "submitted", **billing: object) -> JournalRecord:
    return JournalRecord(
        state=state, provider=provider, action=action, fingerprint=action.lower().ljust(64, "0"), job_id="job",
        at=DAY, sent_at=DAY, detail={"billing": billing} if billing else {},
    )


def test_records_are_priced_with_what_they_recorded() -> None:
    records = [
        record("CVSync2AsyncSubmitTask", "jimeng", stage="generate", item="clip", items=[["jimeng", "second", 10.0]],
               deployment="produce-video", flow_run="r1"),
        record("SubmitAITranslationWorkflow", stage="translate", item="en",
               items=[["translation:SubtitleTranslation", "minute", 2.0]], deployment="produce-video", flow_run="r1"),
        record("UploadMediaByUrl"),  # an older record: no quantities, but a per-call price applies
        record("StartWorkflow"),  # an older record billed per minute: unknown
        record("CreateProject", state="refused"),  # nothing bought
    ]
    rows = spend_rows(records, PRICES)

    assert [(r.stage, r.amount) for r in rows] == [
        ("generate", 5.0), ("translate", 2.0), ("import", 0.01), ("transcode", None),
    ]
    summary = summarise(rows, "CNY")
    assert summary["total"] == pytest.approx(7.01) and not summary["complete"] and summary["jobs_of_unknown_price"] == 1
    assert summary["by_day"] == {"2026-12-07": pytest.approx(7.01)}  # the UTC day
    assert summary["by_deployment"] == {"(unknown)": 0.01, "produce-video": 7.0}
    assert summary["incomplete"]["by_stage"] == ["transcode"]
    assert "transcode  0 CNY + unknown" in render(summary)
