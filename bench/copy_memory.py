"""Peak memory of ``copy_url_to_bucket`` copying a large stream into an S3 bucket.

The source (bytes generated on the fly, never held) and the moto S3 server (which keeps objects in memory)
run in separate processes, so the peak RSS reported is the copying process's own. Target: ≤ 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MIB = 1024 * 1024
TARGET_MB = 150.0


class _Generated(BaseHTTPRequestHandler):
    """GET /?size=N: N bytes of a repeated random 1 MiB block, with Content-Length."""

    protocol_version = "HTTP/1.1"
    block = os.urandom(MIB)

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        size = int(self.path.partition("size=")[2] or 0)
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        view = memoryview(self.block)
        sent = 0
        while sent < size:
            n = min(MIB, size - sent)
            self.wfile.write(view[:n])
            sent += n


def serve_source() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Generated)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listening on port {port}")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MIB


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def _copy(url: str, endpoint: str, size: int, part_size: int) -> tuple[Any, float, float]:
    import boto3
    from botocore.config import Config

    from flows.outputs.storage import copy_url_to_bucket

    s3 = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench",
        region_name="us-east-1", config=Config(s3={"addressing_style": "path"}, max_pool_connections=16),
    )
    await asyncio.to_thread(s3.create_bucket, Bucket="bench")
    ready = _rss_mb()  # interpreter + boto3/httpx/pydantic + one client: what the copy itself adds is on top
    started = time.monotonic()
    stored = await copy_url_to_bucket(url, s3_client=s3, bucket="bench", part_size=part_size)
    seconds = time.monotonic() - started
    head = s3.head_object(Bucket="bench", Key=stored.key)
    assert head["ContentLength"] == size == stored.size, (head["ContentLength"], size)
    assert head["Metadata"].get("sha256") == stored.sha256
    return stored, seconds, ready


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.copy_memory", description=__doc__)
    parser.add_argument("--size-mb", type=int, default=2048, help="bytes to copy, in MiB (default 2048)")
    parser.add_argument("--part-size-mb", type=int, default=8)
    parser.add_argument("--serve-source", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_source:
        serve_source()
        return 0

    size = args.size_mb * MIB
    children: list[subprocess.Popen[str]] = []
    try:
        moto_port = _free_port()
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )
        source = subprocess.Popen(
            [sys.executable, "-m", "bench.copy_memory", "--serve-source"], stdout=subprocess.PIPE, text=True
        )
        children.append(source)
        assert source.stdout is not None
        source_port = int(source.stdout.readline())
        _wait_port(moto_port)

        stored, seconds, baseline = asyncio.run(
            _copy(f"http://127.0.0.1:{source_port}/?size={size}", f"http://127.0.0.1:{moto_port}", size,
                  args.part_size_mb * MIB)
        )
        peak = _peak_rss_mb()
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=30)

    ok = peak <= TARGET_MB
    print(f"copied       {size / MIB:.0f} MiB in {args.part_size_mb} MiB parts → s3://bench/{stored.key}")
    print(f"time         {seconds:.1f} s ({size / MIB / seconds:.1f} MiB/s, incl. server-side copy to final key)")
    print(f"RSS          {baseline:.0f} MB with libraries loaded, peak {peak:.0f} MB (+{peak - baseline:.0f} MB for the copy;"
          f" target ≤ {TARGET_MB:.0f} MB)")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
