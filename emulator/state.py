"""All mutable emulator state behind one lock. Job progress is computed lazily from timestamps on read."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emulator.clock import Clock
from emulator.config import DEMO_VID, EmulatorConfig
from emulator.faults import FaultBook
from emulator.ledger import Ledger
from emulator.media import MediaItem, MediaStore, probe, sample_bytes
from emulator.quota import QuotaBook


@dataclass
class VodMedia:
    """A video in a VOD space, addressable by Vid (uploads, transcodes, edits, translations)."""

    vid: str
    space: str
    file_name: str
    data: bytes
    available_at: float = 0.0
    source: str = "upload"
    title: str = ""  # GetMediaList BasicInfo.Title; defaults to the file name
    tags: list[str] = field(default_factory=list)
    created: float = 0.0  # emulated time the media entered the space (GetMediaList CreateTime)

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data).hexdigest()  # noqa: S324 - VOD reports MD5, not a security use

    def source_info(self) -> dict[str, Any]:
        info = probe(self.data)
        ext = self.file_name.rsplit(".", 1)[-1].lower() if "." in self.file_name else ""
        return {
            "Duration": info.duration if info else 0.0,
            "Size": len(self.data),
            "Width": info.width if info else 0,
            "Height": info.height if info else 0,
            "Format": info.format if info else ext,
            "Md5": self.md5,
            "FileName": self.file_name,
            "FileType": "video" if info else "object",
            "Codec": "h264" if info else "",
            "Definition": "360p" if info else "",
            "StoreUri": f"tos-emulator-{self.space}/{self.file_name}",
        }


@dataclass
class PendingCallback:
    due: float  # emulated time
    event: str
    job_id: str
    build: Callable[[], dict[str, Any]]
    sent: bool = False


@dataclass
class CallbackRecord:
    event: str
    job_id: str
    url: str
    ok: bool
    status: int | None
    error: str | None
    payload: dict[str, Any] = field(default_factory=dict)


class EmulatorState:
    def __init__(self, config: EmulatorConfig) -> None:
        self.initial_config = config.model_copy(deep=True)
        self.config = config.model_copy(deep=True)
        self.lock = threading.RLock()
        self.clock = Clock()
        self.quotas = QuotaBook()
        self.ledger = Ledger()
        self.media = MediaStore(secrets.token_bytes(16))
        self.faults = FaultBook(self.config.faults, self.config.fault_seed)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.throttled_answers = 0  # 429s answered since start/reset (benchmarks check they stay at 0)
        self._init_data()

    def _init_data(self) -> None:
        self.vids: dict[str, VodMedia] = {}
        self.jimeng: dict[str, Any] = {}
        self.gateway: dict[str, Any] = {}
        self.uploads: dict[str, Any] = {}
        self.workflows: dict[str, Any] = {}
        self.client_tokens: dict[str, tuple[str, str]] = {}  # ClientToken -> (fingerprint, RunId)
        self.transcode_files: dict[str, Any] = {}
        self.edit_projects: dict[str, Any] = {}
        self.direct_edits: dict[str, Any] = {}
        self.translations: dict[str, Any] = {}
        self.pending_callbacks: list[PendingCallback] = []
        self.callback_log: list[CallbackRecord] = []
        self.calls: Counter[str] = Counter()  # signed Volcengine calls answered, by action (status calls too)
        if self.config.seed_demo_media and self.config.spaces:
            self.add_vid(VodMedia(DEMO_VID, self.config.spaces[0], "demo-sample.mp4", sample_bytes(), source="seed"))

    def reset(self) -> None:
        """Back to the startup config with no jobs, ledger, faults, quota state or clock offset."""
        with self.lock:
            for task in list(self.tasks):
                task.cancel()
            self.tasks.clear()
            self.config = self.initial_config.model_copy(deep=True)
            self.quotas.reset()
            self.ledger.clear()
            self.media.clear()
            self.faults = FaultBook([], self.config.fault_seed)
            self.clock.reset()
            self.throttled_answers = 0
            self._init_data()

    def count_call(self, action: str) -> None:
        with self.lock:
            self.calls[action] += 1

    def count_throttled(self) -> None:
        with self.lock:
            self.throttled_answers += 1

    def now(self) -> float:
        return self.clock.now()

    def add_vid(self, media: VodMedia) -> None:
        with self.lock:
            # A video "is created" when it becomes available (an upload once pulled, a render once done).
            media.created = media.created or media.available_at or self.now()
            media.title = media.title or media.file_name
            self.vids[media.vid] = media
            self.media.put(f"vod/{media.vid}.mp4", MediaItem(media.data, available_at=media.available_at))

    def vid(self, vid: str) -> VodMedia | None:
        with self.lock:
            media = self.vids.get(vid)
            return media if media is not None and media.available_at <= self.now() else None

    def spawn(self, coro: Any) -> None:
        """Run a coroutine on the server loop and keep a reference so reset() can cancel it."""
        task = asyncio.get_running_loop().create_task(coro)
        with self.lock:
            self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        with self.lock:
            self.tasks.discard(task)

    def schedule_callback(self, due: float, event: str, job_id: str, build: Callable[[], dict[str, Any]]) -> None:
        with self.lock:
            self.pending_callbacks.append(PendingCallback(due, event, job_id, build))


def new_id(prefix: str = "", n: int = 30, alphabet: str = "0123456789abcdefghijklmnopqrstuvwxyz") -> str:
    return prefix + "".join(secrets.choice(alphabet) for _ in range(n))


def new_vid() -> str:
    return new_id("v0", 30)


def new_hex(n: int) -> str:
    return secrets.token_hex((n + 1) // 2)[:n]
