"""Which VOD actions buy something, and when sending one of them twice would buy it twice.

One table instead of an ``idempotent=`` flag at every call site: the client looks an action up here to decide
whether a failure that may have happened after the provider accepted the request (a 5xx answer, a read
timeout, a cut connection) is safe to retry, or is an ``OutcomeUnknownError`` the caller must reconcile.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

# Paid action -> the request field that makes a repeat harmless (the provider deduplicates on it), or None when
# the action has no such field. Every one of these creates (and bills) a job on each call it accepts.
PAID_ACTIONS: Mapping[str, str | None] = MappingProxyType({
    "UploadMediaByUrl": None,
    "CreateProject": None,
    "SubmitDirectEditTaskAsync": None,
    "SubmitAITranslationWorkflow": None,
    "StartWorkflow": "ClientToken",
})

# Paid work on an existing AI translation project (no new job, no idempotency token). Each is naturally idempotent
# per project state: Continue only resumes a ProcessSuspended project and Refresh only re-exports a finished one, so
# a repeat while the first is still running is refused. But once the first has finished, a repeated Refresh would
# export (and bill) again, and a lost answer cannot tell "not sent" from "running": so a 5xx / timeout after the
# request left is outcome-unknown, settled by reading the project's Status (ProcessSuspended -> not resumed yet;
# InExporting or a new ProjectVersion -> it was).
PAID_PROJECT_ACTIONS: Mapping[str, str] = MappingProxyType({
    "ContinueAITranslationWorkflow": "resumes a paused project: voice / face translation and the export are billed",
    "RefreshAITranslationProject": "re-exports a finished project (a new output video is produced and billed)",
})

# Writes that bill nothing and set the same state when repeated with the same body (a retry is harmless).
# UpdateAITranslationUtterances overwrites sentences by Id or replaces a subtitle file: last write wins.
IDEMPOTENT_WRITES = frozenset({"UpdateAITranslationUtterances"})

# Reads and listings change nothing, so repeating them is always harmless.
READ_PREFIXES = ("Get", "Query", "List", "Search")


def is_paid(action: str) -> bool:
    """Whether an accepted ``action`` is billed: a paid submit or paid work on an existing project."""
    return action in PAID_ACTIONS or action in PAID_PROJECT_ACTIONS


def safe_to_repeat(action: str, sent: Mapping[str, Any] | None = None) -> bool:
    """Whether sending ``action`` with the parameters ``sent`` again can never create a second job.

    An action that is neither a known paid submit nor a read counts as unsafe: a new write someone adds to the
    client is treated as paid until this table says otherwise, which costs a reconciliation, never money.
    """
    if action in PAID_ACTIONS:
        token = PAID_ACTIONS[action]
        return token is not None and bool((sent or {}).get(token))
    if action in PAID_PROJECT_ACTIONS:
        return False
    return action in IDEMPOTENT_WRITES or action.startswith(READ_PREFIXES)
