"""Optional dependencies: a missing one is a one-line message naming the extra, exit status 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from xumx_slicq_v2._optional import MissingDependency, exit_if_missing, require

from .conftest import REPO, write_music

#: Runs ``python -m MODULE ARGS`` with the modules named in $BLOCKED_MODULES made unimportable.
BLOCKING_RUNNER = """
import importlib.abc, os, runpy, sys

class Blocker(importlib.abc.MetaPathFinder):
    blocked = set(os.environ["BLOCKED_MODULES"].split(","))

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Blocker())
module, sys.argv = sys.argv[1], sys.argv[1:]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def run_blocked(blocked: str, module: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "BLOCKED_MODULES": blocked, "PYTHONPATH": str(REPO)}
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


def test_require_names_a_missing_executable_before_importing() -> None:
    with pytest.raises(MissingDependency) as caught:
        require("json_not_imported_xyz", extra="musdb", purpose="scoring", executables=("sh", "no-such-program-xyz"))
    assert str(caught.value) == (
        "scoring needs json_not_imported_xyz, which cannot be imported (it needs the no-such-program-xyz "
        "executable, not found on PATH): install no-such-program-xyz"
    )
    assert require("json", extra="unused", executables=("sh",)).dumps([]) == "[]"


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
