"""recipes/cadenza/run_slurm.sh on a real SLURM cluster: 3 array tasks per step, merged scores byte-identical to a
single local run, launcher settings from the command line, a requeued and a cancelled task.

Opt-in (the test submits jobs): ``XUMX_TEST_SLURM=1`` and a cluster that ``sbatch`` reaches, e.g. the throwaway
single-node cluster of ``ci/slurm_cluster.sh start`` (``eval "$(ci/slurm_cluster.sh env)"`` exports the variables).
Without the variable the tests skip; with it, a missing tool or controller is a failure.
Jobs go to the default partition of ``XUMX_SLURM_PARTITION`` (default ``debug``), account ``XUMX_SLURM_ACCOUNT``
when set.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cadenza.scores import read_rows
from data_prep.layouts import write_cad1_tree

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPOSITORY = Path(__file__).resolve().parents[2]
RUN_SLURM = REPOSITORY / "recipes" / "cadenza" / "run_slurm.sh"
TASKS = 3
#: 3 songs x 2 listeners = 6 pairs, 2 per array task; songs of 1.5 s keep HAAQI (10 calls per pair) short.
SONGS, LISTENERS, SECONDS = 3, 2, 1.5
#: Generous bound on one run_slurm.sh call on 2 cores (4 steps of 3 jobs each).
RUN_TIMEOUT_S = 900


def _cluster_problem() -> str | None:
    for tool in ("sbatch", "squeue", "scancel", "sacct", "sinfo"):
        if shutil.which(tool) is None:
            return f"{tool} not found: no SLURM client tools"
    try:
        probe = subprocess.run(["sinfo", "-h", "-o", "%a"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "no SLURM controller reachable (sinfo did not answer within 30 s)"
    if probe.returncode != 0:
        return f"no SLURM controller reachable (sinfo: {probe.stderr.strip()})"
    return None


@pytest.fixture(scope="module")
def cluster() -> dict[str, str]:
    """The partition and account to use; skips unless opted in, and fails when opted in without a cluster."""
    if os.environ.get("XUMX_TEST_SLURM") != "1":
        pytest.skip("XUMX_TEST_SLURM=1 not set (this test submits jobs; see ci/slurm_cluster.sh)")
    problem = _cluster_problem()
    if problem:
        pytest.fail(f"XUMX_TEST_SLURM=1 but {problem}")
    return {
        "partition": os.environ.get("XUMX_SLURM_PARTITION", "debug"),
        "account": os.environ.get("XUMX_SLURM_ACCOUNT", ""),
    }


@pytest.fixture(scope="module")
def cad1_task(tmp_path_factory) -> Path:
    """A synthetic CAD1 task-1 tree (validation songs and listeners only)."""
    return write_cad1_tree(
        tmp_path_factory.mktemp("cad1"), n_train=0, n_valid=SONGS, n_test=0, seconds=SECONDS,
        listeners_per_split=LISTENERS, seed=7, progress=False,
    )


@pytest.fixture(scope="module")
def local_scores(cad1_task, tmp_path_factory) -> bytes:
    """scores.csv of one local, unsharded enhance + evaluate run."""
    exp = tmp_path_factory.mktemp("local")
    for command in ("cadenza.enhance", "cadenza.evaluate"):
        subprocess.run(
            [sys.executable, "-m", command, f"path.root={cad1_task}", f"path.exp_folder={exp}"],
            check=True, capture_output=True, timeout=RUN_TIMEOUT_S,
        )
    return (exp / "scores.csv").read_bytes()


def _command(cluster: dict[str, str], cad1_task: Path, exp: Path) -> list[str]:
    """run_slurm.sh with recipe settings and the launcher settings a cluster user gives on the command line."""
    launcher = [
        f"hydra.launcher.partition={cluster['partition']}",
        "hydra.launcher.mem_gb=1",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.timeout_min=20",
        'hydra.launcher.setup=["export XUMX_SETUP_LINE=ran"]',
    ]
    if cluster["account"]:
        launcher.append(f"hydra.launcher.account={cluster['account']}")
    return ["bash", str(RUN_SLURM), f"path.root={cad1_task}", f"path.exp_folder={exp}", *launcher]


def _environment() -> dict[str, str]:
    return {**os.environ, "N": str(TASKS), "PYTHON": sys.executable}


def _sbatch_files(exp: Path) -> list[str]:
    return [path.read_text() for path in (exp / "multirun" / ".submitit").glob("*/*_submission.sh")]


def test_three_array_tasks_merge_to_the_local_scores(cluster, cad1_task, local_scores, tmp_path):
    exp = tmp_path / "exp"
    result = subprocess.run(
        _command(cluster, cad1_task, exp), env=_environment(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (exp / "scores.csv").read_bytes() == local_scores
    for batch in range(1, TASKS + 1):
        assert len(read_rows(exp / f"scores_{batch}-{TASKS}.csv")) == SONGS * LISTENERS // TASKS
    # the launcher settings reached sbatch in every array step
    submissions = _sbatch_files(exp)
    assert len(submissions) == 3, "one array job per step: demix, enhance, evaluate"
    expected = ["--mem=1GB", "--cpus-per-task=1", "--time=20", f"--partition={cluster['partition']}",
                f"--array=0-{TASKS - 1}", "--requeue", "export XUMX_SETUP_LINE=ran"]
    if cluster["account"]:
        expected.append(f"--account={cluster['account']}")
    for text in submissions:
        for line in expected:
            assert line in text, f"{line} not in the sbatch file:\n{text}"


def _array_job_id(exp: Path) -> str:
    """The SLURM id of the newest array job of the run (submitit's folders are ``<array id>_<task>``)."""
    names = (re.fullmatch(r"(\d+)_\d+", path.name) for path in (exp / "multirun" / ".submitit").iterdir())
    return str(max(int(name.group(1)) for name in names if name))


def _interrupt_when_partial(exp: Path, actions: dict[int, list[str]], process: subprocess.Popen) -> str:
    """Run ``actions[batch]`` (a command; ``{job}`` is the array job id) once batch ``batch`` (1-based) of the
    evaluate step has scored its first pair and not yet its last; returns the array job id."""
    job = ""
    per_task = SONGS * LISTENERS // TASKS
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while actions and time.monotonic() < deadline:
        assert process.poll() is None, "run_slurm.sh ended before the tasks could be interrupted"
        for batch in list(actions):
            path = exp / f"scores_{batch}-{TASKS}.csv"
            done = len(read_rows(path)) if path.is_file() else 0
            assert done < per_task, f"batch {batch} finished before it could be interrupted"
            if done >= 1:
                job = _array_job_id(exp)
                subprocess.run([part.format(job=job) for part in actions.pop(batch)], check=True)
        time.sleep(0.1)
    assert not actions, f"batches {sorted(actions)} did not start"
    return job


def test_requeued_and_cancelled_tasks_resume_to_the_same_scores(cluster, cad1_task, local_scores, tmp_path):
    """During evaluate, task 1 gets USR2 (SLURM's time-limit warning: submitit requeues it and it resumes within
    the same run) and task 2 is cancelled (the run fails; rerunning the command resumes it)."""
    exp = tmp_path / "exp"
    command, env = _command(cluster, cad1_task, exp), _environment()
    with open(tmp_path / "run1.log", "w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            job = _interrupt_when_partial(
                exp, {2: ["scancel", "--signal=USR2", "{job}_1"], 3: ["scancel", "{job}_2"]}, process
            )
            first_rc = process.wait(timeout=RUN_TIMEOUT_S)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    first_log = (tmp_path / "run1.log").read_text()
    assert first_rc != 0, "the run with a cancelled task must fail"
    assert "CANCELLED" in first_log, first_log[-3000:]
    # the requeued task finished within the first run, after one restart, from where it was
    assert len(read_rows(exp / f"scores_2-{TASKS}.csv")) == SONGS * LISTENERS // TASKS
    restarts = subprocess.run(
        ["sacct", "-n", "-X", "-D", "-j", f"{job}_1", "-o", "State"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    assert "REQUEUED" in restarts and restarts[-1] == "COMPLETED", restarts
    assert len(read_rows(exp / f"scores_3-{TASKS}.csv")) == 1  # the cancelled task kept its finished pair

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert (exp / "scores.csv").read_bytes() == local_scores
    job_logs = "".join(path.read_text() for path in (exp / "multirun").glob("*/evaluate.log"))
    for batch in (2, 3):  # the requeued task's second start, the rerun of the cancelled one
        assert f"1 pair(s) to score, 1 already in {exp / f'scores_{batch}-{TASKS}.csv'}" in job_logs
