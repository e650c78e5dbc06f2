"""Every command's ``--help`` works without loading torch (or scipy, numba, pyclarity, pandas), and argument
errors come before those imports. The timings are in ``benchmarks/help.py``, which these tests share."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cadenza import quick_help

REPO = Path(__file__).resolve().parents[2]


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("_help_benchmark", REPO / "benchmarks" / "help.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HELP = _load_benchmark()


def test_every_command_is_listed() -> None:
    commands = set(HELP.existing_commands())
    assert len(commands) >= 20
    modules = {path.with_suffix("").as_posix().replace("/", ".") for path in REPO.glob("*/*.py")}
    with_main = {
        module.removesuffix(".__main__")
        for module in modules
        if module.split(".")[0] in ("xumx_slicq_v2", "data_prep", "cadenza")
        and '__name__ == "__main__"' in (REPO / (module.replace(".", "/") + ".py")).read_text()
    }
    assert with_main <= commands, f"commands missing from benchmarks/help.py: {sorted(with_main - commands)}"


@pytest.mark.parametrize("command", HELP.existing_commands())
def test_help_works_without_heavy_imports(command: str) -> None:
    result = HELP.run_help(command)
    assert result.returncode == 0, result.stderr
    assert ("usage:" in result.stdout) or ("== Config ==" in result.stdout), result.stdout[:500]
    heavy = set(HELP.heavy_imports(result))
    assert "torch" not in heavy
    assert not heavy, f"{command} --help imports {sorted(heavy)}"


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("xumx_slicq_v2", ["song.wav", "--bits", "7"], "invalid choice: '7'"),
        ("xumx_slicq_v2", ["missing.wav"], "missing.wav: no such file or folder"),
        ("xumx_slicq_v2.export", ["--model", "demo", "--opset", "9"], "--opset must be >= 17"),
        ("xumx_slicq_v2.training", ["--musdb-root", ".", "--epochs", "0"], "--epochs must be >= 1"),
        ("xumx_slicq_v2.evaluation", ["--musdb-root", ".", "--jobs", "0", "--baseline", "mixture"], "--jobs"),
        ("data_prep.synth", ["--out", "x", "--songs", "-1"], "--songs must be >= 0"),
        ("cadenza.report", [], "the following arguments are required: scores_csv"),
    ],
)
def test_argument_errors_come_before_heavy_imports(command: str, args: list[str], message: str) -> None:
    result = HELP.run_help(command, args)
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert "torch" not in HELP.heavy_imports(result)


def test_defaults_are_shown_once() -> None:
    result = HELP.run_help("xumx_slicq_v2.evaluation")
    assert "(default: None)" not in result.stdout and "(default: False)" not in result.stdout
    assert result.stdout.count("(default: $MUSDB_PATH)") == 1 and "(default: test)" in result.stdout


@pytest.mark.parametrize(
    "command", [c for c in HELP.existing_commands() if not c.startswith("cadenza.") or c == "cadenza.report"]
)
def test_no_option_shows_its_default_twice(command: str) -> None:
    result = HELP.run_help(command)
    options = re.split(r"\n {2,}(?=-)", result.stdout)  # one entry per option (its help may wrap)
    doubled = [entry.split()[0] for entry in options if entry.count("(default:") > 1]
    empty = [entry.split()[0] for entry in options if re.search(r"\(default: (None|False)\)", entry)]
    assert doubled == [] and empty == [], result.stdout


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=REPO)


def _imported(importtime_stderr: str) -> set[str]:
    """Module names of ``python -X importtime`` output ("import time: self | cumulative | name")."""
    return {
        line.rsplit("|", 1)[-1].strip() for line in importtime_stderr.splitlines() if line.startswith("import time:")
    }


@pytest.mark.parametrize(
    "command", ["cadenza.demix", "cadenza.enhance", "cadenza.evaluate", "cadenza.merge_batches_results", "cadenza.test"]
)
def test_plain_help_of_the_hydra_commands_is_hydras_text_without_hydra(command: str) -> None:
    fast = _run("-X", "importtime", "-m", command, "--help")
    assert fast.returncode == 0, fast.stderr[-2000:]
    loaded = _imported(fast.stderr)
    assert "omegaconf" in loaded and not {"hydra", "numpy", "torch"} & loaded, sorted(loaded)
    # with an override (its default value) hydra composes and prints the help itself
    hydra = _run("-m", command, "--help", "team_id=T001")
    assert hydra.returncode == 0, hydra.stderr[-2000:]
    assert fast.stdout == hydra.stdout
    assert "== Config ==" in fast.stdout and "separator:" in fast.stdout
    if command == "cadenza.test":
        assert "musdb18.test.json" in fast.stdout and "musdb18.valid.json" not in fast.stdout


def test_quick_help_leaves_everything_else_to_hydra(tmp_path: Path) -> None:
    assert quick_help.is_plain_help(["--help"]) and quick_help.is_plain_help(["-h"])
    for argv in ([], ["--help", "team_id=x"], ["--hydra-help"], ["--cfg", "job"], ["-h", "--resolve"]):
        assert not quick_help.is_plain_help(argv), argv
        quick_help.exit_if_plain_help("config", argv)  # returns: hydra parses these
    with pytest.raises(SystemExit) as exit_info:
        quick_help.exit_if_plain_help("config", ["-h"])
    assert exit_info.value.code == 0
    # a configuration with a config group, or a defaults entry that is not a file name: hydra's help
    for name in ("config.yaml", "cad1_task1.yaml"):
        shutil.copy(quick_help.CONFIG_DIR / name, tmp_path / name)
    assert quick_help.help_text("config", tmp_path) == quick_help.help_text("config")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "small.yaml").write_text("size: 1\n")
    assert quick_help.help_text("config", tmp_path) is None
    (tmp_path / "model" / "small.yaml").unlink()
    (tmp_path / "config.yaml").write_text("defaults:\n  - model: small\n  - _self_\n")
    assert quick_help.help_text("config", tmp_path) is None
