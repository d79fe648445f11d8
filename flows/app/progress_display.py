"""Show stage progress while a long command runs: a live table on a terminal, plain lines otherwise.

Everything goes to stderr, so ``--json`` keeps stdout pure JSON.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from flows.runtime.progress import logger as progress_logger


class _Lines(logging.Handler):
    def __init__(self, stream: IO[str]) -> None:
        super().__init__(logging.INFO)
        self.stream, self.t0 = stream, time.monotonic()

    def emit(self, record: logging.LogRecord) -> None:
        self.stream.write(f"[{time.monotonic() - self.t0:6.1f}s] {record.getMessage()}\n")
        self.stream.flush()


class _Live(logging.Handler):
    """Keeps a row per stage (state and elapsed) and a count of paid submissions for a rich Live display."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.rows_lock = threading.Lock()  # not `lock`: logging.Handler holds its own around emit()
        self.rows: dict[str, tuple[str, float, float | None]] = {}  # stage -> (state, started, seconds)
        self.paid: list[str] = []
        self.reused = 0

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "clipflow_event", "")
        name = str(getattr(record, "clipflow_stage", ""))
        with self.rows_lock:
            if event == "start":
                self.rows[name] = ("running", time.monotonic(), None)
            elif event in ("end", "fail") and name in self.rows:
                self.rows[name] = ("done" if event == "end" else "failed", self.rows[name][1],
                                   float(getattr(record, "clipflow_seconds", 0.0)))
            elif event == "pause" and name in self.rows:
                self.rows[name] = ("waiting", self.rows[name][1], time.monotonic() - self.rows[name][1])
            elif event == "paid":
                self.paid.append(f"{record.clipflow_provider} {name}")  # type: ignore[attr-defined]
            elif event == "reused":
                self.reused += 1

    def render(self) -> object:
        from rich.table import Table

        table = Table(box=None, show_header=False, pad_edge=False)
        with self.rows_lock:
            for name, (state, started, seconds) in self.rows.items():
                took = seconds if seconds is not None else time.monotonic() - started
                mark = {"running": "[yellow]…[/]", "done": "[green]✓[/]", "failed": "[red]✗[/]", "waiting": "[blue]⏸[/]"}[state]
                table.add_row(mark, name, f"{took:5.1f}s")
            table.add_row("", f"paid {len(self.paid)}" + (f", reused {self.reused}" if self.reused else ""),
                          ", ".join(self.paid[-3:]))
        return table


@contextmanager
def show_progress(stream: IO[str] | None = None, live: bool | None = None) -> Iterator[None]:
    """Attach a display to the progress logger for the duration of the block."""
    stream = stream or sys.stderr
    live = stream.isatty() if live is None else live
    previous_level = progress_logger.level
    progress_logger.setLevel(logging.INFO)  # a display wants the stage lines whatever the logging config says
    if not live:
        handler: logging.Handler = _Lines(stream)
        progress_logger.addHandler(handler)
        try:
            yield
        finally:
            progress_logger.removeHandler(handler)
            progress_logger.setLevel(previous_level)
        return
    from rich.console import Console
    from rich.live import Live

    board = _Live()
    progress_logger.addHandler(board)
    try:
        with Live(console=Console(file=stream), refresh_per_second=4, transient=False,
                  get_renderable=board.render):  # type: ignore[arg-type]
            yield
    finally:
        progress_logger.removeHandler(board)
        progress_logger.setLevel(previous_level)
