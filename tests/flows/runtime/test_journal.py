"""The submission journal on both storages it runs on: local disk and an S3 bucket (moto server)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from prefect.filesystems import LocalFileSystem
from prefect_aws import AwsClientParameters, AwsCredentials, S3Bucket

from flows.runtime.journal import Journal, JournalRecord, fingerprint


def record(fp: str, **kw: Any) -> JournalRecord:
    return JournalRecord(
        state=kw.pop("state", "submitted"), provider="jimeng", action="CVSync2AsyncSubmitTask", fingerprint=fp,
        at=dt.datetime.now(dt.timezone.utc), **kw,
    )


def s3_bucket_block(s3: Any) -> S3Bucket:
    server = s3.server
    creds = AwsCredentials(
        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key, region_name=server.region,
        aws_client_parameters=AwsClientParameters(endpoint_url=server.endpoint_url),
    )
    return S3Bucket(bucket_name=s3.bucket, credentials=creds)


def test_fingerprint_is_stable_and_sensitive() -> None:
    a = fingerprint("jimeng", "submit", {"prompt": "cat", "seed": 1}, "acct")
    assert a == fingerprint("jimeng", "submit", {"seed": 1, "prompt": "cat"}, "acct")  # key order is irrelevant
    assert a != fingerprint("jimeng", "submit", {"prompt": "cat", "seed": 2}, "acct")
    assert a != fingerprint("jimeng", "submit", {"prompt": "cat", "seed": 1}, "other-account")


@pytest.mark.parametrize("storage_kind", ["local", "s3"])
async def test_journal_round_trip(storage_kind: str, tmp_path: Any, s3: Any) -> None:
    storage = LocalFileSystem(basepath=str(tmp_path)) if storage_kind == "local" else s3_bucket_block(s3)
    journal = Journal(storage)
    fp = fingerprint("jimeng", "submit", {"prompt": storage_kind}, "acct")

    assert await journal.read(fp) is None
    await journal.write(record(fp, state="sent"))
    assert (await journal.read(fp)).state == "sent"
    await journal.write(record(fp, job_id="task-1"))
    assert (await journal.read(fp)).job_id == "task-1"


async def test_unreachable_storage_is_an_error_not_an_empty_journal() -> None:
    creds = AwsCredentials(
        aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1",
        aws_client_parameters=AwsClientParameters(
            endpoint_url="http://127.0.0.1:9", config={"retries": {"max_attempts": 1}}  # nothing listens there
        ),
    )
    journal = Journal(S3Bucket(bucket_name="b", credentials=creds))
    with pytest.raises(Exception) as info:
        await journal.read("0" * 64)
    assert info.type.__name__ in ("EndpointConnectionError", "ConnectionError", "ConnectTimeoutError")
