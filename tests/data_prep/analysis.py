"""Measurements the data_prep tests make on rendered audio: pitch (YIN), transients, spectra."""

from __future__ import annotations

import numpy as np
import scipy.signal

#: Analysis rate, frame and hop of the pitch tracker (frames of 93 ms hold two periods of 22 Hz).
ANALYSIS_RATE = 22050
FRAME = 2048
HOP = 512


def frames(mono: np.ndarray) -> np.ndarray:
    """``(frames, FRAME)`` views of ``mono`` at ``HOP``."""
    return np.lib.stride_tricks.sliding_window_view(mono, FRAME)[::HOP]


def downmix(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Channel mean of ``(channels, samples)`` resampled to ``ANALYSIS_RATE``."""
    return scipy.signal.resample_poly(audio.mean(axis=0).astype(np.float64), ANALYSIS_RATE, sample_rate)


def yin(mono: np.ndarray, f0_min: float = 30.0, f0_max: float = 1500.0, threshold: float = 0.2):
    """YIN pitch per frame of ``mono`` at ``ANALYSIS_RATE``.

    Returns ``(f0_hz, aperiodicity)``: f0 (NaN where no lag passes ``threshold``) and the minimum of
    the cumulative-mean-normalised difference (0 periodic .. ~1 noise).
    """
    windows = frames(mono)
    lag_max = int(ANALYSIS_RATE / f0_min)
    lag_min = int(ANALYSIS_RATE / f0_max)
    size = 2 * FRAME
    spectrum = np.fft.rfft(windows, size, axis=1)
    autocorrelation = np.fft.irfft(np.abs(spectrum) ** 2, size, axis=1)[:, : lag_max + 1]
    energy = np.cumsum(windows**2, axis=1)
    total = energy[:, -1:]
    # d(tau) = sum_{j < W - tau} (x_j - x_{j + tau})^2 over the frame (window W = FRAME)
    lags = np.arange(lag_max + 1)
    head = energy[:, FRAME - 1 - lags]
    tail = total - np.concatenate([np.zeros((len(windows), 1)), energy[:, : lag_max]], axis=1)
    difference = head + tail - 2 * autocorrelation
    cumulative = np.cumsum(difference[:, 1:], axis=1) / np.arange(1, lag_max + 1)
    normalised = np.ones_like(difference)
    normalised[:, 1:] = difference[:, 1:] / np.maximum(cumulative, 1e-12)
    f0 = np.full(len(windows), np.nan)
    aperiodicity = normalised[:, lag_min:].min(axis=1)
    for index, row in enumerate(normalised):
        below = np.nonzero(row[lag_min:] < threshold)[0]
        if below.size == 0:
            continue
        lag = lag_min + below[0]
        while lag + 1 <= lag_max and row[lag + 1] < row[lag]:
            lag += 1
        f0[index] = ANALYSIS_RATE / lag
    return f0, aperiodicity


def frame_levels_db(mono: np.ndarray) -> np.ndarray:
    """RMS level per frame in dB."""
    return 10 * np.log10(np.mean(frames(mono) ** 2, axis=1) + 1e-20)
