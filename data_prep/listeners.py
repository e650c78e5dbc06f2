"""Synthetic listeners in the clarity listener schema: sloping audiograms from no loss to severe loss.

Each audiogram is ``low + slope * max(0, octaves above the knee)`` plus a little per-frequency scatter,
in 5 dB steps, with the low-frequency level chosen so that the better ear's four-frequency average
(500, 1000, 2000, 4000 Hz) falls in the listener's severity band. Some listeners have a worse ear.
"""

from __future__ import annotations

import numpy as np

#: Audiogram frequencies of the Clarity/Cadenza listener files (Hz).
CLARITY_FREQUENCIES = (250, 500, 1000, 2000, 3000, 4000, 6000, 8000)

#: Better-ear four-frequency average (dB HL) per severity, and the slope range above the knee (dB/octave).
SEVERITIES = {
    "no_loss": ((0.0, 15.0), (0.0, 5.0)),
    "mild": ((20.0, 35.0), (5.0, 15.0)),
    "moderate": ((40.0, 55.0), (8.0, 18.0)),
    "moderately_severe": ((56.0, 70.0), (8.0, 20.0)),
    "severe": ((71.0, 90.0), (5.0, 15.0)),
}

#: First listener number of each split: L5000.. (valid), L6001.. (test), L0001.. (train).
FIRST_ID = {"valid": 5000, "test": 6001, "train": 1}

#: Levels are clipped to the audiometer range (dB HL).
LEVEL_RANGE = (-10, 120)

FOUR_FREQUENCY = (500, 1000, 2000, 4000)


def listener_ids(split: str, count: int) -> list[str]:
    """``count`` listener IDs of a split, e.g. ``L5000, L5001, ...`` for ``valid``."""
    if split not in FIRST_ID:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(FIRST_ID)}")
    return [f"L{FIRST_ID[split] + index:04d}" for index in range(count)]


def severity_sequence(count: int) -> list[str]:
    """Severities of ``count`` listeners: spread from no loss to severe (cycled beyond five)."""
    names = list(SEVERITIES)
    if count <= len(names):
        return [names[round(i * (len(names) - 1) / max(count - 1, 1))] for i in range(count)]
    return [names[i % len(names)] for i in range(count)]


def four_frequency_average(levels: np.ndarray) -> float:
    """Mean hearing level at 500, 1000, 2000, 4000 Hz of a CLARITY_FREQUENCIES audiogram."""
    return float(np.mean([levels[CLARITY_FREQUENCIES.index(f)] for f in FOUR_FREQUENCY]))


def _round_to_5(levels: np.ndarray) -> np.ndarray:
    return np.clip(5 * np.round(levels / 5), *LEVEL_RANGE).astype(int)


def synthetic_audiogram(rng: np.random.Generator, severity: str) -> np.ndarray:
    """One ear's hearing levels (dB HL, multiples of 5) at ``CLARITY_FREQUENCIES``."""
    (average_low, average_high), (slope_low, slope_high) = SEVERITIES[severity]
    octaves = np.log2(np.array(CLARITY_FREQUENCIES) / 250.0)
    knee = rng.uniform(0.5, 2.0)  # the slope starts between 350 Hz and 1 kHz
    shape = rng.uniform(slope_low, slope_high) * np.maximum(octaves - knee, 0.0)
    shape += rng.normal(0.0, 2.5, size=shape.shape)
    target = rng.uniform(average_low, average_high)
    for _ in range(20):  # move the whole curve until its rounded 4FA is in the band
        levels = _round_to_5(target - four_frequency_average(shape) + shape)
        average = four_frequency_average(levels)
        if average_low <= average <= average_high:
            return levels
        target += (average_low + average_high) / 2 - average
    return levels


def make_listener(listener_id: str, severity: str, asymmetric: bool, rng: np.random.Generator) -> dict:
    """One listener record in the clarity schema."""
    better = synthetic_audiogram(rng, severity)
    if asymmetric:  # the worse ear: 10-25 dB more loss, more so at high frequencies
        extra = rng.uniform(10.0, 25.0) * (0.6 + 0.4 * np.linspace(0.0, 1.0, len(CLARITY_FREQUENCIES)))
    else:
        extra = np.abs(rng.normal(0.0, 3.0, size=len(CLARITY_FREQUENCIES)))
    worse = _round_to_5(better + extra)
    left, right = (better, worse) if rng.random() < 0.5 else (worse, better)
    return {
        "name": listener_id,
        "audiogram_cfs": list(CLARITY_FREQUENCIES),
        "audiogram_levels_l": [int(level) for level in left],
        "audiogram_levels_r": [int(level) for level in right],
    }


def make_listeners(split: str, count: int, seed: int) -> dict[str, dict]:
    """``count`` listeners of ``split`` keyed by ID, spanning the severities; every second one asymmetric."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, list(FIRST_ID).index(split), 7]))
    return {
        listener_id: make_listener(listener_id, severity, index % 2 == 1, rng)
        for index, (listener_id, severity) in enumerate(zip(listener_ids(split, count), severity_sequence(count)))
    }
