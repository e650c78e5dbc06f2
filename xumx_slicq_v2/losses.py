"""Training losses on sliCQT blocks (batch-first layout ``(batch, targets, channels, freq, slices, coefs)``).

Both losses average a per-block value over the blocks, so every block counts the same whatever its size.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch

from xumx_slicq_v2.model import SOURCES

#: The 14 target combinations of the complex MSE: 4 singles, 6 pairs, 4 triples (indices into `SOURCES`).
COMBINATIONS: tuple[tuple[int, ...], ...] = tuple(
    combination for size in (1, 2, 3) for combination in itertools.combinations(range(len(SOURCES)), size)
)


def _as_real(x: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(x) if x.is_complex() else x


def complex_mse(estimates: Sequence[torch.Tensor], targets: Sequence[torch.Tensor]) -> torch.Tensor:
    """The X-UMX combination loss on complex coefficients.

    For each block and each of the 14 `COMBINATIONS`, the mean squared error (over every element, real and
    imaginary parts counted separately) between the sum of the estimates and the sum of the targets of the
    combination; the mean over the 14 combinations, averaged over the blocks.

    Args:
        estimates, targets: per block, complex ``(batch, 4, channels, freq, slices, coefs)`` (or real with a
            trailing real/imag axis of size 2).

    Returns:
        a scalar tensor.
    """
    if len(estimates) != len(targets) or not estimates:
        raise ValueError(f"expected as many estimate as target blocks (>= 1), got {len(estimates)} and {len(targets)}")
    selection = torch.zeros(len(COMBINATIONS), len(SOURCES))
    for row, combination in enumerate(COMBINATIONS):
        selection[row, list(combination)] = 1.0
    losses = []
    for estimate, target in zip(estimates, targets):
        error = _as_real(estimate) - _as_real(target)
        if error.shape[1] != len(SOURCES):
            raise ValueError(f"expected {len(SOURCES)} targets on axis 1, got shape {tuple(error.shape)}")
        # (combinations, targets) x (batch, targets, ...) -> (batch, combinations, ...): summed errors
        combined = torch.tensordot(selection.to(error), error, dims=([1], [1])).movedim(0, 1)
        losses.append(combined.square().mean())
    return torch.stack(losses).mean()


def mask_sum_mse(masks: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean of ``(sum over targets of the masks - 1)^2`` per block, averaged over the blocks.

    Args:
        masks: per block ``(batch, 4, channels, freq, slices, coefs)``.
    """
    if not masks:
        raise ValueError("expected at least one block of masks")
    return torch.stack([(mask.sum(1) - 1.0).square().mean() for mask in masks]).mean()
