"""Inter-process exclusive locks, so that parallel jobs do not repeat the same one-off work.

`exclusive_lock` takes an ``flock`` on the lock file. Some cluster file systems refuse ``flock`` (Lustre mounted
without ``-o flock``, NFS without a lock daemon: ``ENOLCK``, ``ENOSYS``, ``EOPNOTSUPP``); there, and where
``fcntl`` does not exist, the lock is a file created atomically (``O_CREAT | O_EXCL``) beside it,
``<lock file>.held``, holding the holder's host and pid. A held file of a process that no longer runs on this
host is stale and taken over; one of another host cannot be checked: the waiter says who holds it and which file
to delete if that job is gone.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

#: ``flock`` errors that mean "not supported on this file system" (anything else is raised).
FLOCK_UNSUPPORTED = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}

#: Seconds between attempts to create the held file, and before the first "waiting for" message.
POLL_SECONDS = 0.1
REPORT_AFTER_SECONDS = 30.0


class LockError(RuntimeError):
    """A lock could not be taken in time (the message names the lock, its holder and what to do)."""


@contextlib.contextmanager
def exclusive_lock(lock_file: str | os.PathLike, timeout: float | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (created if needed) for the duration of the block.

    Args:
        timeout: seconds to wait for the lock (``None``: as long as it takes); then `LockError`.
    """
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as handle:
        if _flock(handle, timeout):
            try:
                yield
            finally:
                _flock_release(handle)
            return
    with held_file_lock(lock_file.with_name(lock_file.name + ".held"), timeout):
        yield


def _flock(handle, timeout: float | None) -> bool:
    """Take the ``flock``; ``False`` where the file system (or the platform) does not support it."""
    try:
        import fcntl
    except ImportError:
        return False
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if deadline is None else fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise LockError(f"{handle.name}: still locked by another process after {timeout:g} s") from None
            time.sleep(POLL_SECONDS)
        except OSError as err:
            if err.errno not in FLOCK_UNSUPPORTED:
                raise
            log.info("%s: flock not supported here (%s); locking with a lock file instead", handle.name, err)
            return False


def _flock_release(handle) -> None:
    import fcntl

    fcntl.flock(handle, fcntl.LOCK_UN)


def holder_record() -> dict[str, object]:
    """What a held file says about its holder: host, pid and a token unique to this acquisition."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "token": uuid.uuid4().hex, "since": time.time()}


@contextlib.contextmanager
def held_file_lock(held: Path, timeout: float | None = None) -> Iterator[None]:
    """The lock-file fallback of `exclusive_lock`: create ``held`` atomically, remove it when done."""
    record = holder_record()
    started = time.monotonic()
    reported = False
    while not _create(held, record):
        holder = _read_holder(held)
        if holder is not None and _is_stale(holder):
            log.warning("%s: removing the stale lock of %s:%s (no longer running)", held, holder["host"], holder["pid"])
            _remove_if_unchanged(held, holder)
            continue
        waited = time.monotonic() - started
        what = f"{held}: locked by {_describe(holder)}; if that job is gone, delete {held}"
        if timeout is not None and waited > timeout:
            raise LockError(f"{what} (waited {waited:.1f} s)")
        if not reported and waited > REPORT_AFTER_SECONDS:
            log.warning("waiting: %s", what)
            reported = True
        time.sleep(POLL_SECONDS)
    try:
        yield
    finally:
        _remove_if_unchanged(held, record)


def _create(held: Path, record: dict) -> bool:
    try:
        descriptor = os.open(held, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as file:
        json.dump(record, file)
    return True


def _read_holder(held: Path) -> dict | None:
    """The holder recorded in ``held``; ``None`` if it vanished or is being written."""
    try:
        holder = json.loads(held.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return holder if isinstance(holder, dict) and {"host", "pid", "token"} <= set(holder) else None


def _is_stale(holder: dict) -> bool:
    """A holder on this host whose process no longer runs."""
    if holder["host"] != socket.gethostname():
        return False
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # runs, under another user
        return False
    return False


def _remove_if_unchanged(held: Path, holder: dict) -> None:
    """Remove ``held`` if it still records ``holder`` (moved aside first, so a new holder's file is never lost)."""
    aside = held.with_name(f"{held.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.removing")
    try:
        os.rename(held, aside)
    except FileNotFoundError:
        return
    if _read_holder(aside) == holder:
        aside.unlink()
        return
    with contextlib.suppress(FileExistsError):  # another holder's file: put it back unless a third took the lock
        os.link(aside, held)
    aside.unlink()


def _describe(holder: dict | None) -> str:
    if holder is None:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder.get("since", 0))))
    return f"host {holder['host']} pid {holder['pid']} since {since}"
