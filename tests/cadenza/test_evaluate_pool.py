"""cadenza.evaluate_pool: rows in task order whatever the order workers finish in; errors name the task."""

from __future__ import annotations

import subprocess

import pytest

from cadenza.evaluate_pool import score_pairs


def _tasks(delays):
    # subprocess.getoutput: a module-level function the spawned workers can import; task i prints i after a delay
    return [(f"sleep {delay}; echo {index}",) for index, delay in enumerate(delays)]


@pytest.mark.parametrize("jobs", [1, 3])
def test_rows_are_written_in_task_order(jobs):
    rows, bars = [], []

    class Bar:
        def __init__(self, total):
            self.total, self.n = total, 0
            bars.append(self)

        def update(self, n):
            self.n += n

        def close(self):
            pass

    score_pairs(subprocess.getoutput, _tasks([1.0, 0.0, 0.3, 0.0, 0.0]), jobs, rows.append, progress=Bar)
    assert rows == ["0", "1", "2", "3", "4"]
    assert [(bar.total, bar.n) for bar in bars] == [(5, 5)]


def test_failing_task_is_named_and_earlier_rows_kept():
    rows = []
    tasks = [("echo 0",), (None, "L0001"), ("sleep 0.5; echo 2",)]  # getoutput(None) fails in its worker
    with pytest.raises(TypeError) as failure:
        score_pairs(subprocess.getoutput, tasks, 2, rows.append)
    assert "while scoring song None for listener 'L0001'" in failure.value.__notes__
    assert rows == ["0"]
