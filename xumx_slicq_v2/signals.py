"""SIGTERM as a clean exit for long commands (cluster time limits and preemption send it).

Python's default action for SIGTERM kills the process at once, so pending atomic writes
(`xumx_slicq_v2.audio.atomic_path`) leave their temporary files. Inside `sigterm_exits` the signal raises
``SystemExit(128 + SIGTERM)`` instead: ``finally`` blocks run, temporary files are removed, and the exit status is
143, as for a process killed by the signal. A rerun resumes the work.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


def exit_on_signal(signum: int, _frame: object) -> None:
    """Signal handler: raise ``SystemExit(128 + signum)`` in the main thread."""
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def sigterm_exits() -> Iterator[None]:
    """Turn SIGTERM into `SystemExit` for the duration of the block (then restore the previous handler).

    Outside the main thread, where Python cannot install signal handlers, the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, exit_on_signal)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
