"""Preflight of the images a clip starts from: each is fetched once (a URL through ``flows.runtime.fetch``,
https to public hosts only; a bucket key with the bucket block's S3 client, from the production's bucket or one
in ``CLIPFLOW_IMAGE_BUCKETS`` only) and checked against the provider's rules: reachable, format by magic bytes,
size and dimensions.
"""

from __future__ import annotations

import logging
from typing import Any

from flows.models import BlockRefs
from flows.models.rules import bucket_image
from flows.stages.preflight_checks import (
    BUCKET_BLOCK, PreflightError, PreflightMemo, block_label, bucket_block, current_memo,
)
from providers.jimeng.models import IMAGE_MAX_BYTES, image_kind, image_problem


log = logging.getLogger(__name__)


IMAGE_FIELD = "clip.image_url"
# The gateway page states no image limit: clipflow's own cap, so a check never downloads without bound.
GATEWAY_IMAGE_MAX_BYTES = 20 * 1024 * 1024


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.2f} MB"


def _image_limit(provider: str) -> int:
    return IMAGE_MAX_BYTES if provider == "jimeng" else GATEWAY_IMAGE_MAX_BYTES


def _too_large(shown: str, size: int | None, provider: str) -> PreflightError:
    limit = _image_limit(provider)
    rule = f"{limit / 1024 / 1024:.1f} MB" + ("" if provider == "jimeng" else " (clipflow's limit for gateway images)")
    got = _mb(size) if size is not None else f"more than {_mb(limit)}"
    return PreflightError(IMAGE_FIELD, f"{shown}: image must be at most {rule}, got {got}", provider=provider)


def _gateway_image_problem(data: bytes) -> str | None:
    webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    return None if image_kind(data) or webp else "image must be JPEG, PNG or WebP"


async def _fetch_url(url: str, shown: str, provider: str) -> bytes:
    """GET the image as the provider will, without credentials, through the one fetcher of user URLs
    (flows/runtime/fetch.py): https to public hosts only, one deadline, at most the provider's limit."""
    from flows.runtime.fetch import FetchFailed, FetchNotAllowed, FetchTooLarge, fetch

    try:
        return await fetch(url, max_bytes=_image_limit(provider))
    except FetchTooLarge as exc:
        raise _too_large(shown, exc.size, provider) from None
    except FetchNotAllowed as exc:
        raise PreflightError(IMAGE_FIELD, f"{shown}: {exc}", provider=provider) from None
    except FetchFailed as exc:
        # Never what answered (a status, refused, a timeout): a message must not map hosts and ports.
        raise PreflightError(
            IMAGE_FIELD, f"{shown}: download {exc}; the provider downloads it from this URL too", provider=provider,
        ) from None


def _allowed_image_bucket(bucket: str, key: str, own: str, shown: str, provider: str) -> None:
    """A bucket image comes from the production's own bucket or one the operator listed, decided by name before
    S3 is asked anything: the answer is the same whether the bucket exists or not."""
    from flows.outputs.storage import key_under
    from flows.runtime.settings import image_buckets, variable

    if not key_under(key, ""):
        raise PreflightError(
            IMAGE_FIELD, f"{shown} is not allowed: a key must not have empty, '.' or '..' parts, backslashes or "
            "control characters", provider=provider,
        )
    if bucket != own and bucket not in image_buckets():
        raise PreflightError(
            IMAGE_FIELD,
            f"{shown} is not allowed: a first frame in a bucket must be in the production's bucket (a key, or "
            f"s3:// with the bucket of blocks.bucket) or in a bucket the operator lists in "
            f"{variable('image_buckets')}",
            provider=provider,
        )


async def _read_bucket(block: Any, refs: BlockRefs, bucket: str, key: str, shown: str, provider: str) -> bytes:
    from flows.outputs.storage import ObjectTooLargeError, read_small_object

    where = block_label(BUCKET_BLOCK, refs.bucket)
    try:
        return await read_small_object(
            block.credentials.get_s3_client(), bucket, key, max_bytes=_image_limit(provider)
        )
    except ObjectTooLargeError as exc:
        raise _too_large(shown, exc.size, provider) from None
    except Exception as exc:  # noqa: BLE001 - botocore's error types vary by endpoint
        response = getattr(exc, "response", None)
        code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
        if code in ("NoSuchKey", "404", "NotFound"):
            why = f"does not exist (read with the credentials of {where}): upload it first or fix the key"
        elif code == "NoSuchBucket":
            why = f"bucket {bucket!r} does not exist for the credentials of {where}"
        elif code in ("AccessDenied", "403"):
            why = f"cannot be read with the credentials of {where} ({code})"
        else:
            why = f"could not be read with the credentials of {where} ({code or type(exc).__name__})"
        raise PreflightError(IMAGE_FIELD, f"{shown} {why}", provider=provider) from None


async def fetch_image(refs: BlockRefs, ref: str, provider: str = "jimeng", memo: PreflightMemo | None = None) -> bytes:
    """The bytes of the first frame ``ref`` (``clip.image_url``), checked against ``provider``'s rules; raises
    ``PreflightError`` naming the field, the value (a URL without its query) and the rule."""
    memo = memo or current_memo() or PreflightMemo()
    where = bucket_image(ref)
    if where is None:
        from flows.outputs.storage import redact_url

        shown = redact_url(ref)
        data = await _fetch_url(ref, shown, provider)
    else:
        block = await bucket_block(refs, memo)
        bucket = where[0] or block.bucket_name
        shown = f"s3://{bucket}/{where[1]}"
        _allowed_image_bucket(bucket, where[1], block.bucket_name, shown, provider)
        data = await _read_bucket(block, refs, bucket, where[1], shown, provider)
    problem = image_problem(data) if provider == "jimeng" else _gateway_image_problem(data)
    if problem:
        raise PreflightError(IMAGE_FIELD, f"{shown}: {problem}", provider=provider)
    return data


async def check_image(refs: BlockRefs, memo: PreflightMemo, clip: Any) -> None:
    """Each image the clip gives by reference (first frame; a gateway's last frame or reference images) is
    reachable and within the provider's rules (once per image); a refusal names the image's own field."""
    provider = getattr(clip, "provider", "jimeng")
    image_refs = clip.image_refs() if hasattr(clip, "image_refs") else [(IMAGE_FIELD, getattr(clip, "image_url", None))]
    for field, ref in image_refs:
        if not ref:
            continue

        async def run(ref: str = ref) -> None:
            await fetch_image(refs, ref, provider, memo)  # the bytes are not kept: a batch may name many images

        try:
            await memo.once("image", f"{provider}\n{refs.bucket}\n{ref}", run)
        except PreflightError as exc:
            if exc.field != IMAGE_FIELD or field == IMAGE_FIELD:
                raise
            raise PreflightError(field, exc.rule, provider=provider) from None
