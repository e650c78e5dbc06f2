"""Music theory for the composer: scales, diatonic chords, progressions, MIDI pitch <-> Hz."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Semitone offsets of the scale degrees from the tonic.
SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
}

#: Chord progressions as 0-based scale degrees, one chord per bar (or per half bar).
PROGRESSIONS = {
    "major": (
        (0, 4, 5, 3),  # I V vi IV
        (0, 3, 4, 3),  # I IV V IV
        (5, 3, 0, 4),  # vi IV I V
        (0, 5, 3, 4),  # I vi IV V
        (1, 4, 0, 0),  # ii V I I
        (0, 2, 3, 4),  # I iii IV V
        (3, 0, 4, 5),  # IV I V vi
        (0, 3, 0, 4),  # I IV I V
    ),
    "minor": (
        (0, 5, 2, 6),  # i VI III VII
        (0, 3, 4, 0),  # i iv v i
        (0, 6, 5, 6),  # i VII VI VII
        (0, 3, 6, 2),  # i iv VII III
        (0, 5, 3, 4),  # i VI iv v
        (5, 6, 0, 0),  # VI VII i i
    ),
}


def midi_to_hz(midi: np.ndarray | float) -> np.ndarray | float:
    """MIDI note number (69 = A4) to frequency in Hz."""
    return 440.0 * 2.0 ** ((np.asarray(midi) - 69.0) / 12.0)


@dataclass(frozen=True)
class Chord:
    """A chord held from ``start`` for ``beats`` (both in beats from the song start)."""

    start: float
    beats: float
    root: int  # pitch class 0..11
    pitch_classes: tuple[int, ...]  # root first, then third, fifth (, seventh)


def diatonic_chord(tonic: int, mode: str, degree: int, seventh: bool) -> tuple[int, ...]:
    """Pitch classes of the triad (or seventh chord) built on a 0-based scale degree."""
    scale = SCALES[mode]
    steps = (0, 2, 4, 6) if seventh else (0, 2, 4)
    return tuple((tonic + scale[(degree + step) % 7]) % 12 for step in steps)


def scale_pitches(tonic: int, mode: str, low: int, high: int) -> np.ndarray:
    """All MIDI pitches of the key within ``[low, high]``, ascending."""
    pitch_classes = {(tonic + offset) % 12 for offset in SCALES[mode]}
    return np.array([pitch for pitch in range(low, high + 1) if pitch % 12 in pitch_classes])


def place_pitch_class(pitch_class: int, low: int) -> int:
    """Lowest MIDI pitch with this pitch class at or above ``low``."""
    return low + (pitch_class - low) % 12


def voice_chord(pitch_classes: tuple[int, ...], low: int, spread: int = 0) -> list[int]:
    """Close voicing of the chord from ``low`` upwards; ``spread`` extra notes double it an octave up."""
    notes = sorted(place_pitch_class(pc, low) for pc in pitch_classes)
    return notes + [note + 12 for note in notes[:spread]]
