"""Fixtures of the data_prep tests: short rendered songs and small generated trees (built once per session)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_prep.layouts import write_cad1_tree, write_musdb_tree
from data_prep.synth import render_song

#: Two short songs that the stem-class and loudness tests "listen" to.
SONG_SEEDS = (10, 12)
SONG_SECONDS = 6.0


@pytest.fixture(scope="session")
def songs() -> dict[int, dict[str, np.ndarray]]:
    """Stems of the songs of ``SONG_SEEDS``."""
    return {seed: render_song(seed, SONG_SECONDS) for seed in SONG_SEEDS}


@pytest.fixture(scope="session")
def musdb_tree(tmp_path_factory) -> tuple[Path, dict[str, list[str]]]:
    """A MUSDB18-HQ tree: 2 train, 2 valid, 1 test songs of 2 s."""
    root = tmp_path_factory.mktemp("musdb")
    names = write_musdb_tree(root, n_train=2, n_valid=2, n_test=1, seconds=2.0, seed=5, progress=False)
    return root, names


@pytest.fixture(scope="session")
def cad1_tree(tmp_path_factory) -> Path:
    """A CAD1 Task 1 tree: 1 train, 2 valid, 2 test songs of 3 s, 5 listeners per split."""
    root = tmp_path_factory.mktemp("cad1")
    return write_cad1_tree(
        root, n_train=1, n_valid=2, n_test=2, seconds=3.0, seed=3, listeners_per_split=5, progress=False
    )
