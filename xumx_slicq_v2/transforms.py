"""The sliced Constant-Q transform (sliCQT): a sliced non-stationary Gabor transform on a chosen frequency scale.

The signal is cut into 50 %-overlapping slices of ``slice_length`` samples (Tukey-like slice window with
``transition_length`` transitions); each slice gets one FFT, a bank of band-pass windows (one per frequency row,
bandwidth from the scale's Q factor) is applied in the frequency domain and every band is brought back to a
short time series by an inverse FFT of its window length. Rows with equal window lengths are stacked into
*blocks*: ``forward`` returns one complex tensor ``(..., freq_bins, slices, coefs)`` per block.

Compared with the reference implementation (vendored ``nsgt`` in xumx-sliCQ-V2 1.0.0a2) this module
- gives every block, the last included, its inverse FFT (reference bug #13 fixed),
- includes the conjugate mirrored contributions in the inverse (reference issue #14),
- works on any leading dimensions, float32 or float64, CPU or CUDA, with autograd through both directions,
- replaces the per-row Python loops by precomputed index maps: one gather, one multiply and one inverse FFT
  per block forward; one FFT per block and one scatter-add inverse.
Coefficients equal the reference's for the same parameters (the reference's circular slice rotation and the
compensating coefficient roll cancel up to a per-row sign, which is folded into the analysis window here).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from xumx_slicq_v2.config import SCALES

#: Step of the numerical differentiation that gives the Q factor of a scale (as in the reference).
_Q_STEP = 1e-8


# ----------------------------------------------------------------------------------------------------------
# Frequency scales
# ----------------------------------------------------------------------------------------------------------


def _scale_function(scale: str, bins: int, fmin: float, fmax: float, gamma: float) -> Callable[[float], float]:
    """Centre frequency in Hz as a function of the (real-valued) bin index ``k`` in ``[0, bins)``."""
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    if not 0 <= fmin < fmax:
        raise ValueError(f"need 0 <= fmin < fmax, got fmin={fmin}, fmax={fmax}")
    if scale == "bark":
        lo, hi = 6 * math.asinh(fmin / 600), 6 * math.asinh(fmax / 600)
        step = (hi - lo) / (bins - 1)
        return lambda k: 600 * math.sinh((lo + k * step) / 6)
    if scale == "mel":
        lo, hi = 2595 * math.log10(1 + fmin / 700), 2595 * math.log10(1 + fmax / 700)
        step = (hi - lo) / (bins - 1)
        return lambda k: 700 * (10 ** ((lo + k * step) / 2595) - 1)
    if scale in ("cqlog", "vqlog"):
        if fmin <= 0:
            raise ValueError(f"the {scale} scale needs fmin > 0, got {fmin}")
        ratio = 2 ** ((math.log2(fmax) - math.log2(fmin)) / (bins - 1))
        offset = gamma if scale == "vqlog" else 0.0
        return lambda k: fmin * ratio**k + offset
    if scale == "linear":
        step = (fmax - fmin) / (bins - 1)
        return lambda k: fmin + k * step
    raise ValueError(f"unknown frequency scale {scale!r}; choose one of {', '.join(SCALES)}")


def frequency_scale(
    scale: str, bins: int, fmin: float, fmax: float, gamma: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Centre frequencies (Hz) and Q factors of a scale, float64 arrays of length ``bins``.

    Q is ``F / (2 F')``: constant for ``cqlog`` (``sqrt(r) / (r - 1) / 2`` for the bin ratio ``r``), ``f / (2 df)``
    for ``linear``, and the numerical derivative of the scale function (step 1e-8) otherwise.
    """
    centre = _scale_function(scale, bins, fmin, fmax, gamma)
    freqs = np.array([centre(k) for k in range(bins)], dtype=np.float64)
    if scale == "cqlog":
        ratio = freqs[1] / freqs[0]
        q = np.full(bins, math.sqrt(ratio) / (ratio - 1) / 2)
    elif scale == "linear":
        q = freqs / (2 * (freqs[1] - freqs[0]))
    else:
        q = np.array(
            [centre(k) * _Q_STEP / (centre(k + _Q_STEP) - centre(k - _Q_STEP)) for k in range(bins)],
            dtype=np.float64,
        )
    return freqs, q


def suggested_slice_lengths(freqs: np.ndarray, q: np.ndarray, sample_rate: float) -> tuple[int, int]:
    """Slice and transition lengths in samples derived from the scale, as the reference does.

    ``slice_length = ceil(max(q * 8 * fs / f))`` rounded up to a multiple of 4; ``transition_length =
    slice_length // 4`` rounded up to even. Bark 262 bins from 32.9 Hz at 44.1 kHz gives (18060, 4516).
    """
    positive = freqs > 0
    slice_length = math.ceil(float(np.max(q[positive] * 8.0 * sample_rate / freqs[positive])))
    slice_length += -slice_length % 4
    transition_length = slice_length // 4
    transition_length += -transition_length % 2
    return slice_length, transition_length


# ----------------------------------------------------------------------------------------------------------
# Filter bank (windows in the frequency domain of one slice)
# ----------------------------------------------------------------------------------------------------------


def _hann_zero_phase(length: int) -> np.ndarray:
    """Hann window of ``length`` samples with its peak at index 0 (zero-phase layout)."""
    n = np.arange(length)
    return 0.5 + 0.5 * np.cos(2 * np.pi * n / length)


def _blackman_harris_zero_phase(length: int) -> np.ndarray:
    """Modified Blackman-Harris window (period ``2 * (length // 2)``) rotated so that its peak is at index 0."""
    period = 2 * (length // 2)
    n = np.arange(length)
    w = (
        0.35872
        - 0.48832 * np.cos(2 * np.pi * n / period)
        + 0.14128 * np.cos(4 * np.pi * n / period)
        - 0.01168 * np.cos(6 * np.pi * n / period)
    )
    return np.roll(w, -(length // 2))


def _flat_top_zero_phase(length: int, taper_length: int) -> np.ndarray:
    """Window of ones whose ends (in zero-phase layout) fall off as a Hann of ``taper_length`` samples."""
    window = np.ones(length)
    start = length // 2 - taper_length // 2
    window[start : start + taper_length] = _hann_zero_phase(taper_length)
    return window


@dataclass(frozen=True)
class FilterBank:
    """The frequency-domain windows of the positive-frequency rows of one slice.

    Attributes:
        frequencies: centre frequency of each row in Hz, DC first and Nyquist last, shape ``(rows,)``.
        window_lengths: window length M of each row in FFT bins (= time coefficients per slice).
        centres: centre FFT bin of each row (even integers).
        windows: analysis window of each row in zero-phase layout (index 0 = centre bin), lengths M.
        duals: canonical dual (synthesis) window of each row, same layout.
        slice_length: FFT length of one slice in samples.
    """

    frequencies: np.ndarray
    window_lengths: np.ndarray
    centres: np.ndarray
    windows: list[np.ndarray]
    duals: list[np.ndarray]
    slice_length: int


def build_filter_bank(
    freqs: np.ndarray, q: np.ndarray, sample_rate: float, slice_length: int, min_window: int = 16
) -> FilterBank:
    """Windows of the sliced NSGT for scale frequencies ``freqs`` (Hz) with Q factors ``q``.

    Scale frequencies at or above Nyquist (or at or below 0 Hz) are dropped; an explicit DC row and an explicit
    Nyquist row are added. Window lengths come from the neighbouring centre frequencies (the first and last
    scale rows from their Q), rounded to a multiple of 4 and at least ``min_window``. The duals divide each
    window by the frame-operator diagonal ``sum_k M_k g_k^2`` taken over all rows and their negative-frequency
    mirrors (painless frame).
    """
    nyquist = sample_rate / 2
    keep = (freqs > 0) & (freqs < nyquist)
    freqs, q = freqs[keep], q[keep]
    n_scale = len(freqs)
    if n_scale < 2:
        raise ValueError("the frequency scale keeps fewer than 2 bins strictly between 0 Hz and Nyquist")
    rows = np.concatenate([[0.0], freqs, [nyquist]])
    # all windows: positive rows followed by the negative mirrors of the scale rows (in FFT-bin units)
    centres_hz = np.concatenate([rows, sample_rate - rows[-2:0:-1]])
    centres_bins = centres_hz * slice_length / sample_rate

    lengths = np.zeros(len(centres_bins))
    lengths[0] = 2 * centres_bins[1]
    lengths[1] = centres_bins[1] / q[0]
    for k in range(2, n_scale):
        lengths[k] = centres_bins[k + 1] - centres_bins[k - 1]
    lengths[n_scale] = centres_bins[n_scale] / q[n_scale - 1]
    lengths[n_scale + 1] = centres_bins[n_scale + 2] - centres_bins[n_scale]
    lengths[n_scale + 2 :] = lengths[n_scale:0:-1]
    lengths = np.maximum(np.round(lengths / 4) * 4, min_window).astype(np.int64)
    if lengths.max() > slice_length:
        raise ValueError(
            f"a window of {lengths.max()} bins exceeds the slice length {slice_length}: use a longer slice_length"
        )
    centres = (np.round(centres_bins / 2) * 2).astype(np.int64)

    windows = [_blackman_harris_zero_phase(m) for m in lengths]
    # DC and Nyquist rows wider than their neighbour get a flat top with the neighbour's Hann as flanks
    for edge, neighbour in ((0, 1), (n_scale + 1, n_scale)):
        if lengths[edge] > lengths[neighbour]:
            windows[edge] = _flat_top_zero_phase(lengths[edge], lengths[neighbour])

    diagonal = np.zeros(slice_length)
    for m, c, g in zip(lengths, centres, windows, strict=True):
        index = (np.arange(-(m // 2), m - m // 2) + c) % slice_length
        np.add.at(diagonal, index, m * np.fft.fftshift(g) ** 2)
    duals = []
    for m, c, g in zip(lengths, centres, windows, strict=True):
        index = (np.arange(-(m // 2), m - m // 2) + c) % slice_length
        duals.append(g / np.fft.ifftshift(diagonal[index]))

    n_rows = n_scale + 2
    return FilterBank(
        frequencies=rows,
        window_lengths=lengths[:n_rows],
        centres=centres[:n_rows],
        windows=windows[:n_rows],
        duals=duals[:n_rows],
        slice_length=slice_length,
    )


def slice_window(slice_length: int, transition_length: int) -> np.ndarray:
    """Tukey-like slice window: zero, Hann rise, one, Hann fall, zero; halves of neighbours sum to one."""
    quarter, half_transition = slice_length // 4, transition_length // 2
    hann = _hann_zero_phase(2 * transition_length)
    window = np.zeros(slice_length)
    window[quarter - half_transition : quarter + half_transition] = hann[transition_length:]
    window[quarter + half_transition : 3 * quarter - half_transition] = 1.0
    window[3 * quarter - half_transition : 3 * quarter + half_transition] = hann[:transition_length]
    return window


def num_slices(length: int, slice_length: int) -> int:
    """Number of slices for ``length`` samples: ``floor((ceil(N / (L/4)) + 1) / 2) + 1``."""
    quarters = -(-length // (slice_length // 4))
    return (quarters + 1) // 2 + 1


# ----------------------------------------------------------------------------------------------------------
# Layout helpers
# ----------------------------------------------------------------------------------------------------------


def to_real_layout(block: Tensor) -> Tensor:
    """Complex block ``(..., F, S, T)`` -> reference real/imag layout ``(..., F, S, T, 2)`` (a view)."""
    return torch.view_as_real(block)


def from_real_layout(block: Tensor) -> Tensor:
    """Reference layout ``(..., F, S, T, 2)`` -> complex block ``(..., F, S, T)``."""
    if block.shape[-1] != 2:
        raise ValueError(f"expected a trailing real/imag axis of size 2, got shape {tuple(block.shape)}")
    return torch.view_as_complex(block.contiguous())


def overlap_add(block: Tensor) -> Tensor:
    """Overlap-add the 50 %-overlapping slices of a block into a continuous time axis (for display).

    Args:
        block: ``(..., F, S, T)`` real (e.g. magnitudes) or complex coefficients.

    Returns:
        ``(..., F, S * T / 2)``: frame ``i`` is centred at ``i * slice_length / T`` samples from the start of
        the signal (the half slice before the signal start is cropped).
    """
    *lead, freq_bins, slices, coefs = block.shape
    hop = coefs // 2
    halves = block.reshape(*lead, freq_bins, slices, 2, hop)
    out = block.new_zeros(*lead, freq_bins, slices + 1, hop)
    out[..., :slices, :] += halves[..., 0, :]
    out[..., 1:, :] += halves[..., 1, :]
    return out[..., 1:, :].reshape(*lead, freq_bins, slices * hop)


# ----------------------------------------------------------------------------------------------------------
# The transform module
# ----------------------------------------------------------------------------------------------------------


class SliCQT(nn.Module):
    """Sliced Constant-Q transform with perfect reconstruction.

    Args:
        scale: frequency scale, one of ``bark, mel, cqlog, vqlog, linear``.
        bins: number of scale frequencies (the output has one DC and one Nyquist row more, minus any scale
            frequency at Nyquist: Bark 262 gives 263 rows).
        fmin: lowest scale frequency in Hz.
        fmax: highest scale frequency in Hz (default: Nyquist).
        sample_rate: in Hz.
        slice_length, transition_length: in samples; derived from the scale when not given.
        min_window: smallest window length in FFT bins.
        gamma: additive frequency offset in Hz of the ``vqlog`` scale.

    ``forward`` maps ``(..., samples)`` to a list of complex blocks ``(..., freq_bins_b, slices, coefs_b)``;
    ``inverse`` maps them back. Windows and index maps are buffers, kept in float64 and cast to the signal's
    dtype on use, so that float64 signals reconstruct to ~1e-15.
    """

    def __init__(
        self,
        scale: str = "bark",
        bins: int = 262,
        fmin: float = 32.9,
        fmax: float | None = None,
        sample_rate: float = 44100,
        slice_length: int | None = None,
        transition_length: int | None = None,
        min_window: int = 16,
        gamma: float = 0.0,
    ) -> None:
        super().__init__()
        fmax = sample_rate / 2 if fmax is None else fmax
        freqs, q = frequency_scale(scale, bins, fmin, fmax, gamma)
        suggested = suggested_slice_lengths(freqs, q, sample_rate)
        slice_length = suggested[0] if slice_length is None else int(slice_length)
        if transition_length is None:
            transition_length = slice_length // 4 + (slice_length // 4) % 2
        if slice_length % 4:
            raise ValueError(f"slice_length must be a multiple of 4, got {slice_length}")
        if transition_length % 2 or not 0 < transition_length <= slice_length // 2:
            raise ValueError(f"transition_length must be even and in (0, slice_length/2], got {transition_length}")
        self.scale, self.bins, self.fmin, self.fmax, self.gamma = scale, bins, fmin, fmax, gamma
        self.sample_rate = sample_rate
        self.slice_length, self.transition_length = slice_length, transition_length
        self.min_window = min_window

        bank = build_filter_bank(freqs, q, sample_rate, slice_length, min_window)
        self.frequencies: np.ndarray = bank.frequencies
        lengths = bank.window_lengths
        # blocks: runs of consecutive rows with the same window length
        boundaries = [0, *(np.flatnonzero(np.diff(lengths)) + 1).tolist(), len(lengths)]
        self.block_rows: list[tuple[int, int]] = list(itertools.pairwise(boundaries))
        self.block_shapes: list[tuple[int, int]] = [
            (stop - start, int(lengths[start])) for start, stop in self.block_rows
        ]

        # Forward gather map: for every row, its M spectrum bins in zero-phase order (centre bin first).
        # The reference rotates even/odd slices by a quarter and rolls the coefficients back; both cancel up to
        # the sign (-1)^(centre/2) per row, which is folded into the analysis window.
        half = slice_length // 2
        gather, analysis, synthesis, target, mirror_src, mirror_dst = [], [], [], [], [], []
        offset = 0
        last_row = len(lengths) - 1
        for row, (m, centre) in enumerate(zip(lengths, bank.centres, strict=True)):
            relative = np.arange(m)
            relative[m // 2 :] -= m  # zero-phase order: 0, 1, ..., M/2-1, -M/2, ..., -1
            freq_bin = centre + relative
            sign = -1.0 if (centre // 2) % 2 else 1.0
            gather.append(freq_bin % slice_length)
            analysis.append(sign * bank.windows[row])
            synthesis.append(sign * m * bank.duals[row])
            # inverse: contributions inside [0, Nyquist] land directly, the others go to a discarded extra bin;
            # for rows other than DC and Nyquist the negative-frequency mirror window adds the conjugate
            # contribution where it reaches [0, Nyquist]
            inside = (freq_bin >= 0) & (freq_bin <= half)
            target.append(np.where(inside, freq_bin, half + 1))
            if 0 < row < last_row:
                mirrored = -freq_bin % slice_length
                reach = mirrored <= half
                mirror_src.append(offset + np.flatnonzero(reach))
                mirror_dst.append(mirrored[reach])
            offset += m

        def buffer(name: str, parts: Sequence[np.ndarray], dtype: torch.dtype) -> None:
            array = np.concatenate(parts) if parts else np.zeros(0)
            self.register_buffer(name, torch.as_tensor(array, dtype=dtype), persistent=False)

        buffer("gather_index", gather, torch.int64)
        buffer("analysis_window", analysis, torch.float64)
        buffer("synthesis_window", synthesis, torch.float64)
        buffer("scatter_index", target, torch.int64)
        buffer("mirror_source", mirror_src, torch.int64)
        buffer("mirror_target", mirror_dst, torch.int64)
        buffer("slice_window", [slice_window(slice_length, transition_length)], torch.float64)
        self.block_sizes = [f * m for f, m in self.block_shapes]

    # -- shapes ------------------------------------------------------------------------------------------------

    @property
    def num_rows(self) -> int:
        """Total number of frequency rows over all blocks (Bark 262: 263)."""
        return sum(f for f, _ in self.block_shapes)

    def num_slices(self, length: int) -> int:
        """Slices produced for a signal of ``length`` samples."""
        return num_slices(length, self.slice_length)

    def block_frequencies(self) -> list[np.ndarray]:
        """Centre frequency in Hz of each row, per block."""
        return [self.frequencies[start:stop] for start, stop in self.block_rows]

    def extra_repr(self) -> str:
        return (
            f"scale={self.scale}, bins={self.bins}, fmin={self.fmin:.2f}, fmax={self.fmax:.2f}, "
            f"sample_rate={self.sample_rate}, slice_length={self.slice_length}, "
            f"transition_length={self.transition_length}, blocks={len(self.block_shapes)}, rows={self.num_rows}"
        )

    # -- transform ---------------------------------------------------------------------------------------------

    def forward(self, x: Tensor) -> list[Tensor]:
        """Analyse ``x`` ``(..., samples)`` (real) into blocks ``(..., freq_bins_b, slices, coefs_b)`` (complex)."""
        if x.is_complex() or not x.is_floating_point():
            raise TypeError(f"SliCQT expects a real floating-point signal, got {x.dtype}")
        length = x.shape[-1]
        if length < 1:
            raise ValueError("SliCQT needs at least 1 sample (shorter inputs are zero-padded to whole slices)")
        lead = x.shape[:-1]
        quarter = self.slice_length // 4
        padded_quarters = -(-length // quarter) + 5  # 2 zero quarters in front, 3 (and the rest) at the end
        signal = x.reshape(-1, length)
        signal = nn.functional.pad(signal, (2 * quarter, padded_quarters * quarter - 2 * quarter - length))
        slices = signal.unfold(-1, self.slice_length, 2 * quarter) * self.slice_window.to(x.dtype)
        spectrum = torch.fft.fft(slices)  # (batch, slices, slice_length)
        coefficients = spectrum[..., self.gather_index].mul_(self.analysis_window.to(x.dtype))
        del spectrum, slices
        blocks = []
        for (freq_bins, coefs), part in zip(
            self.block_shapes, coefficients.split(self.block_sizes, dim=-1), strict=True
        ):
            part = part.unflatten(-1, (freq_bins, coefs)).transpose(1, 2)  # (batch, F, slices, M)
            blocks.append(torch.fft.ifft(part).reshape(*lead, *part.shape[1:]))
        return blocks

    def inverse(self, blocks: Sequence[Tensor], length: int) -> Tensor:
        """Synthesise ``(..., length)`` from complex blocks ``(..., freq_bins_b, slices, coefs_b)``."""
        if len(blocks) != len(self.block_shapes):
            raise ValueError(f"expected {len(self.block_shapes)} blocks, got {len(blocks)}")
        lead = blocks[0].shape[:-3]
        slices = blocks[0].shape[-2]
        batch = blocks[0][..., 0, 0, 0].numel()
        weighted = blocks[0].new_empty(batch, slices, sum(self.block_sizes))
        offset = 0
        for block, (freq_bins, coefs) in zip(blocks, self.block_shapes, strict=True):
            if block.shape[-3] != freq_bins or block.shape[-1] != coefs or block.shape[-2] != slices:
                raise ValueError(
                    f"block of shape {tuple(block.shape)} does not match (..., {freq_bins}, {slices}, {coefs})"
                )
            spectrum = torch.fft.fft(block.reshape(batch, freq_bins, slices, coefs))
            part = weighted.narrow(-1, offset, freq_bins * coefs).unflatten(-1, (freq_bins, coefs))
            part.copy_(spectrum.transpose(1, 2))
            offset += freq_bins * coefs
        weighted = weighted.mul_(self.synthesis_window.to(weighted.real.dtype))
        half = self.slice_length // 2
        spectrum = weighted.new_zeros(weighted.shape[0], slices, half + 2)
        spectrum = spectrum.index_add(-1, self.scatter_index, weighted)[..., : half + 1]
        if self.mirror_source.numel():
            spectrum = spectrum.index_add(-1, self.mirror_target, weighted[..., self.mirror_source].conj())
        frames = torch.fft.irfft(spectrum, n=self.slice_length)  # (batch, slices, slice_length)
        # overlap-add with a hop of half a slice, then drop the two leading zero quarters
        halves = frames.unflatten(-1, (2, half))
        signal = frames.new_zeros(frames.shape[0], slices + 1, half)
        signal[:, :slices] += halves[:, :, 0]
        signal[:, 1:] += halves[:, :, 1]
        signal = signal.flatten(1)[:, half : half + length]
        if signal.shape[-1] < length:
            signal = nn.functional.pad(signal, (0, length - signal.shape[-1]))
        return signal.reshape(*lead, length)
