"""Fixtures of the tuning tests: a tiny generated MUSDB18-HQ tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_prep.layouts import write_musdb_tree


@pytest.fixture(scope="session")
def musdb_root(tmp_path_factory) -> Path:
    """2 training songs and 1 validation song of 4 s (synthetic, MUSDB18-HQ layout). 4 s give the Bark 262
    sliCQT 21 slices, so its last block has 21 x 292 = 6132 frames: more than one 5000-frame Wiener window."""
    root = tmp_path_factory.mktemp("musdb")
    write_musdb_tree(root, n_train=2, n_valid=1, n_test=0, seconds=4.0, seed=5, progress=False)
    return root
