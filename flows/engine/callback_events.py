"""VOD's completion callbacks as Prefect events: their names, their resources, and waiting for one.

The receiver (``flows/app/callbacks_server.py``) emits every authenticated callback as
``clipflow.callback.<EventType>`` about the job it reports on; a wait (``flows/engine/waiting.py``) subscribes to
the one event of its own job. Both sides take the names from here so they cannot drift apart.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EVENT_PREFIX = "clipflow.callback."
EVENT_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")

# Event types VOD documents (event list, volcengine.com/docs/4/4656; AITranslationComplete: docs/4/1584289).
# Any other well-formed type is accepted too (the vendor adds events), with the generic resource below.
DOCUMENTED_EVENTS = frozenset({
    "FileUploadComplete", "FileUploadByUrlComplete", "MaterialUploadComplete", "UploadGetMetaComplete",
    "DeleteMediaComplete", "DeleteMaterialComplete", "DeleteTranscodesComplete", "WorkflowComplete",
    "ExecutionComplete", "VideoTrackComplete", "UpdateMediaStorageClassComplete", "SyncURIComplete",
    "AITranslationComplete",
})

# The job a callback reports on, by the field that names it: (event type, Data field, resource id prefix).
_JOBS = (
    ("WorkflowComplete", "RunId", "vod.workflow."),
    ("AITranslationComplete", "ProjectId", "vod.translation."),
    ("ExecutionComplete", "RunId", "vod.execution."),
)
# Which status call waits on which callback: (provider, status action) -> (event type, resource id prefix).
_WAITS = {
    ("vod", "GetWorkflowExecution"): ("WorkflowComplete", "vod.workflow."),
    ("vod", "GetAITranslationProject"): ("AITranslationComplete", "vod.translation."),
}

logger = logging.getLogger(__name__)


class CallbackError(ValueError):
    """A callback body clipflow cannot turn into an event (the message names the field)."""


@dataclass(frozen=True)
class CallbackEvent:
    """The Prefect event a job's completion callback becomes."""

    name: str  # clipflow.callback.<EventType>
    resource_id: str  # vod.workflow.<RunId>, vod.translation.<ProjectId>, ...


def event_for(body: Mapping[str, Any]) -> CallbackEvent:
    """The event name and resource of one callback body; ``CallbackError`` names what is missing."""
    event_type = body.get("EventType")
    if not isinstance(event_type, str) or not EVENT_TYPE.fullmatch(event_type):
        raise CallbackError("EventType must be a name of letters and digits (e.g. WorkflowComplete)")
    data = body.get("Data")
    if not isinstance(data, Mapping):
        raise CallbackError("Data must be a JSON object")
    name = EVENT_PREFIX + event_type
    for kind, key, prefix in _JOBS:
        if kind == event_type:
            return CallbackEvent(name, prefix + _id(data, key))
    # Other events are about a media file (Vid), a material (Mid), or at least a space.
    for key, prefix in (("Vid", "vod.media."), ("Mid", "vod.material."), ("SpaceName", "vod.space.")):
        if data.get(key):
            return CallbackEvent(name, prefix + _id(data, key))
    raise CallbackError(f"Data of {event_type} names no RunId, ProjectId, Vid, Mid or SpaceName")


def _id(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", value):
        raise CallbackError(f"Data.{key} must be an id of 1-128 letters, digits or _.:-")
    return value


def callback_for(provider: str, status_action: str, job_id: str) -> CallbackEvent | None:
    """The event that announces the end of the job a status call watches, if VOD sends one for it."""
    found = _WAITS.get((provider, status_action))
    return CallbackEvent(EVENT_PREFIX + found[0], found[1] + job_id) if found else None


_warned = False


def _warn_once(message: str, *args: Any) -> None:
    """One warning per process: when Prefect's event stream is down, every wait would say the same."""
    global _warned
    if _warned:
        logger.debug(message, *args)
    else:
        _warned = True
        logger.warning(message + " (said once per process)", *args)


async def listen(
    event: CallbackEvent, arrived: asyncio.Event, failed: asyncio.Event, ready: asyncio.Event | None = None
) -> None:
    """Set ``arrived`` each time ``event`` is seen; set ``failed`` (and return) if the subscription breaks;
    ``ready`` once subscribed (from then on no callback can be missed).

    The subscriber replays the events of the last minute that Prefect has already written, which does not cover
    a callback still on its way to the database, nor one of a job that ended long before the wait (a resumed
    run): hence the wait reads the state once when subscribed."""
    from prefect.events.clients import get_events_subscriber
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
    from prefect.settings import PREFECT_API_URL

    try:
        if not PREFECT_API_URL.value():  # never start an ephemeral server just to listen
            raise RuntimeError("PREFECT_API_URL is not set")
        wanted = EventFilter(
            event=EventNameFilter(name=[event.name]), resource=EventResourceFilter(id=[event.resource_id])
        )
        async with get_events_subscriber(filter=wanted, reconnection_attempts=2) as subscriber:
            if ready is not None:
                ready.set()
            async for seen in subscriber:
                if seen.event == event.name and seen.resource.id == event.resource_id:
                    arrived.set()
        raise RuntimeError("the event stream closed")
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure means: poll as if callbacks were off
        _warn_once("callback events unavailable (%s: %s); waits poll on the normal schedule", type(exc).__name__, exc)
        failed.set()


__all__ = ["CallbackError", "CallbackEvent", "DOCUMENTED_EVENTS", "EVENT_PREFIX", "callback_for", "event_for", "listen"]
