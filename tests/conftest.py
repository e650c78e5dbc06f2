"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: Numeric outputs of the reference implementation (see its README for the formulas and tolerances).
REFERENCE_VECTORS = Path(os.environ.get("XUMX_REFERENCE_VECTORS", Path(__file__).resolve().parents[2] / "shared" / "reference-vectors"))


@pytest.fixture(scope="session")
def reference_vectors() -> Path:
    """Folder of the reference vectors; tests that need them fail loudly if it is missing."""
    if not (REFERENCE_VECTORS / "input.npy").is_file():
        pytest.fail(f"reference vectors not found in {REFERENCE_VECTORS} (set XUMX_REFERENCE_VECTORS)")
    return REFERENCE_VECTORS
