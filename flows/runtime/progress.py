"""Stage progress: a line when a stage starts and ends, and one for each paid submission.

Logged on ``clipflow.progress``, which sends them to the run's logs in the UI (``run_logs``) and to any command
that displays progress (``flows/app/progress_display.py``), without the stages knowing who is watching. It does
not propagate to the root logger, so a display is the only console output. Records carry ``clipflow_stage`` /
``clipflow_event`` so a display needs no parsing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prefect.exceptions import Pause

PROGRESS_LOGGER = "clipflow.progress"
logger = logging.getLogger(PROGRESS_LOGGER)
logger.propagate = False


def _extra(stage: str, event: str, **more: object) -> dict[str, object]:
    return {"clipflow_stage": stage, "clipflow_event": event, **{f"clipflow_{k}": v for k, v in more.items()}}


@asynccontextmanager
async def stage(name: str, detail: str = "") -> AsyncIterator[None]:
    """``async with stage("transcode", "template x"):`` logs start, end (with its duration) or failure."""
    started = time.monotonic()
    logger.info("stage %s: started%s", name, f" ({detail})" if detail else "", extra=_extra(name, "start"))
    try:
        yield
    except Pause:  # a review suspends the run: it resumes later, nothing failed
        logger.info("stage %s: waiting for a person (the run is paused)", name, extra=_extra(name, "pause"))
        raise
    except BaseException as exc:
        took = time.monotonic() - started
        # the type only: an exception message may quote a provider answer
        logger.warning("stage %s: failed after %.1f s (%s)", name, took, type(exc).__name__,
                       extra=_extra(name, "fail", seconds=took))
        raise
    took = time.monotonic() - started
    logger.info("stage %s: finished in %.1f s", name, took, extra=_extra(name, "end", seconds=took))


def paid(provider: str, action: str, job_id: str) -> None:
    """One paid submission left and was accepted."""
    logger.info("paid: %s %s -> job %s", provider, action, job_id,
                extra=_extra(action, "paid", provider=provider, job_id=job_id))


def reused(provider: str, action: str, job_id: str) -> None:
    """A submission that was already paid for is reused (nothing billed)."""
    logger.info("reused (not paid again): %s %s job %s", provider, action, job_id,
                extra=_extra(action, "reused", provider=provider, job_id=job_id))
