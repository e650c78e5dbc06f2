"""Signal building blocks of the synthesiser: oscillators, envelopes, filters, panning, reverb.

Signals are float64 numpy arrays; mono ``(samples,)``, stereo ``(2, samples)``; times in seconds,
frequencies in Hz.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft
import scipy.signal

#: Samples per period of a wavetable (a power of two; the table carries one extra wrap-around sample).
TABLE_SIZE = 2048

#: Highest harmonic frequency a wavetable may contain, as a fraction of the sample rate.
BAND_LIMIT = 0.45


def harmonic_table(amplitudes: np.ndarray, phases: np.ndarray | None = None) -> np.ndarray:
    """One period of ``sum_k amplitudes[k-1] * sin(2 pi k t + phases[k-1])``, float32 ``(TABLE_SIZE + 1,)``."""
    amplitudes = np.asarray(amplitudes, dtype=float)
    if phases is None:
        phases = np.zeros_like(amplitudes)
    spectrum = np.zeros(TABLE_SIZE // 2 + 1, dtype=complex)
    count = min(len(amplitudes), TABLE_SIZE // 2 - 1)
    spectrum[1 : count + 1] = amplitudes[:count] * np.exp(1j * (phases[:count] - np.pi / 2))
    table = np.fft.irfft(spectrum, TABLE_SIZE) * (TABLE_SIZE / 2)
    return np.append(table, table[0]).astype(np.float32)


def harmonic_limit(f0_max: float, sample_rate: int) -> int:
    """Number of harmonics of ``f0_max`` that stay below the band limit (at least 1)."""
    return max(int(BAND_LIMIT * sample_rate / max(f0_max, 1.0)), 1)


def oscillate(table: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Read a wavetable at ``phase`` (in cycles, >= 0) with linear interpolation; float32 output."""
    position = phase * TABLE_SIZE
    index = position.astype(np.int64)
    weight = (position - index).astype(np.float32)
    index &= TABLE_SIZE - 1
    low = table[index]
    return low + (table[index + 1] - low) * weight


def constant_phase(f0: float, samples: int, sample_rate: int, start: float = 0.0) -> np.ndarray:
    """Phase in cycles of a steady tone."""
    return start + f0 * np.arange(samples) / sample_rate


def decay(samples: int, time_constant: float, sample_rate: int) -> np.ndarray:
    """``exp(-t / time_constant)``."""
    return np.exp(-np.arange(samples) / (time_constant * sample_rate))


def note_envelope(
    samples: int, sample_rate: int, attack: float, release: float, sounding: float, time_constant: float
) -> np.ndarray:
    """Linear attack, exponential decay (``time_constant``), then a linear release after ``sounding`` s."""
    t = np.arange(samples) / sample_rate
    envelope = np.exp(-t / time_constant)
    envelope *= np.minimum(t / max(attack, 1e-4), 1.0)
    envelope *= np.clip(1.0 - (t - sounding) / max(release, 1e-4), 0.0, 1.0)
    return envelope


@functools.lru_cache(maxsize=64)
def raised_cosine(samples: int) -> np.ndarray:
    """Ramp from 0 to 1 over ``samples`` samples (exclusive of both ends), float32, read-only (cached)."""
    ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(samples) + 1) / (samples + 1))).astype(np.float32)
    ramp.flags.writeable = False
    return ramp


def add_at(buffer: np.ndarray, signal: np.ndarray, start: int) -> None:
    """Add ``signal`` into ``buffer`` (last axis) from sample ``start``, dropping what falls outside."""
    first = max(start, 0)
    last = min(start + signal.shape[-1], buffer.shape[-1])
    if last > first:
        buffer[..., first:last] += signal[..., first - start : last - start]


def pan_gains(pan: float) -> np.ndarray:
    """Constant-power gains ``(left, right)`` for ``pan`` in [-1 (left), 1 (right)]."""
    angle = (np.clip(pan, -1.0, 1.0) + 1.0) * np.pi / 4.0
    return (np.array([np.cos(angle), np.sin(angle)]) * np.sqrt(2.0)).astype(np.float32)


def pan(signal: np.ndarray, position: float) -> np.ndarray:
    """Mono ``(samples,)`` to stereo ``(2, samples)``."""
    return pan_gains(position)[:, None] * signal[None, :]


@functools.lru_cache(maxsize=256)
def butter(order: int, cutoff: float | tuple[float, float], kind: str, sample_rate: int) -> np.ndarray:
    """Butterworth second-order sections (cached: songs reuse a handful of designs)."""
    return scipy.signal.butter(order, cutoff, btype=kind, fs=sample_rate, output="sos")


def filtered(signal: np.ndarray, order: int, cutoff, kind: str, sample_rate: int) -> np.ndarray:
    """Butterworth-filter ``signal`` along its last axis (``cutoff`` in Hz; ``kind`` as in scipy)."""
    nyquist = sample_rate / 2
    cutoff = tuple(min(c, 0.95 * nyquist) for c in cutoff) if isinstance(cutoff, tuple) else min(cutoff, 0.95 * nyquist)
    return scipy.signal.sosfilt(butter(order, cutoff, kind, sample_rate), signal, axis=-1)


def smooth(signal: np.ndarray, time_constant: float, sample_rate: int) -> np.ndarray:
    """One-pole low-pass (exponential smoothing) starting from the first value."""
    coefficient = np.exp(-1.0 / (time_constant * sample_rate))
    out, _ = scipy.signal.lfilter([1.0 - coefficient], [1.0, -coefficient], signal, zi=[signal[0] * coefficient])
    return out


def stft(signal: np.ndarray, hop: int) -> np.ndarray:
    """Spectra ``(frames, hop + 1)`` of frames of ``2 * hop`` samples at 50 % overlap, sqrt-Hann window.

    Together with :func:`istft` this reconstructs ``signal`` exactly.
    """
    window = np.sqrt(scipy.signal.get_window("hann", 2 * hop))
    frames = -(-signal.shape[-1] // hop) + 1
    padded = np.zeros((frames + 1) * hop)
    padded[hop : hop + signal.shape[-1]] = signal
    view = np.lib.stride_tricks.sliding_window_view(padded, 2 * hop)[::hop]
    return scipy.fft.rfft(view * window, axis=-1)


def istft(spectra: np.ndarray, hop: int, samples: int) -> np.ndarray:
    """Inverse of :func:`stft` (weighted overlap-add), ``(samples,)``."""
    window = np.sqrt(scipy.signal.get_window("hann", 2 * hop))
    frames = scipy.fft.irfft(spectra, 2 * hop, axis=-1) * window
    out = np.zeros((frames.shape[0] + 1) * hop)
    out[: frames.shape[0] * hop] += frames[:, :hop].reshape(-1)
    out[hop : (frames.shape[0] + 1) * hop] += frames[:, hop:].reshape(-1)
    return out[hop : hop + samples]


def room_impulse_response(rng: np.random.Generator, rt60: float, predelay: float, sample_rate: int) -> np.ndarray:
    """Stereo room response ``(2, samples)`` of unit energy per channel, ending in exact zeros.

    Sparse early reflections in the first 40 ms after ``predelay``, then decorrelated noise with an
    exponential decay of 60 dB over ``rt60`` (highs decay twice as fast as lows).
    """
    samples = round((predelay + rt60) * sample_rate)
    start = round(predelay * sample_rate)
    tail = samples - start
    t = np.arange(tail) / sample_rate
    noise = rng.standard_normal((2, 2, tail))
    low = filtered(noise[0], 2, 3000.0, "lowpass", sample_rate) * np.exp(-6.91 * t / rt60)
    high = filtered(noise[1], 2, 3000.0, "highpass", sample_rate) * np.exp(-6.91 * t / (0.5 * rt60))
    late = (low + high) * np.minimum(t / 0.02, 1.0) * 0.5
    early = np.zeros((2, tail))
    for _ in range(8):
        tap = int(rng.uniform(0.002, 0.04) * sample_rate)
        early[:, tap] += rng.uniform(0.3, 1.0, size=2) * rng.choice([-1.0, 1.0], size=2) * 4.0
    response = np.zeros((2, samples))
    response[:, start:] = (early + late) * np.clip((tail - np.arange(tail)) / (0.1 * tail), 0.0, 1.0)
    return response / np.sqrt(np.sum(response**2, axis=-1, keepdims=True))


class Reverb:
    """Convolution with a stereo room response for mono sends of a fixed length.

    FFT convolution in float32 (its round-off stays far below the 16-bit LSB); the response spectrum is
    computed once and shared by every stem of a song.
    """

    def __init__(self, response: np.ndarray, samples: int):
        self.samples = samples
        self.size = scipy.fft.next_fast_len(samples + response.shape[-1] - 1, real=True)
        self.response_spectrum = scipy.fft.rfft(response.astype(np.float32), self.size, axis=-1)

    def __call__(self, send: np.ndarray) -> np.ndarray:
        """Wet signal ``(2, samples)`` of a mono send ``(samples,)``, truncated to the send's length."""
        if send.shape[-1] != self.samples:
            raise ValueError(f"send has {send.shape[-1]} samples, the reverb was set up for {self.samples}")
        spectrum = scipy.fft.rfft(send.astype(np.float32), self.size)
        return scipy.fft.irfft(spectrum[None, :] * self.response_spectrum, self.size, axis=-1)[:, : self.samples]
