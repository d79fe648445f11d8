"""Cache locks that a dead process cannot hold for long.

Prefect's transaction takes the SERIALIZABLE lock of a cached paid task with ``hold_timeout=None`` and holds it
for the whole task body (which may be a 30-minute or 4-hour wait on a provider job), and its
``FileSystemLockManager`` then writes ``"expiration": null``: a lock of a process killed with SIGKILL is waited
on forever. ``SafeFileSystemLockManager`` here implements Prefect's public, runtime-checkable
``prefect.locking.protocol.LockManager`` (structurally: this module does not import Prefect, so a process that
only needs a lock starts fast; no private Prefect API). Its lock files look like Prefect's (``<dir>/<key>.lock``,
``{"holder", "expiration"}``, so a stock manager honours them) plus who holds them (host, pid, the pid's start
time, boot id, pid namespace), and:

- a lock file is created atomically with its content (written to a temporary file, then ``os.link``-ed into
  place, which fails if the lock exists): no reader ever sees an empty or half-written lock of ours;
- it always expires, ``HOLD_SECONDS`` after it was written, whatever ``hold_timeout`` Prefect passes (a given
  ``hold_timeout`` is also honoured as a hard cap);
- a daemon thread of the holding process moves the expiration of every lock the process holds forward every
  ``RENEW_SECONDS`` until the lock is released, so a long healthy wait keeps its lock;
- a waiter treats a lock as free once it has expired, or at once when its holder runs on this host (same host
  name and pid namespace) and its pid is gone, a zombie, or a new process that reused the pid (its start time
  differs). Taking over a stale lock and releasing are serialised by an ``flock`` on ``<dir>/.guard`` so two
  waiters cannot both take it over.

Figures (production defaults):

- ``HOLD_SECONDS = 30``, ``RENEW_SECONDS = 5``: a live holder survives 25 s without a successful renewal (a
  stalled disk or process) before its lock expires.
- Dead holder on this machine: the lock is free at a waiter's next look, ``POLL_SECONDS = 0.1`` s.
- Dead holder on another machine sharing the directory (or in another pid namespace): free when the expiration
  passes, at most ``HOLD_SECONDS + POLL_SECONDS`` = 30.1 s after its last renewal (plus the clock skew between
  the machines), well within the 60 s bound (``WORST_CASE_REMOTE_SECONDS``).
- Files of other writers: content that does not parse (Prefect's own manager touches the file and fills it a
  moment later) is held for ``WRITE_GRACE_SECONDS = 2`` s from its mtime; a parsed file without holder
  process fields and ``"expiration": null`` (stock Prefect, older clipflow) is held until mtime + ``HOLD_SECONDS``.

A lock file directory only works on one machine (or a shared file system with synchronised clocks). Several
machines share a Redis server: ``flows.engine.caching.lock_manager()`` is the one place that picks a manager, and
``CLIPFLOW_LOCK_MANAGER=redis`` with ``CLIPFLOW_LOCK_REDIS_URL=redis://HOST:PORT/DB`` returns
``RedisLeaseLockManager`` (``flows/coordination/redis_locks.py``), the same semantics on prefect-redis: a key with a TTL of ``HOLD_SECONDS`` renewed
every ``RENEW_SECONDS`` by its living holder, so a dead holder's lock on any machine is free at most 30 s after
its last renewal (the stock ``RedisLockManager`` would keep it forever: Prefect gives it no hold timeout).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio

from flows.runtime.processes import Heartbeat, Liveness, ProcessIdentity, at_fork_in_child, process_state, this_process
from flows.runtime.settings import lock_directory, settings, variable
from providers.errors import ProviderError


try:  # POSIX; without it takeovers are not serialised between processes
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

HOLD_SECONDS = 30.0
RENEW_SECONDS = 5.0
POLL_SECONDS = 0.1
WRITE_GRACE_SECONDS = 2.0
BOUND_SECONDS = 60.0  # the requirement: no lock of a dead process blocks a re-run longer than this
WORST_CASE_LOCAL_SECONDS = POLL_SECONDS
WORST_CASE_REMOTE_SECONDS = HOLD_SECONDS + POLL_SECONDS

LOCK_MANAGER_ENV = variable("lock_manager")
REDIS_URL_ENV = variable("lock_redis_url")


# --- the lock manager ---------------------------------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class LockInfo:
    """What a lock file says (``parsed`` False: it could not be read as a lock, e.g. still being written)."""

    path: Path
    holder: str | None
    expiration: datetime | None
    process: ProcessIdentity | None
    deadline: datetime | None
    mtime: float
    parsed: bool
    stamp: tuple[int, int, bytes]  # (inode, mtime_ns, content): "the same file as before"


@dataclass(eq=False)
class _Hold:
    """One lock this process holds and renews."""

    path: Path
    holder: str
    deadline: datetime | None
    acquired_at: str
    released: bool = False
    key: str = ""
    renewed: float = field(default_factory=time.monotonic)  # when a renewal last succeeded


_lock_beats = Heartbeat("clipflow-lock-renewal")
_holds: dict[tuple[str, str], _Hold] = {}  # (path, holder) -> the lock this process holds
_holds_guard = threading.Lock()
at_fork_in_child(_holds.clear)

# Keys of cache locks this process held and lost while holding them (expired and taken over, a Redis restart):
# the task holding one stops before its next paid call (``check_task_lock``). Cleared when it is acquired again.
_lost_keys: set[tuple[str, str]] = set()  # (key, holder)
at_fork_in_child(_lost_keys.clear)


class LockLostError(ProviderError):
    """The cache lock of the running task was lost while held: another worker may be running the same task.
    Retryable: the retry takes the lock again and the journal shows what the other worker bought."""

    retryable = True


def _mark_lost(hold: _Hold) -> None:
    if hold.key and not hold.released:
        with _holds_guard:
            _lost_keys.add((hold.key, hold.holder))


def _mark_held(key: str, holder: str) -> None:
    with _holds_guard:
        _lost_keys.discard((key, holder))


def check_task_lock() -> None:
    """Raise ``LockLostError`` if the running task's cache lock was lost while it held it: stop before any
    further paid call in that task (the journal still guards the window in which the loss went unnoticed)."""
    if not _lost_keys:
        return
    from prefect.transactions import get_transaction

    from flows.runtime.compat import transaction_lock_holder

    transaction = get_transaction()
    key = getattr(transaction, "key", None)
    if key and (key, transaction_lock_holder(transaction)) in _lost_keys:
        raise LockLostError(
            f"the cache lock of this task ({key[:24]}…) was lost while held (expired, or the lock server "
            "restarted); stopping before the next paid call", provider="clipflow", action="lock",
        )


class PollingLocks:
    """The acquire and wait loops of a lock manager, over its ``_try_acquire`` and ``is_locked``: one poll every
    ``poll_seconds`` until the lock is taken (or free) or the timeout is over. ``_run`` runs one check from async
    code: directly by default (a local file), in a thread where a check is network I/O (Redis)."""

    poll_seconds: float

    def _try_acquire(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        raise NotImplementedError

    def is_locked(self, key: str) -> bool:
        raise NotImplementedError

    async def _run(self, check: Callable[..., bool], *args: Any) -> bool:
        return check(*args)

    def acquire_lock(
        self, key: str, holder: str, acquire_timeout: float | None = None, hold_timeout: float | None = None
    ) -> bool:
        deadline = None if acquire_timeout is None else time.monotonic() + acquire_timeout
        while not self._try_acquire(key, holder, hold_timeout):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(self.poll_seconds)
        return True

    async def aacquire_lock(
        self, key: str, holder: str, acquire_timeout: float | None = None, hold_timeout: float | None = None
    ) -> bool:
        deadline = None if acquire_timeout is None else time.monotonic() + acquire_timeout
        while not await self._run(self._try_acquire, key, holder, hold_timeout):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await anyio.sleep(self.poll_seconds)
        return True

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_locked(key):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(self.poll_seconds)
        return True

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while await self._run(self.is_locked, key):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await anyio.sleep(self.poll_seconds)
        return True


class SafeFileSystemLockManager(PollingLocks):
    """File locks in ``lock_files_directory`` that expire unless their living holder renews them (module doc).

    ``hold_seconds``/``renew_seconds``/``poll_seconds`` default to the production figures; ``host`` overrides
    the host name written into (and compared with) lock files, for tests that simulate another machine."""

    def __init__(
        self,
        lock_files_directory: Path | str,
        *,
        hold_seconds: float = HOLD_SECONDS,
        renew_seconds: float = RENEW_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        host: str | None = None,
    ) -> None:
        if not 0 < renew_seconds < hold_seconds:
            raise ValueError("renew_seconds must be positive and shorter than hold_seconds")
        self.lock_files_directory = Path(lock_files_directory).expanduser().resolve()
        self.hold_seconds = float(hold_seconds)
        self.renew_seconds = float(renew_seconds)
        self.poll_seconds = float(poll_seconds)
        self.host = host

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.lock_files_directory)!r}, hold_seconds={self.hold_seconds}, "
                f"renew_seconds={self.renew_seconds})")

    # -- files --

    def lock_path(self, key: str) -> Path:
        """Where the lock of ``key`` lives: the same place as Prefect's ``FileSystemLockManager`` puts it."""
        return self.lock_files_directory.joinpath(key).with_suffix(".lock")

    def _identity(self) -> ProcessIdentity:
        me = this_process()
        return me if self.host is None else ProcessIdentity(self.host, me.pid, me.start, me.boot, me.pidns)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Serialises takeover, renewal and release of locks in this directory (between processes and
        threads: each ``open`` is its own lock owner). Held for a few file operations only."""
        if fcntl is None:  # pragma: no cover
            yield
            return
        self.lock_files_directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_files_directory / ".guard", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # also drops the flock

    def read_lock(self, key: str) -> LockInfo | None:
        return self._read(self.lock_path(key))

    @staticmethod
    def _read(path: Path) -> LockInfo | None:
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                raw = f.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        stamp = (st.st_ino, st.st_mtime_ns, raw)
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except ValueError:  # empty or half-written by a writer that is not atomic
            return LockInfo(path, None, None, None, None, st.st_mtime, False, stamp)
        holder = data.get("holder")
        return LockInfo(
            path=path, holder=holder if isinstance(holder, str) else None,
            expiration=_parse_time(data.get("expiration")), process=ProcessIdentity.from_json(data),
            deadline=_parse_time(data.get("deadline")), mtime=st.st_mtime, parsed=True, stamp=stamp,
        )

    def _is_free(self, info: LockInfo) -> bool:
        now = _utcnow()
        if not info.parsed:
            return time.time() > info.mtime + WRITE_GRACE_SECONDS
        if info.process is not None and process_state(info.process, self.host) is Liveness.DEAD:
            return True
        if info.expiration is not None:
            return info.expiration < now
        return time.time() > info.mtime + self.hold_seconds  # a lock that never expires by itself

    def _payload(self, hold: _Hold) -> bytes:
        expiration = _utcnow() + timedelta(seconds=self.hold_seconds)
        if hold.deadline is not None:
            expiration = min(expiration, hold.deadline)
        return json.dumps({
            "holder": hold.holder,
            "expiration": expiration.isoformat(),
            **self._identity().to_json(),
            "hold_seconds": self.hold_seconds,
            "deadline": hold.deadline.isoformat() if hold.deadline else None,
            "acquired_at": hold.acquired_at,
        }).encode()

    def _temp_file(self, path: Path, payload: bytes) -> Path:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        return tmp

    def _create(self, path: Path, payload: bytes) -> bool:
        """Create the lock file with its content in one step; False if it exists."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._temp_file(path, payload)
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError as exc:  # no hard links on this file system: exclusive create, one write
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
                raise
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            try:
                os.write(fd, payload)
            finally:
                os.close(fd)
            return True
        finally:
            tmp.unlink(missing_ok=True)

    def _remove_if_stale(self, info: LockInfo) -> None:
        with self._guard():
            current = self._read(info.path)
            if current is not None and current.stamp == info.stamp and self._is_free(current):
                info.path.unlink(missing_ok=True)
                logger.info("took over lock %s of %s (expired or holder dead)", info.path.name, info.holder)

    def _renew(self, hold: _Hold) -> bool:
        """The beat: push the expiration forward while this process still holds the lock."""
        with self._guard():
            if hold.released:
                return False
            current = self._read(hold.path)
            me = self._identity()
            if current is None or current.holder != hold.holder or current.process != me:
                logger.warning("lock %s of %s was lost (it expired and was taken over)", hold.path.name,
                               hold.holder)
                _mark_lost(hold)
                return False
            if hold.deadline is not None and _utcnow() >= hold.deadline:
                return False  # the caller's hold_timeout is over: let it expire
            tmp = self._temp_file(hold.path, self._payload(hold))
            os.replace(tmp, hold.path)
            return True

    # -- LockManager --

    def _try_acquire(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        path = self.lock_path(key)
        info = self._read(path)
        if info is not None and not self._is_free(info):
            if info.holder == holder and info.process == self._identity():
                return True  # already ours (Prefect re-acquires as the same holder)
            return False
        if info is not None:
            self._remove_if_stale(info)
        deadline = _utcnow() + timedelta(seconds=hold_timeout) if hold_timeout is not None else None
        hold = _Hold(path, holder, deadline, _utcnow().isoformat(), key=key)
        if not self._create(path, self._payload(hold)):
            return False
        _mark_held(key, holder)
        with _holds_guard:
            _holds[(str(path), holder)] = hold
        _lock_beats.add((str(path), holder), self.renew_seconds, lambda: self._renew(hold),
                        retry=min(1.0, self.renew_seconds))
        return True

    def release_lock(self, key: str, holder: str) -> None:
        """Release and stop renewing. A lock this holder no longer has (it expired and was taken over) is
        logged, not raised: the task's result is already written, failing it now would help nobody."""
        path = self.lock_path(key)
        _lock_beats.remove((str(path), holder))
        with _holds_guard:
            hold = _holds.pop((str(path), holder), None)
        with self._guard():
            if hold is not None:
                hold.released = True  # a renewal already under way sees it under the same guard
            info = self._read(path)
            if info is not None and info.holder == holder:
                path.unlink(missing_ok=True)
                return
        logger.warning("lock %s of %s was no longer held when released (expired and taken over?)", path.name,
                       holder)

    def is_locked(self, key: str) -> bool:
        info = self.read_lock(key)
        return info is not None and not self._is_free(info)

    def is_lock_holder(self, key: str, holder: str) -> bool:
        info = self.read_lock(key)
        return info is not None and info.holder == holder and not self._is_free(info)



def held_lock_count() -> int:
    """How many locks this process is renewing (diagnostics, tests)."""
    return len(_lock_beats)


# --- the factory --------------------------------------------------------------------------------------------
