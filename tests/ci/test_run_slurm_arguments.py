"""recipes/cadenza/run_slurm.sh hands each step the right arguments (no cluster needed: PYTHON records its calls)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
RUN_SLURM = REPOSITORY / "recipes" / "cadenza" / "run_slurm.sh"

LAUNCHER_SETTINGS = [
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.account=lab",
    "+hydra.launcher.additional_parameters.qos=high",
    'hydra.launcher.setup=["source /venv/bin/activate"]',
]


def _calls(tmp_path: Path, *arguments: str, **environment: str) -> list[list[str]]:
    """The argument lists of the PYTHON calls run_slurm.sh makes, one per step."""
    record = tmp_path / "calls"
    recorder = tmp_path / "python"
    recorder.write_text('#!/bin/sh\nfor arg in "$@"; do printf "%s\\037" "$arg"; done >>"$RECORD"\necho >>"$RECORD"\n')
    recorder.chmod(0o755)
    env = {**os.environ, "PYTHON": str(recorder), "RECORD": str(record), "N": "3", **environment}
    subprocess.run(["bash", str(RUN_SLURM), *arguments], env=env, check=True, timeout=60)
    return [line.rstrip("\x1f").split("\x1f") for line in record.read_text().splitlines()]


def _launcher_arguments(call: list[str]) -> list[str]:
    return [arg for arg in call if "launcher" in arg]


def test_launcher_settings_go_to_the_array_steps_only(tmp_path):
    calls = _calls(tmp_path, "path.root=/data/task1", *LAUNCHER_SETTINGS, "separator.weights=offline",
                   PARTITION="cpu")
    assert [call[:2] for call in calls] == [
        ["-m", "cadenza.demix"], ["-m", "cadenza.enhance"], ["-m", "cadenza.evaluate"],
        ["-m", "cadenza.merge_batches_results"],
    ]
    for call in calls[:3]:
        assert call[2:5] == ["-m", "evaluate.batch=0,1,2", "evaluate.batch_size=3"]
        assert _launcher_arguments(call) == [
            "hydra/launcher=cadenza_slurm", "hydra.launcher.partition=cpu", *LAUNCHER_SETTINGS
        ]
        assert call[-2:] == ["path.root=/data/task1", "separator.weights=offline"]
    merge = calls[3]
    assert merge[2:] == ["evaluate.batch_size=3", "path.root=/data/task1", "separator.weights=offline"]


def test_separation_on_the_gpu_partition(tmp_path):
    calls = _calls(tmp_path, "hydra.launcher.mem_gb=4", "path.root=/data/task1", PARTITION="cpu",
                   GPU_PARTITION="gpu", GPU_LAUNCHER="hydra.launcher.mem_gb=32 hydra.launcher.gres=gpu:1")
    demix, enhance, evaluate, _ = calls
    assert _launcher_arguments(demix) == [
        "hydra/launcher=cadenza_slurm", "hydra.launcher.partition=cpu", "hydra.launcher.mem_gb=4",
        "hydra.launcher.partition=gpu", "hydra.launcher.gpus_per_node=1", "hydra.launcher.mem_gb=32",
        "hydra.launcher.gres=gpu:1",
    ]  # hydra applies the last value of a key: the GPU settings win for demix
    assert demix[-2:] == ["separator.device=cuda", "path.root=/data/task1"]
    for call in (enhance, evaluate):
        assert _launcher_arguments(call) == [
            "hydra/launcher=cadenza_slurm", "hydra.launcher.partition=cpu", "hydra.launcher.mem_gb=4"
        ]
        assert "separator.device=cuda" not in call
