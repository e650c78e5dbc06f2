"""Fixtures for the command-line tests: small reference-format model folders and generated audio files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from xumx_slicq_v2.checkpoint import save_model
from xumx_slicq_v2.model import ModelConfig, build_unmix

from ..random_weights import random_model

REPO = Path(__file__).resolve().parents[2]

#: A fast model: mel sliCQT at 16 kHz with 4 hidden channels (the command line resamples every input to it).
SMALL_CONFIG = {"scale": "mel", "bins": 32, "fmin": 60.0, "sample_rate": 16000, "hidden_size_1": 4, "hidden_size_2": 4}


@pytest.fixture(scope="session")
def realtime_dir(tmp_path_factory) -> Path:
    return save_model(
        tmp_path_factory.mktemp("models") / "realtime", random_model(ModelConfig(**SMALL_CONFIG, realtime=True))
    )


@pytest.fixture(scope="session")
def offline_dir(tmp_path_factory) -> Path:
    return save_model(tmp_path_factory.mktemp("models") / "offline", random_model(ModelConfig(**SMALL_CONFIG)))


@pytest.fixture(scope="session")
def exported_realtime_dir(tmp_path_factory, realtime_dir) -> Path:
    """A copy of ``realtime_dir`` with its ONNX network already exported (``xumx_slicq_v2.onnx``)."""
    from xumx_slicq_v2.backends import cached_onnx

    folder = tmp_path_factory.mktemp("models") / "realtime_onnx"
    shutil.copytree(realtime_dir, folder)
    model = build_unmix(ModelConfig(**SMALL_CONFIG, realtime=True))
    model.load_state_dict(torch.load(folder / "xumx_slicq_v2.pth"))
    cached_onnx(model.eval(), folder)
    return folder


@pytest.fixture(autouse=True)
def private_torch_hub(tmp_path, monkeypatch) -> Path:
    """Keep ONNX exports that fall back to the torch hub cache out of the user's cache."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path / "torch_home" / "hub"


def music(seconds: float, rate: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    """A few decaying harmonic notes plus a little noise at about -10 dBFS: ``(channels, samples)`` float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    audio = np.zeros((channels, t.size))
    for channel in range(channels):
        for note in rng.uniform(80, 1000, size=4):
            onset = rng.uniform(0, max(seconds - 0.5, 0.01))
            envelope = np.where(t >= onset, np.exp(-(t - onset) * 3), 0.0)
            audio[channel] += sum(np.sin(2 * np.pi * note * k * t) / k for k in (1, 2, 3)) * envelope
        audio[channel] += 0.05 * rng.standard_normal(t.size)
    return (0.3 * audio / np.abs(audio).max()).astype(np.float32)


def write_music(path: Path, seconds: float, rate: int, channels: int = 2, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), music(seconds, rate, channels, seed).T, rate)
    return path


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` in a subprocess (text output captured)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env)
