"""Every command's ``--help`` works without loading torch (or scipy, numba, pyclarity, pandas), and argument
errors come before those imports. The timings are in ``benchmarks/help.py``, which these tests share."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

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
