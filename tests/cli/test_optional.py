"""Optional dependencies: a missing one is a one-line message naming the extra, exit status 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from xumx_slicq_v2._optional import MissingDependency, exit_if_missing, require

from .conftest import REPO, write_music

#: Runs ``python -m MODULE ARGS`` with the modules named in $BLOCKED_MODULES made unimportable.
#: ``find_spec`` of a blocked module gives a spec that is not a package and whose loading fails as for a module
#: that is not installed.
BLOCKING_RUNNER = """
import importlib.abc, importlib.machinery, os, runpy, sys

class Blocker(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    blocked = set(os.environ["BLOCKED_MODULES"].split(","))

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.blocked:
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec):
        raise ModuleNotFoundError(f"No module named {spec.name!r}", name=spec.name)

    def exec_module(self, module):
        raise AssertionError("never reached: create_module fails")

sys.meta_path.insert(0, Blocker())
module, sys.argv = sys.argv[1], sys.argv[1:]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def run_blocked(
    blocked: str, module: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env or {}), "BLOCKED_MODULES": blocked, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", BLOCKING_RUNNER, module, *args], capture_output=True, text=True, env=env
    )


def test_require_names_the_extra_of_a_module_that_is_not_installed() -> None:
    with pytest.raises(MissingDependency) as caught:
        require("no_such_module_xyz", extra="onnx", purpose="the onnx-cpu runtime backend")
    assert str(caught.value) == (
        "the onnx-cpu runtime backend needs no_such_module_xyz, which is not installed: "
        "pip install 'xumx-slicq-v2[onnx]'"
    )
    assert isinstance(caught.value, ImportError) and caught.value.extra == "onnx"
    assert require("json", extra="unused").dumps([]) == "[]"


def test_require_reports_a_module_that_fails_while_importing(tmp_path, monkeypatch) -> None:
    (tmp_path / "broken_at_import.py").write_text("raise RuntimeError('ffmpeg or ffprobe could not be found')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MissingDependency, match=r"cannot be imported \(RuntimeError: ffmpeg or ffprobe could not"):
        require("broken_at_import", extra="musdb")


def test_exit_if_missing_prints_one_line_and_exits_with_status_2(capsys) -> None:
    with pytest.raises(SystemExit) as caught, exit_if_missing():
        require("no_such_module_xyz", extra="musdb")
    assert caught.value.code == 2
    assert capsys.readouterr().err == (
        "error: no_such_module_xyz is needed, which is not installed: pip install 'xumx-slicq-v2[musdb]'\n"
    )


def test_onnx_backend_without_onnxruntime_names_the_extra(tmp_path, realtime_dir) -> None:
    song = write_music(tmp_path / "song.wav", 0.5, 16000)
    args = (str(song), "--model", str(realtime_dir), "--runtime-backend", "onnx-cpu", "--output-dir", str(tmp_path))
    result = run_blocked("onnxruntime", "xumx_slicq_v2", *args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: the onnx-cpu runtime backend needs onnxruntime, which is not installed: "
        "pip install 'xumx-slicq-v2[onnx]'"
    )
    assert not (tmp_path / "song").exists()


def test_require_names_a_missing_executable_of_an_installed_module(tmp_path, monkeypatch) -> None:
    (tmp_path / "needs_a_program.py").write_text("raise RuntimeError('the program could not be found')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    programs = ("sh", "no-such-program-xyz")
    with pytest.raises(MissingDependency) as caught:
        require("needs_a_program", extra="musdb", purpose="scoring", executables=programs)
    assert str(caught.value) == (
        "scoring needs needs_a_program, which cannot be imported (it needs the no-such-program-xyz "
        "executable, not found on PATH): install no-such-program-xyz"
    )
    # the programs are there: the import's own error
    with pytest.raises(MissingDependency, match=r"\(RuntimeError: the program could not be found\): pip install"):
        require("needs_a_program", extra="musdb", executables=("sh",))
    # a module that is not installed: installing it comes first
    with pytest.raises(MissingDependency, match=r"which is not installed: pip install 'xumx-slicq-v2\[musdb\]'$"):
        require("no_such_module_xyz", extra="musdb", executables=programs)
    assert require("json", extra="unused", executables=programs).dumps([]) == "[]"  # imports: no check


def test_evaluation_without_ffmpeg_says_to_install_it(tmp_path) -> None:
    env = {**os.environ, "PATH": str(tmp_path), "PYTHONPATH": str(REPO)}  # no executable at all on PATH
    out = tmp_path / "out"
    args = ["--musdb-root", str(tmp_path), "--baseline", "mixture", "--out-dir", str(out)]
    result = subprocess.run(
        [sys.executable, "-m", "xumx_slicq_v2.evaluation", *args], capture_output=True, text=True, env=env
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        "error: BSSEval scoring needs museval, which cannot be imported (it needs the ffmpeg and ffprobe "
        "executables, not found on PATH): install ffmpeg (for example: sudo apt-get install ffmpeg)\n"
    )
    assert not out.exists()


@pytest.fixture(scope="module")
def tiny_musdb(tmp_path_factory):
    """One 1 s training song in the MUSDB18-HQ layout (no validation songs: listing them needs musdb)."""
    from data_prep.layouts import write_musdb_tree

    root = tmp_path_factory.mktemp("musdb")
    write_musdb_tree(root, n_train=1, n_valid=0, n_test=0, seconds=1.0, seed=3, progress=False)
    return root


#: (modules made unimportable, command, its arguments ({root}: a MUSDB18-HQ tree, {model}: a model folder,
#: {tmp}: a scratch folder), the extra and the purpose the message must name).
EXTRA_CASES = {
    "onnx-export": ("onnx", "xumx_slicq_v2.export", "--model {model} --out {tmp}/x.onnx", "onnx", "ONNX export"),
    "museval": (
        "museval",
        "xumx_slicq_v2.evaluation",
        "--musdb-root {root} --baseline mixture --out-dir {tmp}/scores",
        "musdb",
        "BSSEval scoring",
    ),
    "musdb-split": (
        "musdb",
        "xumx_slicq_v2.training",
        "--musdb-root {root} --model-path {tmp}/trained --epochs 1",
        "musdb",
        "the train/valid split",
    ),
    "optuna": (
        "optuna",
        "xumx_slicq_v2.optuna",
        "--musdb-root {root} --out-dir {tmp}/study --storage sqlite:///{tmp}/study.db --study-name s",
        "tune",
        "the hyperparameter study",
    ),
    "slicqfinder-plot": (
        "matplotlib",
        "xumx_slicq_v2.slicqfinder",
        "--musdb-root {root} --json {tmp}/records.json",
        "tune",
        "the slicqfinder plot",
    ),
    "ui": ("starlette,uvicorn,websockets", "xumx_slicq_v2.demixui", "--model {model}", "ui", "the web mixer"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(EXTRA_CASES))
def test_every_optional_extra_is_one_line_and_exit_2(case, tmp_path, tiny_musdb, realtime_dir) -> None:
    blocked, module, args, extra, purpose = EXTRA_CASES[case]
    words = args.format(root=tiny_musdb, model=realtime_dir, tmp=tmp_path).split()
    result = run_blocked(blocked, module, *words)
    assert (result.returncode, "Traceback" in result.stderr) == (2, False), result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {purpose}")
    assert last.endswith(f"is not installed: pip install 'xumx-slicq-v2[{extra}]'")
    assert not (tmp_path / "records.json").exists() and not (tmp_path / "trained").exists()


@pytest.mark.slow
def test_cadenza_command_without_musdb_names_the_extra(tmp_path) -> None:
    """The recipe's default data is the demo dataset, whose validation songs are named after the musdb split."""
    env = {"XUMX_DEMO_DATA": str(tmp_path / "demo")}
    result = run_blocked("musdb", "cadenza.enhance", f"path.exp_folder={tmp_path / 'exp'}", env=env)
    assert (result.returncode, "Traceback" in result.stderr) == (2, False), result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "error: the train/valid split (the musdb validation list) needs musdb, which is not installed: "
        "pip install 'xumx-slicq-v2[musdb]'"
    )


@pytest.mark.slow
@pytest.mark.parametrize("command", ["demix", "enhance", "evaluate", "merge_batches_results", "test", "report"])
def test_cadenza_command_without_pyclarity_says_how_to_install_it(command, tmp_path) -> None:
    """pyclarity is installed apart from the extras (``--no-deps``): every recipe command says so in one line."""
    if command == "report":
        scores = tmp_path / "scores.csv"
        scores.write_text("song,listener\n")
        args = [str(scores), "--listeners", str(tmp_path / "listeners.json")]
    else:
        args = [f"path.exp_folder={tmp_path / 'exp'}"]
    env = {"XUMX_DEMO_DATA": str(tmp_path / "demo")}
    result = run_blocked("clarity", f"cadenza.{command}", *args, env=env)
    assert (result.returncode, "Traceback" in result.stderr) == (2, False), result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "error: the Cadenza recipe needs clarity, which is not installed: pip install --no-deps pyclarity==0.9.0"
    )
    assert not (tmp_path / "exp" / "enhanced_signals").exists()
