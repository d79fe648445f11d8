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

# Reads and listings change nothing, so repeating them is always harmless.
READ_PREFIXES = ("Get", "Query", "List", "Search")


def safe_to_repeat(action: str, sent: Mapping[str, Any] | None = None) -> bool:
    """Whether sending ``action`` with the parameters ``sent`` again can never create a second job.

    An action that is neither a known paid submit nor a read counts as unsafe: a new write someone adds to the
    client is treated as paid until this table says otherwise, which costs a reconciliation, never money.
    """
    if action in PAID_ACTIONS:
        token = PAID_ACTIONS[action]
        return token is not None and bool((sent or {}).get(token))
    return action.startswith(READ_PREFIXES)
