"""Helpers for the reference vectors of the network: the formula-defined weights and the block table.

See ``tests/reference_vectors/README.md`` sections 3 and 4.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

#: (freq_bins, coefs) of the 70 blocks of the Bark 262 / 32.9 Hz sliCQT (reference-vectors README, section 2).
BARK262_BLOCK_SHAPES = [
    (1, 28), (86, 16), (14, 20), (11, 24), (9, 28), (8, 32), (7, 36), (6, 40), (6, 44), (5, 48),
    (5, 52), (4, 56), (5, 60), (3, 64), (4, 68), (4, 72), (3, 76), (3, 80), (3, 84), (3, 88),
    (2, 92), (3, 96), (2, 100), (3, 104), (2, 108), (2, 112), (2, 116), (2, 120), (2, 124), (2, 128),
    (2, 132), (2, 136), (2, 140), (1, 144), (2, 148), (2, 152), (1, 156), (2, 160), (1, 164), (2, 168),
    (1, 172), (2, 176), (1, 180), (1, 184), (2, 188), (1, 192), (1, 196), (1, 200), (2, 204), (1, 208),
    (1, 212), (1, 216), (1, 220), (1, 224), (1, 228), (2, 232), (1, 236), (1, 240), (1, 244), (1, 248),
    (1, 252), (1, 256), (1, 264), (1, 268), (1, 272), (1, 276), (1, 280), (1, 284), (1, 288), (1, 292),
]  # fmt: skip

_KEY_LINE = re.compile(r"^(\S+) \(([\d,]*)\) (\w+)$")


def read_state_dict_keys(path: Path) -> list[tuple[str, tuple[int, ...], str]]:
    """``(key, shape, dtype name)`` per line of ``state_dict_keys.txt``, in file order."""
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = _KEY_LINE.match(line)
        if match is None:
            raise ValueError(f"{path}:{number}: unexpected line {line!r}")
        key, shape, dtype = match.groups()
        entries.append((key, tuple(int(size) for size in shape.split(",") if size), dtype))
    return entries


def formula_value(key: str, index: int, numel: int) -> np.ndarray:
    """The formula weights of the key with position ``index``: float32 ``(numel,)``, computed in float64."""
    phase = np.sin(0.7 * np.arange(numel, dtype=np.float64) + 1.3 * index)
    if key.endswith("running_var"):
        values = 1.0 + 0.5 * phase**2
    elif key.endswith("input_scale"):
        values = 1.0 + 0.1 * phase
    else:
        values = 0.05 * phase
    return values.astype(np.float32)


def formula_state_dict(keys_path: Path) -> dict[str, torch.Tensor]:
    """The reference-format state_dict of formula weights, driven only by ``state_dict_keys.txt``."""
    state = {}
    for index, (key, shape, dtype) in enumerate(read_state_dict_keys(keys_path)):
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros(shape, dtype=getattr(torch, dtype))
        else:
            numel = int(np.prod(shape, dtype=np.int64))
            state[key] = torch.from_numpy(formula_value(key, index, numel).reshape(shape))
    return state


def read_checksums(path: Path) -> list[tuple[str, float, float]]:
    """``(key, float64 sum, float64 abs sum)`` per line of ``weight_checksums.txt`` (comment skipped)."""
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        _, key, total, abs_total, *_ = line.split()
        rows.append((key, float(total), float(abs_total)))
    return rows
