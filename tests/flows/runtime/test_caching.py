"""The lock manager survives the moment a competing process has created its lock file but not yet filled it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from flows.runtime.caching import SafeFileSystemLockManager


def test_a_lock_file_still_being_written_is_waited_for(tmp_path: Path) -> None:
    manager = SafeFileSystemLockManager(tmp_path)
    lock_file = tmp_path / "key.lock"
    lock_file.touch()  # what Prefect's acquire_lock does first, before writing the holder

    def finish_writing() -> None:
        time.sleep(0.1)
        lock_file.write_bytes(b'{"holder": "other-worker", "expiration": null}')

    writer = threading.Thread(target=finish_writing)
    writer.start()
    assert manager.is_locked("key")  # Prefect's own manager raises ValueError here
    assert not manager.is_lock_holder("key", "me")
    writer.join()


def test_an_abandoned_empty_lock_file_expires(tmp_path: Path) -> None:
    manager = SafeFileSystemLockManager(tmp_path)
    (tmp_path / "key.lock").touch()  # its writer died between touch and write
    assert manager.is_locked("key")
    assert manager.wait_for_lock("key", timeout=5)
    assert manager.acquire_lock("key", holder="me", acquire_timeout=5)
    assert manager.is_lock_holder("key", "me")
