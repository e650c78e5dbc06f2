"""Inter-process locks: flock, and the atomic lock file where flock is refused (simulated)."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from xumx_slicq_v2 import locking
from xumx_slicq_v2.locking import LockError, exclusive_lock


def _contend(lock_file, hold_seconds: float = 0.3) -> list[str]:
    """Two threads take the lock in turn; returns the order of events."""
    events: list[str] = []
    first_holds = threading.Event()

    def first():
        with exclusive_lock(lock_file):
            events.append("first in")
            first_holds.set()
            time.sleep(hold_seconds)
            events.append("first out")

    def second():
        first_holds.wait()
        with exclusive_lock(lock_file):
            events.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return events


def test_flock_serialises(tmp_path):
    assert _contend(tmp_path / "a.lock") == ["first in", "first out", "second in"]
    assert not (tmp_path / "a.lock.held").exists()


@pytest.fixture
def flock_unsupported(monkeypatch):
    """``flock`` fails as on Lustre without ``-o flock``."""
    import fcntl

    def refuse(handle, operation):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", refuse)


def test_fallback_lock_file_serialises_and_names_its_holder(tmp_path, flock_unsupported):
    lock_file = tmp_path / "song.lock"
    held = tmp_path / "song.lock.held"
    with exclusive_lock(lock_file):
        holder = json.loads(held.read_text())
        assert (holder["host"], holder["pid"]) == (socket.gethostname(), os.getpid())
    assert not held.exists()
    assert _contend(lock_file) == ["first in", "first out", "second in"]
    assert not held.exists()


def test_fallback_takes_over_a_dead_holders_lock(tmp_path, flock_unsupported):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    held = tmp_path / "song.lock.held"
    record = {"host": socket.gethostname(), "pid": int(dead.stdout), "token": "x", "since": time.time()}
    held.write_text(json.dumps(record))
    with exclusive_lock(tmp_path / "song.lock", timeout=5):
        assert json.loads(held.read_text())["token"] != "x"
    assert not held.exists()


def test_fallback_says_who_holds_a_lock_of_another_host(tmp_path, flock_unsupported, monkeypatch):
    monkeypatch.setattr(locking, "POLL_SECONDS", 0.01)
    held = tmp_path / "song.lock.held"
    held.write_text(json.dumps({"host": "node042", "pid": 1234, "token": "y", "since": 0}))
    with pytest.raises(LockError, match=rf"{held}: locked by host node042 pid 1234 .* delete {held}"):
        with exclusive_lock(tmp_path / "song.lock", timeout=0.2):
            pass
    assert held.exists()  # not ours to remove


def test_other_flock_errors_are_raised(tmp_path, monkeypatch):
    import fcntl

    def broken(handle, operation):
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(fcntl, "flock", broken)
    with pytest.raises(OSError, match="Bad file descriptor"):
        with exclusive_lock(tmp_path / "x.lock"):
            pass
