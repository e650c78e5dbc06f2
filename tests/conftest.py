"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

#: Numeric outputs of the reference implementation, copied from shared/reference-vectors (see the README
#: there for the input formula, the formula-defined weights and the tolerances).
REFERENCE_VECTORS = Path(__file__).resolve().parent / "reference_vectors"


@pytest.fixture(scope="session")
def reference_vectors() -> Path:
    """Folder of the reference vectors."""
    return REFERENCE_VECTORS
