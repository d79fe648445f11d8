"""Which stages of a production are already bought: the estimate's "reused work costs 0".

A production's fingerprints beyond the clip depend on values known only once it runs (the stored clip, the Vid),
so each run leaves a memo of the fingerprints it used, keyed by its request; an estimate of the same request
reads it and asks the journal, record by record, which of them are bought. The clip is looked up directly.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any

from flows.costs.trace import Note
from flows.runtime import shared_files
from flows.engine.journal import Journal

logger = logging.getLogger("clipflow.costs")
MEMO_PREFIX = "clipflow-costs"


def memo_path(request: Any) -> str:
    digest = hashlib.sha256(request.model_dump_json().encode()).hexdigest()
    return f"{MEMO_PREFIX}/{digest[:2]}/{digest}.json"


async def reused_stages(request: Any) -> frozenset[str]:
    """``stage/detail`` keys of ``request`` already bought (in the journal)."""
    from flows.stages.generate import clip_fingerprint

    journal = await Journal.default()
    fingerprints: dict[str, str] = {}
    try:
        raw = await asyncio.to_thread(shared_files.read_bytes, journal.storage, memo_path(request))
        fingerprints = json.loads(raw) if raw else {}
    except Exception as exc:  # noqa: BLE001 - without a memo the later stages are estimated as new: never under
        logger.info("No cost memo for %s (%s): estimating its later stages as new", request.title, type(exc).__name__)
    fingerprints["generate/clip"] = await clip_fingerprint(request.clip, request.blocks)
    reused = set()
    for key, fp in fingerprints.items():
        record = await journal.read(fp)
        if record is not None and record.bought:
            reused.add(key)
    return frozenset(reused)


async def remember(request: Any, notes: list[Note]) -> None:
    """Keep the fingerprints this run of ``request`` used for the next estimate of it (added to the memo of
    earlier runs: a stage answered from Prefect's cache reaches no ``buy`` and is not noted again)."""
    fingerprints = {f"{n.stage}/{n.item}": n.fingerprint for n in notes}
    if not fingerprints:
        return
    journal = await Journal.default()
    try:
        earlier = await asyncio.to_thread(shared_files.read_bytes, journal.storage, memo_path(request))
        fingerprints = {**(json.loads(earlier) if earlier else {}), **fingerprints}
        await asyncio.to_thread(
            shared_files.write_bytes, journal.storage, memo_path(request), json.dumps(fingerprints).encode()
        )
    except Exception as exc:  # noqa: BLE001 - a memo only makes a later estimate lower; never fail a run for it
        logger.warning("Could not keep the cost memo of %s: %s", request.title, type(exc).__name__)
