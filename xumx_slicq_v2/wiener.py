"""Phase recovery for magnitude estimates: mixture phase and multichannel Wiener-EM.

Both work in real arithmetic on complex values stored as a trailing real/imaginary axis of length 2, so they
run in any dtype, differentiate everywhere (also at zero-valued mixture coefficients) and contain no complex
ops; thin wrappers take and return torch complex tensors.

The Wiener-EM step follows the local Gaussian model of multichannel Wiener filtering (Nugraha, Liutkus and
Vincent, 2016), for stereo (2x2 spatial covariances written out with real operations) and without a residual
source; `wiener_real` documents the exact steps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from xumx_slicq_v2.config import WIENER_EPS


def unit_phase(mix: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Unit-modulus phase factor ``exp(j angle(mix))`` of ``mix`` with real/imag on axis ``dim`` (size 2).

    Zero coefficients get phase 0, i.e. the factor ``(1, 0)``; the gradient is finite everywhere.
    """
    real, imag = mix.unbind(dim)
    power = real.square() + imag.square()
    nonzero = power > 0
    inverse_magnitude = torch.rsqrt(torch.where(nonzero, power, 1.0))
    return torch.stack(
        (torch.where(nonzero, real * inverse_magnitude, 1.0), torch.where(nonzero, imag * inverse_magnitude, 0.0)),
        dim=dim,
    )


def mix_phase_real(magnitude: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """Give the magnitudes the mixture's phase: ``magnitude * exp(j angle(mix))``.

    Args:
        magnitude: ``(...)`` non-negative, e.g. ``(batch, targets, channels, freq, frames)``.
        mix: ``(..., 2)`` real/imag, broadcastable to ``magnitude.shape + (2,)``
            (e.g. ``(batch, 1, channels, freq, frames, 2)``).

    Returns:
        ``magnitude.shape + (2,)`` real/imag.
    """
    return magnitude.unsqueeze(-1) * unit_phase(mix)


def mix_phase(magnitude: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """`mix_phase_real` for a complex ``mix`` broadcastable to ``magnitude``; returns a complex tensor."""
    return torch.view_as_complex(mix_phase_real(magnitude, torch.view_as_real(mix)).contiguous())


def wiener_real(
    target_magnitude: torch.Tensor,
    mix: torch.Tensor,
    iterations: int = 1,
    window: int | None = 5000,
    eps: float = WIENER_EPS,
    scale_factor: float = 10.0,
) -> torch.Tensor:
    """Multichannel Wiener-EM refinement of stereo target estimates, without a residual source.

    Per batch item and per consecutive window of ``window`` frames (the last one may be shorter):

    1. initial estimates ``y_j = v_j exp(j angle(mix))`` (mixture phase);
    2. ``mix`` and ``y`` are divided by ``a = max(1, max|mix| / scale_factor)`` (max over the window and
       the batch item; the reference takes it over the whole batch, which is the same for batch 1);
    3. ``iterations`` EM steps: source power ``p_j(t, f) = mean_channels |y_j|^2``, spatial covariance
       ``R_j(f) = sum_t y_j y_j^H / (sum_t p_j + eps)``, mixture covariance
       ``C(t, f) = sum_j p_j R_j + sqrt(eps) I`` inverted analytically (no eps in the determinant), and
       ``y_j = p_j R_j C^-1 mix``;
    4. ``y`` is multiplied back by ``a``.

    Half-precision inputs are computed in float32, and autocast is disabled inside (sums over thousands of
    frames and ``eps`` need at least float32, as in the reference's complex64 computation).

    Args:
        target_magnitude: ``(batch, targets, 2, freq, frames)`` non-negative magnitude estimates.
        mix: ``(batch, 2, freq, frames, 2)`` mixture coefficients, real/imag on the last axis.
        iterations: EM steps; 0 returns the mixture-phase estimates of step 1.
        window: frames per window; ``None`` or 0 uses one window over all frames.
        eps: regulariser (keep `WIENER_EPS` to match the published models, also in float64).
        scale_factor: the divisor of ``max|mix|`` in step 2.

    Returns:
        ``(batch, targets, 2, freq, frames, 2)`` complex estimates, real/imag on the last axis.
    """
    batch, _, channels, freq, frames = target_magnitude.shape
    if channels != 2 or mix.shape != (batch, channels, freq, frames, 2):
        raise ValueError(
            "wiener_real expects target magnitudes (batch, targets, 2, freq, frames) and a mixture "
            f"(batch, 2, freq, frames, 2); got {tuple(target_magnitude.shape)} and {tuple(mix.shape)}"
        )
    if iterations == 0:
        return mix_phase_real(target_magnitude, mix.unsqueeze(1))
    with torch.autocast(mix.device.type, enabled=False):
        dtype = torch.promote_types(torch.promote_types(target_magnitude.dtype, mix.dtype), torch.float32)
        return _wiener(target_magnitude.to(dtype), mix.to(dtype), iterations, window, eps, scale_factor)


def _wiener(
    target_magnitude: torch.Tensor,
    mix: torch.Tensor,
    iterations: int,
    window: int | None,
    eps: float,
    scale_factor: float,
) -> torch.Tensor:
    """`wiener_real` for validated inputs of one dtype."""
    batch, targets, channels, freq, frames = target_magnitude.shape
    length = frames if not window or window >= frames else window
    windows = math.ceil(frames / length)
    padding = windows * length - frames
    if padding:  # zero frames change none of the last window's sums (nor its maximum)
        target_magnitude = F.pad(target_magnitude, (0, padding))
        mix = F.pad(mix, (0, 0, 0, padding))
    magnitude = target_magnitude.reshape(batch, targets, channels, freq, windows, length)
    mix = mix.reshape(batch, channels, freq, windows, length, 2)

    mix_power = mix[..., 0].square() + mix[..., 1].square()  # (batch, channels, freq, windows, frames)
    scale = torch.clamp(mix_power.amax(dim=(1, 2, 4)).sqrt() / scale_factor, min=1.0)  # (batch, windows)
    # Rows (left re, left im, right re, right im) of the scaled mixture: (batch, freq, windows, 4, frames)
    scaled_mix = (mix / scale.reshape(batch, 1, 1, windows, 1, 1)).permute(0, 2, 3, 1, 5, 4)
    scaled_mix = scaled_mix.reshape(batch, freq, windows, 4, length)
    source_power, covariance = _mix_phase_statistics(magnitude, unit_phase(mix), scale, eps)
    for iteration in range(iterations):
        filtered = _filter(source_power, covariance, scaled_mix, eps)
        if iteration == iterations - 1:
            break
        source_power, covariance = _statistics(filtered * source_power.unsqueeze(-2), eps)
    weights = source_power * scale.reshape(batch, 1, windows, 1, 1)  # p_j * a: (b, f, w, j, frames)
    # Write y_j = p_j * a * filtered straight into (batch, targets, channels, freq, frames, re/im).
    output = filtered.new_empty((batch, targets, channels, freq, windows * length, 2))
    destination = output.view(batch, targets, channels, freq, windows, length, 2).permute(0, 3, 4, 1, 2, 6, 5)
    filtered = filtered.reshape(batch, freq, windows, targets, channels, 2, length)
    weights = weights.reshape(batch, freq, windows, targets, 1, 1, length)
    if filtered.requires_grad or weights.requires_grad:
        destination.copy_(filtered * weights)
    else:
        torch.mul(filtered, weights, out=destination)
    return output[..., :frames, :]


def wiener(
    target_magnitude: torch.Tensor,
    mix: torch.Tensor,
    iterations: int = 1,
    window: int | None = 5000,
    eps: float = WIENER_EPS,
    scale_factor: float = 10.0,
) -> torch.Tensor:
    """`wiener_real` for a complex ``mix`` ``(batch, 2, freq, frames)``; returns complex
    ``(batch, targets, 2, freq, frames)``."""
    estimates = wiener_real(
        target_magnitude, torch.view_as_real(mix), iterations, window, eps=eps, scale_factor=scale_factor
    )
    return torch.view_as_complex(estimates.contiguous())


def _mix_phase_statistics(
    magnitude: torch.Tensor, phase: torch.Tensor, scale: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """`_statistics` of the initial estimates ``y_jc = m_jc u_c / a`` without forming them.

    Args:
        magnitude: ``m`` ``(batch, targets, 2, freq, windows, frames)``.
        phase: mixture phase factors ``u`` ``(batch, 2, freq, windows, frames, 2)``.
        scale: ``a`` ``(batch, windows)``.

    Returns:
        as `_statistics`, with ``p_j = (m_j0^2 + m_j1^2) / (2 a^2)`` and
        ``sum_t y_j y_j^H = [[sum m_j0^2, sum m_j0 m_j1 u_0 conj(u_1)], [.., sum m_j1^2]] / a^2``.
    """
    batch, windows = scale.shape
    inverse_power = scale.reciprocal().square().reshape(batch, 1, 1, windows)  # 1 / a^2
    left, right = magnitude.unbind(2)  # (b, j, f, w, frames)
    left_power, right_power = left.square(), right.square()
    source_power = (left_power + right_power) * (inverse_power.unsqueeze(-1) / 2)
    (left_re, left_im), (right_re, right_im) = phase[:, 0].unbind(-1), phase[:, 1].unbind(-1)
    cross_phase = torch.stack((left_re * right_re + left_im * right_im, left_im * right_re - left_re * right_im))
    sums = torch.stack(
        (
            left_power.sum(-1),
            right_power.sum(-1),
            *torch.einsum("bjfwt,kbfwt->kbjfw", left * right, cross_phase).unbind(0),
        ),
        dim=-1,
    ) * inverse_power.unsqueeze(-1)  # (b, j, f, w, 4)
    weight = (sums[..., 0] + sums[..., 1]) / 2 + eps  # sum_t p_j + eps
    covariance = sums / weight.unsqueeze(-1)
    return source_power.permute(0, 2, 3, 1, 4), covariance.permute(0, 2, 3, 1, 4)


def _statistics(estimates: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Local Gaussian model of stereo estimates.

    Args:
        estimates: ``y_j`` ``(batch, freq, windows, targets, 4, frames)``, rows (left re, left im, right re,
            right im).

    Returns:
        ``(source_power, covariance)``: ``p_j = mean_channels |y_j|^2`` ``(batch, freq, windows, targets,
        frames)`` and the spatial covariance ``R_j = sum_t y_j y_j^H / (sum_t p_j + eps)`` as
        ``(r00, r11, re r01, im r01)`` on the last axis of ``(batch, freq, windows, targets, 4)``.
    """
    gram = estimates @ estimates.transpose(-1, -2)  # sums over frames: (b, f, w, j, 4, 4)
    source_power = estimates.square().sum(-2) / 2
    weight = torch.diagonal(gram, dim1=-2, dim2=-1).sum(-1) / 2 + eps
    covariance = torch.stack(
        (
            gram[..., 0, 0] + gram[..., 1, 1],
            gram[..., 2, 2] + gram[..., 3, 3],
            gram[..., 0, 2] + gram[..., 1, 3],
            gram[..., 1, 2] - gram[..., 0, 3],
        ),
        dim=-1,
    ) / weight.unsqueeze(-1)
    return source_power, covariance


def _filter(source_power: torch.Tensor, covariance: torch.Tensor, mix: torch.Tensor, eps: float) -> torch.Tensor:
    """``R_j C^-1 x`` with the mixture covariance ``C = sum_j p_j R_j + sqrt(eps) I``.

    Args:
        source_power: ``p_j`` ``(batch, freq, windows, targets, frames)``.
        covariance: ``R_j`` ``(batch, freq, windows, targets, 4)`` as in `_statistics`.
        mix: ``x`` ``(batch, freq, windows, 4, frames)``, rows (left re, left im, right re, right im).

    Returns:
        ``(batch, freq, windows, targets, 4, frames)``; the new estimates are ``p_j`` times this.
    """
    c00, c11, c01_re, c01_im = (covariance.transpose(-1, -2) @ source_power).unbind(-2)  # (b, f, w, frames)
    c00 = c00 + math.sqrt(eps)
    c11 = c11 + math.sqrt(eps)
    inverse_det = 1.0 / (c00 * c11 - (c01_re.square() + c01_im.square()))  # no eps, as the reference
    x0_re, x0_im, x1_re, x1_im = mix.unbind(-2)
    # z = C^-1 x with C^-1 = [[c11, -c01], [-conj(c01), c00]] / det: (b, f, w, 4, frames)
    whitened = inverse_det.unsqueeze(-2) * torch.stack(
        (
            c11 * x0_re - (c01_re * x1_re - c01_im * x1_im),
            c11 * x0_im - (c01_re * x1_im + c01_im * x1_re),
            c00 * x1_re - (c01_re * x0_re + c01_im * x0_im),
            c00 * x1_im - (c01_re * x0_im - c01_im * x0_re),
        ),
        dim=-2,
    )
    # R_j z, with R_j as a real 4x4 matrix acting on (z0_re, z0_im, z1_re, z1_im).
    r00, r11, r01_re, r01_im = covariance.unbind(-1)
    zero = torch.zeros_like(r00)
    filters = torch.stack(
        (
            torch.stack((r00, zero, r01_re, -r01_im), -1),
            torch.stack((zero, r00, r01_im, r01_re), -1),
            torch.stack((r01_re, r01_im, r11, zero), -1),
            torch.stack((-r01_im, r01_re, zero, r11), -1),
        ),
        dim=-2,
    )  # (b, f, w, j, 4, 4)
    batch, freq, windows, targets = filters.shape[:4]
    filtered = filters.reshape(batch, freq, windows, targets * 4, 4) @ whitened
    return filtered.reshape(batch, freq, windows, targets, 4, -1)
