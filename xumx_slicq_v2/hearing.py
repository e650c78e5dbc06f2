"""The NAL-R hearing aid as plain numpy functions: audiograms, the NAL-R prescription, its linear-phase FIR.

NAL-R (National Acoustic Laboratories' revised prescription, Byrne and Dillon 1986) maps an ear's hearing
thresholds at 250 Hz to 6 kHz to insertion gains; the gains become a linear-phase FIR filter designed by
frequency sampling (MATLAB's ``fir2`` with a Hamming window). This is the design of pyclarity 0.9.0's
``clarity.enhancer.nalr.NALR``, the Cadenza CAD1 baseline's hearing aid, written anew: the same taps within
float rounding (tested against pyclarity). The Cadenza recipe (`cadenza.hearing_aid`) and the web mixer
(`xumx_slicq_v2.demixui`) both filter with these functions, so the mixer plays what the recipe writes.

Units: audiogram levels in dB HL, frequencies in Hz, gains in dB, signals ``(..., samples)`` at ``sample_rate``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: The audiometric frequencies NAL-R prescribes at (Hz).
NALR_FREQUENCIES = np.array([250.0, 500.0, 1000.0, 2000.0, 4000.0, 6000.0])
#: NAL-R's frequency-dependent correction at `NALR_FREQUENCIES` (dB).
NALR_BIAS_DB = np.array([-17.0, -8.0, 1.0, -1.0, -2.0, -2.0])
#: The CAD1 recipe's filter order (``nalr.nfir``): 221 taps, 110 samples of delay.
DEFAULT_NFIR = 220


class AudiogramError(ValueError):
    """An audiogram or a listeners file is malformed (the message says what and where)."""


@dataclass(frozen=True)
class Audiogram:
    """One ear's hearing thresholds.

    Attributes:
        levels: thresholds in dB HL, one per frequency.
        frequencies: in Hz, strictly ascending and positive.
    """

    levels: tuple[float, ...]
    frequencies: tuple[float, ...]

    def __post_init__(self) -> None:
        levels = np.asarray(self.levels, dtype=float)
        frequencies = np.asarray(self.frequencies, dtype=float)
        if levels.ndim != 1 or levels.shape != frequencies.shape or levels.size == 0:
            raise AudiogramError(
                f"an audiogram needs as many levels as frequencies (got {levels.size} levels, "
                f"{frequencies.size} frequencies)"
            )
        if not (np.all(np.isfinite(levels)) and np.all(np.isfinite(frequencies))):
            raise AudiogramError("audiogram levels and frequencies must be finite numbers")
        if frequencies[0] <= 0 or np.any(np.diff(frequencies) <= 0):
            raise AudiogramError(f"audiogram frequencies must be positive and ascending, got {frequencies.tolist()}")
        object.__setattr__(self, "levels", tuple(levels.tolist()))
        object.__setattr__(self, "frequencies", tuple(frequencies.tolist()))

    def at(self, frequencies: np.ndarray) -> np.ndarray:
        """Levels (dB HL) at ``frequencies`` (Hz): linear in log frequency, the end values held beyond the ends."""
        levels = np.asarray(self.levels)
        return np.interp(np.log(frequencies), np.log(self.frequencies), levels, left=levels[0], right=levels[-1])

    def to_json(self) -> dict[str, list[float]]:
        return {"levels": list(self.levels), "frequencies": list(self.frequencies)}


@dataclass(frozen=True)
class Listener:
    """A listener of a CAD1 listeners file: an id and one audiogram per ear."""

    id: str
    left: Audiogram
    right: Audiogram

    @property
    def ears(self) -> tuple[Audiogram, Audiogram]:
        """``(left, right)``: ear ``i`` hears channel ``i``."""
        return self.left, self.right


def read_listeners(path: str | os.PathLike) -> dict[str, Listener]:
    """The listeners of a CAD1/Clarity listeners JSON, in file order.

    The file is an object keyed by listener id, each entry with ``audiogram_cfs`` (Hz) and
    ``audiogram_levels_l`` / ``audiogram_levels_r`` (dB HL).
    """
    path = Path(path)
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise AudiogramError(f"{path}: cannot read the listeners JSON ({err})") from err
    if not isinstance(entries, dict):
        raise AudiogramError(f"{path}: expected a JSON object keyed by listener id")
    listeners = {}
    for listener_id, entry in entries.items():
        try:
            frequencies = entry["audiogram_cfs"]
            listeners[listener_id] = Listener(
                id=str(listener_id),
                left=Audiogram(tuple(entry["audiogram_levels_l"]), tuple(frequencies)),
                right=Audiogram(tuple(entry["audiogram_levels_r"]), tuple(frequencies)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise AudiogramError(f"{path}: listener {listener_id!r} is malformed ({err!r})") from err
    return listeners


def nalr_gains_db(levels: np.ndarray) -> np.ndarray:
    """NAL-R insertion gains (dB, clipped at 0) from the thresholds ``levels`` (dB HL) at `NALR_FREQUENCIES`.

    ``gain = X + 0.31 * level + bias`` with ``X = 0.05 * H`` for the three-frequency loss ``H`` (500 Hz, 1 kHz,
    2 kHz) up to 180 dB, and ``9 + 0.116 * (H - 180)`` above.
    """
    levels = np.asarray(levels, dtype=float)
    loss_500_to_2k = levels[1] + levels[2] + levels[3]
    x_ave = 0.05 * loss_500_to_2k if loss_500_to_2k <= 180 else 9.0 + 0.116 * (loss_500_to_2k - 180)
    return np.clip(x_ave + 0.31 * levels + NALR_BIAS_DB, 0.0, None)


def fir2(n_taps: int, frequencies: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Linear-phase FIR ``(n_taps,)`` by frequency sampling with a Hamming window (MATLAB ``fir2``).

    The magnitude response, given at ``frequencies`` (fractions of Nyquist, 0 to 1, ascending; the first and
    last are taken as 0 and 1) by ``gains`` (linear), is interpolated linearly onto a grid of ``npt + 1``
    points from 0 to Nyquist (``npt`` = 512, or the next power of two of ``n_taps`` from 1024 taps), given the
    delay of ``(n_taps - 1) / 2`` samples, inverted by a real inverse FFT of ``2 * npt`` points, truncated to
    ``n_taps`` and windowed. Repeated frequencies (response jumps) are not supported.
    """
    frequencies = np.array(frequencies, dtype=float)
    gains = np.asarray(gains, dtype=float)
    if frequencies.shape != gains.shape or frequencies.size < 2:
        raise ValueError("fir2 needs as many gains as frequencies, at least two")
    if np.any(np.diff(frequencies) <= 0):
        raise ValueError("fir2 needs strictly ascending frequencies")
    frequencies[0], frequencies[-1] = 0.0, 1.0
    npt = 2 ** math.ceil(math.log2(n_taps)) if n_taps >= 1024 else 512
    grid = npt + 1
    response = np.zeros(grid)
    first = 0
    for index in range(frequencies.size - 1):  # segment [f_i, f_i+1] fills grid points first..last
        last = int(np.fix(frequencies[index + 1] * grid)) - 1
        points = np.arange(first, last + 1)
        weight = 0.0 if first == last else (points - first) / (last - first)
        response[first : last + 1] = weight * gains[index + 1] + (1 - weight) * gains[index]
        first = last + 1
    delay = 0.5 * (n_taps - 1)
    response = response * np.exp(-1j * math.pi * delay * np.arange(grid) / (grid - 1))
    spectrum = np.concatenate((response, response[grid - 2 : 0 : -1].conj()))
    return np.real(np.fft.ifft(spectrum))[:n_taps] * np.hamming(n_taps)


def delay_fir(nfir: int) -> np.ndarray:
    """``(nfir + 1,)`` pure delay of ``nfir // 2`` samples: NAL-R's filter for an ear without loss."""
    fir = np.zeros(nfir + 1)
    fir[nfir // 2] = 1.0
    return fir


def nalr_fir(audiogram: Audiogram, nfir: int = DEFAULT_NFIR, sample_rate: float = 44100.0) -> np.ndarray:
    """The NAL-R FIR ``(nfir + 1,)`` for one ear at ``sample_rate`` Hz (delay ``nfir // 2`` samples).

    The audiogram is interpolated to `NALR_FREQUENCIES`; the gains (`nalr_gains_db`) are held below 250 Hz and
    above 6 kHz up to Nyquist, sampled at ``nfir + 1`` uniform frequencies and turned into taps by `fir2`. An
    ear with no loss anywhere (all levels <= 0 dB HL) gets the pure delay.
    """
    nyquist = 0.5 * sample_rate
    if nyquist <= NALR_FREQUENCIES[-1]:
        raise ValueError(f"NAL-R prescribes up to 6 kHz: sample rate {sample_rate:g} Hz is too low")
    levels = audiogram.at(NALR_FREQUENCIES)
    if np.max(levels) <= 0:
        return delay_fir(nfir)
    gains_db = nalr_gains_db(levels)
    grid = np.linspace(0, nfir, nfir + 1) / nfir  # fractions of Nyquist
    band_edges = np.concatenate(([0.0], NALR_FREQUENCIES, [nyquist]))
    band_gains = np.concatenate(([gains_db[0]], gains_db, [gains_db[-1]]))
    grid_gains = np.power(10, np.interp(nyquist * grid, band_edges, band_gains) / 20.0)
    return fir2(nfir + 1, grid, grid_gains)


def apply_fir(fir: np.ndarray, signal: np.ndarray) -> np.ndarray:
    """Full convolution of ``signal`` ``(samples,)`` with ``fir`` ``(taps,)``: ``(samples + taps - 1,)``, float64."""
    return np.convolve(signal, fir)


class FirStream:
    """`apply_fir` block by block over ``(..., n)`` signals: the same samples as filtering the whole signal.

    `process` returns, for each block of ``n`` samples, the next ``n`` output samples (each is complete: later
    blocks only reach later samples); `flush` returns the last ``taps - 1`` (the filter's tail).
    """

    def __init__(self, fir: np.ndarray):
        self.fir = np.asarray(fir, dtype=float)
        self.pending: np.ndarray | None = None  # (rows, taps - 1): earlier blocks' share of the next samples

    def process(self, block: np.ndarray) -> np.ndarray:
        """Filter the next block ``(..., n)`` along its last axis -> ``(..., n)`` float64."""
        block = np.asarray(block)
        rows = block.reshape(math.prod(block.shape[:-1]), block.shape[-1])
        if self.pending is None:
            self.pending = np.zeros((rows.shape[0], self.fir.size - 1))
        if block.shape[-1] == 0:
            return np.zeros(block.shape)
        out = np.stack([apply_fir(self.fir, row) for row in rows])
        out[:, : self.pending.shape[-1]] += self.pending
        self.pending = out[:, block.shape[-1] :]
        return out[:, : block.shape[-1]].reshape(block.shape)

    def flush(self) -> np.ndarray:
        """The filter's tail ``(rows, taps - 1)`` after the last block (zeros if nothing was processed)."""
        return np.zeros((0, self.fir.size - 1)) if self.pending is None else self.pending
