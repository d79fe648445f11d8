"""copy_url_to_bucket against a real S3 API (moto server) and a local HTTP source."""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from botocore.exceptions import ClientError

from flows.outputs import storage
from flows.outputs.storage import SourceExpiredError, StoredObject, copy_url_to_bucket, presigned_get_url
from providers.errors import NotFoundError, ProviderError, TransportError
from tests.harness import S3Env

MIB = 1024 * 1024
PART = 5 * MIB  # smallest part S3 accepts


def blob(size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return rng.randbytes(size)


class _Source(BaseHTTPRequestHandler):
    """GET /blob?size=N&seed=S[&cut=M][&chunked=1][&pause=SECONDS] serves blob(N, S) (truncated after M bytes,
    pausing after each MiB);
    GET /status/CODE answers CODE."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path.startswith("/status/"):
            self.send_response(int(url.path.rsplit("/", 1)[1]))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size, seed = int(query["size"]), int(query.get("seed", 0))
        data = blob(size, seed)[: int(query.get("cut", size))]
        chunked = "chunked" in query
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(size))  # announced in full even when cut
        self.end_headers()
        for start in range(0, len(data), MIB):
            piece = data[start : start + MIB]
            try:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            except OSError:  # the client went away
                return
            time.sleep(float(query.get("pause", 0)))
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        if len(data) < size:
            self.close_connection = True


@pytest.fixture(scope="module")
def source() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Source)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Spy:
    """Delegates to a boto3 client, counting calls and optionally failing one of them."""

    def __init__(self, client: Any, fail: dict[str, int] | None = None) -> None:
        self._client = client
        self._fail = fail or {}
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            if self._fail.get(name) == self.calls.count(name):
                raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, name)
            return target(*args, **kwargs)

        return call


def keys(s3: S3Env) -> list[str]:
    return [o["Key"] for o in s3.client.list_objects_v2(Bucket=s3.bucket).get("Contents", [])]


def uploads(s3: S3Env) -> list[dict[str, Any]]:
    return s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", [])


def assert_stored(s3: S3Env, stored: StoredObject, data: bytes) -> None:
    sha = hashlib.sha256(data).hexdigest()
    assert stored.sha256 == sha
    assert stored.key == f"clips/{sha}.mp4"
    assert stored.size == len(data)
    assert stored.bucket == s3.bucket
    obj = s3.client.get_object(Bucket=s3.bucket, Key=stored.key)
    assert obj["Body"].read() == data
    assert obj["Metadata"] == {"sha256": sha}
    assert obj["ContentType"] == "video/mp4"
    assert obj["ETag"].strip('"') == stored.etag
    assert keys(s3) == [stored.key], "temporary key left behind"
    assert uploads(s3) == []


async def test_small_file_single_put(s3: S3Env, source: str) -> None:
    spy = Spy(s3.client)
    stored = await copy_url_to_bucket(f"{source}/blob?size=1000&seed=1", s3_client=spy, bucket=s3.bucket)
    assert_stored(s3, stored, blob(1000, 1))
    assert "create_multipart_upload" not in spy.calls


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_multipart_copy(s3: S3Env, source: str, chunked: bool) -> None:
    size = 2 * PART + 123  # three parts, the last one short
    spy = Spy(s3.client)
    url = f"{source}/blob?size={size}&seed=2" + ("&chunked=1" if chunked else "")
    stored = await copy_url_to_bucket(url, s3_client=spy, bucket=s3.bucket, part_size=PART)
    assert_stored(s3, stored, blob(size, 2))
    assert spy.calls.count("upload_part") == 3
    assert spy.calls.count("copy_object") == 1


async def test_same_content_is_deduplicated(s3: S3Env, source: str) -> None:
    url = f"{source}/blob?size={PART + 10}&seed=3"
    first = await copy_url_to_bucket(url, s3_client=s3.client, bucket=s3.bucket, part_size=PART)
    spy = Spy(s3.client)
    second = await copy_url_to_bucket(url, s3_client=spy, bucket=s3.bucket, part_size=PART)
    assert second == first
    assert "copy_object" not in spy.calls  # existing final key with the same size: only the temp key is dropped
    assert spy.calls.count("delete_object") == 1
    assert_stored(s3, second, blob(PART + 10, 3))


async def test_small_file_dedupe_skips_put(s3: S3Env, source: str) -> None:
    url = f"{source}/blob?size=500&seed=4"
    first = await copy_url_to_bucket(url, s3_client=s3.client, bucket=s3.bucket)
    spy = Spy(s3.client)
    assert await copy_url_to_bucket(url, s3_client=spy, bucket=s3.bucket) == first
    assert "put_object" not in spy.calls


@pytest.mark.parametrize("status", [401, 403, 404, 410])
async def test_expired_source_is_typed(s3: S3Env, source: str, status: int) -> None:
    with pytest.raises(SourceExpiredError) as caught:
        await copy_url_to_bucket(
            f"{source}/status/{status}?X-Tos-Signature=secret", s3_client=s3.client, bucket=s3.bucket
        )
    err = caught.value
    assert isinstance(err, NotFoundError) and not err.retryable
    assert err.http_status == status
    assert "secret" not in str(err)  # signed query strings never reach logs
    assert keys(s3) == [] and uploads(s3) == []


async def test_server_error_source_is_retryable(s3: S3Env, source: str) -> None:
    with pytest.raises(ProviderError) as caught:
        await copy_url_to_bucket(f"{source}/status/503", s3_client=s3.client, bucket=s3.bucket)
    assert caught.value.retryable


async def test_broken_download_aborts_multipart_upload(s3: S3Env, source: str) -> None:
    size = 4 * PART
    spy = Spy(s3.client)
    url = f"{source}/blob?size={size}&seed=5&cut={2 * PART + 7}"  # dies after two full parts went up
    with pytest.raises(TransportError) as caught:
        await copy_url_to_bucket(url, s3_client=spy, bucket=s3.bucket, part_size=PART)
    assert caught.value.retryable
    assert spy.calls.count("upload_part") >= 1, "the failure should happen mid-upload"
    assert "abort_multipart_upload" in spy.calls
    assert uploads(s3) == [] and keys(s3) == []


async def test_cancelled_copy_aborts_multipart_upload(s3: S3Env, source: str) -> None:
    spy = Spy(s3.client)
    url = f"{source}/blob?size={4 * PART}&seed=11&pause=0.05"
    task = asyncio.create_task(copy_url_to_bucket(url, s3_client=spy, bucket=s3.bucket, part_size=PART))
    while "upload_part" not in spy.calls:  # cancel once the upload is under way (as a Prefect timeout would)
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "abort_multipart_upload" in spy.calls
    assert uploads(s3) == [] and keys(s3) == []


async def test_s3_failure_aborts_multipart_upload(s3: S3Env, source: str) -> None:
    spy = Spy(s3.client, fail={"upload_part": 2})
    with pytest.raises(ClientError):
        await copy_url_to_bucket(
            f"{source}/blob?size={3 * PART}&seed=6", s3_client=spy, bucket=s3.bucket, part_size=PART
        )
    assert uploads(s3) == [] and keys(s3) == []


async def test_failed_promotion_drops_temp_key(s3: S3Env, source: str) -> None:
    spy = Spy(s3.client, fail={"copy_object": 1})
    with pytest.raises(ClientError):
        await copy_url_to_bucket(
            f"{source}/blob?size={PART + 1}&seed=7", s3_client=spy, bucket=s3.bucket, part_size=PART
        )
    assert uploads(s3) == [] and keys(s3) == []


async def test_large_object_uses_multipart_server_side_copy(
    s3: S3Env, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pretend CopyObject's 5 GiB ceiling is 6 MiB so the UploadPartCopy path runs on a small object.
    monkeypatch.setattr(storage, "COPY_OBJECT_MAX", 6 * MIB)
    monkeypatch.setattr(storage, "COPY_PART_SIZE", PART)
    size = 2 * PART + 99
    spy = Spy(s3.client)
    stored = await copy_url_to_bucket(
        f"{source}/blob?size={size}&seed=8", s3_client=spy, bucket=s3.bucket, part_size=PART
    )
    assert "copy_object" not in spy.calls
    assert spy.calls.count("upload_part_copy") == 3
    assert_stored(s3, stored, blob(size, 8))


async def test_part_size_below_s3_minimum_is_refused(s3: S3Env, source: str) -> None:
    with pytest.raises(ValueError):
        await copy_url_to_bucket(f"{source}/blob?size=10", s3_client=s3.client, bucket=s3.bucket, part_size=MIB)


async def test_presigned_get_url_serves_the_object(s3: S3Env, source: str) -> None:
    stored = await copy_url_to_bucket(f"{source}/blob?size=2048&seed=9", s3_client=s3.client, bucket=s3.bucket)
    url = presigned_get_url(s3.client, s3.bucket, stored.key, expires=60)
    assert "Signature" in url or "X-Amz-Signature" in url
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == blob(2048, 9)


async def test_uses_given_http_client(s3: S3Env, source: str) -> None:
    async with httpx.AsyncClient(base_url=source) as client:
        stored = await copy_url_to_bucket(
            f"{source}/blob?size=10&seed=10", s3_client=s3.client, bucket=s3.bucket, http_client=client,
            prefix="x/", suffix=".bin",
        )
        assert not client.is_closed
    assert stored.key == f"x/{hashlib.sha256(blob(10, 10)).hexdigest()}.bin"
