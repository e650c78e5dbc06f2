"""Shared test fixtures."""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning: tests start subprocesses (CLI workers, torchrun, hydra joblib)
# that share the 2 cores, and spinning threads slow oversubscribed runs down by up to 10x. Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

#: Numeric outputs of the reference implementation, copied from shared/reference-vectors (see the README
#: there for the input formula, the formula-defined weights and the tolerances).
REFERENCE_VECTORS = Path(__file__).resolve().parent / "reference_vectors"


@pytest.fixture(scope="session")
def reference_vectors() -> Path:
    """Folder of the reference vectors."""
    return REFERENCE_VECTORS


def _load_test_helper(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_test_helper_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def reference_weights() -> ModuleType:
    """``tests/model/reference_weights.py``: formula weights and the Bark 262 block table of the reference."""
    return _load_test_helper(Path(__file__).resolve().parent / "model" / "reference_weights.py")


@pytest.fixture(scope="session")
def formula_state_dict(reference_weights: ModuleType) -> dict:
    """The reference-format state_dict of the formula-defined weights (reference-vectors README section 3)."""
    return reference_weights.formula_state_dict(REFERENCE_VECTORS / "state_dict_keys.txt")


@pytest.fixture(scope="session")
def bark262_block_shapes(reference_weights: ModuleType) -> list[tuple[int, int]]:
    """(F, T) per block of the Bark 262 / 32.9 Hz / 44.1 kHz sliCQT, from the reference's block table."""
    return reference_weights.BARK262_BLOCK_SHAPES


@pytest.fixture(scope="session")
def museval() -> ModuleType:
    """The museval module. Tests that take it are skipped only where it cannot work on this machine: museval not
    installed, or no ffmpeg/ffprobe executable for the audio backend (stempeg) of musdb, which museval imports;
    any other import failure is an error."""
    if importlib.util.find_spec("museval") is None:
        pytest.skip("museval is not installed (pip install 'xumx-slicq-v2[musdb]')")
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.skip("no ffmpeg/ffprobe executable on PATH: museval imports musdb, whose audio backend needs them")
    import museval

    return museval
