"""Vocals: a sung melody from a source-filter voice.

Source: a band-limited glottal flow-derivative pulse train (Rosenberg pulse) whose f0 follows the melody
with glides, scoops, delayed vibrato, slow drift and per-cycle jitter/shimmer, plus pulse-synchronous
breath noise. Filter: five vowel formants moving from syllable to syllable, applied frame by frame in
the STFT domain. Consonant noise bursts at syllable onsets, an audible breath before each phrase, and
rests between phrases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_prep import dsp
from data_prep.composer import BEATS_PER_BAR, SongPlan
from data_prep.theory import midi_to_hz, scale_pitches

#: Formant frequencies F1..F5 (Hz) of an adult male voice per vowel.
VOWELS = {
    "a": (730.0, 1090.0, 2440.0, 3300.0, 4500.0),
    "e": (530.0, 1840.0, 2480.0, 3400.0, 4500.0),
    "i": (300.0, 2250.0, 3000.0, 3500.0, 4600.0),
    "o": (570.0, 840.0, 2410.0, 3300.0, 4400.0),
    "u": (320.0, 870.0, 2240.0, 3300.0, 4400.0),
}
FORMANT_BANDWIDTHS = np.array([80.0, 90.0, 120.0, 150.0, 200.0])
FORMANT_GAINS = np.array([1.0, 0.6, 0.35, 0.25, 0.12])

#: Voice types: singing range (MIDI) and formant scale factor.
VOICE_TYPES = {"male": (45, 67, 1.0), "female": (55, 79, 1.15)}

#: Breath before a phrase, and the release after its last note (s).
BREATH_LEAD = 0.25
RELEASE = 0.08

#: STFT hop of the formant filter (frames of twice this length).
FORMANT_HOP = 512

#: Consonant bursts: (seconds, band in Hz, position: 'before' the onset or 'at' it).
CONSONANTS = {
    "s": (0.08, (4000.0, 10000.0), "before"),
    "sh": (0.08, (2000.0, 6000.0), "before"),
    "t": (0.015, (2500.0, 12000.0), "at"),
    "k": (0.025, (1200.0, 4500.0), "at"),
}


@dataclass(frozen=True)
class SungNote:
    onset: float  # s
    end: float  # s
    midi: int
    vowel: str
    consonant: str | None


@dataclass(frozen=True)
class Phrase:
    notes: tuple[SungNote, ...]
    energy: float  # of the section it belongs to


@dataclass(frozen=True)
class Voice:
    """A singer: range, formant scale and the parameters of their phonation."""

    low: int
    high: int
    formant_scale: float
    vibrato_rate: float  # Hz
    vibrato_depth: float  # semitones (peak)
    jitter: float  # relative f0 deviation per glottal cycle (standard deviation)
    shimmer: float  # relative amplitude deviation per glottal cycle
    breathiness: float  # breath noise level relative to the voiced source
    glide: float  # s, time constant of the pitch glide between notes
    pulse: np.ndarray  # complex harmonic spectrum of one glottal pulse (harmonics 1..)


def _glottal_spectrum(open_phase: float, closing_phase: float, harmonics: int = 512) -> np.ndarray:
    """Complex harmonic spectrum of the derivative of a Rosenberg glottal pulse."""
    size = 8192
    n = np.arange(size) / size
    opening = n < open_phase
    closing = (n >= open_phase) & (n < open_phase + closing_phase)
    flow = np.zeros(size)
    flow[opening] = 0.5 * (1 - np.cos(np.pi * n[opening] / open_phase))
    flow[closing] = np.cos(np.pi * (n[closing] - open_phase) / (2 * closing_phase))
    spectrum = np.fft.rfft(np.diff(flow, append=flow[0]))[1 : harmonics + 1]
    return spectrum / np.abs(spectrum[0])


def _voice(rng: np.random.Generator) -> Voice:
    low, high, scale = VOICE_TYPES[str(rng.choice(sorted(VOICE_TYPES)))]
    return Voice(
        low=low,
        high=high,
        formant_scale=scale * rng.uniform(0.95, 1.05),
        vibrato_rate=rng.uniform(4.8, 6.5),
        vibrato_depth=rng.uniform(0.15, 0.5),
        jitter=rng.uniform(0.003, 0.01),
        shimmer=rng.uniform(0.02, 0.06),
        breathiness=rng.uniform(0.03, 0.12),
        glide=rng.uniform(0.02, 0.045),
        pulse=_glottal_spectrum(rng.uniform(0.35, 0.5), rng.uniform(0.1, 0.2)),
    )


def _phrase_rhythm(rng: np.random.Generator, plan: SongPlan, beats: float) -> list[tuple[float, float]]:
    """``(onset_beat, length_beats)`` of the syllables of a phrase of ``beats`` beats, from 0."""
    grid = 1.0 / 3.0 if plan.steps_per_beat == 3 else 0.5
    lengths = [grid, grid, 2 * grid, 2 * grid, 3 * grid, 4 * grid]
    rhythm, position = [], 0.0
    while position < beats - grid / 2:
        length = min(float(rng.choice(lengths)), beats - position)
        rhythm.append((position, length))
        position += length
    return rhythm


def _next_pitch(
    rng: np.random.Generator, current: int, scale: np.ndarray, chord_pcs: tuple[int, ...], strong: bool
) -> int:
    """Mostly stepwise motion within the scale; strong beats lean on chord tones."""
    index = int(np.argmin(np.abs(scale - current)))
    step = int(rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3], p=[0.1, 0.2, 0.2, 0.1, 0.15, 0.15, 0.04, 0.03, 0.03]))
    index = int(np.clip(index + step, 0, len(scale) - 1))
    if strong and rng.random() < 0.6:
        chord_tones = [i for i, pitch in enumerate(scale) if pitch % 12 in chord_pcs]
        index = min(chord_tones, key=lambda i: abs(i - index))
    return int(scale[index])


def melody(plan: SongPlan, rng: np.random.Generator, voice: Voice) -> list[Phrase]:
    """Phrases of sung notes for every section where the vocals play. Each phrase starts late enough in
    its section for the breath before it to fall inside the section."""
    scale = scale_pitches(plan.tonic, plan.mode, voice.low, voice.high)
    middle = (voice.low + voice.high) // 2
    phrases, pitch = [], middle
    for section in plan.sections_with("vocals"):
        phrase_bars = 1 if section.bars < 2 or plan.tempo < 85 else 2
        for bar in range(0, section.bars - phrase_bars + 1, phrase_bars):
            bar_start = section.start_beat + bar * BEATS_PER_BAR
            start = bar_start + float(rng.choice([0.5, 1.0]))
            while plan.seconds_at(start) - plan.seconds_at(bar_start) < BREATH_LEAD:
                start += 0.5
            end = section.start_beat + (bar + phrase_bars) * BEATS_PER_BAR - float(rng.uniform(1.0, 2.0))
            if end - start < 1.0:
                continue
            if abs(pitch - middle) > 5:  # phrases restart near the middle of the range
                pitch = middle + int(rng.integers(-3, 4))
            notes = []
            for onset, length in _phrase_rhythm(rng, plan, end - start):
                beat = start + onset
                pitch = _next_pitch(rng, pitch, scale, plan.chord_at(beat).pitch_classes, onset % 1 == 0)
                consonant = None
                if rng.random() < (0.6 if not notes else 0.35):
                    consonant = str(rng.choice(sorted(CONSONANTS)))
                notes.append(
                    SungNote(
                        onset=float(plan.seconds_at(beat)),
                        end=float(plan.seconds_at(beat + length)),
                        midi=pitch,
                        vowel=str(rng.choice(sorted(VOWELS))),
                        consonant=consonant,
                    )
                )
            phrases.append(Phrase(tuple(notes), section.energy))
    return phrases


def _f0_contour(rng: np.random.Generator, voice: Voice, notes: tuple[SungNote, ...], t: np.ndarray) -> np.ndarray:
    """f0 in Hz at times ``t`` (s) over a phrase: glides, scoops, vibrato, drift (no jitter yet)."""
    onsets = np.array([note.onset for note in notes])
    index = np.clip(np.searchsorted(onsets, t, side="right") - 1, 0, len(notes) - 1)
    sample_rate = 1.0 / (t[1] - t[0])
    target = np.array([note.midi for note in notes], dtype=float)[index]
    pitch = dsp.smooth(target, voice.glide, round(sample_rate))
    since_onset = t - onsets[index]
    scoop = np.array([rng.uniform(0.0, 0.8) for _ in notes])[index]
    pitch -= scoop * np.exp(-np.maximum(since_onset, 0.0) / 0.05)
    vibrato_envelope = np.clip((since_onset - 0.15) / 0.35, 0.0, 1.0)
    rate = voice.vibrato_rate * (1.0 + 0.05 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 2 * np.pi)))
    vibrato_phase = np.cumsum(rate) / sample_rate + rng.random()
    pitch += voice.vibrato_depth * vibrato_envelope * np.sin(2 * np.pi * vibrato_phase)
    pitch += 0.1 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 2 * np.pi))  # drift
    return midi_to_hz(pitch)


def _formant_envelopes(
    voice: Voice, notes: tuple[SungNote, ...], frame_times: np.ndarray, f0_frames: np.ndarray, sample_rate: int
) -> np.ndarray:
    """Magnitude response ``(frames, FORMANT_HOP + 1)`` of the vocal tract at each STFT frame."""
    anchors_t, anchors_f = [], []
    for note in notes:  # hold each vowel until the next syllable, then move over 60 ms
        anchors_t += [note.onset, note.onset + 0.06]
        anchors_f += [VOWELS[note.vowel]] * 2
    anchors_t[0] -= 1.0  # breath and the first syllable share the first vowel
    anchors_f = np.array(anchors_f)
    anchors_f[0::2][1:] = anchors_f[1::2][:-1]  # at each onset the tract is still on the previous vowel
    formants = np.stack([np.interp(frame_times, anchors_t, anchors_f[:, k]) for k in range(5)], axis=1)
    formants *= voice.formant_scale
    formants[:, 0] = np.maximum(formants[:, 0], 1.1 * f0_frames)  # singers tune F1 above f0 on high notes
    frequencies = np.fft.rfftfreq(2 * FORMANT_HOP, 1.0 / sample_rate)
    distance = (frequencies[None, None, :] - formants[:, :, None]) / (FORMANT_BANDWIDTHS[None, :, None] / 2)
    peaks = FORMANT_GAINS[None, :, None] / (1.0 + distance**2)
    return 0.02 + peaks.sum(axis=1)


def _consonant(rng: np.random.Generator, kind: str, sample_rate: int) -> tuple[np.ndarray, str]:
    seconds, band, position = CONSONANTS[kind]
    samples = int(seconds * sample_rate)
    burst = dsp.filtered(rng.standard_normal(samples), 2, band, "bandpass", sample_rate)
    if position == "before":
        envelope = np.sin(np.pi * np.arange(samples) / samples) ** 2
    else:
        envelope = np.exp(-np.arange(samples) / (0.3 * samples))
    return burst * envelope, position


def _render_phrase(rng: np.random.Generator, voice: Voice, phrase: Phrase, sample_rate: int) -> tuple[np.ndarray, int]:
    """Mono phrase and its first sample index in the song."""
    notes, level = phrase.notes, 0.7 + 0.3 * phrase.energy
    first = round((notes[0].onset - BREATH_LEAD) * sample_rate)
    samples = round((notes[-1].end + RELEASE) * sample_rate) - first
    t = (first + np.arange(samples)) / sample_rate
    f0 = _f0_contour(rng, voice, notes, t)

    # Glottal source with per-cycle jitter and shimmer.
    cycles = np.cumsum(f0) / sample_rate
    cycle_index = cycles.astype(np.int64)
    jitter = 1.0 + voice.jitter * rng.standard_normal(cycle_index[-1] + 1)
    phase = np.cumsum(f0 * jitter[cycle_index]) / sample_rate
    count = min(dsp.harmonic_limit(float(f0.max()), sample_rate), len(voice.pulse))
    pulse = voice.pulse[:count]
    source = dsp.oscillate(dsp.harmonic_table(np.abs(pulse), np.angle(pulse) + np.pi / 2), phase)
    source *= 1.0 + voice.shimmer * rng.standard_normal(cycle_index[-1] + 1)[cycle_index]
    source /= np.sqrt(np.mean(source**2)) + 1e-12
    breath = rng.standard_normal(samples) * (0.4 + 0.6 * (0.5 + 0.5 * np.cos(2 * np.pi * phase)))
    source += voice.breathiness * breath

    # Syllable articulation: phrase attack and release, short dips between syllables, accents.
    voiced_start = int(BREATH_LEAD * sample_rate)
    envelope = np.zeros(samples)
    envelope[voiced_start:] = 1.0
    envelope[voiced_start : voiced_start + int(0.04 * sample_rate)] = dsp.raised_cosine(int(0.04 * sample_rate))
    tail = int(RELEASE * sample_rate)
    envelope[-tail:] *= dsp.raised_cosine(tail)[::-1]
    dip_width = int(0.075 * sample_rate)  # 3 standard widths of the Gaussian dip on each side
    for note in notes[1:]:
        centre = round(note.onset * sample_rate) - first
        around = slice(max(centre - dip_width, 0), min(centre + dip_width, samples))
        envelope[around] *= 1.0 - 0.6 * np.exp(-(((t[around] - note.onset) / 0.025) ** 2))
    envelope *= np.linspace(1.0, 0.8, samples)
    inhale = np.zeros(samples)
    inhale_samples = int(0.2 * sample_rate)
    inhale[:inhale_samples] = np.sin(np.pi * np.arange(inhale_samples) / inhale_samples) ** 2 * 0.15
    excitation = source * envelope + rng.standard_normal(samples) * inhale

    # Vocal tract: moving vowel formants, frame by frame.
    spectra = dsp.stft(excitation, FORMANT_HOP)
    frame_times = (first + np.arange(spectra.shape[0]) * FORMANT_HOP) / sample_rate
    f0_frames = np.interp(frame_times, t, f0)
    spectra *= _formant_envelopes(voice, notes, frame_times, f0_frames, sample_rate)
    sung = dsp.istft(spectra, FORMANT_HOP, samples)
    sung = dsp.filtered(sung, 2, 70.0, "highpass", sample_rate)
    sung *= level / (np.sqrt(np.mean(sung[voiced_start:] ** 2)) + 1e-12)

    for note in notes:
        if note.consonant is None:
            continue
        burst, position = _consonant(rng, note.consonant, sample_rate)
        at = round(note.onset * sample_rate) - first - (len(burst) if position == "before" else 0)
        dsp.add_at(sung, burst * level * rng.uniform(0.3, 0.6), max(at, 0))
    return sung, first


def render_vocals(plan: SongPlan, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Dry stereo vocal stem ``(2, samples)`` of the whole song."""
    voice = _voice(rng)
    mono = np.zeros(round(plan.seconds * sample_rate), dtype=np.float32)
    for phrase in melody(plan, rng, voice):
        sung, first = _render_phrase(rng, voice, phrase, sample_rate)
        dsp.add_at(mono, sung, first)
    return dsp.pan(mono, rng.uniform(-0.1, 0.1))
