"""Shared test fixtures."""

from __future__ import annotations

import importlib.util
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
def formula_state_dict() -> dict:
    """The reference-format state_dict of the formula-defined weights (reference-vectors README section 3)."""
    helper = _load_test_helper(Path(__file__).resolve().parent / "model" / "reference_weights.py")
    return helper.formula_state_dict(REFERENCE_VECTORS / "state_dict_keys.txt")
