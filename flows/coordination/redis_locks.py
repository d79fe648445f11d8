"""Cache locks in Redis for workers on several machines (``CLIPFLOW_LOCK_MANAGER=redis``): the semantics of
``flows.coordination.locks.SafeFileSystemLockManager`` (a lock expires unless its living holder renews it), shared
through one Redis server."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import anyio

from flows.runtime import compat
from flows.coordination.locks import (
    HOLD_SECONDS, LOCK_MANAGER_ENV, POLL_SECONDS, REDIS_URL_ENV, RENEW_SECONDS, PollingLocks, _Hold, _holds_guard,
    _lock_beats, _mark_held, _mark_lost, _utcnow, logger,
)
from flows.runtime.processes import at_fork_in_child

REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel")

# Token-checked one-step scripts: only the holder's own token moves or drops the key, so a holder whose lock
# expired and was taken over cannot extend or delete the new holder's lock.
_RENEW_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def check_redis_url(url: str) -> str:
    """``url`` if it can name a Redis server, else a ValueError naming the variable and the rule (never the URL
    itself: it may carry a password)."""
    if not url:
        raise ValueError(f"{LOCK_MANAGER_ENV}=redis needs {REDIS_URL_ENV}=redis://HOST:PORT/DB")
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if scheme not in REDIS_SCHEMES:
        raise ValueError(f"{REDIS_URL_ENV}: must start with one of {', '.join(s + '://' for s in REDIS_SCHEMES)} "
                         f"(got {scheme + '://' if scheme else 'no scheme'})")
    if scheme in ("redis", "rediss"):
        parts = urlparse(url)
        try:
            parts.port
        except ValueError:
            raise ValueError(f"{REDIS_URL_ENV}: the port must be a number from 1 to 65535") from None
        if not parts.hostname:
            raise ValueError(f"{REDIS_URL_ENV}: needs a host (redis://HOST:PORT/DB)")
        db = parts.path.lstrip("/")
        if db and not db.isdigit():
            raise ValueError(f"{REDIS_URL_ENV}: the database (path) must be a number, e.g. redis://HOST:6379/0")
    return url


def _is_redis_connection_error(exc: BaseException) -> bool:
    from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError

    return isinstance(exc, (RedisConnectionError, RedisTimeoutError))


def _masked(url: str) -> str:
    parts = urlparse(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


_redis_holds: dict[tuple[str, str, str], _Hold] = {}  # (server, lock name, holder) -> held and renewed here
at_fork_in_child(_redis_holds.clear)


class RedisLeaseLockManager(PollingLocks):
    """Cache locks in Redis that expire unless their living holder renews them: the semantics of
    ``SafeFileSystemLockManager`` for workers on several machines.

    Built on prefect-redis (its ``RedisLockManager`` makes the clients from the URL, Sentinel included, and
    names the keys: ``lock:<key>`` holding the holder as token, so a stock ``RedisLockManager`` sees and
    honours our locks). Its acquire/release are not used as they are, because for a cached task:

    - Prefect passes ``hold_timeout=None`` and the stock manager then sets no TTL: the lock of a process killed
      mid-task never expires. Here every lock is ``SET NX PX hold_seconds`` and a daemon thread of the holding
      process moves the TTL forward every ``renew_seconds`` while the lock is held; a dead holder's lock (any
      machine) is free ``hold_seconds`` after its last renewal (30 s). A given ``hold_timeout`` is a hard cap.
    - Prefect's async transaction acquires with ``aacquire_lock`` and releases with the sync ``release_lock``:
      the stock manager then calls an asyncio lock's ``release()`` without awaiting it, and the key stays.
      Here both paths use the sync client with token-checked scripts (an asyncio client is also bound to the
      event loop it was first used on, and Prefect runs tasks on several loops).
    - The stock ``wait_for_lock`` takes the lock itself (without TTL) to see it is free; here it only looks.
    - Releasing a lock that expired and was taken over, or while Redis is unreachable, logs a warning instead of
      raising: the task's result is written by then, failing it would help nobody (the TTL frees it).
    - A lock lost while held (a Redis restart drops every key: no persistence) is noticed at the next renewal;
      the task then stops before its next paid call (``locks.check_task_lock``). The journal, not the lock,
      keeps two workers from paying twice in the seconds before that.
    """

    def __init__(
        self,
        url: str,
        *,
        hold_seconds: float = HOLD_SECONDS,
        renew_seconds: float = RENEW_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        if not 0 < renew_seconds < hold_seconds:
            raise ValueError("renew_seconds must be positive and shorter than hold_seconds")
        self.url = check_redis_url(url)
        self.hold_seconds = float(hold_seconds)
        self.renew_seconds = float(renew_seconds)
        self.poll_seconds = float(poll_seconds)
        self._down_since: float | None = None  # since when Redis has been unreachable (monotonic)
        self._connect()

    def _connect(self) -> None:
        from prefect_redis.locking import RedisLockManager  # imports Prefect: only when Redis is chosen

        self.stock = RedisLockManager(connection_url=self.url)
        self.client = self.stock.client
        self._renew_script = self.client.register_script(_RENEW_SCRIPT)
        self._release_script = self.client.register_script(_RELEASE_SCRIPT)

    def __getstate__(self) -> dict[str, Any]:  # Prefect may pickle a cache policy: settings, not connections
        return {k: getattr(self, k) for k in ("url", "hold_seconds", "renew_seconds", "poll_seconds")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._down_since = None
        self._connect()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({_masked(self.url)!r}, hold_seconds={self.hold_seconds}, "
                f"renew_seconds={self.renew_seconds})")

    def lock_name(self, key: str) -> str:
        return compat.redis_lock_name(self.stock, key)

    def _hold_key(self, key: str, holder: str) -> tuple[str, str, str]:
        return (_masked(self.url), self.lock_name(key), holder)

    def _ttl_ms(self, hold: _Hold) -> int:
        seconds = self.hold_seconds
        if hold.deadline is not None:
            seconds = min(seconds, (hold.deadline - _utcnow()).total_seconds())
        return int(seconds * 1000)

    def _renew(self, hold_key: tuple[str, str, str], hold: _Hold) -> bool:
        """The beat: push the TTL forward while this process still holds the lock. A lock found gone (expired
        and taken over, or a Redis restart without persistence dropped it), or not renewable for a whole hold
        (Redis unreachable: its TTL has run out there), is lost: the task stops before its next paid call."""
        if hold.released:
            return False
        ttl = self._ttl_ms(hold)
        if ttl <= 0:
            return False  # the caller's hold_timeout is over: let it expire
        try:
            renewed = self._renew_script(keys=[hold_key[1]], args=[hold.holder, ttl])
        except Exception:
            if time.monotonic() - hold.renewed < self.hold_seconds:
                raise  # the heartbeat retries soon; the TTL in Redis has not run out yet
            logger.warning("lock %s of %s is lost: Redis unreachable for a whole hold (%.0f s)", hold_key[1],
                           hold.holder, self.hold_seconds)
            _mark_lost(hold)
            return False
        if not renewed:
            if not hold.released:
                logger.warning("lock %s of %s was lost (expired and taken over, or Redis restarted)", hold_key[1],
                               hold.holder)
                _mark_lost(hold)
            return False
        hold.renewed = time.monotonic()
        return True

    def _try_acquire(self, key: str, holder: str, hold_timeout: float | None) -> bool:
        name = self.lock_name(key)
        hold_key = self._hold_key(key, holder)
        with _holds_guard:
            if hold_key in _redis_holds:
                return True  # already ours (Prefect re-acquires as the same holder)
        deadline = _utcnow() + timedelta(seconds=hold_timeout) if hold_timeout is not None else None
        hold = _Hold(Path(name), holder, deadline, _utcnow().isoformat(), key=key)
        ttl = self._ttl_ms(hold)
        if ttl <= 0 or not self._while_reachable(self.client.set, name, holder, nx=True, px=ttl, unreachable=False):
            return False
        _mark_held(key, holder)
        with _holds_guard:
            _redis_holds[hold_key] = hold
        _lock_beats.add(hold_key, self.renew_seconds, lambda: self._renew(hold_key, hold),
                        retry=min(1.0, self.renew_seconds))
        return True

    def _while_reachable(self, call: Callable[..., Any], *args: Any, unreachable: Any, **kwargs: Any) -> Any:
        """``call``, or ``unreachable`` while Redis cannot be reached (a restart): the acquire and wait loops go
        on polling instead of failing the task. Unreachable for longer than a hold, it is an error after all."""
        try:
            answer = call(*args, **kwargs)
        except Exception as exc:
            if not _is_redis_connection_error(exc):
                raise
            now = time.monotonic()
            if self._down_since is None:
                self._down_since = now
                logger.warning("Redis at %s unreachable (%s); waiting up to %.0f s for it", _masked(self.url),
                               type(exc).__name__, self.hold_seconds)
            if now - self._down_since > self.hold_seconds:
                raise
            return unreachable
        self._down_since = None
        return answer

    # -- LockManager --

    async def _run(self, check: Callable[..., bool], *args: Any) -> bool:
        return await anyio.to_thread.run_sync(check, *args)  # a check is a network round trip

    def release_lock(self, key: str, holder: str) -> None:
        hold_key = self._hold_key(key, holder)
        _lock_beats.remove(hold_key)
        with _holds_guard:
            hold = _redis_holds.pop(hold_key, None)
        if hold is not None:
            hold.released = True
        try:
            released = self._release_script(keys=[hold_key[1]], args=[holder])
        except Exception as exc:  # noqa: BLE001 - the task has finished: failing it now would lose its result
            logger.warning("lock %s of %s not released (%s: Redis unreachable); it expires in at most %.0f s",
                           hold_key[1], holder, type(exc).__name__, self.hold_seconds)
            return
        if not released:
            logger.warning("lock %s of %s was no longer held when released (expired and taken over?)",
                           hold_key[1], holder)

    def is_locked(self, key: str) -> bool:
        return bool(self._while_reachable(self.client.exists, self.lock_name(key), unreachable=True))

    def is_lock_holder(self, key: str, holder: str) -> bool:
        """Whether ``holder`` holds the lock; while Redis is unreachable, as far as this process knows (a lock it
        took and has not found lost)."""
        with _holds_guard:
            ours = self._hold_key(key, holder) in _redis_holds
        token = holder.encode()
        return self._while_reachable(self.client.get, self.lock_name(key), unreachable=token if ours else None) == token
