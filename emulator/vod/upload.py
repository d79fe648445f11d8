"""URL pull uploads: UploadMediaByUrl really downloads each URL; QueryUploadTaskInfo reports the jobs."""

from __future__ import annotations

import hashlib
import logging
import posixpath
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

import httpx

from emulator.clock import phase
from emulator.errors import invalid
from emulator.params import contains_marker
from emulator.registry import Ctx, action
from emulator.state import EmulatorState, VodMedia, new_hex, new_vid
from emulator.vod.common import require_space

log = logging.getLogger("emulator")
VERSION = "2020-08-01"
MAX_URLS = 20
MD5 = re.compile(r"^[0-9a-fA-F]{32}$")


@dataclass
class UploadJob:
    job_id: str
    space: str
    source_url: str
    file_name: str
    title: str
    tags: list[str]
    md5: str | None
    callback_args: str
    created: float
    initial_s: float
    processing_s: float
    fails: bool
    vid: str
    finished_at: float | None = None  # emulated time the download ended
    error: str | None = None

    def state(self, now: float) -> str:
        elapsed = now - self.created
        name, _ = phase(elapsed, [("initial", self.initial_s), ("processing", self.processing_s)], "end")
        if name != "end" or self.finished_at is None:
            return "initial" if name == "initial" else "processing"
        return "failed" if (self.error or self.fails) else "success"


def _file_name(entry: dict[str, Any], url: str, job_id: str) -> str:
    ext = entry.get("FileExtension") or ""
    if ext and not ext.startswith("."):
        ext = "." + ext
    name = entry.get("FileName")
    if not name:
        base = posixpath.basename(unquote(urlparse(url).path))
        name = base if "." in base else f"{job_id}{ext or '.mp4'}"
    elif ext and not name.endswith(ext):
        name += ext
    return str(name)


def _tags(value: Any) -> list[str]:
    """URLSets[].Tags as a comma-separated string or a list (kept for GetMediaList's Tags filter)."""
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    if isinstance(value, list):
        return [str(t) for t in value if str(t).strip()]
    return []


async def _download(state: EmulatorState, job: UploadJob, timeout: float, max_bytes: int) -> None:
    """Fetch the URL for real; on success register the Vid once the nominal processing time is over too."""
    data: bytes | None = None
    try:
        chunks: list[bytes] = []
        total = 0
        async with httpx.AsyncClient(follow_redirects=True, timeout=timeout) as client:
            async with client.stream("GET", job.source_url) as response:
                if response.status_code >= 400:
                    raise RuntimeError(f"download failed: HTTP {response.status_code}")
                async for chunk in response.aiter_bytes():
                    total += len(chunk)
                    if total > max_bytes:
                        raise RuntimeError(f"download larger than {max_bytes} bytes")
                    chunks.append(chunk)
        data = b"".join(chunks)
        if not data:
            raise RuntimeError("download was empty")
        if job.md5 and hashlib.md5(data).hexdigest() != job.md5.lower():  # noqa: S324
            raise RuntimeError("Md5 of the downloaded file does not match the Md5 given")
    except Exception as exc:  # any failure fails the job, never the emulator
        job.error = str(exc) or type(exc).__name__
        log.info("upload %s failed: %s", job.job_id, job.error)
    with state.lock:
        job.finished_at = state.now()
        if job.error is None and not job.fails and data is not None:
            ready = max(job.finished_at, job.created + job.initial_s + job.processing_s)
            state.add_vid(VodMedia(job.vid, job.space, job.file_name, data, available_at=ready, source="upload",
                                   title=job.title, tags=job.tags))


@action("UploadMediaByUrl", VERSION)
async def upload_media_by_url(ctx: Ctx) -> dict[str, Any]:
    space = require_space(ctx, "SpaceName")
    url_sets = ctx.params.json("URLSets", list, mode="string", required=True)
    if not 1 <= len(url_sets) <= MAX_URLS:
        raise invalid(f"URLSets must hold 1 to {MAX_URLS} entries.")
    jobs: list[UploadJob] = []
    for entry in url_sets:
        if not isinstance(entry, dict):
            raise invalid("Each URLSets entry must be an object.")
        url = entry.get("SourceUrl")
        if not isinstance(url, str) or not url:
            raise invalid("URLSets[].SourceUrl is required.", "MissingParameter")
        if urlparse(url).scheme not in ("http", "https"):
            raise invalid(f"SourceUrl must be an http(s) URL: {url}")
        md5 = entry.get("Md5")
        if md5 and not (isinstance(md5, str) and MD5.match(md5)):
            raise invalid("URLSets[].Md5 must be 32 hex characters.")
        job_id = new_hex(32)
        file_name = _file_name(entry, url, job_id)
        jobs.append(UploadJob(
            job_id=job_id, space=space, source_url=url, file_name=file_name,
            title=str(entry.get("Title") or file_name), tags=_tags(entry.get("Tags")), md5=md5 or None,
            callback_args=str(entry.get("CallbackArgs") or ""), created=ctx.now,
            initial_s=ctx.scaled("upload_initial"), processing_s=ctx.scaled("upload_processing"),
            fails=contains_marker(entry, ctx.config.fail_marker), vid=new_vid(),
        ))
    fp = ctx.fingerprint()
    with ctx.state.lock:
        for job in jobs:
            ctx.state.uploads[job.job_id] = job
            ctx.bill(job.job_id, fp)
    for job in jobs:
        ctx.state.spawn(_download(ctx.state, job, ctx.config.download_timeout, ctx.config.max_download_bytes))
    return {"Data": [{"JobId": j.job_id, "SourceUrl": j.source_url} for j in jobs]}


@action("QueryUploadTaskInfo", VERSION)
async def query_upload_task_info(ctx: Ctx) -> dict[str, Any]:
    job_ids = ctx.params.list_of_str("JobIds", required=True)
    if len(job_ids) > MAX_URLS:
        raise invalid(f"JobIds accepts at most {MAX_URLS} ids.")
    found, missing_ids = [], []
    with ctx.state.lock:
        for job_id in job_ids:
            job: UploadJob | None = ctx.state.uploads.get(job_id)
            if job is None:
                missing_ids.append(job_id)
                continue
            state = job.state(ctx.now)
            media = ctx.state.vids.get(job.vid) if state == "success" else None
            found.append({
                "JobId": job.job_id,
                "SourceUrl": job.source_url,
                "State": state,
                "Vid": job.vid if media else "",
                "SpaceName": job.space,
                "SourceInfo": media.source_info() if media else {},
                "CallbackArgs": job.callback_args,
            })
    return {"Data": {"MediaInfoList": found, "NotExistJobIds": missing_ids}}
