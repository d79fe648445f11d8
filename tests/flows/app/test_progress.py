"""Stage progress reaches a display: plain lines off a terminal, a live table on one; nothing on stdout."""

from __future__ import annotations

import asyncio
import io

import pytest

from flows.app.progress_display import show_progress
from flows.runtime import progress


async def _stages() -> None:
    async with progress.stage("generate", "jimeng"):
        progress.paid("jimeng", "CVSync2AsyncSubmitTask", "task-1")
    async with progress.stage("edit"):
        progress.reused("vod", "CreateProject", "p-1")
    with pytest.raises(RuntimeError):
        async with progress.stage("transcode"):
            raise RuntimeError("provider said: secret-ish details")


def test_plain_lines_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    with show_progress(out, live=False):
        asyncio.run(_stages())
    lines = [line.split("] ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines[0] == "stage generate: started (jimeng)"
    assert lines[1] == "paid: jimeng CVSync2AsyncSubmitTask -> job task-1"
    assert lines[2].startswith("stage generate: finished in ")
    assert "reused (not paid again): vod CreateProject job p-1" in lines
    assert lines[-1].startswith("stage transcode: failed after ") and lines[-1].endswith("(RuntimeError)")
    assert "secret-ish" not in out.getvalue()  # an exception's text may quote a provider: only its type is shown
    assert capsys.readouterr().out == ""  # nothing on stdout (--json stays pure), nothing propagated to the root


def test_live_table_on_a_terminal() -> None:
    out = io.StringIO()
    with show_progress(out, live=True):
        asyncio.run(_stages())
    text = out.getvalue()
    for expected in ("generate", "edit", "transcode", "paid 1, reused 1", "jimeng CVSync2AsyncSubmitTask"):
        assert expected in text, text


def test_no_display_no_output(capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_stages())
    captured = capsys.readouterr()
    assert "stage generate" not in captured.out + captured.err
