"""Money incidents as Prefect events, so an Automation can page someone.

Every event concerns one paid request: the resource id is ``clipflow.paid-request.<fingerprint>``, with the
provider and action as resource labels. Event names:

- ``clipflow.paid-request.outcome-unknown``: a paid request left and its answer was lost (timeout, cut, 5xx).
- ``clipflow.paid-request.reconciled``: a lost answer was resolved through the provider (token or listing).
- ``clipflow.paid-request.lost-answer``: the provider offers no way back: an operator must attach or release.
- ``clipflow.paid-request.duplicate-refused``: a re-run found an unresolved record and did not pay again.
- ``clipflow.journal.<action>`` (``.release``, ``.attach``): an operator changed a record with ``clipflow
  journal``; same resource, with who did it and the record's previous and new state in the payload.
- ``clipflow.budget.exhausted``: a batch's allowance of paid submissions is used up.

Emitting never fails the caller: an event lost to a network blip must not turn a paid job into a failed task.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect.events import emit_event

logger = logging.getLogger(__name__)

PREFIX = "clipflow.paid-request"


def paid_request(event: str, *, fingerprint: str, provider: str, action: str, **payload: Any) -> None:
    emit(
        f"{PREFIX}.{event}",
        resource={
            "prefect.resource.id": f"{PREFIX}.{fingerprint}",
            "prefect.resource.name": f"{provider} {action} {fingerprint[:12]}",
            "clipflow.provider": provider,
            "clipflow.action": action,
        },
        payload={"fingerprint": fingerprint, **payload},
    )


def operator_action(
    action: str, *, fingerprint: str, provider: str, provider_action: str, **payload: Any
) -> None:
    """An operator changed a journal record (the audit trail keeps the same facts)."""
    emit(
        f"clipflow.journal.{action}",
        resource={
            "prefect.resource.id": f"{PREFIX}.{fingerprint}",
            "prefect.resource.name": f"{provider} {provider_action} {fingerprint[:12]}",
            "clipflow.provider": provider,
            "clipflow.action": provider_action,
        },
        payload={"fingerprint": fingerprint, **payload},
    )


def budget_exhausted(limit: int, spent: int, *, provider: str, action: str) -> None:
    emit(
        "clipflow.budget.exhausted",
        resource={"prefect.resource.id": "clipflow.budget", "clipflow.provider": provider, "clipflow.action": action},
        payload={"limit": limit, "spent": spent},
    )


def emit(event: str, *, resource: dict[str, str], payload: dict[str, Any]) -> None:
    try:
        emit_event(event=event, resource=resource, payload={k: _plain(v) for k, v in payload.items()})
    except Exception as exc:  # noqa: BLE001 - see the module docstring
        logger.warning("could not emit %s (%s)", event, type(exc).__name__)


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
