"""cadenza.enhance and cadenza.evaluate killed mid-run (SIGTERM, SIGKILL), then rerun: the clean run's outputs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest
import soundfile as sf

from cadenza.enhance import run_enhance
from cadenza.evaluate import run_evaluate
from cadenza.test import run_test
from xumx_slicq_v2.audio import is_temporary

REPO = Path(__file__).resolve().parents[2]

#: Seconds per song: HAAQI costs ~0.8 CPU-s per second of audio and call, 10 calls per pair.
SECONDS = 0.4

#: Runs the hydra command ``cadenza.<command>`` in this process, pausing once call number ``at`` of ``target``
#: (``module:attribute``, e.g. ``clarity.utils.flac_encoder:FlacEncoder.encode``) has returned (for the FLAC
#: encoder: its temporary file written, not yet renamed): it creates the file ``ready`` and waits there (up to
#: 10 minutes) for the test to kill it from outside, as a cluster's time limit does; before, it prints the pids of
#: its worker processes (``workers: PID...``).
#: Arguments: ready file, call number, target, command, hydra overrides...
KILLER = """
import functools, importlib, multiprocessing, pathlib, sys, time
ready, at, target, command = sys.argv[1:5]
module_name, path = target.split(":")
*owners, attribute = path.split(".")
owner = functools.reduce(getattr, owners, importlib.import_module(module_name))
original, calls = getattr(owner, attribute), []
def hooked(*args, **kwargs):
    result = original(*args, **kwargs)
    calls.append(None)
    if len(calls) == int(at):
        print("workers:", *[child.pid for child in multiprocessing.active_children()], flush=True)
        pathlib.Path(ready).touch()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            time.sleep(0.01)
        sys.exit(f"paused at call {at} of {target}, never killed")
    return result
setattr(owner, attribute, hooked)
sys.argv = [f"cadenza.{command}", *sys.argv[5:]]
importlib.import_module(f"cadenza.{command}").main()
sys.exit(f"{command} finished after {len(calls)} call(s) of {target}, before call {at}")
"""

#: Seconds a command may take to reach its pause point, and to exit once signalled (generous: a loaded machine
#: is many times slower than an idle one; a run that gets there returns at once).
PAUSE_TIMEOUT = 900.0
EXIT_TIMEOUT = 120.0


def _overrides(root: Path, exp: Path) -> list[str]:
    return [f"path.root={root}", f"path.exp_folder={exp}", "separator.model=oracle"]


#: evaluate scores the two songs for one listener (2 pairs, in this process: the hook counts its HAAQI calls);
#: enhance writes all 4 pairs.
EVALUATE_OVERRIDES = ["evaluate.listeners=[L5001]", "evaluate.jobs=1"]


@pytest.fixture(scope="module")
def short_tree(tmp_path_factory, cad1):
    """A CAD1 tree of 0.4 s songs (test-set segments inside them)."""
    root = cad1.build(tmp_path_factory.mktemp("short"), duration=SECONDS)
    segments_file = root / "metadata" / "musdb18.segments.test.json"
    segment = {
        "objective_evaluation": {"start": 0.05, "end": 0.35},
        "subjective_evaluation": {"start": 0.1, "end": 0.3},
    }
    segments_file.write_text(json.dumps(dict.fromkeys(json.loads(segments_file.read_text()), segment)))
    return root


def _complete_run(root: Path, exp: Path, config_for) -> None:
    run_enhance(config_for(root, exp, *_overrides(root, exp)[2:]))
    run_evaluate(config_for(root, exp, *_overrides(root, exp)[2:], *EVALUATE_OVERRIDES))
    run_test(config_for(root, exp, *_overrides(root, exp)[2:], config_name="config_test"))


@pytest.fixture(scope="module")
def clean_run(short_tree, config_for, tmp_path_factory):
    exp = tmp_path_factory.mktemp("clean") / "exp"
    _complete_run(short_tree, exp, config_for)
    return exp


def _outputs(exp: Path) -> dict[Path, bytes]:
    """Every output's content: not hydra's records and logs or the (empty) lock files; cached float WAVs decoded
    (libsndfile stamps the time into their PEAK chunk); report.json without the path of its scores file."""
    outputs = {}
    for path in sorted(exp.rglob("*")):
        relative = path.relative_to(exp)
        if not path.is_file() or relative.parts[0] == ".hydra" or path.suffix in (".log", ".lock"):
            continue
        if path.suffix == ".wav":
            outputs[relative] = sf.read(path, dtype="float32")[0].tobytes()
        elif path.name == "report.json":
            outputs[relative] = path.read_bytes().replace(str(exp).encode(), b"EXP")
        else:
            outputs[relative] = path.read_bytes()
    return outputs


def _killed(
    kill_signal: signal.Signals, at: int, target: str, command: str, overrides: list[str], tmp_path: Path
) -> list[int]:
    """Run ``cadenza.<command>`` until call ``at`` of ``target`` has returned, then send it ``kill_signal``;
    returns the pids of its worker processes at that point."""
    ready = tmp_path / f"{command}.ready"
    words = [sys.executable, "-c", KILLER, str(ready), str(at), target, command, *overrides]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryFile("w+") as log:  # a pipe could fill up while nobody reads it
        process = subprocess.Popen(words, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
        try:
            deadline = time.monotonic() + PAUSE_TIMEOUT
            while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            paused = ready.exists()
            if paused:
                process.send_signal(kill_signal)
                process.wait(EXIT_TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        log.seek(0)
        full_output = log.read()
        output = full_output[-3000:]
    assert paused, (
        f"cadenza.{command} did not reach call {at} of {target} (exit status {process.returncode}):\n{output}"
    )
    expected = 128 + kill_signal if kill_signal == signal.SIGTERM else -kill_signal
    assert process.returncode == expected, output
    listed = re.findall(r"workers:((?: \d+)*)", full_output)  # may follow a progress bar's carriage return
    return [int(pid) for pid in listed[-1].split()] if listed else []


def _gone(pid: int, seconds: float = 20.0) -> bool:
    """Whether process ``pid`` has ended (or is a zombie) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z"):
                return True
        except (FileNotFoundError, ProcessLookupError):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("kill_signal", [signal.SIGTERM, signal.SIGKILL])
def test_killed_enhance_and_evaluate_resume_to_the_clean_outputs(
    kill_signal, short_tree, clean_run, config_for, cad1, tmp_path
):
    exp = tmp_path / "exp"
    overrides = _overrides(short_tree, exp)
    # enhance: killed while writing the 3rd stem of the 2nd pair (its temporary FLAC written, not yet renamed)
    _killed(kill_signal, 8 + 3, "clarity.utils.flac_encoder:FlacEncoder.encode", "enhance", overrides, tmp_path)
    temporaries = [path for path in exp.rglob("*") if is_temporary(path)]
    assert len(temporaries) == (0 if kill_signal == signal.SIGTERM else 1)
    assert len(list(exp.rglob("progress/**/*.json"))) == 1  # one pair finished
    assert run_enhance(config_for(short_tree, exp, *overrides[2:])).skipped == 1
    # evaluate: killed in the 2nd HAAQI call of the 2nd pair; the first pair's row is in the CSV
    evaluate_overrides = [*overrides, *EVALUATE_OVERRIDES]
    _killed(kill_signal, 10 + 2, "cadenza.scoring:haaqi_score", "evaluate", evaluate_overrides, tmp_path)
    assert len((exp / "scores.csv").read_text().splitlines()) == 1 + 1
    # what a SIGKILL leaves while writing the scores, the report or the zip, and hidden files in the submission
    evaluation = exp / "enhanced_signals" / "evaluation"
    listener, song = cad1.test_listeners[0], cad1.test_songs[0]
    planted = [
        exp / ".scores.4242.0123abcd.part.csv",
        exp / ".report.4242.0123abcd.part.png",
        exp / ".submission_T001.4242.0123abcd.part.zip",
        evaluation / ".notes.txt",
        evaluation / listener / song / f".{listener}_{song}_remix.4242.0123abcd.part.flac",
    ]
    for path in planted:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"left behind")

    _complete_run(short_tree, exp, config_for)

    assert not [path for path in exp.rglob("*") if is_temporary(path)]
    (evaluation / ".notes.txt").unlink()  # a user's hidden file is kept on disk, but not zipped
    assert _outputs(exp) == _outputs(clean_run)  # also the submission zip, byte for byte
    with zipfile.ZipFile(exp / "submission_T001.zip") as archive:
        assert not [name for name in archive.namelist() if "/." in name]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("kill_signal", [signal.SIGTERM, signal.SIGKILL])
def test_killed_parallel_evaluate_leaves_no_worker_and_resumes(
    kill_signal, short_tree, clean_run, config_for, tmp_path
):
    """evaluate.jobs=2 killed right after its first row: no worker survives it, the row is kept, and a rerun
    writes the scores of the clean (one-job) run."""
    exp = tmp_path / "exp"
    overrides = _overrides(short_tree, exp)
    run_enhance(config_for(short_tree, exp, *overrides[2:]))
    parallel = ["evaluate.listeners=[L5001]", "evaluate.jobs=2"]
    workers = _killed(kill_signal, 1, "cadenza.scores:ScoresFile.add", "evaluate", [*overrides, *parallel], tmp_path)
    assert len(workers) == 2
    assert all(_gone(pid) for pid in workers), "a worker process outlived the killed evaluate"
    assert len((exp / "scores.csv").read_text().splitlines()) == 1 + 1
    assert not [path for path in exp.rglob("*") if is_temporary(path)]
    run_evaluate(config_for(short_tree, exp, *overrides[2:], *parallel))
    assert (exp / "scores.csv").read_bytes() == (clean_run / "scores.csv").read_bytes()
