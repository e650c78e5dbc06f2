"""Wiener-EM and mixture phase: against a direct complex implementation, windows, gradients, no residual."""

from __future__ import annotations

import math

import pytest
import torch

from xumx_slicq_v2.wiener import WIENER_EPS, mix_phase, mix_phase_real, unit_phase, wiener, wiener_real


def naive_wiener(magnitude: torch.Tensor, mix: torch.Tensor, iterations: int, window: int | None) -> torch.Tensor:
    """The Wiener-EM step as the reference describes it, in complex128 with explicit 2x2 matrices, one batch
    item and one window at a time: ``magnitude`` ``(batch, J, 2, F, N)``, complex ``mix`` ``(batch, 2, F, N)``."""
    batch, _, _, _, frames = magnitude.shape
    window = window or frames
    result = torch.zeros(magnitude.shape, dtype=torch.complex128)
    eye = torch.eye(2, dtype=torch.complex128)
    for item in range(batch):
        for start in range(0, frames, window):
            v = magnitude[item, ..., start : start + window].to(torch.float64)  # (J, 2, F, n)
            x = mix[item, ..., start : start + window].to(torch.complex128)  # (2, F, n)
            y = v * torch.exp(1j * torch.angle(x))
            max_abs = max(1.0, x.abs().max().item() / 10.0)
            x, y = x / max_abs, y / max_abs
            for _ in range(iterations):
                power = y.abs().square().mean(1)  # (J, F, n)
                outer = y.permute(0, 2, 3, 1)[..., :, None] * y.permute(0, 2, 3, 1)[..., None, :].conj()
                covariance = outer.sum(2) / (power.sum(-1) + WIENER_EPS)[..., None, None]  # (J, F, 2, 2)
                mix_cov = (power[..., None, None] * covariance[:, :, None]).sum(0) + math.sqrt(WIENER_EPS) * eye
                inverse = torch.linalg.inv(mix_cov)  # (F, n, 2, 2)
                gain = power[..., None, None] * (covariance[:, :, None] @ inverse)  # (J, F, n, 2, 2)
                y = (gain @ x.permute(1, 2, 0)[..., None])[..., 0].permute(0, 3, 1, 2)
            result[item, ..., start : start + window] = y * max_abs
    return result


def random_problem(batch=2, targets=4, freq=3, frames=13, loudness=1.0, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    magnitude = torch.rand(batch, targets, 2, freq, frames, generator=generator, dtype=dtype) * loudness
    mix = torch.randn(batch, 2, freq, frames, 2, generator=generator, dtype=dtype) * loudness
    return magnitude, mix


@pytest.mark.parametrize(("iterations", "window", "loudness"), [(1, None, 1.0), (1, 5, 30.0), (2, 4, 30.0)])
def test_wiener_matches_a_direct_complex_implementation(iterations, window, loudness):
    magnitude, mix = random_problem(loudness=loudness)
    got = wiener_real(magnitude, mix, iterations=iterations, window=window)
    assert got.shape == (2, 4, 2, 3, 13, 2)
    expected = naive_wiener(magnitude, torch.view_as_complex(mix), iterations, window)
    torch.testing.assert_close(torch.view_as_complex(got.contiguous()), expected, rtol=1e-9, atol=1e-9 * loudness)


def test_float32_wiener_is_close_to_float64():
    magnitude, mix = random_problem(loudness=30.0)
    got = wiener_real(magnitude.float(), mix.float(), window=5)
    torch.testing.assert_close(got.double(), wiener_real(magnitude, mix, window=5), rtol=0, atol=1e-4 * 30.0)


def test_window_longer_than_the_frames_is_one_window():
    magnitude, mix = random_problem(frames=11)
    whole = wiener_real(magnitude, mix, window=None)
    assert torch.equal(wiener_real(magnitude, mix, window=11), whole)
    assert torch.equal(wiener_real(magnitude, mix, window=5000), whole)
    assert torch.equal(wiener_real(magnitude, mix, window=0), whole)


def test_windows_are_independent():
    magnitude, mix = random_problem(frames=13, loudness=20.0)
    windowed = wiener_real(magnitude, mix, window=5)
    pieces = [
        wiener_real(magnitude[..., start : start + 5], mix[..., start : start + 5, :], window=None)
        for start in (0, 5, 10)
    ]
    torch.testing.assert_close(windowed, torch.cat(pieces, dim=-2), rtol=1e-12, atol=1e-12)


def test_batch_items_are_independent():
    magnitude, mix = random_problem(batch=3, loudness=20.0)
    together = wiener_real(magnitude, mix, window=6)
    for item in range(3):
        alone = wiener_real(magnitude[item : item + 1], mix[item : item + 1], window=6)
        torch.testing.assert_close(together[item : item + 1], alone, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("loudness", [0.5, 30.0])  # below and above the stability scaling threshold
def test_wiener_gradcheck(loudness):
    magnitude, mix = random_problem(batch=1, targets=3, freq=2, frames=6, loudness=loudness)
    magnitude.requires_grad_(True)
    mix.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda m, x: wiener_real(m, x, iterations=2, window=4), (magnitude, mix), eps=1e-6, atol=1e-5, rtol=1e-4
    )


def test_iterations_zero_is_the_mixture_phase():
    magnitude, mix = random_problem()
    torch.testing.assert_close(wiener_real(magnitude, mix, iterations=0), mix_phase_real(magnitude, mix[:, None]))


def test_complex_wrapper():
    magnitude, mix = random_problem()
    got = wiener(magnitude, torch.view_as_complex(mix), window=5)
    assert got.dtype == torch.complex128 and got.shape == (2, 4, 2, 3, 13)
    assert torch.equal(torch.view_as_real(got), wiener_real(magnitude, mix, window=5))


def test_input_shapes_are_checked():
    magnitude, mix = random_problem()
    with pytest.raises(ValueError, match="wiener_real expects"):
        wiener_real(magnitude, mix[:, :, :2])
    with pytest.raises(ValueError, match="wiener_real expects"):
        wiener_real(magnitude[:, :, :1], mix[:, :1])


def test_no_residual_source_loud_mixture_is_reproduced():
    """Oracle magnitudes of four sources with distinct stereo images: the estimates sum to the mixture
    (sum_j y_j = x - sqrt(eps) C^-1 x, and C >> sqrt(eps) for a loud mixture)."""
    generator = torch.Generator().manual_seed(1)
    frames, freq = 400, 5
    images = torch.randn(4, 2, freq, 1, dtype=torch.complex128, generator=generator)  # per source and bin
    signals = torch.randn(4, 1, freq, frames, dtype=torch.complex128, generator=generator) * 20.0
    sources = images * signals  # (4, 2, freq, frames)
    mix = sources.sum(0)
    estimates = wiener(sources.abs()[None], mix[None], window=128)[0]
    assert (estimates.sum(0) - mix).norm() <= 1e-4 * mix.norm()
    # and the estimates move towards the true sources (the mixture phase alone is worse)
    phase_only = mix_phase(sources.abs(), mix[None])
    assert (estimates - sources).norm() < (phase_only - sources).norm()


def test_mix_phase_keeps_magnitude_and_takes_the_mixture_phase():
    magnitude, mix = random_problem()
    mix[0, 0, 0, 0] = 0.0  # a zero coefficient gets phase 0
    got = mix_phase_real(magnitude, mix[:, None])
    complex_got = torch.view_as_complex(got.contiguous())
    torch.testing.assert_close(complex_got.abs(), magnitude)
    nonzero = torch.view_as_complex(mix).abs()[:, None].expand_as(magnitude) > 0
    phase_difference = complex_got * torch.view_as_complex(mix)[:, None].conj()
    assert torch.all(phase_difference.imag[nonzero].abs() <= 1e-12)
    assert torch.all(phase_difference.real[nonzero] > 0)
    torch.testing.assert_close(got[0, :, 0, 0, 0], torch.stack((magnitude[0, :, 0, 0, 0], torch.zeros(4)), -1).double())
    torch.testing.assert_close(mix_phase(magnitude, torch.view_as_complex(mix)[:, None]), complex_got)


def test_unit_phase_gradient_is_finite_at_zero():
    mix = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        mix[1] = torch.tensor([3.0, -4.0])
    unit_phase(mix).sum().backward()
    assert torch.isfinite(mix.grad).all()
    torch.testing.assert_close(unit_phase(mix.detach())[1], torch.tensor([0.6, -0.8], dtype=torch.float64))


def test_half_precision_and_autocast_compute_in_float32():
    magnitude, mix = random_problem(loudness=30.0, dtype=torch.float32)
    expected = wiener_real(magnitude, mix, window=5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = wiener_real(magnitude, mix, window=5)
    assert under_autocast.dtype == torch.float32
    torch.testing.assert_close(under_autocast, expected)
    from_bfloat16 = wiener_real(magnitude.bfloat16(), mix.bfloat16(), window=5)
    assert from_bfloat16.dtype == torch.float32
    torch.testing.assert_close(
        from_bfloat16, wiener_real(magnitude.bfloat16().float(), mix.bfloat16().float(), window=5)
    )
