"""Pitched notes from band-limited wavetables: a bright attack spectrum decaying into a darker body."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_prep import dsp


@dataclass(frozen=True)
class Timbre:
    """Harmonic amplitudes (harmonic 1 first) at the attack and in the body of a note, and their decays.

    ``dark=None`` gives a steady spectrum (organ, pad); a decay of ``inf`` sustains.
    """

    bright: np.ndarray
    dark: np.ndarray | None
    bright_decay: float  # s
    dark_decay: float  # s
    attack: float  # s
    release: float  # s


class ToneSynth:
    """Renders notes of one timbre; caches wavetables per harmonic count and decay curves."""

    def __init__(self, timbre: Timbre, sample_rate: int):
        self.timbre = timbre
        self.sample_rate = sample_rate
        self._tables: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        self._curves: dict[float, np.ndarray] = {}

    def _table_pair(self, f0: float) -> tuple[np.ndarray, np.ndarray | None]:
        count = min(dsp.harmonic_limit(f0, self.sample_rate), len(self.timbre.bright))
        if count not in self._tables:
            dark = self.timbre.dark
            self._tables[count] = (
                dsp.harmonic_table(self.timbre.bright[:count]),
                None if dark is None else dsp.harmonic_table(dark[:count]),
            )
        return self._tables[count]

    def _curve(self, time_constant: float, samples: int) -> np.ndarray:
        curve = self._curves.get(time_constant)
        if curve is None or len(curve) < samples:
            curve = dsp.decay(max(samples, 2 * self.sample_rate), time_constant, self.sample_rate)
            self._curves[time_constant] = curve
        return curve[:samples]

    def note(self, f0: float, sounding: float, phase: float = 0.0) -> np.ndarray:
        """One note ``(samples,)``: sounds for ``sounding`` s, then fades over the timbre's release."""
        timbre, rate = self.timbre, self.sample_rate
        held = max(int(sounding * rate), 1)
        release = max(int(timbre.release * rate), 1)
        samples = held + release
        phases = dsp.constant_phase(f0, samples, rate, phase)
        bright, dark = self._table_pair(f0)
        out = dsp.oscillate(bright, phases)
        if np.isfinite(timbre.bright_decay):
            out *= self._curve(timbre.bright_decay, samples)
        if dark is not None:
            body = dsp.oscillate(dark, phases)
            if np.isfinite(timbre.dark_decay):
                body *= self._curve(timbre.dark_decay, samples)
            out += body
        attack = min(max(int(timbre.attack * rate), 1), samples)
        out[:attack] *= dsp.raised_cosine(attack)
        out[held:] *= dsp.raised_cosine(release)[::-1]
        return out
