"""Measurements of rendered stems ("listening by numbers"): YIN pitch, frame levels, onsets, spectra.

The tests and the synthesis benchmark use them to check that each stem is what it claims to be.
All functions take mono float arrays at ``ANALYSIS_RATE`` (see :func:`downmix`).
"""

from __future__ import annotations

import numpy as np
import scipy.signal

#: Analysis rate; pitch frames of 93 ms hold two periods of 22 Hz.
ANALYSIS_RATE = 22050
FRAME = 2048
HOP = 512

#: Short frames of the onset detector (11.6 ms, hop 5.8 ms) and the rise that counts as an onset.
ONSET_FRAME = 256
ONSET_RISE_DB = 12.0
ONSET_LOOKBACK = 4  # frames (23 ms)


def downmix(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Channel mean of ``(channels, samples)`` resampled to ``ANALYSIS_RATE``, float64."""
    return scipy.signal.resample_poly(audio.mean(axis=0).astype(np.float64), ANALYSIS_RATE, sample_rate)


def frames(mono: np.ndarray, length: int = FRAME, hop: int = HOP) -> np.ndarray:
    """``(frames, length)`` views of ``mono``."""
    return np.lib.stride_tricks.sliding_window_view(mono, length)[::hop]


def frame_levels_db(mono: np.ndarray, length: int = FRAME, hop: int = HOP) -> np.ndarray:
    """Mean-square level per frame in dB (full scale sine = -3 dB)."""
    return 10 * np.log10(np.mean(frames(mono, length, hop) ** 2, axis=1) + 1e-20)


def loud_frames(mono: np.ndarray, below_peak_db: float = 30.0) -> np.ndarray:
    """Boolean mask of the frames within ``below_peak_db`` of the loudest frame."""
    levels = frame_levels_db(mono)
    return levels > levels.max() - below_peak_db


def yin(mono: np.ndarray, f0_min: float = 30.0, f0_max: float = 1500.0, threshold: float = 0.2):
    """YIN pitch per frame (de Cheveigné & Kawahara 2002, steps 1-4).

    Returns ``(f0_hz, aperiodicity)`` per frame: f0 is NaN where no lag dips below ``threshold``;
    aperiodicity is the minimum of the cumulative-mean-normalised difference (0 periodic .. ~1 noise).
    """
    windows = frames(mono)
    lag_max = int(ANALYSIS_RATE / f0_min)
    lag_min = int(ANALYSIS_RATE / f0_max)
    size = 2 * FRAME
    spectrum = np.fft.rfft(windows, size, axis=1)
    autocorrelation = np.fft.irfft(np.abs(spectrum) ** 2, size, axis=1)[:, : lag_max + 1]
    energy = np.cumsum(windows**2, axis=1)
    lags = np.arange(lag_max + 1)
    # d(tau) = sum_j (x_j - x_{j+tau})^2 over the overlap: energy of the head + energy of the tail - 2 r(tau)
    head = energy[:, FRAME - 1 - lags]
    tail = energy[:, -1:] - np.concatenate([np.zeros((len(windows), 1)), energy[:, :lag_max]], axis=1)
    difference = head + tail - 2 * autocorrelation
    cumulative_mean = np.cumsum(difference[:, 1:], axis=1) / np.arange(1, lag_max + 1)
    normalised = difference[:, 1:] / np.maximum(cumulative_mean, 1e-12)  # index i <-> lag i + 1
    search = normalised[:, lag_min - 1 :]
    aperiodicity = search.min(axis=1)
    f0 = np.full(len(windows), np.nan)
    for index, row in enumerate(search):
        below = np.flatnonzero(row < threshold)
        if below.size == 0:
            continue
        position = below[0]
        while position + 1 < len(row) and row[position + 1] < row[position]:
            position += 1
        f0[index] = ANALYSIS_RATE / (lag_min + position)
    return f0, aperiodicity


def pitched_fraction(mono: np.ndarray, f0_range: tuple[float, float]) -> float:
    """Share of the loud frames where YIN finds an f0 inside ``f0_range`` (Hz)."""
    f0, _ = yin(mono)
    loud = loud_frames(mono)
    inside = (f0 >= f0_range[0]) & (f0 <= f0_range[1])  # NaN compares False
    return float(np.mean(inside[loud]))


def band_share(mono: np.ndarray, low: float, high: float) -> float:
    """Share of the energy of the loud frames between ``low`` and ``high`` Hz."""
    spectra = np.abs(np.fft.rfft(frames(mono)[loud_frames(mono)] * np.hanning(FRAME), axis=1)) ** 2
    frequencies = np.fft.rfftfreq(FRAME, 1.0 / ANALYSIS_RATE)
    band = (frequencies >= low) & (frequencies < high)
    return float(spectra[:, band].sum() / spectra.sum())


def onset_rate(mono: np.ndarray) -> float:
    """Onsets per second: short frames at least ``ONSET_RISE_DB`` louder than ``ONSET_LOOKBACK`` frames
    before, counted once per rise, among frames within 40 dB of the loudest."""
    levels = frame_levels_db(mono, ONSET_FRAME, ONSET_FRAME // 2)
    rise = levels[ONSET_LOOKBACK:] - levels[:-ONSET_LOOKBACK]
    audible = levels[ONSET_LOOKBACK:] > levels.max() - 40.0
    onset = (rise >= ONSET_RISE_DB) & audible
    starts = onset & ~np.concatenate([[False], onset[:-1]])
    return float(starts.sum() / (len(mono) / ANALYSIS_RATE))


def energy_concentration(mono: np.ndarray) -> float:
    """Smallest share of the audible short frames (within 40 dB of the loudest) that holds half the energy.

    Percussive signals put their energy into the few frames after each hit (small values, ~0.1);
    sustained tones spread it evenly over the time they sound (values towards 0.5).
    """
    energies = np.sort(np.mean(frames(mono, ONSET_FRAME, ONSET_FRAME // 2) ** 2, axis=1))[::-1]
    audible = energies[energies > energies[0] * 1e-4]
    cumulative = np.cumsum(audible) / audible.sum()
    return float((np.searchsorted(cumulative, 0.5) + 1) / len(audible))
