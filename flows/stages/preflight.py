"""Preflight: everything a production needs that only the outside world can confirm, checked before the first
paid call, with free reads only.

What is checked (each at most once per run, per distinct value: see ``PreflightMemo``):

- the blocks load (``volcengine-credentials``, ``s3-bucket``, and ``video-gateway-credentials`` for gateway clips);
- the bucket exists and is writable: a probe object under ``clipflow-preflight/`` is written and deleted;
- the result storage (the journal's) honours conditional writes: a probe record is created twice and swapped
  with a stale version, and must be refused both times;
- VOD: ``GetMediaList`` (page size 1) in the space: proves the signature is accepted *and* the space exists;
- the transcode template exists: ``GetWorkflowTemplate`` (2023-07-01, vendor doc 4/1108513). A VOD endpoint
  that does not offer that action (answers ``InvalidActionOrVersion``) leaves the template unverified (logged);
- Jimeng: ``CVSync2AsyncGetResult`` of a made-up task id (``not_found`` when the signature is accepted);
- gateway: ``/v1/video/query`` of a made-up id (400 task-not-found when the key is accepted, 401 when not), and
  the model is one listed in the gateway block's ``models`` field;
- a first-frame image given by reference (``clip.image_url``: an http(s) URL, ``s3://bucket/key`` or a key in the
  production's bucket) is fetched (a URL through ``flows.runtime.fetch``: https to public hosts only; a bucket
  image with the bucket block's S3 client) and checked against the provider's rules:
  reachable, format by magic bytes, size, dimensions (``check_image``). A bucket image is read only from the
  production's bucket or one in ``CLIPFLOW_IMAGE_BUCKETS``, decided by name before S3 is asked anything.

A refusal raises ``PreflightError`` (a ``RequestValidationError``: a ``ValueError``, never retried) whose message
names the block, field and value to fix, and never a secret. Nothing is billed: every call above is a read.

A provider that is failing (5xx, throttling) refuses nothing: the read is tried again with backoff, and if it
keeps failing the run stops with ``PreflightUnavailableError`` (retryable) instead of calling good values bad.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from flows.models import BlockRefs
from flows.stages.preflight_checks import (
    PreflightError, PreflightMemo, PreflightUnavailableError, bucket_block, check_bucket, check_gateway, check_jimeng,
    check_journal, check_template, check_vod, current_memo, gateway_block, volcengine_block,
)
from flows.stages.preflight_images import check_image

log = logging.getLogger(__name__)


# --- entry points --------------------------------------------------------------------------------------------


async def preflight(
    refs: BlockRefs,
    *,
    space_name: str | None = None,
    template_id: str | None = None,
    clip: Any = None,
    providers: Sequence[str] | None = None,
    memo: PreflightMemo | None = None,
) -> PreflightMemo:
    """Check what a production (or one clip) needs before its first paid call; raise ``PreflightError``.

    ``clip`` (a ClipSpec) decides the generation provider and the gateway model; ``providers`` ("jimeng",
    "gateway") adds credential checks when there is no clip (``clipflow setup``). ``memo`` defaults to the one
    of the current scope (``preflight_scope``), else a new one: each (what, value) is checked once per memo."""
    memo = memo or current_memo() or PreflightMemo()
    wanted = set(providers or ())
    model = None
    if clip is not None:
        provider = getattr(clip, "provider", "jimeng")
        wanted.add(provider)
        model = getattr(clip, "model", None) if provider == "gateway" else None
    # Cheap and local first: blocks, then the bucket, then one read per provider and per value.
    await check_blocks(refs, gateway="gateway" in wanted, memo=memo)
    await check_bucket(refs, memo)
    await check_journal(memo)
    if clip is not None:
        await check_image(refs, memo, clip)
    await check_vod(refs, memo, space_name)
    if template_id:
        await check_template(refs, memo, template_id)
    if "jimeng" in wanted:
        await check_jimeng(refs, memo)
    if "gateway" in wanted:
        await check_gateway(refs, memo, model)
    return memo


async def check_blocks(refs: BlockRefs, *, gateway: bool, memo: PreflightMemo | None = None) -> PreflightMemo:
    """Only the blocks load (the Volcengine and bucket blocks; the gateway block when ``gateway``)."""
    memo = memo or current_memo() or PreflightMemo()
    await volcengine_block(refs, memo)
    if gateway:
        await gateway_block(refs, memo)
    await bucket_block(refs, memo)
    return memo


async def preflight_blocks(request: Any, memo: PreflightMemo | None = None) -> PreflightMemo:
    """``check_blocks`` for a ProductionRequest: run before anything else loads a block, so a missing one is
    named (block type, name and the ``blocks.*`` field) instead of failing deep inside a stage."""
    return await check_blocks(
        request.blocks, gateway=getattr(request.clip, "provider", "jimeng") == "gateway", memo=memo
    )


async def preflight_production(request: Any, memo: PreflightMemo | None = None) -> PreflightMemo:
    """``preflight`` for a ProductionRequest: its blocks, space, transcode template and clip."""
    return await preflight(
        request.blocks, space_name=request.space_name, template_id=request.transcode.template_id,
        clip=request.clip, memo=memo,
    )


async def preflight_many(
    checks: Sequence[tuple[int, Callable[[PreflightMemo], Awaitable[Any]]]], memo: PreflightMemo | None = None
) -> dict[int, PreflightError]:
    """Run each item's preflight (sharing ``memo``, so each distinct value is read once); the refusals by item.

    A check that could not be made (``PreflightUnavailableError``) refuses no item: it is raised once every check
    has ended, so the whole run stops before anything is paid and can simply be run again."""
    memo = memo or current_memo() or PreflightMemo()
    failed: dict[int, PreflightError] = {}
    unavailable: list[PreflightUnavailableError] = []

    async def one(item: int, check: Callable[[PreflightMemo], Awaitable[Any]]) -> None:
        try:
            await check(memo)
        except PreflightError as exc:
            failed[item] = exc
        except PreflightUnavailableError as exc:
            unavailable.append(exc)

    await asyncio.gather(*(one(item, check) for item, check in checks))
    if unavailable:
        raise unavailable[0]
    return failed


async def verify_setup(name: str, *, gateway: bool) -> list[PreflightError]:
    """What ``clipflow setup`` checks after saving the blocks under ``name``: every problem, not just the first."""
    refs = BlockRefs(volcengine=name, gateway=name, bucket=name)
    memo = PreflightMemo()
    checks: list[Callable[[], Awaitable[Any]]] = [
        lambda: check_bucket(refs, memo),
        lambda: check_journal(memo),
        lambda: check_vod(refs, memo),
        lambda: check_jimeng(refs, memo),
    ]
    if gateway:
        checks.append(lambda: check_gateway(refs, memo))
    problems: list[PreflightError] = []
    for check in checks:
        try:
            await check()
        except PreflightError as exc:
            if not any(str(exc) == str(p) for p in problems):
                problems.append(exc)
        except PreflightUnavailableError as exc:  # not a verdict on the settings, but setup cannot vouch for them
            problems.append(PreflightError(exc.what, f"not verified: {exc.why}; run setup again later",
                                           provider=exc.provider or "unknown"))
    return problems
