"""Small JSON files under a prefix of a Prefect ``WritableFileSystem`` that every worker shares.

Prefect's default result storage is a ``LocalFileSystem`` on one machine and a prefect-aws ``S3Bucket`` in
production; both can be listed here (``os.walk`` under ``basepath``; ``list_objects_v2`` under
``bucket_folder``). The submission journal (``flows.engine.journal``) and the lease heartbeats
(``flows.coordination.leases``) keep their files this way.

All functions are synchronous (blocking I/O): call them from a thread (``asyncio.to_thread`` in async code).
They never go through Prefect's ``async_dispatch`` (which would hand back a coroutine when called from a thread
that carries an async flow's run context). Paths are relative to the storage's base path / bucket folder,
with ``/`` separators, as for ``read_path``/``write_path``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

from flows.runtime import compat


class UnlistableStorageError(TypeError):
    """A storage this module cannot list (neither a local directory nor an S3 bucket)."""


class UnconditionalStorageError(TypeError):
    """A storage on which this module cannot make a write that only one process can win."""


def _is_local(storage: Any) -> bool:
    """A directory on this machine (``LocalFileSystem``). A ``RemoteFileSystem``'s basepath is a URL (``s3://``,
    ``memory://`` …), no directory here: it goes through the block's own read_path/write_path."""
    return (hasattr(storage, "basepath") and not hasattr(storage, "bucket_name")
            and "://" not in str(storage.basepath or ""))


def _is_s3(storage: Any) -> bool:
    return hasattr(storage, "bucket_name") and hasattr(storage, "credentials")


def _local_root(storage: Any) -> str:
    return os.path.expanduser(storage.basepath or ".")


def _s3_folder(storage: Any) -> str:
    return (getattr(storage, "bucket_folder", "") or "").strip("/")


def _s3_key(storage: Any, path: str) -> str:
    folder = _s3_folder(storage)
    return f"{folder}/{path}" if folder else path


def is_missing(exc: BaseException) -> bool:
    """Each storage says "no such object" its own way: a missing file, LocalFileSystem's ValueError, S3's 404."""
    if isinstance(exc, FileNotFoundError) or (isinstance(exc, ValueError) and "does not exist" in str(exc)):
        return True
    response = getattr(exc, "response", None)
    error = response.get("Error", {}) if isinstance(response, dict) else {}
    return str(error.get("Code")) in ("NoSuchKey", "404", "NotFound")


def scan(storage: Any, prefix: str, suffix: str = ".json") -> Iterator[tuple[str, bytes]]:
    """``(path, content)`` of every file under ``prefix`` whose name ends with ``suffix`` (none when the prefix
    does not exist). A file deleted between the listing and its read is skipped; any other failure propagates.
    Raises ``UnlistableStorageError`` for other storages."""
    prefix = prefix.strip("/")
    if _is_local(storage):
        root = _local_root(storage)
        for folder, _dirs, files in os.walk(os.path.join(root, prefix)):
            for name in sorted(files):
                if not name.endswith(suffix) or name.startswith("."):  # ".…tmp" files are writes in progress
                    continue
                full = os.path.join(folder, name)
                try:
                    with open(full, "rb") as handle:
                        content = handle.read()
                except FileNotFoundError:
                    continue
                yield os.path.relpath(full, root).replace(os.sep, "/"), content
        return
    if _is_s3(storage):
        client = storage.credentials.get_s3_client()
        folder = _s3_folder(storage)
        key_prefix = _s3_key(storage, prefix) + "/"
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=storage.bucket_name, Prefix=key_prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if not key.endswith(suffix):
                    continue
                try:
                    content = client.get_object(Bucket=storage.bucket_name, Key=key)["Body"].read()
                except Exception as exc:
                    if is_missing(exc):
                        continue
                    raise
                yield (key[len(folder) + 1:] if folder else key), content
        return
    raise UnlistableStorageError(f"cannot list files kept in {type(storage).__name__}")


def read_bytes(storage: Any, path: str) -> bytes | None:
    """The file's content, or None when there is no such file."""
    try:
        if _is_local(storage):
            with open(os.path.join(_local_root(storage), path), "rb") as handle:
                return handle.read()
        if _is_s3(storage):
            client = storage.credentials.get_s3_client()
            return client.get_object(Bucket=storage.bucket_name, Key=_s3_key(storage, path))["Body"].read()
        return compat.storage_read_path(storage, path)
    except Exception as exc:
        if is_missing(exc):
            return None
        raise


def read_json(storage: Any, path: str) -> Any | None:
    raw = read_bytes(storage, path)
    return None if raw is None else json.loads(raw)


def write_bytes(storage: Any, path: str, content: bytes) -> None:
    """Write the whole file (atomically on local disk: readers never see half of it)."""
    if _is_local(storage):
        full = os.path.join(_local_root(storage), path)
        with _record_lock(full):
            _replace_local(full, content)
        return
    if _is_s3(storage):
        client = storage.credentials.get_s3_client()
        client.put_object(Bucket=storage.bucket_name, Key=_s3_key(storage, path), Body=content)
        return
    compat.storage_write_path(storage, path, content)


# Conditional writes: what decides which of several processes pays is a write only one of them can win.
# Locally a create is a hard link of a complete temp file (``os.link`` fails when the name exists) and a
# compare-and-swap runs under an ``flock`` of a side file, comparing the content's hash; on S3 they are
# ``PutObject`` with ``If-None-Match: *`` and ``If-Match: <ETag>``. A version is opaque to callers.


def read_versioned(storage: Any, path: str) -> tuple[bytes | None, str | None]:
    """The file's content and its version (None, None when there is no such file)."""
    try:
        if _is_local(storage):
            with open(os.path.join(_local_root(storage), path), "rb") as handle:
                content = handle.read()
            return content, _digest(content)
        if _is_s3(storage):
            client = storage.credentials.get_s3_client()
            answer = client.get_object(Bucket=storage.bucket_name, Key=_s3_key(storage, path))
            return answer["Body"].read(), answer["ETag"]
    except Exception as exc:
        if is_missing(exc):
            return None, None
        raise
    raise UnconditionalStorageError(f"cannot write conditionally to {type(storage).__name__}")


def create_bytes(storage: Any, path: str, content: bytes) -> str | None:
    """Create the file only if it does not exist: its version, or None when another writer got there first."""
    if _is_local(storage):
        full = os.path.join(_local_root(storage), path)
        tmp = _temp_file(full, content)
        try:
            os.link(tmp, full)
        except FileExistsError:
            return None
        finally:
            os.unlink(tmp)
        return _digest(content)
    if _is_s3(storage):
        client = storage.credentials.get_s3_client()
        try:
            answer = client.put_object(
                Bucket=storage.bucket_name, Key=_s3_key(storage, path), Body=content, IfNoneMatch="*"
            )
        except Exception as exc:
            if _lost_condition(exc):
                return None
            raise
        return answer["ETag"]
    raise UnconditionalStorageError(f"cannot write conditionally to {type(storage).__name__}")


def replace_bytes(storage: Any, path: str, content: bytes, version: str) -> str | None:
    """Replace the file only if it is still at ``version``: the new version, or None when it changed (or is
    gone) meanwhile."""
    if _is_local(storage):
        full = os.path.join(_local_root(storage), path)
        with _record_lock(full):
            try:
                with open(full, "rb") as handle:
                    current = _digest(handle.read())
            except FileNotFoundError:
                return None
            if current != version:
                return None
            _replace_local(full, content)
        return _digest(content)
    if _is_s3(storage):
        client = storage.credentials.get_s3_client()
        try:
            answer = client.put_object(
                Bucket=storage.bucket_name, Key=_s3_key(storage, path), Body=content, IfMatch=version
            )
        except Exception as exc:
            if _lost_condition(exc) or is_missing(exc):
                return None
            raise
        return answer["ETag"]
    raise UnconditionalStorageError(f"cannot write conditionally to {type(storage).__name__}")


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _lost_condition(exc: BaseException) -> bool:
    """S3's answers to a condition that did not hold: 412, or 409 when a concurrent conditional write won."""
    response = getattr(exc, "response", None)
    error = response.get("Error", {}) if isinstance(response, dict) else {}
    status = (response or {}).get("ResponseMetadata", {}).get("HTTPStatusCode") if isinstance(response, dict) else None
    return str(error.get("Code")) in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)


def _temp_file(full: str, content: bytes) -> str:
    os.makedirs(os.path.dirname(full), exist_ok=True)
    tmp = os.path.join(os.path.dirname(full), f".{os.path.basename(full)}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    return tmp


def _replace_local(full: str, content: bytes) -> None:
    os.replace(_temp_file(full, content), full)


@contextlib.contextmanager
def _record_lock(full: str) -> Iterator[None]:
    """An exclusive ``flock`` of ``.<name>.lock`` beside the file: compare-and-swap and plain writes of one
    record never interleave. The kernel drops it with its holder, so a killed process never leaves it held."""
    os.makedirs(os.path.dirname(full), exist_ok=True)
    fd = os.open(os.path.join(os.path.dirname(full), f".{os.path.basename(full)}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_json(storage: Any, path: str, data: Any) -> None:
    write_bytes(storage, path, json.dumps(data).encode())


def delete(storage: Any, path: str) -> None:
    """Remove the file; a missing one is not an error."""
    if _is_local(storage):
        try:
            os.unlink(os.path.join(_local_root(storage), path))
        except FileNotFoundError:
            pass
        return
    if _is_s3(storage):
        client = storage.credentials.get_s3_client()
        client.delete_object(Bucket=storage.bucket_name, Key=_s3_key(storage, path))  # idempotent on S3
        return
    raise UnlistableStorageError(f"cannot delete files kept in {type(storage).__name__}")
