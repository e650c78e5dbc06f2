"""Bass: a monophonic line on the chord roots (with fifths, octaves and approach notes), plucked or synth."""

from __future__ import annotations

import numpy as np

from data_prep import dsp
from data_prep.composer import BEATS_PER_BAR, SongPlan
from data_prep.theory import midi_to_hz, place_pitch_class
from data_prep.tones import Timbre, ToneSynth

#: One-bar patterns: ``(onset_beat, length_beats, role)``; roles: R root, F fifth, O octave,
#: A approach (a semitone or a whole tone from the next chord's root).
PATTERNS = {
    4: {
        "quarters": ((0, 1, "R"), (1, 1, "R"), (2, 1, "R"), (3, 1, "R")),
        "eighths": tuple((i / 2, 0.5, "R") for i in range(8)),
        "root_fifth": ((0, 1.5, "R"), (1.5, 0.5, "R"), (2, 1, "F"), (3, 0.5, "O"), (3.5, 0.5, "A")),
        "syncopated": (
            (0, 0.75, "R"), (0.75, 0.75, "R"), (1.5, 0.5, "O"), (2.5, 0.5, "R"), (3, 0.5, "F"), (3.5, 0.5, "A"),
        ),
        "octaves": tuple((i / 2, 0.5, "R" if i % 2 == 0 else "O") for i in range(8)),
        "long": ((0, 2, "R"), (2, 2, "F")),
    },
    3: {
        "shuffle_walk": (
            (0, 2 / 3, "R"), (2 / 3, 1 / 3, "R"), (1, 2 / 3, "F"), (5 / 3, 1 / 3, "F"),
            (2, 2 / 3, "O"), (8 / 3, 1 / 3, "O"), (3, 2 / 3, "F"), (11 / 3, 1 / 3, "A"),
        ),
        "dotted": ((0, 1.5, "R"), (1.5, 0.5, "R"), (2, 1, "F"), (3, 1, "A")),
        "long": ((0, 2, "R"), (2, 2, "F")),
    },
}  # fmt: skip

#: Lowest root note of the bass register (MIDI; 28 = E1, 41 Hz); a song moves it up by 0..7 semitones.
LOWEST_ROOT = 28


def _timbre(rng: np.random.Generator) -> tuple[Timbre, float]:
    """A plucked (finger, pick) or synth (saw, square) bass, and the fraction of a written note that sounds."""
    harmonics = np.arange(1, 61)
    kind = str(rng.choice(["finger", "pick", "synth", "square"]))
    if kind in ("finger", "pick"):
        pluck = rng.uniform(0.08, 0.25)  # pluck position along the string: comb in the spectrum
        comb = np.abs(np.sin(np.pi * harmonics * pluck)) + 0.05
        brightness = 14.0 if kind == "pick" else 7.0
        timbre = Timbre(
            bright=comb / harmonics * np.exp(-harmonics / brightness),
            dark=comb / harmonics**2 * np.exp(-harmonics / 4.0),
            bright_decay=rng.uniform(0.05, 0.12),
            dark_decay=rng.uniform(0.6, 1.5),
            attack=0.004,
            release=rng.uniform(0.03, 0.06),
        )
        return timbre, rng.uniform(0.8, 0.95)
    odd_only = (harmonics % 2 == 1) if kind == "square" else np.ones(len(harmonics), dtype=bool)
    timbre = Timbre(
        bright=odd_only / harmonics * np.exp(-harmonics / 20.0),
        dark=odd_only / harmonics * np.exp(-harmonics / rng.uniform(2.5, 5.0)),
        bright_decay=rng.uniform(0.08, 0.2),
        dark_decay=rng.uniform(2.0, 5.0),
        attack=0.008,
        release=rng.uniform(0.04, 0.08),
    )
    return timbre, rng.uniform(0.85, 1.0)


def _note_pitch(plan: SongPlan, beat: float, role: str, lowest: int) -> int:
    root = place_pitch_class(plan.chord_at(beat).root, lowest)
    if role == "F":
        return root + 7
    if role == "O":
        return root + 12
    if role == "A":
        target = place_pitch_class(plan.next_chord(beat).root, lowest)
        return target + (-1 if target > lowest else 2)
    return root


def bass_notes(plan: SongPlan, rng: np.random.Generator) -> list[tuple[float, float, int, float]]:
    """``(onset_beat, length_beats, midi_pitch, velocity)`` of the whole song."""
    lowest = LOWEST_ROOT + int(rng.integers(0, 8))
    patterns = PATTERNS[plan.steps_per_beat]
    names = sorted(patterns)
    per_section_type = {name: str(rng.choice(names)) for name in ("verse", "chorus", "bridge")}
    notes = []
    for section in plan.sections_with("bass"):
        pattern = patterns["long"] if section.energy < 0.6 else patterns[per_section_type[section.name]]
        for bar in range(section.bars):
            bar_start = section.start_beat + bar * BEATS_PER_BAR
            for onset, length, role in pattern:
                velocity = (0.75 + 0.25 * section.energy) * (1.0 if onset % 1 == 0 else 0.85)
                pitch = _note_pitch(plan, bar_start + onset, role, lowest)
                notes.append((bar_start + onset, float(length), pitch, velocity * rng.uniform(0.9, 1.05)))
    return notes


def render_bass(plan: SongPlan, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Dry stereo bass stem ``(2, samples)`` of the whole song."""
    timbre, gate = _timbre(rng)
    synth = ToneSynth(timbre, sample_rate)
    mono = np.zeros(round(plan.seconds * sample_rate), dtype=np.float32)
    for onset, length, pitch, velocity in bass_notes(plan, rng):
        start = float(plan.seconds_at(onset))
        sounding = (float(plan.seconds_at(onset + length)) - start) * gate
        f0 = float(midi_to_hz(pitch)) * 2 ** (rng.normal(0, 3) / 1200)  # a few cents of intonation
        dsp.add_at(mono, velocity * synth.note(f0, sounding), round(start * sample_rate))
    return dsp.pan(mono, rng.uniform(-0.08, 0.08))
