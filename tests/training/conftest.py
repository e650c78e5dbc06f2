"""Fixtures of the training tests: a tiny generated MUSDB18-HQ tree and a tiny model configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_prep.layouts import write_musdb_tree

#: Flags of a tiny model (6 sliCQT blocks, 4 hidden channels): fast enough for several epochs in a test.
TINY_MODEL_FLAGS = ["--fbins", "8", "--hidden-size-1", "4", "--hidden-size-2", "4", "--time-filter-2", "2"]


@pytest.fixture(scope="session")
def musdb_root(tmp_path_factory) -> Path:
    """2 training, 1 validation and 1 test song of 3 s (synthetic, MUSDB18-HQ layout)."""
    root = tmp_path_factory.mktemp("musdb")
    write_musdb_tree(root, n_train=2, n_valid=1, n_test=1, seconds=3.0, seed=11, progress=False)
    return root


@pytest.fixture(scope="session")
def training_flags(musdb_root: Path):
    """``flags(model_path, epochs)``: command line of a one-step-per-epoch run of the tiny model."""

    def flags(model_path: Path, epochs: int) -> list[str]:
        return [
            "--musdb-root", str(musdb_root), "--model-path", str(model_path), "--epochs", str(epochs),
            "--samples-per-track", "1", "--batch-size", "2", "--seq-dur", "1.0", "--nb-workers", "0",
            "--audio-every", "1", "--audio-seconds", "1.0", "--quiet", *TINY_MODEL_FLAGS,
        ]  # fmt: skip

    return flags
