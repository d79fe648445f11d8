"""Copy a provider's result URL into our bucket, streaming, content-addressed.

Provider result URLs are short-lived (Jimeng's live one hour), so the clip is copied into an S3-compatible bucket
(AWS S3, MinIO, Volcengine TOS) as soon as it exists. The copy never holds the file in memory: the body is
streamed with httpx and uploaded part by part with S3 multipart upload to a temporary key, hashing as it goes;
the final key is ``{prefix}{sha256}{suffix}``, so re-running a flow for the same clip stores nothing new.

Only plain S3 calls are used (put/head/copy/delete object, multipart upload, upload-part-copy): no AWS-only
features, so path-style endpoints such as MinIO and TOS work. boto3 is synchronous; every call runs in a worker
thread so the event loop keeps streaming.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import mimetypes
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from providers.errors import (
    InvalidRequestError,
    NotFoundError,
    ServerError,
    ThrottledError,
    TransportError,
)

MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB  # S3 rejects smaller parts (except the last) when the upload is completed
MAX_PARTS = 10_000  # S3 limit on parts per multipart upload
COPY_OBJECT_MAX = 5 * 1024 * MIB  # CopyObject refuses sources over 5 GiB; bigger objects need UploadPartCopy
COPY_PART_SIZE = 512 * MIB  # part size for the multipart server-side copy (≤ 5 GiB per part)
SOURCE = "source"  # ``provider`` name on errors about the source URL

_T = TypeVar("_T")


class StoredObject(BaseModel):
    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    size: int
    sha256: str
    etag: str


class SourceExpiredError(NotFoundError):
    """The source URL answered 401/403/404/410: it expired (signed URLs do) or the object is gone.

    A ``NotFoundError`` (not retryable): fetching the URL again cannot help; re-query the provider for a fresh URL.
    """


def redact_url(url: str) -> str:
    """Scheme, host and path only: signed URLs carry credentials in their query string."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def key_under(key: str, prefix: str) -> bool:
    """``key`` names one object under ``prefix`` and nothing else: no empty, ``.`` or ``..`` segment (some
    S3-compatible stores and proxies normalise paths), no backslash or control character, at most 1024 bytes."""
    if not key.startswith(prefix) or len(key) == len(prefix) or len(key.encode()) > 1024:
        return False
    if "\\" in key or any(ord(c) < 32 or ord(c) == 127 for c in key):
        return False
    return all(part not in ("", ".", "..") for part in key.split("/"))


def s3_error_code(exc: BaseException) -> str:
    """botocore's error code (``NoSuchKey``, ``404``, ``AccessDenied``…), else the exception's type name: what a
    message may say about a failed read (botocore's own text can quote the request)."""
    response = getattr(exc, "response", None)
    code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
    return code or type(exc).__name__


def presigned_get_url(s3_client: Any, bucket: str, key: str, expires: int = 3600) -> str:
    """A GET URL for ``key`` valid ``expires`` seconds (what VOD UploadMediaByUrl fetches)."""
    return s3_client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires
    )


async def _s3(fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))


class ObjectTooLargeError(ValueError):
    """A small object (an input image) is over its limit; ``size`` is its length when the store said it."""

    def __init__(self, size: int | None, limit: int) -> None:
        super().__init__(f"object is larger than {limit} bytes")
        self.size = size
        self.limit = limit


async def read_small_object(s3_client: Any, bucket: str, key: str, *, max_bytes: int) -> bytes:
    """The bytes of an object of at most ``max_bytes`` (an input image, a subtitle file, a manifest).

    A HEAD comes first: an object over the limit is refused by its declared size (``ObjectTooLargeError``)
    without a GET. The GET then asks for at most ``max_bytes + 1`` bytes (a Range), so an object replaced by a
    larger one after the HEAD is refused too, never read whole. boto3's ``ClientError`` (404, AccessDenied...)
    passes through."""

    def read() -> bytes:
        length = s3_client.head_object(Bucket=bucket, Key=key).get("ContentLength")
        if isinstance(length, int) and length > max_bytes:
            raise ObjectTooLargeError(length, max_bytes)
        if length == 0:
            return b""  # a Range on an empty object is answered 416
        response = s3_client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{max_bytes}")
        body = response["Body"]
        try:
            data = body.read(max_bytes + 1)
        finally:
            body.close()
        if len(data) > max_bytes:
            raise ObjectTooLargeError(None, max_bytes)
        return data

    return await _s3(read)


def _content_type(response: httpx.Response, suffix: str) -> str:
    header = response.headers.get("content-type", "").split(";")[0].strip()
    if header and header not in ("application/octet-stream", "binary/octet-stream"):
        return header
    return mimetypes.guess_type(f"x{suffix}")[0] or header or "application/octet-stream"


def _raise_for_source_status(response: httpx.Response, url: str) -> None:
    status = response.status_code
    if status < 400:
        return
    where = redact_url(url)
    kwargs: dict[str, Any] = {"provider": SOURCE, "action": "GET", "http_status": status}
    if status in (401, 403, 404, 410):
        raise SourceExpiredError(f"source URL expired or gone: {where}", **kwargs)
    if status == 429:
        retry_after = response.headers.get("retry-after", "")
        raise ThrottledError(
            f"source throttled: {where}",
            retry_after=float(retry_after) if retry_after.isdigit() else None,
            **kwargs,
        )
    if status >= 500:
        raise ServerError(f"source failed: {where}", **kwargs)
    raise InvalidRequestError(f"source refused the download: {where}", **kwargs)


async def copy_url_to_bucket(
    url: str,
    *,
    s3_client: Any,
    bucket: str,
    prefix: str = "clips/",
    suffix: str = ".mp4",
    part_size: int = 8 * MIB,
    http_client: httpx.AsyncClient | None = None,
    max_parts_in_flight: int = 3,
) -> StoredObject:
    """Stream ``url`` into ``bucket`` at ``{prefix}{sha256}{suffix}`` and describe the stored object.

    Memory stays around ``(max_parts_in_flight + 2) * part_size``. Raises ``SourceExpiredError`` for a
    401/403/404/410 source, ``ThrottledError``/``ServerError`` (retryable) for 429/5xx, ``TransportError``
    (retryable: a GET is safe to repeat) when the download breaks; S3 failures propagate as botocore errors.
    On any failure the multipart upload is aborted, so no orphan parts are left behind.
    """
    if part_size < MIN_PART_SIZE:
        raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3 minimum part size)")
    own_client = http_client is None
    client = http_client or httpx.AsyncClient(
        follow_redirects=True, timeout=httpx.Timeout(30.0, read=120.0)
    )
    try:
        async with client.stream("GET", url) as response:
            _raise_for_source_status(response, url)
            expected = response.headers.get("content-length")
            if response.headers.get("content-encoding", "identity") != "identity":
                expected = None  # the announced length is the compressed one
            if expected and expected.isdigit():
                # Keep under the 10,000-part limit when the size is announced.
                part_size = max(part_size, -(-int(expected) // MAX_PARTS))
            upload = _StreamingUpload(
                s3_client,
                bucket,
                prefix=prefix,
                suffix=suffix,
                content_type=_content_type(response, suffix),
                max_in_flight=max_parts_in_flight,
            )
            try:
                return await upload.run(_body(response, url), part_size, expected)
            except BaseException:
                await upload.abort()
                raise
    except httpx.TransportError as exc:
        raise _transport_error(url, exc) from exc
    finally:
        if own_client:
            await client.aclose()


def _transport_error(url: str, exc: httpx.TransportError) -> TransportError:
    # Retryable whatever the phase: a GET of the source is idempotent.
    return TransportError(
        f"download of {redact_url(url)} failed: {type(exc).__name__}",
        provider=SOURCE,
        action="GET",
        retryable=True,
    )


async def _body(response: httpx.Response, url: str) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_bytes():
            yield chunk
    except httpx.TransportError as exc:
        raise _transport_error(url, exc) from exc


class _StreamingUpload:
    """One copy: parts are uploaded while the next one is being downloaded."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        *,
        prefix: str,
        suffix: str,
        content_type: str,
        max_in_flight: int,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix
        self.suffix = suffix
        self.content_type = content_type
        self.max_in_flight = max(1, max_in_flight)
        self.temp_key = f"{prefix}.incoming/{uuid.uuid4().hex}{suffix}"
        self.upload_id: str | None = None
        self.completed = False
        self.pending: set[asyncio.Task[dict[str, Any]]] = set()
        self.parts: list[asyncio.Task[dict[str, Any]]] = []

    async def run(self, body: AsyncIterator[bytes], part_size: int, expected: str | None) -> StoredObject:
        digest = hashlib.sha256()
        size = 0
        # One reusable buffer; each part is copied out of it once (bytearray drops its head without moving data).
        buffer = bytearray()
        async for chunk in body:
            digest.update(chunk)
            size += len(chunk)
            buffer += chunk
            while len(buffer) >= part_size:
                part = bytes(memoryview(buffer)[:part_size])
                del buffer[:part_size]
                await self._start_part(part)
                del part
        if expected and expected.isdigit() and int(expected) != size:
            raise TransportError(
                f"download ended after {size} of {expected} bytes",
                provider=SOURCE,
                action="GET",
                retryable=True,
            )
        sha256 = digest.hexdigest()
        final_key = f"{self.prefix}{sha256}{self.suffix}"
        tail = bytes(buffer)
        del buffer
        if not self.parts:
            return await self._put_small(final_key, tail, sha256)
        if tail:
            await self._start_part(tail)
        del tail
        etags = await asyncio.gather(*self.parts)
        await _s3(
            self.s3.complete_multipart_upload,
            Bucket=self.bucket,
            Key=self.temp_key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": list(etags)},
        )
        self.completed = True
        return await self._promote(final_key, size, sha256)

    async def _start_part(self, data: bytes) -> None:
        if self.upload_id is None:
            answer = await _s3(
                self.s3.create_multipart_upload,
                Bucket=self.bucket,
                Key=self.temp_key,
                ContentType=self.content_type,
            )
            self.upload_id = answer["UploadId"]
        if len(self.parts) >= MAX_PARTS:
            raise ValueError(f"source exceeds {MAX_PARTS} parts of {len(data)} bytes; raise part_size")
        while len(self.pending) >= self.max_in_flight:
            done, _ = await asyncio.wait(self.pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # surface a failed part now rather than after the whole download
        task = asyncio.create_task(self._upload_part(len(self.parts) + 1, data))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        self.parts.append(task)

    async def _upload_part(self, number: int, data: bytes) -> dict[str, Any]:
        answer = await _s3(
            self.s3.upload_part,
            Bucket=self.bucket,
            Key=self.temp_key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=data,
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}

    async def _existing(self, key: str) -> dict[str, Any] | None:
        try:
            return await _s3(self.s3.head_object, Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def _stored(self, key: str, size: int, sha256: str, etag: str) -> StoredObject:
        return StoredObject(bucket=self.bucket, key=key, size=size, sha256=sha256, etag=etag.strip('"'))

    async def _put_small(self, key: str, data: bytes, sha256: str) -> StoredObject:
        head = await self._existing(key)
        if head is not None and head["ContentLength"] == len(data):
            return self._stored(key, len(data), sha256, head["ETag"])
        answer = await _s3(
            self.s3.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ContentType=self.content_type,
            Metadata={"sha256": sha256},
        )
        return self._stored(key, len(data), sha256, answer["ETag"])

    async def _promote(self, key: str, size: int, sha256: str) -> StoredObject:
        """Temp key → content-addressed key (unless already there), then drop the temp key."""
        head = await self._existing(key)
        if head is not None and head["ContentLength"] == size:
            etag = head["ETag"]
        elif size <= COPY_OBJECT_MAX:
            answer = await _s3(
                self.s3.copy_object,
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": self.temp_key},
                MetadataDirective="REPLACE",
                Metadata={"sha256": sha256},
                ContentType=self.content_type,
            )
            etag = answer["CopyObjectResult"]["ETag"]
        else:
            etag = await self._multipart_copy(key, size, sha256)
        await _s3(self.s3.delete_object, Bucket=self.bucket, Key=self.temp_key)
        return self._stored(key, size, sha256, etag)

    async def _multipart_copy(self, key: str, size: int, sha256: str) -> str:
        answer = await _s3(
            self.s3.create_multipart_upload,
            Bucket=self.bucket,
            Key=key,
            ContentType=self.content_type,
            Metadata={"sha256": sha256},
        )
        copy_id = answer["UploadId"]
        try:
            parts = []
            for number, start in enumerate(range(0, size, COPY_PART_SIZE), start=1):
                end = min(start + COPY_PART_SIZE, size) - 1
                part = await _s3(
                    self.s3.upload_part_copy,
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=copy_id,
                    PartNumber=number,
                    CopySource={"Bucket": self.bucket, "Key": self.temp_key},
                    CopySourceRange=f"bytes={start}-{end}",
                )
                parts.append({"PartNumber": number, "ETag": part["CopyPartResult"]["ETag"]})
            done = await _s3(
                self.s3.complete_multipart_upload,
                Bucket=self.bucket,
                Key=key,
                UploadId=copy_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            await _shielded(
                _s3(self.s3.abort_multipart_upload, Bucket=self.bucket, Key=key, UploadId=copy_id)
            )
            raise
        return done["ETag"]

    async def abort(self) -> None:
        """Best-effort cleanup after a failure; never masks the original error."""
        # Parts run in boto3 threads that cannot be cancelled: let them finish, or one could land after the
        # abort and leave an orphan part. Gathering also retrieves their exceptions.
        await _shielded(asyncio.gather(*self.parts, return_exceptions=True))
        try:
            if self.upload_id is not None and not self.completed:
                await _shielded(
                    _s3(
                        self.s3.abort_multipart_upload,
                        Bucket=self.bucket,
                        Key=self.temp_key,
                        UploadId=self.upload_id,
                    )
                )
            elif self.completed:
                await _shielded(_s3(self.s3.delete_object, Bucket=self.bucket, Key=self.temp_key))
        except Exception:  # noqa: BLE001 - cleanup must not replace the real error
            pass


async def _shielded(awaitable: Any) -> Any:
    """Run cleanup to completion even when the surrounding task is being cancelled."""
    task = asyncio.ensure_future(awaitable)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        return await task
