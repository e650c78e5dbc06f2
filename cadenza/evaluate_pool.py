"""Scoring song-listener pairs in worker processes, with the rows written in the order one process writes them.

:func:`score_pairs` runs ``score(*task)`` for every task, in this process (one job) or in a pool of ``jobs``
processes (``spawn``: each worker imports what it needs, nothing is inherited but the task). Each finished row is
handed to ``write_row`` as soon as every earlier task's row has been: the scores file grows in plan order, whatever
the order the workers finish in, so it is byte for byte what one job writes, and an interrupted run keeps every row
written so far (resumable as with one job).

Workers ignore SIGINT and SIGTERM: the main process handles them (``xumx_slicq_v2.signals``), kills its workers and
removes its temporary files; on Linux a worker also dies with its main process (``PR_SET_PDEATHSIG``), so a
SIGKILLed run leaves no worker behind. A failing pair stops the run with its own exception, a note naming the pair
added; a worker killed by the system (out of memory) stops it with :class:`WorkerDiedError`.

:func:`auto_jobs` is the ``evaluate.jobs=auto`` rule: as many workers as cores and available memory allow.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)

#: Planned peak memory of one worker scoring a pair (MiB): a fixed part (interpreter, numpy, scipy, numba) plus a
#: part per second of song, per HAAQI engine. ``benchmarks/haaqi.py`` measures a call's peak RSS at about
#: 290 MiB + 14 MiB/s (fast) and 225 MiB + 46 MiB/s (pyclarity); the worker also holds a stem and the enhanced
#: signals (about 2 MiB/s): rounded up.
WORKER_BASE_MIB = 500
WORKER_MIB_PER_SECOND = {"fast": 16, "pyclarity": 50}

#: Share of the available memory the workers may plan to use.
MEMORY_SHARE = 0.8


class WorkerDiedError(RuntimeError):
    """A worker process ended without a result (killed, e.g. by the out-of-memory killer)."""


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity where the system has one, and at most the CPUs of its SLURM
    task (``SLURM_CPUS_PER_TASK``: a cluster without CPU binding leaves the affinity at the whole node)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    slurm_cpus = os.environ.get("SLURM_CPUS_PER_TASK", "")
    return min(cores, int(slurm_cpus)) if slurm_cpus.isdigit() and int(slurm_cpus) > 0 else cores


def available_memory_mib() -> float | None:
    """Memory available to new processes (MiB): ``MemAvailable``, capped by a cgroup v2 limit (containers, SLURM);
    None where neither can be read."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            cgroup = (int(limit) - used) / 2**20
            available = cgroup if available is None else min(available, cgroup)
    except (OSError, ValueError):
        pass
    return available


def worker_memory_mib(song_seconds: float, engine: str) -> float:
    """Planned peak memory of one worker scoring songs of ``song_seconds`` with ``engine`` (MiB)."""
    return WORKER_BASE_MIB + WORKER_MIB_PER_SECOND[engine] * song_seconds


def auto_jobs(song_seconds: float, engine: str) -> int:
    """``evaluate.jobs=auto``: ``min(usable cores, MEMORY_SHARE x available memory / worker_memory_mib)``, at
    least 1 (``song_seconds``: the longest song to score)."""
    cores = usable_cores()
    memory = available_memory_mib()
    if memory is None:
        return cores
    return max(1, min(cores, int(MEMORY_SHARE * memory // worker_memory_mib(song_seconds, engine))))


def _init_worker(parent: int) -> None:
    """Worker start-up: signals are the main process's business; die with it (Linux)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the main process ended before prctl
        os._exit(1)


def _name(task: Sequence) -> str:
    song, listener = task[0], task[1] if len(task) > 1 else None
    return f"song {getattr(song, 'name', song)!r} for listener {getattr(listener, 'id', listener)!r}"


def _noted(err: BaseException, task: Sequence) -> BaseException:
    err.add_note(f"while scoring {_name(task)}")
    log.error("scoring %s failed: %s: %s", _name(task), type(err).__name__, err)
    return err


def score_pairs(
    score: Callable[..., dict],
    tasks: Sequence[Sequence],
    jobs: int,
    write_row: Callable[[dict], None],
    progress: Callable[[int], object] | None = None,
) -> None:
    """``write_row(score(*task))`` for every task, in task order, with ``jobs`` processes (1: in this one).

    ``score`` must be a module-level function and the tasks picklable (``task[0]``, ``task[1]``: the song and
    the listener, named in errors); ``progress(total)``: a tqdm-like bar, updated per finished task.
    """
    bar = progress(len(tasks)) if progress is not None and tasks else None
    try:
        if jobs <= 1 or len(tasks) <= 1:
            for task in tasks:
                try:
                    row = score(*task)
                except Exception as err:
                    raise _noted(err, task) from None
                write_row(row)
                if bar is not None:
                    bar.update(1)
        else:
            _score_in_pool(score, tasks, jobs, write_row, bar)
    finally:
        if bar is not None:
            bar.close()


def _score_in_pool(score, tasks, jobs, write_row, bar) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    executor = ProcessPoolExecutor(
        max_workers=min(jobs, len(tasks)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(os.getpid(),),
    )
    finished = False
    futures: dict = {}
    try:
        futures = {executor.submit(score, *task): index for index, task in enumerate(tasks)}
        pending, ready, next_index = set(futures), {}, 0
        failure: tuple[int, BaseException] | None = None  # the earliest failed task: raised once those before it end
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                index = futures[future]
                try:
                    ready[index] = future.result()
                except BrokenProcessPool as err:
                    died = WorkerDiedError(
                        f"a worker process ended without a result while pairs from {_name(tasks[index])} on were "
                        "being scored (killed by the system, e.g. out of memory?); the rows written so far are "
                        "kept: rerun with a lower evaluate.jobs"
                    )
                    died.__cause__ = err
                    failure = (index, died) if failure is None or index < failure[0] else failure
                    continue
                except Exception as err:
                    failure = (index, err) if failure is None or index < failure[0] else failure
                    continue
                if bar is not None:
                    bar.update(1)
            while next_index in ready:
                write_row(ready.pop(next_index))
                next_index += 1
            if failure is not None:  # finish the tasks before it (their rows are written), drop the others
                pending = {future for future in pending if futures[future] < failure[0]}
        if failure is not None:
            raise _noted(failure[1], tasks[failure[0]])
        finished = True
    finally:
        if not finished:  # an error, SIGTERM or Ctrl-C: stop the workers now
            for future in futures:
                future.cancel()
            for process in list((getattr(executor, "_processes", None) or {}).values()):
                process.kill()
        executor.shutdown(wait=True, cancel_futures=True)
