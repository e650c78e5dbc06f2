"""The Optuna study: trials of a tiny model complete; a worker killed mid-trial and started again, with a second
worker on the same SQLite file, ends with the requested number of finished trials, the killed one failed and
re-run, every trial inside the search space."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from xumx_slicq_v2 import optuna as study_cli
from xumx_slicq_v2 import training

REPO = Path(__file__).resolve().parents[2]

SPACE = {"hidden_size_1": [2, 6], "hidden_size_2": [2, 6], "time_filter_2": [1, 3], "lr": [1e-4, 1e-2]}

#: Heartbeat and grace period of the kill test, in seconds.
HEARTBEAT, GRACE = 1, 3


def _flags(musdb_root: Path, tmp_path: Path, storage: str, name: str, n_trials: int, epochs: int) -> list[str]:
    space = tmp_path / "space.json"
    space.write_text(json.dumps(SPACE))
    return [
        "--musdb-root", str(musdb_root), "--storage", storage, "--study-name", name, "--n-trials", str(n_trials),
        "--epochs", str(epochs), "--search-space", str(space), "--out-dir", str(tmp_path / "out"),
        "--fbins", "8", "--samples-per-track", "1", "--batch-size", "2", "--seq-dur", "1.0", "--nb-workers", "0",
        "--device", "cpu", "--heartbeat-interval", str(HEARTBEAT), "--grace-period", str(GRACE), "--quiet",
    ]  # fmt: skip


def _inside_space(trial: optuna.trial.FrozenTrial) -> bool:
    return set(trial.params) == set(SPACE) and all(low <= trial.params[k] <= high for k, (low, high) in SPACE.items())


def _check_best_file(out_dir: Path, study: optuna.Study) -> None:
    best = json.loads((out_dir / "best.json").read_text())
    assert best["trial"] == study.best_trial.number and best["validation_sdr"] == study.best_value
    words = shlex.split(best["training_command"])
    assert words[:3] == ["python", "-m", "xumx_slicq_v2.training"]
    command = training.build_parser().parse_args(words[3:])  # a valid training command with the best values
    assert (command.hidden_size_1, command.hidden_size_2, command.time_filter_2, command.fbins) == (
        best["params"]["hidden_size_1"], best["params"]["hidden_size_2"], best["params"]["time_filter_2"], 8
    )  # fmt: skip


def test_two_trials_of_a_tiny_model_complete(musdb_root, tmp_path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    best = study_cli.main(_flags(musdb_root, tmp_path, storage, "tiny", n_trials=2, epochs=1))
    study = optuna.load_study(study_name="tiny", storage=storage)
    states = [trial.state for trial in study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE] * 2
    assert all(_inside_space(trial) for trial in study.trials)
    assert all(set(trial.intermediate_values) == {1} for trial in study.trials), "one score per epoch"
    assert best["trial"] == study.best_trial.number
    _check_best_file(tmp_path / "out", study)
    assert (Path(best["model_path"]) / "xumx_slicq_v2.pth").is_file()
    # same study, other search space: refused, nothing run
    flags = _flags(musdb_root, tmp_path, storage, "tiny", n_trials=3, epochs=1)
    (tmp_path / "space.json").write_text(json.dumps({**SPACE, "hidden_size_1": [2, 7]}))
    with pytest.raises(SystemExit, match="another search space"):
        study_cli.main(flags)
    assert len(optuna.load_study(study_name="tiny", storage=storage).trials) == 2


def _worker(flags: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "xumx_slicq_v2.optuna", *flags]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]


def _run_workers(flags: list[str], count: int) -> None:
    workers = [_worker(flags) for _ in range(count)]
    for worker in workers:
        output, _ = worker.communicate(timeout=300)
        assert worker.returncode == 0, output[-3000:]


@pytest.mark.slow
def test_a_killed_worker_resumes_and_a_second_worker_shares_the_study(musdb_root, tmp_path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"

    def flags(n_trials: int) -> list[str]:
        return _flags(musdb_root, tmp_path, storage, "shared", n_trials=n_trials, epochs=2)

    first = _worker(flags(2))
    deadline = time.monotonic() + 300
    killed = None
    while killed is None:  # kill the worker once its first trial has reported epoch 1 (mid-trial)
        assert first.poll() is None, first.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "no trial reported an epoch in time"
        time.sleep(0.2)
        try:
            trials = optuna.load_study(study_name="shared", storage=storage).trials
        except KeyError:  # the study is not created yet
            continue
        running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING and t.intermediate_values]
        if running:
            first.send_signal(signal.SIGKILL)
            first.wait()
            killed = running[0].number
    time.sleep(GRACE + HEARTBEAT)  # its heartbeat is now stale: the next worker to start a trial fails it

    # the same command again: the killed trial is failed and re-run (from its epoch-1 checkpoint), not counted
    _run_workers(flags(2), 1)
    study = optuna.load_study(study_name="shared", storage=storage)
    by_number = {trial.number: trial for trial in study.trials}
    assert by_number[killed].state == optuna.trial.TrialState.FAIL, "the killed trial is failed, not finished"
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0] in _finished(study) and retries[0].params == by_number[killed].params
    assert set(retries[0].intermediate_values) == {1, 2}, "epoch 1 inherited, epoch 2 trained on"
    model_path = Path(retries[0].user_attrs["model_path"])
    assert model_path == Path(by_number[killed].user_attrs["model_path"]), "the retry trains on in the same folder"
    history = json.loads((model_path / "xumx_slicq_v2.json").read_text())["train_loss_history"]
    assert len(history) == 2, "resumed after epoch 1"
    assert len(_finished(study)) == 2, "one worker takes exactly the requested number"

    # two workers on the same file share a larger total: at most one extra trial for the second worker
    _run_workers(flags(4), 2)
    study = optuna.load_study(study_name="shared", storage=storage)
    assert 4 <= len(_finished(study)) <= 5
    assert [t.number for t in study.trials if t.state == optuna.trial.TrialState.FAIL] == [killed]
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    assert all(_inside_space(trial) for trial in study.trials)
    _check_best_file(tmp_path / "out", study)


def test_search_space_files_are_checked(tmp_path) -> None:
    assert study_cli.check_search_space({}) == study_cli.DEFAULT_SEARCH_SPACE
    space = study_cli.check_search_space({"lr": [1e-4, 1e-2], "fscale": ["bark", "mel"], "hidden_size_1": [8, 8]})
    assert space["hidden_size_2"] == [4, 256] and space["hidden_size_1"] == [8, 8]
    assert space["fscale"] == ["bark", "mel"]
    for bad, message in [
        ({"hidden_size_3": [1, 2]}, "unknown parameter"),
        ({"hidden_size_1": [4.5, 8]}, "integers"),
        ({"hidden_size_1": [8, 4]}, "low <= high"),
        ({"lr": [0, 1e-2]}, "> 0"),
        ({"fscale": ["bark", "erb"]}, "distinct scales"),
        ({"fmin": 30}, "needs a list"),
    ]:
        with pytest.raises(study_cli.StudyError, match=message):
            study_cli.check_search_space(bad)
    broken = tmp_path / "space.json"
    broken.write_text("{not json")
    with pytest.raises(study_cli.StudyError, match=r"space\.json: cannot read"):
        study_cli.read_search_space(str(broken))
