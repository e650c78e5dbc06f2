"""The 'other' stem: chords on piano-, electric-piano-, guitar-, organ-, pad- or pluck-like instruments,
as block chords, arpeggios, strums or sustained pads."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from data_prep import dsp
from data_prep.composer import BEATS_PER_BAR, Section, SongPlan
from data_prep.theory import midi_to_hz, voice_chord
from data_prep.tones import Timbre, ToneSynth

#: Patterns each instrument plays.
INSTRUMENT_PATTERNS = {
    "piano": ("block", "arpeggio"),
    "electric_piano": ("block", "sustain"),
    "guitar": ("strum", "arpeggio"),
    "organ": ("sustain", "block"),
    "pad": ("sustain",),
    "pluck": ("arpeggio",),
}

#: Block-chord rhythms over one bar: ``(onset_beat, length_beats)``.
BLOCK_RHYTHMS = (
    ((0, 1), (1, 1), (2, 1), (3, 1)),
    ((0, 1.5), (1.5, 1), (2.5, 1.5)),
    ((0, 2), (2, 2)),
    ((0, 0.5), (1, 0.5), (1.5, 1), (2.5, 0.5), (3, 1)),
)

#: Strum patterns on the 8th-note grid (triplet grid: 3 per beat): D down, U up, '.' rest.
STRUMS = ("D.DU.UDU", "D.D.D.DU", "DUDUDUDU", "D..D..D.")

#: Pitch of the lowest voice of the chords (MIDI; 52 = E3, 165 Hz), moved up by 0..6 semitones per song.
LOWEST_VOICE = 52


@dataclass(frozen=True)
class Instrument:
    """A harmony instrument: its timbre and how it plays."""

    name: str
    timbre: Timbre
    pattern: str
    pan: float
    detune_cents: float  # 0: one voice per note; else two voices detuned +-, panned apart
    tremolo_hz: float  # 0: none
    transient: float  # level of the hammer / pick noise at the onset
    low: int  # lowest voice (MIDI)
    chord_notes: int  # notes per voicing


def _timbre(name: str, rng: np.random.Generator) -> Timbre:
    k = np.arange(1, 41, dtype=float)
    jitter = rng.uniform(0.7, 1.3, size=k.shape)  # per-song colour of the spectrum
    if name == "piano":
        return Timbre(
            jitter / k * np.exp(-k / 10), jitter / k**1.5 * np.exp(-k / 3), 0.2, rng.uniform(1.0, 2.5), 0.003, 0.12
        )
    if name == "electric_piano":
        bright = np.where(k == 1, 1.0, 0.0) + np.where(k == 2, 0.3, 0.0) + np.where(k == 7, 0.25, 0.0)
        dark = np.where(k == 1, 1.0, 0.0) + np.where(k == 2, 0.15, 0.0)
        return Timbre(bright, dark, 0.15, rng.uniform(1.2, 2.5), 0.004, 0.15)
    if name == "guitar":
        comb = np.abs(np.sin(np.pi * k * rng.uniform(0.1, 0.2))) + 0.05
        return Timbre(comb / k * np.exp(-k / 14), comb / k**2 * np.exp(-k / 6), 0.1, rng.uniform(0.8, 1.6), 0.002, 0.08)
    if name == "organ":
        drawbars = np.zeros_like(k)
        drawbars[[0, 1, 2, 3, 5, 7]] = rng.uniform(0.1, 1.0, size=6)
        drawbars[0] = 1.0
        return Timbre(drawbars, None, np.inf, np.inf, 0.01, 0.06)
    if name == "pad":
        return Timbre(jitter / k * np.exp(-k / rng.uniform(4, 10)), None, np.inf, np.inf, rng.uniform(0.15, 0.4), 0.3)
    # pluck synth
    odd = np.where(k % 2 == 1, 1.0, 0.3)
    return Timbre(odd / k * np.exp(-k / 15), odd / k * np.exp(-k / 4), 0.05, rng.uniform(0.3, 0.6), 0.002, 0.05)


def _instrument(name: str, rng: np.random.Generator, pan: float) -> Instrument:
    patterns = INSTRUMENT_PATTERNS[name]
    return Instrument(
        name=name,
        timbre=_timbre(name, rng),
        pattern=str(patterns[int(rng.integers(len(patterns)))]),
        pan=pan,
        detune_cents=float(rng.uniform(5, 12)) if name == "pad" else 0.0,
        tremolo_hz=float(rng.uniform(4.5, 7.0)) if name in ("organ", "electric_piano") and rng.random() < 0.6 else 0.0,
        transient={"piano": 0.15, "guitar": 0.1}.get(name, 0.0),
        low=(LOWEST_VOICE - 4 if name == "guitar" else LOWEST_VOICE) + int(rng.integers(0, 7)),
        chord_notes=5 if name == "guitar" else int(rng.choice([3, 4])),
    )


def _voicing(plan: SongPlan, beat: float, instrument: Instrument) -> list[int]:
    pitch_classes = plan.chord_at(beat).pitch_classes
    spread = max(instrument.chord_notes - len(pitch_classes), 0)
    return voice_chord(pitch_classes, instrument.low, spread)[: instrument.chord_notes]


def _section_notes(
    plan: SongPlan, rng: np.random.Generator, instrument: Instrument, section: Section, rhythm_index: int
) -> list[tuple[float, float, int, float]]:
    """``(onset_s, sounding_s, midi_pitch, velocity)`` of one section."""
    notes = []
    level = 0.55 + 0.45 * section.energy
    grid = 1.0 / plan.steps_per_beat if plan.steps_per_beat == 3 else 0.5  # 8ths or 8th triplets

    def add(onset_beat: float, length_beats: float, pitch: int, velocity: float, offset: float = 0.0) -> None:
        start = float(plan.seconds_at(onset_beat)) + offset
        end = float(plan.seconds_at(onset_beat + length_beats))
        notes.append((start, max(end - start, 0.05), pitch, velocity * level))

    for bar in range(section.bars):
        bar_start = section.start_beat + bar * BEATS_PER_BAR
        if instrument.pattern == "sustain":
            for chord_start in np.arange(bar_start, bar_start + BEATS_PER_BAR, plan.chord_at(bar_start).beats):
                for pitch in _voicing(plan, chord_start, instrument):
                    add(chord_start, plan.chord_at(chord_start).beats, pitch, 0.6)
        elif instrument.pattern == "block":
            for onset, length in BLOCK_RHYTHMS[rhythm_index % len(BLOCK_RHYTHMS)]:
                for pitch in _voicing(plan, bar_start + onset, instrument):
                    add(bar_start + onset, length * 0.9, pitch, 0.8 if onset % 1 == 0 else 0.65)
        elif instrument.pattern == "arpeggio":
            step = grid / (2 if section.energy >= 1.0 and plan.steps_per_beat == 4 else 1)
            for index, onset in enumerate(np.arange(0.0, BEATS_PER_BAR, step)):
                voicing = _voicing(plan, bar_start + onset, instrument)
                order = [*voicing, *voicing[-2:0:-1]] if rhythm_index % 2 else voicing
                add(bar_start + onset, 2 * step, order[index % len(order)], 0.75 if index % 2 == 0 else 0.6)
        else:  # strum
            strum = STRUMS[rhythm_index % len(STRUMS)]
            positions = round(BEATS_PER_BAR / grid)
            for index in range(positions):
                symbol = strum[index % len(strum)]
                if symbol == ".":
                    continue
                following = next((j for j in range(index + 1, positions) if strum[j % len(strum)] != "."), positions)
                voicing = _voicing(plan, bar_start + index * grid, instrument)
                strings = voicing if symbol == "D" else voicing[::-1][:3]
                spacing = rng.uniform(0.008, 0.015)
                for order, pitch in enumerate(strings):
                    add(bar_start + index * grid, (following - index) * grid, pitch,
                        0.8 if symbol == "D" else 0.55, order * spacing)  # fmt: skip
    return notes


def _render_part(
    plan: SongPlan, rng: np.random.Generator, instrument: Instrument, sections: list[Section], sample_rate: int
) -> np.ndarray:
    samples = round(plan.seconds * sample_rate)
    out = np.zeros((2, samples), dtype=np.float32)
    synth = ToneSynth(instrument.timbre, sample_rate)
    voices = [(0.0, instrument.pan)]
    if instrument.detune_cents:
        voices = [(-instrument.detune_cents, instrument.pan - 0.5), (instrument.detune_cents, instrument.pan + 0.5)]
    transient = dsp.filtered(rng.standard_normal(int(0.02 * sample_rate)), 2, 1500.0, "highpass", sample_rate)
    transient *= dsp.decay(len(transient), 0.004, sample_rate) * instrument.transient
    rhythm_index = int(rng.integers(len(BLOCK_RHYTHMS) * len(STRUMS)))
    for section in sections:
        for start, sounding, pitch, velocity in _section_notes(plan, rng, instrument, section, rhythm_index):
            first = round(start * sample_rate)
            for cents, position in voices:
                f0 = float(midi_to_hz(pitch)) * 2 ** ((cents + rng.normal(0, 2)) / 1200)
                note = synth.note(f0, sounding, phase=rng.random()) * velocity / len(voices)
                if instrument.transient:
                    note[: len(transient)] += transient[: len(note)] * velocity
                dsp.add_at(out, dsp.pan(note, position), first)
    if instrument.tremolo_hz:
        t = np.arange(samples) / sample_rate
        out *= 1.0 - 0.15 * (0.5 + 0.5 * np.sin(2 * np.pi * instrument.tremolo_hz * t))
    return out


def render_harmony(plan: SongPlan, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Dry stereo 'other' stem ``(2, samples)``: a main instrument, and a pad or organ in the louder sections."""
    names = sorted(INSTRUMENT_PATTERNS)
    side = float(rng.choice([-1.0, 1.0]))
    main = _instrument(str(rng.choice(names)), rng, side * rng.uniform(0.1, 0.4))
    sections = plan.sections_with("other")
    out = _render_part(plan, rng, main, sections, sample_rate)
    if main.pattern != "sustain" and rng.random() < 0.5:
        layer = _instrument(str(rng.choice(["pad", "organ"])), rng, -side * rng.uniform(0.1, 0.4))
        layer = dataclasses.replace(layer, pattern="sustain")
        loud = [section for section in sections if section.energy >= 0.65]
        if loud:
            out += 0.5 * _render_part(plan, rng, layer, loud, sample_rate)
    return out
