"""clipflow's own log lines reach the run's logs in the Prefect UI.

Modules log with ``logging.getLogger(__name__)`` (``providers`` must not import Prefect), so their lines would go
to the worker's console only. Prefect's API log handler is attached to clipflow's top-level loggers instead of
asking every deployment for ``PREFECT_LOGGING_EXTRA_LOGGERS``: inside a flow or task run a line is sent to that
run; outside one (a heartbeat thread, the CLI) it has no run to go to and is left to the console handlers.
"""

from __future__ import annotations

import logging

from prefect.exceptions import MissingContextError
from prefect.logging.handlers import APILogHandler

LIBRARY_LOGGERS = ("flows", "providers", "blocks", "deployments", "clipflow.progress")  # progress: no propagation


class RunLogHandler(APILogHandler):
    """Prefect's API handler, quiet about lines logged outside any run (Prefect would warn for each)."""

    def handleError(self, record: logging.LogRecord) -> None:
        import sys

        if isinstance(sys.exc_info()[1], MissingContextError):
            return
        super().handleError(record)


def send_library_logs_to_runs(level: int = logging.INFO) -> None:
    """Idempotent: one handler per logger, and INFO lines (stage progress) pass unless a level was configured."""
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, RunLogHandler) for h in logger.handlers):
            logger.addHandler(RunLogHandler())
        if logger.level == logging.NOTSET:
            logger.setLevel(level)
