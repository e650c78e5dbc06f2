"""Fixtures of the network tests: the reference-vector helpers and the stored sliCQT blocks."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """One intra-op thread: these small tensors gain nothing from two, and on a shared 2-core machine every
    parallel region of a second thread can wait a scheduler time slice (100x slower tests under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def weights_helper() -> ModuleType:
    """``tests/model/reference_weights.py`` (formula weights, block table, file readers)."""
    path = Path(__file__).resolve().parent / "reference_weights.py"
    spec = importlib.util.spec_from_file_location("_model_reference_weights", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def bark262_block_shapes(weights_helper: ModuleType) -> list[tuple[int, int]]:
    return weights_helper.BARK262_BLOCK_SHAPES


@pytest.fixture(scope="session")
def reference_block_arrays(reference_vectors: Path) -> list[np.ndarray]:
    """The reference's forward sliCQT of ``input.npy``: 70 float32 blocks ``(1, 2, F, 7, T, 2)``."""
    with np.load(reference_vectors / "slicqt_bark262.npz") as data:
        return [data[f"block{index:02d}"] for index in range(70)]


@pytest.fixture
def reference_blocks(reference_block_arrays: list[np.ndarray]) -> list[torch.Tensor]:
    """Fresh complex64 tensors ``(1, 2, F, 7, T)`` of the stored blocks (tests may not alter shared data)."""
    return [torch.view_as_complex(torch.from_numpy(block.copy())) for block in reference_block_arrays]
