"""The submission journal on both storages it runs on: local disk and an S3 bucket (moto server)."""

from __future__ import annotations

import asyncio
import datetime as dt
import http.server
import multiprocessing
import threading
from typing import Any

import httpx
import pytest
from prefect.filesystems import LocalFileSystem
from prefect_aws import AwsClientParameters, AwsCredentials, S3Bucket

from flows.engine.journal import (
    Journal,
    JournalRecord,
    UnconditionalJournalError,
    fingerprint,
    verify_conditional_writes,
)


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


# --- the conditional writes that decide who pays ---------------------------------------------------------------


def storage_of(kind: str, tmp_path: Any, s3: Any) -> Any:
    return LocalFileSystem(basepath=str(tmp_path)) if kind == "local" else s3_bucket_block(s3)


@pytest.mark.parametrize("storage_kind", ["local", "s3"])
async def test_only_one_create_wins_and_a_stale_swap_loses(storage_kind: str, tmp_path: Any, s3: Any) -> None:
    journal = Journal(storage_of(storage_kind, tmp_path, s3))
    fp = fingerprint("jimeng", "submit", {"prompt": f"race {storage_kind}"}, "acct")

    first = await journal.create(record(fp, state="sent", note="first"))
    second = await journal.create(record(fp, state="sent", note="second"))

    assert first and second is None
    stored, version = await journal.read_versioned(fp)
    assert stored.note == "first"
    refused = await journal.replace(stored.model_copy(update={"state": "refused"}), version)
    assert refused and refused != version
    # A writer still holding the first version (it read before the refusal) cannot overwrite it.
    assert await journal.replace(stored.model_copy(update={"state": "released"}), version) is None
    assert (await journal.read(fp)).state == "refused"
    assert await journal.replace(stored.model_copy(update={"state": "sent"}), refused)


@pytest.mark.parametrize("storage_kind", ["local", "s3"])
async def test_many_racing_creators_one_winner(storage_kind: str, tmp_path: Any, s3: Any) -> None:
    journal = Journal(storage_of(storage_kind, tmp_path, s3))
    fp = fingerprint("gateway", "create", {"prompt": f"crowd {storage_kind}"}, "acct")

    results = await asyncio.gather(*(journal.create(record(fp, state="sent", note=str(n))) for n in range(16)))

    winners = [n for n, version in enumerate(results) if version]
    assert len(winners) == 1, results
    assert (await journal.read(fp)).note == str(winners[0])


def _create_in_child(basepath: str, fp: str, n: int, queue: Any) -> None:
    journal = Journal(LocalFileSystem(basepath=basepath))
    queue.put((n, bool(asyncio.run(journal.create(record(fp, state="sent", note=str(n)))))))


def test_racing_processes_one_winner(tmp_path: Any) -> None:
    """Separate OS processes (what two workers are): exactly one create wins."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    fp = fingerprint("jimeng", "submit", {"prompt": "processes"}, "acct")
    children = [ctx.Process(target=_create_in_child, args=(str(tmp_path), fp, n, queue)) for n in range(6)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    won = dict(queue.get(timeout=5) for _ in children)
    assert sum(won.values()) == 1, won


@pytest.mark.parametrize("content", [b"", b'{"state": "submitted", "provider": "jim', b"\x00\x00", b"[]"])
async def test_a_torn_record_reads_as_outcome_unknown(content: bytes, tmp_path: Any) -> None:
    journal = Journal(LocalFileSystem(basepath=str(tmp_path)))
    fp = fingerprint("jimeng", "submit", {"prompt": "torn"}, "acct")
    path = tmp_path / journal.path(fp)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)

    found = await journal.read(fp)

    assert found is not None and found.unresolved and found.fingerprint == fp
    assert str(journal.path(fp)) in found.note
    assert [r.fingerprint for r in await journal.scan()] == [fp]  # listed for the operator too
    _, version = await journal.read_versioned(fp)
    assert await journal.replace(found.model_copy(update={"state": "released"}), version)  # and can be resolved


async def test_writes_leave_no_partial_file_behind(tmp_path: Any) -> None:
    """A record is written to a temporary name and linked/renamed into place: the record's own path only ever
    holds a complete record (what a reader killed or racing mid-write sees)."""
    journal = Journal(LocalFileSystem(basepath=str(tmp_path)))
    fp = fingerprint("jimeng", "submit", {"prompt": "atomic"}, "acct")
    await journal.create(record(fp, state="sent"))
    await journal.write(record(fp, job_id="t-1"))
    folder = (tmp_path / journal.path(fp)).parent
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) == [f"{fp}.json"]


# --- a storage that ignores the conditions ---------------------------------------------------------------------


class _HeaderStrippingProxy(http.server.BaseHTTPRequestHandler):
    """An S3-compatible endpoint that ignores If-None-Match / If-Match (as some servers do): forwards to moto
    without them."""

    upstream = ""

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("if-none-match", "if-match", "host")}
        answer = httpx.request(self.command, self.upstream + self.path, headers=headers, content=body)
        self.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in ("transfer-encoding", "content-encoding", "content-length", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def ignoring_endpoint(s3: Any) -> Any:
    handler = type("Proxy", (_HeaderStrippingProxy,), {"upstream": s3.server.endpoint_url})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


async def test_storage_that_ignores_conditional_writes_is_refused_naming_it(
    s3: Any, ignoring_endpoint: str, monkeypatch: Any
) -> None:
    server = s3.server
    creds = AwsCredentials(
        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key, region_name=server.region,
        aws_client_parameters=AwsClientParameters(endpoint_url=ignoring_endpoint),
    )
    careless = S3Bucket(bucket_name=s3.bucket, credentials=creds)
    monkeypatch.delenv("CLIPFLOW_JOURNAL_SINGLE_PROCESS", raising=False)

    with pytest.raises(UnconditionalJournalError) as refused:
        await verify_conditional_writes(careless)
    assert s3.bucket in str(refused.value) and "CLIPFLOW_JOURNAL_SINGLE_PROCESS" in str(refused.value)
    assert not s3.client.list_objects_v2(Bucket=s3.bucket).get("Contents"), "the probe left an object behind"

    await verify_conditional_writes(s3_bucket_block(s3))  # moto itself honours them
    await verify_conditional_writes(LocalFileSystem(basepath="/tmp/clipflow-probe-test"))
    monkeypatch.setenv("CLIPFLOW_JOURNAL_SINGLE_PROCESS", "true")
    await verify_conditional_writes(careless)  # accepted explicitly


async def test_preflight_refuses_a_default_result_storage_that_ignores_conditions(
    s3: Any, ignoring_endpoint: str, prefect_api: str, monkeypatch: Any
) -> None:
    """What `clipflow setup` and every run check: the journal's storage (Prefect's default result storage)."""
    from prefect.settings import PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK, temporary_settings

    from flows.stages.preflight_checks import PreflightError, PreflightMemo, check_journal

    server = s3.server
    creds = AwsCredentials(
        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key, region_name=server.region,
        aws_client_parameters=AwsClientParameters(endpoint_url=ignoring_endpoint),
    )
    await S3Bucket(bucket_name=s3.bucket, credentials=creds).save("careless-results", overwrite=True)
    monkeypatch.delenv("CLIPFLOW_JOURNAL_SINGLE_PROCESS", raising=False)

    with temporary_settings({PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK: "s3-bucket/careless-results"}):
        with pytest.raises(PreflightError) as refused:
            await check_journal(PreflightMemo())
    assert "result storage" in str(refused.value) and s3.bucket in str(refused.value)
    assert "If-None-Match" in str(refused.value)
