"""Fixtures of the Cadenza recipe tests: a tiny CAD1-shaped tree, configs, a counting fake separator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import soundfile as sf

from cadenza import separators
from cadenza.config import compose_config

SAMPLE_RATE = 44100

#: Seconds of audio per song (HAAQI costs ~0.9 CPU-s per call and second; a pair makes 10 calls).
DURATION = 0.8

#: Song names with the punctuation real MUSDB names have.
VALID_SONGS = ("Alpha Band - First Song", "Beta & Co - Second's Song")
TEST_SONGS = ("Gamma - Test Song",)

#: Audiograms at the 8 CAD1 frequencies (dB HL): a mild and a moderate listener per split.
CFS = [250, 500, 1000, 2000, 3000, 4000, 6000, 8000]
AUDIOGRAMS = {
    "mild": ([10, 15, 20, 25, 30, 30, 35, 40], [15, 15, 20, 30, 30, 35, 40, 45]),
    "moderate": ([25, 30, 35, 45, 50, 55, 60, 65], [30, 35, 40, 50, 55, 60, 65, 70]),
}
VALID_LISTENERS = {"L5001": "mild", "L5002": "moderate"}
TEST_LISTENERS = {"L6001": "mild", "L6002": "moderate"}


def synth_stems(duration: float, seed: int) -> dict[str, np.ndarray]:
    """Four short stereo stems ``(2, samples)`` at 44.1 kHz: bass tone, noise-burst drums, chord, vibrato voice."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(duration * SAMPLE_RATE)) / SAMPLE_RATE
    detune = 1 + 0.05 * rng.random()
    beat = (t % 0.25) < 0.06
    stems = {
        "bass": 0.25 * np.sin(2 * np.pi * 55 * detune * t) + 0.08 * np.sin(2 * np.pi * 110 * detune * t),
        "drums": 0.3 * beat * np.exp(-30 * (t % 0.25)) * rng.standard_normal(t.size),
        "other": 0.06 * sum(np.sin(2 * np.pi * f * detune * t) for f in (261.6, 329.6, 392.0)),
        "vocals": 0.15 * np.sin(2 * np.pi * 220 * detune * t + 3 * np.sin(2 * np.pi * 5 * t)) * (0.6 + 0.4 * beat),
    }
    pans = {"bass": 0.5, "drums": 0.45, "other": 0.7, "vocals": 0.5}
    return {name: np.stack([pans[name] * x, (1 - pans[name]) * x]) * 0.8 for name, x in stems.items()}


def write_pcm16(path: Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio.T, sample_rate, subtype="PCM_16")


def _listener_entries(listeners: dict[str, str]) -> dict:
    return {
        lid: {
            "name": lid,
            "audiogram_cfs": CFS,
            "audiogram_levels_l": AUDIOGRAMS[kind][0],
            "audiogram_levels_r": AUDIOGRAMS[kind][1],
        }
        for lid, kind in listeners.items()
    }


def build_cad1_tree(root: Path, duration: float = DURATION) -> Path:
    """A CAD1 task-1 tree (16-bit WAVs, valid songs in train/, test songs in test/); returns ``.../cad1/task1``."""
    task = root / "cad1" / "task1"
    for index, (song, split) in enumerate([(s, "valid") for s in VALID_SONGS] + [(s, "test") for s in TEST_SONGS]):
        stems = synth_stems(duration, seed=index)
        folder = task / "audio" / "musdb18hq" / ("test" if split == "test" else "train") / song
        for name, audio in stems.items():
            write_pcm16(folder / f"{name}.wav", audio)
        write_pcm16(folder / "mixture.wav", sum(stems.values()))
    metadata = task / "metadata"
    metadata.mkdir(parents=True, exist_ok=True)
    (metadata / "musdb18.valid.json").write_text(json.dumps([{"Track Name": s, "Split": "valid"} for s in VALID_SONGS]))
    (metadata / "musdb18.test.json").write_text(json.dumps([{"Track Name": s, "Split": "test"} for s in TEST_SONGS]))
    (metadata / "listeners.valid.json").write_text(json.dumps(_listener_entries(VALID_LISTENERS)))
    (metadata / "listeners.test.json").write_text(json.dumps(_listener_entries(TEST_LISTENERS)))
    segments = {
        s: {"objective_evaluation": {"start": 0.1, "end": 0.7}, "subjective_evaluation": {"start": 0.2, "end": 0.5}}
        for s in TEST_SONGS
    }
    (metadata / "musdb18.segments.test.json").write_text(json.dumps(segments))
    return task


@pytest.fixture(scope="session")
def cad1_root(tmp_path_factory) -> Path:
    """A read-only tiny CAD1 tree shared by the tests (2 valid songs x 2 listeners, 1 test song)."""
    return build_cad1_tree(tmp_path_factory.mktemp("cad1data"))


@pytest.fixture
def own_cad1_root(tmp_path) -> Path:
    """A private tiny CAD1 tree a test may damage."""
    return build_cad1_tree(tmp_path / "data")


def make_config(root: Path, exp: Path, *overrides: str, config_name: str = "config"):
    """The recipe config on ``root`` writing to ``exp`` (hydra overrides as on the command line)."""
    return compose_config([f"path.root={root}", f"path.exp_folder={exp}", *overrides], config_name=config_name)


class FakeModel:
    """Tensor-contract stand-in for ``xumx_slicq_v2.Separator``: each source is a fixed share of the mixture.

    ``calls`` records the sample count of every call (one call per separated song).
    """

    sources = ("bass", "vocals", "other", "drums")  # the real Separator's output order
    gains = (0.1, 0.4, 0.3, 0.2)
    sample_rate = SAMPLE_RATE
    calls: ClassVar[list[int]] = []

    def __call__(self, audio):
        import torch

        FakeModel.calls.append(int(audio.shape[-1]))
        gains = torch.tensor(self.gains, dtype=audio.dtype).view(1, -1, 1, 1)
        return audio[:, None] * gains


def register_fake(patcher: pytest.MonkeyPatch) -> type[FakeModel]:
    """Register ``separator.model=fake`` (a :class:`FakeModel` behind the real tensor adapter) with ``patcher``."""
    patcher.setattr(FakeModel, "calls", [])
    patcher.setitem(
        separators.SEPARATOR_MODELS,
        "fake",
        separators.SeparatorModel(load=lambda separator_cfg, cfg: separators.TensorSeparator(FakeModel())),
    )
    return FakeModel


@pytest.fixture
def fake_separator(monkeypatch) -> type[FakeModel]:
    """``separator.model=fake`` for one test; returns :class:`FakeModel` (its ``calls`` start empty)."""
    return register_fake(monkeypatch)


@pytest.fixture(scope="session")
def fake_registrar():
    """:func:`register_fake`, for module-scoped fixtures (use with ``pytest.MonkeyPatch.context()``)."""
    return register_fake


@pytest.fixture(scope="session")
def config_for():
    """:func:`make_config`: ``config_for(root, exp, *overrides, config_name="config")``."""
    return make_config


@pytest.fixture(scope="session")
def cad1():
    """Names of the tiny tree: ``valid_songs``, ``test_songs``, ``valid_listeners``, ``test_listeners``, rates."""

    class Names:
        valid_songs = VALID_SONGS
        test_songs = TEST_SONGS
        valid_listeners = tuple(VALID_LISTENERS)
        test_listeners = tuple(TEST_LISTENERS)
        sample_rate = SAMPLE_RATE
        samples = round(DURATION * SAMPLE_RATE)
        build = staticmethod(build_cad1_tree)
        write_pcm16 = staticmethod(write_pcm16)

    return Names
