"""Who holds something, and whether it still lives: a process identity other processes can check (a pid alone
is reused by the OS, its start time is not), and one daemon thread per purpose that renews what a process holds.

Quota leases and journal records both record their owner this way, so a dead owner's hold is recognised
at once on its own machine and by expiry elsewhere.
"""

from __future__ import annotations

import enum
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) from ``/proc/<pid>/stat``; None without that file."""
    raw = _read(f"/proc/{pid}/stat")
    if not raw or ")" not in raw:
        return None
    fields = raw.rsplit(")", 1)[1].split()  # the command name (in parentheses) may contain spaces
    if len(fields) < 20:
        return None
    return fields[0], fields[19]


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


@dataclass(frozen=True)
class ProcessIdentity:
    """A process as other processes can check it: ``pid`` alone is reused by the OS, the start time is not."""

    host: str
    pid: int
    start: str | None = None  # /proc/<pid>/stat starttime
    boot: str | None = None  # /proc/sys/kernel/random/boot_id
    pidns: str | None = None  # /proc/self/ns/pid: pids of another namespace are not visible here

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "pid": self.pid, "pid_start": self.start, "boot_id": self.boot,
                "pid_namespace": self.pidns}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessIdentity | None:
        host, pid = data.get("host"), data.get("pid")
        if not isinstance(host, str) or not isinstance(pid, int):
            return None
        return cls(host, pid, data.get("pid_start"), data.get("boot_id"), data.get("pid_namespace"))


_me: ProcessIdentity | None = None


def this_process() -> ProcessIdentity:
    """This process (computed again after a fork)."""
    global _me
    if _me is None or _me.pid != os.getpid():
        stat = _proc_stat(os.getpid())
        _me = ProcessIdentity(socket.gethostname(), os.getpid(), stat[1] if stat else None,
                              _read("/proc/sys/kernel/random/boot_id"), _pid_namespace())
    return _me


class Liveness(enum.Enum):
    ALIVE = "alive"
    DEAD = "dead"
    UNKNOWN = "unknown"  # another host or pid namespace: only an expiry can tell


def process_state(who: ProcessIdentity, local_host: str | None = None) -> Liveness:
    """Whether ``who`` still runs, as far as this process can see."""
    me = this_process()
    if who.host != (local_host or me.host):
        return Liveness.UNKNOWN
    if who.pidns and me.pidns and who.pidns != me.pidns:
        return Liveness.UNKNOWN
    if who.boot and me.boot and who.boot != me.boot:
        return Liveness.UNKNOWN  # same host name, another kernel: leave it to the expiry
    if who.pid == me.pid:
        return Liveness.ALIVE if who.start in (None, me.start) else Liveness.DEAD
    try:
        os.kill(who.pid, 0)
    except ProcessLookupError:
        return Liveness.DEAD
    except PermissionError:
        pass  # exists, another user's
    except OSError:
        return Liveness.UNKNOWN
    stat = _proc_stat(who.pid)
    if stat is None:
        if os.path.isdir("/proc/self"):  # /proc exists, the pid vanished meanwhile
            return Liveness.DEAD
        return Liveness.ALIVE  # no /proc: a living pid is all we can tell
    state, start = stat
    if state in ("Z", "X", "x"):  # killed, not yet reaped by its parent
        return Liveness.DEAD
    if who.start is not None and start != who.start:
        return Liveness.DEAD  # the pid now belongs to another process
    return Liveness.ALIVE




@dataclass(eq=False)
class _Job:
    every: float
    retry: float
    beat: Callable[[], bool]
    due: float


class Heartbeat:
    """One daemon thread calling registered ``beat()``s periodically. A beat returns True to be called again
    ``every`` seconds, False to be dropped; one that raises is logged and retried after ``retry`` seconds.
    The thread exits when nothing is registered and starts again on the next ``add``."""

    _instances: weakref.WeakSet[Heartbeat] = weakref.WeakSet()

    def __init__(self, name: str) -> None:
        self.name = name
        self._reset()
        Heartbeat._instances.add(self)

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._jobs: dict[Hashable, _Job] = {}
        self._thread: threading.Thread | None = None

    def add(self, key: Hashable, every: float, beat: Callable[[], bool], retry: float | None = None) -> None:
        with self._cond:
            self._jobs[key] = _Job(every, retry or max(0.05, every / 3), beat, time.monotonic() + every)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def remove(self, key: Hashable) -> None:
        with self._cond:
            self._jobs.pop(key, None)
            self._cond.notify_all()

    def __contains__(self, key: Hashable) -> bool:
        with self._cond:
            return key in self._jobs

    def __len__(self) -> int:
        with self._cond:
            return len(self._jobs)

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._jobs:
                    self._thread = None
                    return
                now = time.monotonic()
                ready = [(k, j) for k, j in self._jobs.items() if j.due <= now]
                if not ready:
                    self._cond.wait(min(j.due for j in self._jobs.values()) - now)
                    continue
            for key, job in ready:
                try:
                    keep: bool | None = bool(job.beat())
                except Exception:  # noqa: BLE001 - a beat must never kill the thread
                    logger.warning("%s: %r failed; retrying in %.1f s", self.name, key, job.retry, exc_info=True)
                    keep = None
                with self._cond:
                    if self._jobs.get(key) is job:
                        if keep is False:
                            del self._jobs[key]
                        else:
                            job.due = time.monotonic() + (job.every if keep else job.retry)


def _after_fork_in_child() -> None:  # threads are not copied by fork: nothing is held or renewed in the child
    for heartbeat in list(Heartbeat._instances):
        heartbeat._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
