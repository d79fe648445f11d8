"""Finding the quota slots of dead holders, so a waiter can release them instead of waiting for their leases to
run out: the registry of leases held by processes of this machine (a dead pid is seen at once) and the shared
heartbeats of holders on any machine (a heartbeat older than the stale limit belongs to a dead holder).
``flows.coordination.leases`` writes both; this module only reads and releases.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from flows.runtime import shared_files
from flows.runtime.processes import Liveness, ProcessIdentity, process_state
from flows.runtime.settings import lock_directory

logger = logging.getLogger("flows.coordination.leases")  # one logger name for the lease machinery

SHARED_PREFIX = "clipflow-leases"
_GONE = (404, 410)


def shared_path(lease_id: UUID | str) -> str:
    """Where a lease's heartbeat lives in the shared storage."""
    return f"{SHARED_PREFIX}/{lease_id}.json"


def registry_directory() -> Path:
    return Path(lock_directory()) / "leases"


def registered_leases() -> list[dict[str, Any]]:
    """The registry's entries (unreadable ones skipped)."""
    entries = []
    try:
        files = sorted(registry_directory().glob("*.json"))
    except OSError:
        return []
    for path in files:
        try:
            entry = json.loads(path.read_text())
            UUID(entry["lease_id"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        entry["path"] = path
        entries.append(entry)
    return entries


def dead_leases(api_url: str) -> list[dict[str, Any]]:
    """Registered leases on the server ``api_url`` whose holder process is dead (this host only)."""
    dead = []
    for entry in registered_leases():
        who = ProcessIdentity.from_json(entry)
        if entry.get("api_url") == api_url and who is not None and process_state(who) is Liveness.DEAD:
            dead.append(entry)
    return dead


async def reap_dead_leases(client: Any) -> list[UUID]:
    """Release the leases of dead processes of this host on ``client``'s server; returns their ids."""
    reaped = []
    for entry in dead_leases(str(client.api_url)):
        lease_id = UUID(entry["lease_id"])
        try:
            await client.release_concurrency_slots_with_lease(lease_id)  # an unknown lease: 204, no-op
        except Exception as exc:  # noqa: BLE001 - try again next time
            logger.warning("could not release lease %s of dead pid %s (%s)", lease_id, entry.get("pid"),
                           type(exc).__name__)
            continue
        Path(entry["path"]).unlink(missing_ok=True)
        logger.info("released the slot of %s held by dead process %s on %s", ", ".join(entry.get("names", [])),
                    entry.get("pid"), entry.get("host"))
        reaped.append(lease_id)
    return reaped


def _parse_time(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def shared_heartbeats(storage: Any) -> list[dict[str, Any]]:
    """The heartbeats in ``storage`` (blocking; unreadable ones skipped), each with its ``"path"``."""
    entries = []
    for path, raw in shared_files.scan(storage, SHARED_PREFIX):
        try:
            entry = json.loads(raw)
            UUID(entry["lease_id"])
            if not isinstance(entry.get("names"), list):
                continue
        except (ValueError, KeyError, TypeError):
            continue
        entry["path"] = path
        entries.append(entry)
    return entries


def stale_heartbeats(
    entries: Sequence[dict[str, Any]], names: Sequence[str], stale: float, now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The heartbeats of leases on any of ``names`` whose holder is dead: a process of this host that is gone,
    or a process elsewhere whose ``renewed_at`` is older than ``stale`` seconds (and at least three of the
    holder's own heartbeat intervals). A live process of this host is never stale, nor is a
    heartbeat without a readable ``renewed_at``."""
    now = now or datetime.now(timezone.utc)
    wanted = set(names)
    found = []
    for entry in entries:
        if not wanted.intersection(entry.get("names", [])):
            continue
        who = ProcessIdentity.from_json(entry)
        state = process_state(who) if who is not None else Liveness.UNKNOWN
        if state is Liveness.ALIVE:
            continue
        if state is Liveness.DEAD:
            found.append(entry)
            continue
        renewed = _parse_time(entry.get("renewed_at"))
        if renewed is None:
            continue
        try:
            own = 3 * float(entry.get("heartbeat_seconds") or 0)
        except (TypeError, ValueError):
            own = 0.0
        if (now - renewed).total_seconds() > max(stale, own):
            found.append(entry)
    return found


async def reap_stale_leases(client: Any, names: Sequence[str], storage: Any, stale: float) -> list[UUID]:
    """Release the leases on ``names`` whose shared heartbeat says their holder is dead (``stale_heartbeats``)
    and remove the heartbeats; returns their ids. An unreachable storage reaps nothing (lease expiry remains)."""
    if storage is None:
        return []
    try:
        entries = await asyncio.to_thread(shared_heartbeats, storage)
    except Exception as exc:  # noqa: BLE001 - the lease expiry still frees it
        logger.warning("cannot list the lease heartbeats (%s: %s); a dead holder elsewhere frees its slot only "
                       "when its lease expires", type(exc).__name__, exc)
        return []
    reaped = []
    for entry in stale_heartbeats(entries, names, stale):
        lease_id = UUID(entry["lease_id"])
        try:
            await client.release_concurrency_slots_with_lease(lease_id)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code not in _GONE:
                logger.warning("could not release stale lease %s (%s)", lease_id, exc.response.status_code)
                continue
        except Exception as exc:  # noqa: BLE001 - try again next time
            logger.warning("could not release stale lease %s (%s)", lease_id, type(exc).__name__)
            continue
        try:
            await asyncio.to_thread(shared_files.delete, storage, entry["path"])
        except Exception as exc:  # noqa: BLE001 - released already; the next waiter removes it
            logger.debug("could not remove heartbeat %s (%s)", entry["path"], type(exc).__name__)
        logger.info("released the slot of %s held by process %s on %s (heartbeat %s)",
                    ", ".join(entry.get("names", [])), entry.get("pid"), entry.get("host"), entry.get("renewed_at"))
        reaped.append(lease_id)
    return reaped
