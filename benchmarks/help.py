"""Start-up cost of every command: wall time of ``--help`` (best of a few runs) and the heavy modules it loads.

    python benchmarks/help.py [--repeats 3] [--output exp/benchmarks/help.json]

Each command runs in a fresh interpreter, as a user starts it; the table gives the best wall time and the best CPU
time (user + system) of ``--repeats`` runs. Goal: under 0.5 s each, with torch, scipy, numba, pyclarity and pandas
not imported (argument errors come before them). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Every command with a ``--help``: ``python -m <module>``, or a script path relative to the repository.
COMMANDS = (
    "xumx_slicq_v2",
    "xumx_slicq_v2.export",
    "xumx_slicq_v2.training",
    "xumx_slicq_v2.evaluation",
    "xumx_slicq_v2.visualization",
    "xumx_slicq_v2.slicqfinder",
    "xumx_slicq_v2.optuna",
    "xumx_slicq_v2.demixui",
    "data_prep.synth",
    "data_prep.demo",
    "data_prep.plot",
    "cadenza.demix",
    "cadenza.enhance",
    "cadenza.evaluate",
    "cadenza.merge_batches_results",
    "cadenza.test",
    "cadenza.report",
    "benchmarks/cadenza.py",
    "benchmarks/demixui.py",
    "benchmarks/haaqi.py",
    "benchmarks/help.py",
    "benchmarks/model.py",
    "benchmarks/separate.py",
    "benchmarks/synth.py",
    "benchmarks/transform.py",
)

#: Modules that cost a second or more to import, which ``--help`` must not load.
HEAVY_MODULES = ("torch", "scipy", "numba", "clarity", "pandas", "matplotlib", "onnxruntime", "optuna")

#: Runs a command's ``--help`` in this interpreter, then prints the heavy modules it imported (last line).
RUNNER = """
import os, runpy, sys
target, sys.argv = sys.argv[1], sys.argv[1:]
try:
    if target.endswith(".py"):
        runpy.run_path(target, run_name="__main__")
    else:
        runpy.run_module(target, run_name="__main__", alter_sys=True)
except SystemExit as exit:
    code = exit.code
    if code is not None and not isinstance(code, int):  # as the interpreter reports SystemExit("message")
        print(code, file=sys.stderr)
        code = 1
else:
    code = 0
heavy = [name for name in os.environ["HEAVY_MODULES"].split(",") if name in sys.modules]
print("\\nHEAVY:" + ",".join(heavy), file=sys.stderr)
sys.exit(code)
"""


def existing_commands() -> list[str]:
    """`COMMANDS` that exist in this checkout (script files, or modules with a source file)."""
    found = []
    for command in COMMANDS:
        path = REPO / command if command.endswith(".py") else REPO / (command.replace(".", "/") + ".py")
        package_main = REPO / command.replace(".", "/") / "__main__.py"
        if path.is_file() or package_main.is_file():
            found.append(command)
    return found


def command_env() -> dict[str, str]:
    """The environment with this checkout first on ``PYTHONPATH``."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def run_help(command: str, args: tuple[str, ...] | list[str] = ("--help",)) -> subprocess.CompletedProcess:
    """``command`` with ``args`` (``--help``) through `RUNNER`; stderr's last line lists the heavy imports."""
    env = {**command_env(), "HEAVY_MODULES": ",".join(HEAVY_MODULES)}
    return subprocess.run(
        [sys.executable, "-c", RUNNER, command, *args], capture_output=True, text=True, env=env, cwd=REPO
    )


def heavy_imports(result: subprocess.CompletedProcess) -> list[str]:
    """The heavy modules `RUNNER` found imported (the last line of its stderr)."""
    line = result.stderr.rstrip().rsplit("\n", 1)[-1]
    if not line.startswith("HEAVY:"):
        raise RuntimeError(f"the command did not finish normally: {result.stderr[-2000:]}")
    return [name for name in line.removeprefix("HEAVY:").split(",") if name]


def time_help(command: str, repeats: int) -> dict:
    """Best wall time and best CPU time (user + system, of the child) of ``--help`` over ``repeats`` fresh
    interpreters (plain, without `RUNNER`); the CPU time does not grow with the machine's load."""
    script = [str(REPO / command)] if command.endswith(".py") else ["-m", command]
    env = command_env()
    walls, cpus, status = [], [], 0
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        status = subprocess.run([sys.executable, *script, "--help"], capture_output=True, env=env, cwd=REPO).returncode
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    checked = run_help(command)
    return {
        "command": command,
        "best_s": min(walls),
        "best_cpu_s": min(cpus),
        "status": status,
        "heavy_imports": heavy_imports(checked),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per command (the best is kept)")
    parser.add_argument("--output", type=Path, default=REPO / "exp" / "benchmarks" / "help.json")
    args = parser.parse_args(argv)
    python_alone = min(
        _timed([sys.executable, "-c", "pass"]) for _ in range(args.repeats)
    )  # the interpreter's own start-up, for comparison
    results = [time_help(command, args.repeats) for command in existing_commands()]
    print(f"python -c pass: {python_alone:.3f} s; load average {os.getloadavg()[0]:.2f}\n")
    print("| command | --help wall (s) | CPU (s) | exit | heavy modules imported | wall < 0.5 s |")
    print("|---|---|---|---|---|---|")
    for r in results:
        goal = "yes" if r["best_s"] < 0.5 and r["status"] == 0 else "NO"
        heavy = ", ".join(r["heavy_imports"]) or "-"
        print(f"| {r['command']} | {r['best_s']:.3f} | {r['best_cpu_s']:.3f} | {r['status']} | {heavy} | {goal} |")
    report = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "python_startup_s": python_alone,
        "load_average": os.getloadavg(),
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.output}")


def _timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, capture_output=True)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
