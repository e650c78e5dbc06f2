"""Training losses: hand-computed examples."""

from __future__ import annotations

import pytest
import torch

from xumx_slicq_v2.losses import COMBINATIONS, complex_mse, mask_sum_mse


def one_coefficient(*values: complex) -> torch.Tensor:
    """A block ``(batch 1, 4 targets, 1, 1, 1, 1)`` with one complex coefficient per target."""
    return torch.tensor(values, dtype=torch.complex64).reshape(1, 4, 1, 1, 1, 1)


def test_combinations_are_the_14_singles_pairs_and_triples():
    assert len(COMBINATIONS) == 14
    assert COMBINATIONS[:4] == ((0,), (1,), (2,), (3,))
    assert set(COMBINATIONS[4:10]) == {(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)}
    assert set(COMBINATIONS[10:]) == {(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)}


def test_complex_mse_hand_examples():
    zero = one_coefficient(0, 0, 0, 0)
    # error 1 on bass only: 7 of the 14 combinations contain bass, each MSE = (1^2 + 0^2) / 2 (re, im)
    assert complex_mse([one_coefficient(1, 0, 0, 0)], [zero]).item() == pytest.approx(7 * 0.5 / 14)
    # error 3+4j on "other": 7 combinations, each (9 + 16) / 2
    assert complex_mse([one_coefficient(0, 0, 3 + 4j, 0)], [zero]).item() == pytest.approx(7 * 12.5 / 14)
    # errors +1 (bass) and -1 (vocals) cancel in every combination holding both:
    # singles 2 x 0.5, pairs (0,2) (0,3) (1,2) (1,3) 4 x 0.5, (0,1) 0, triples (0,2,3) (1,2,3) 2 x 0.5
    assert complex_mse([one_coefficient(1, -1, 0, 0)], [zero]).item() == pytest.approx(8 * 0.5 / 14)
    # the error is estimate - target, wherever the values sit
    assert complex_mse([one_coefficient(2, 5j, 1, 1)], [one_coefficient(1, 5j, 1, 1)]).item() == pytest.approx(0.25)


def test_complex_mse_averages_blocks_equally_and_accepts_real_layout():
    small = [one_coefficient(1, 0, 0, 0)]  # loss 0.25
    large = torch.zeros(2, 4, 2, 3, 1, 4, dtype=torch.complex64)
    large[:, 3] = 3 + 4j  # every drums coefficient off by 5: loss 7 * 12.5 / 14 = 6.25
    estimates = [small[0], large]
    targets = [torch.zeros_like(small[0]), torch.zeros_like(large)]
    assert complex_mse(estimates, targets).item() == pytest.approx((0.25 + 6.25) / 2)
    real = [torch.view_as_real(block) for block in estimates]
    assert complex_mse(real, [torch.view_as_real(block) for block in targets]).item() == pytest.approx(3.25)


def test_complex_mse_gradient_and_errors():
    estimate = one_coefficient(1, 0, 0, 0).requires_grad_(True)
    loss = complex_mse([estimate], [one_coefficient(0, 0, 0, 0)])
    loss.backward()
    # d/d(re) of (7 combinations x re^2 / 2) / 14 = 0.5 re
    assert torch.view_as_real(estimate.grad)[0, 0, 0, 0, 0, 0].tolist() == pytest.approx([0.5, 0.0])
    with pytest.raises(ValueError, match="as many estimate as target blocks"):
        complex_mse([estimate], [])
    with pytest.raises(ValueError, match="expected 4 targets"):
        complex_mse([torch.zeros(1, 3, 1, 1, 1, 1, 2)], [torch.zeros(1, 3, 1, 1, 1, 1, 2)])


def test_mask_sum_mse_hand_example():
    masks = torch.zeros(1, 4, 1, 1, 1, 2)
    masks[..., 0] = 0.25  # sums to 1: no penalty
    masks[..., 1] = 0.5  # sums to 2: penalty (2 - 1)^2 = 1
    assert mask_sum_mse([masks]).item() == pytest.approx(0.5)
    # blocks count equally: the all-zero block has penalty (0 - 1)^2 = 1 everywhere
    assert mask_sum_mse([masks, torch.zeros(3, 4, 2, 5, 3, 8)]).item() == pytest.approx(0.75)
    with pytest.raises(ValueError, match="at least one block"):
        mask_sum_mse([])
