"""Song-level composition: tempo, key, chord progression, sections and which stems play in each.

The instrument modules (:mod:`data_prep.drums`, :mod:`data_prep.bass`, :mod:`data_prep.harmony`,
:mod:`data_prep.vocals`) write their parts on top of a :class:`SongPlan`; times are in beats until they
are turned into seconds by :meth:`SongPlan.seconds_at` (which applies the song's swing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from data_prep.config import STEMS, SYNTH_CONFIG, SynthConfig
from data_prep.theory import PROGRESSIONS, Chord, diatonic_chord

BEATS_PER_BAR = 4

#: Margin (s) on the edges of :meth:`SongPlan.silent_spans` for times rounded to whole samples.
SAMPLE_ROUNDING = 0.001

#: Section lengths in units (a unit is 1, 2 or 4 bars depending on the song length).
SECTION_UNITS = {
    "intro": (1, 2),
    "verse": (2, 4),
    "chorus": (2, 4),
    "break": (1, 2),
    "bridge": (2,),
    "outro": (1, 2),
}

#: Order of the sections after the intro (cycled until the song is full).
FORM_CYCLE = ("verse", "chorus", "break", "verse", "chorus", "bridge", "chorus")

#: Loudness/density of each section type (0..1), used for velocities and pattern density.
SECTION_ENERGY = {"intro": 0.5, "verse": 0.7, "chorus": 1.0, "break": 0.55, "bridge": 0.65, "outro": 0.5}

#: Stem sets a break / bridge / outro chooses from (the verse and chorus play everything by default).
SPARSE_SECTION_STEMS = {
    "break": (
        ("other", "vocals"),
        ("bass", "drums"),
        ("drums", "other", "vocals"),
        ("bass", "other", "vocals"),
    ),
    "bridge": (("bass", "other", "vocals"), ("drums", "other", "vocals"), ("other", "vocals")),
    "outro": (("drums", "other"), ("other",), ("bass", "drums", "other")),
}


@dataclass(frozen=True)
class Section:
    """A run of bars in which a fixed set of stems plays."""

    name: str
    start_bar: int
    bars: int
    active: frozenset[str]
    energy: float

    @property
    def start_beat(self) -> float:
        return float(self.start_bar * BEATS_PER_BAR)

    @property
    def end_beat(self) -> float:
        return float((self.start_bar + self.bars) * BEATS_PER_BAR)


@dataclass(frozen=True)
class SongPlan:
    """Everything song-wide that the instrument parts and the mixer share."""

    seed: int
    seconds: float
    tempo: float  # beats per minute
    steps_per_beat: int  # 4: straight 16ths, 3: triplet (shuffle / 12/8) feel
    swing: float  # delay of off-beat 16ths, fraction of a 16th (straight grid only)
    tonic: int  # pitch class 0..11
    mode: str  # "major" | "minor"
    sections: tuple[Section, ...]
    chords: tuple[Chord, ...]
    rt60: float  # s
    predelay: float  # s
    reverb_send_db: dict[str, float]
    balance_db: dict[str, float]
    mixture_rms_db: float
    config: SynthConfig

    @property
    def beat_seconds(self) -> float:
        return 60.0 / self.tempo

    @property
    def bars(self) -> int:
        return self.sections[-1].start_bar + self.sections[-1].bars

    @property
    def reverb_seconds(self) -> float:
        """Length of the room impulse response (it ends in exact zeros)."""
        return self.predelay + self.rt60

    def seconds_at(self, beats: np.ndarray | float) -> np.ndarray | float:
        """Time in seconds of a position in beats, with the swing of the off-beat 16ths applied."""
        beats = np.asarray(beats, dtype=float)
        if self.steps_per_beat == 4 and self.swing > 0:
            eighths = beats * 2.0
            whole = np.floor(eighths)
            warped = np.interp(eighths - whole, [0.0, 0.5, 1.0], [0.0, 0.5 * (1.0 + self.swing), 1.0])
            beats = (whole + warped) / 2.0
        return beats * self.beat_seconds

    def chord_at(self, beat: float) -> Chord:
        """The chord sounding at ``beat``."""
        starts = [chord.start for chord in self.chords]
        return self.chords[max(int(np.searchsorted(starts, beat, side="right")) - 1, 0)]

    def next_chord(self, beat: float) -> Chord:
        """The chord after the one sounding at ``beat`` (the last chord repeats)."""
        index = self.chords.index(self.chord_at(beat))
        return self.chords[min(index + 1, len(self.chords) - 1)]

    def sections_with(self, stem: str) -> list[Section]:
        return [section for section in self.sections if stem in section.active]

    def active_spans(self, stem: str) -> list[tuple[float, float]]:
        """Merged ``(start, end)`` times in seconds where ``stem`` plays, clipped to the song."""
        spans: list[tuple[float, float]] = []
        for section in self.sections_with(stem):
            start = float(self.seconds_at(section.start_beat))
            end = min(float(self.seconds_at(section.end_beat)), self.seconds)
            if start >= self.seconds:
                continue
            if spans and math.isclose(spans[-1][1], start):
                spans[-1] = (spans[-1][0], end)
            else:
                spans.append((start, end))
        return spans

    def silent_spans(self, stem: str) -> list[tuple[float, float]]:
        """Spans in seconds where ``stem`` is exactly zero: the passages it sits out, after the
        release of its last notes and the room's reverb tail, before the fade-in of its next entry.
        """
        tail = self.config.gate_release + self.reverb_seconds + SAMPLE_ROUNDING
        silent, previous_end = [], None
        for start, end in [*self.active_spans(stem), (self.seconds, self.seconds)]:
            quiet_from = 0.0 if previous_end is None else previous_end + tail
            quiet_to = start - self.config.gate_attack - SAMPLE_ROUNDING if start < self.seconds else self.seconds
            if quiet_to - quiet_from > 0:
                silent.append((quiet_from, quiet_to))
            previous_end = end
        return silent


def _draw(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(*bounds))


def _form(rng: np.random.Generator, n_bars: int) -> list[tuple[str, int]]:
    """Section names and lengths in bars that fill ``n_bars``."""
    unit = 1 if n_bars < 12 else 2 if n_bars < 32 else 4
    names: list[tuple[str, int]] = []
    remaining = n_bars
    if n_bars >= 3:
        intro = min(int(rng.choice(SECTION_UNITS["intro"])) * unit, n_bars - 2)
        names.append(("intro", intro))
        remaining -= intro
    outro = int(rng.choice(SECTION_UNITS["outro"])) * unit if n_bars >= 12 else 0
    remaining -= outro
    cycle = 0
    while remaining > 0:
        name = FORM_CYCLE[cycle % len(FORM_CYCLE)]
        bars = min(int(rng.choice(SECTION_UNITS[name])) * unit, remaining)
        names.append((name, bars))
        remaining -= bars
        cycle += 1
    if outro:
        names.append(("outro", outro))
    return names


def _section_stems(rng: np.random.Generator, name: str, config: SynthConfig) -> set[str]:
    """Stems that play in one section."""
    if name == "intro":
        stems = {"other"}
        stems |= {"drums"} if rng.random() < 0.5 else set()
        stems |= {"bass"} if rng.random() < 0.3 else set()
        return stems
    if name in SPARSE_SECTION_STEMS:
        choices = SPARSE_SECTION_STEMS[name]
        return set(choices[int(rng.integers(len(choices)))])
    stems = set(STEMS)
    dropout = config.dropout_probability * (0.5 if name == "chorus" else 1.0)
    if rng.random() < dropout:
        stems.discard(str(rng.choice(["bass", "drums", "other"])))
    return stems


def _sections(rng: np.random.Generator, n_bars: int, config: SynthConfig) -> tuple[Section, ...]:
    form = _form(rng, n_bars)
    actives = [_section_stems(rng, name, config) for name, _ in form]
    # Every stem plays somewhere: a stem left out everywhere joins the longest section after the intro.
    for stem in STEMS:
        if not any(stem in active for active in actives):
            candidates = [i for i, (name, _) in enumerate(form) if name != "intro"] or [0]
            actives[max(candidates, key=lambda i: form[i][1])].add(stem)
    sections, bar = [], 0
    for (name, bars), active in zip(form, actives):
        sections.append(Section(name, bar, bars, frozenset(active), SECTION_ENERGY[name]))
        bar += bars
    return tuple(sections)


def _chords(
    rng: np.random.Generator, sections: tuple[Section, ...], tonic: int, mode: str, seventh: bool
) -> tuple[Chord, ...]:
    """One progression per section type, one chord per bar or per half bar."""
    progressions = PROGRESSIONS[mode]
    per_type = {
        name: (progressions[int(rng.integers(len(progressions)))], float(rng.choice([4.0, 4.0, 2.0])))
        for name in SECTION_ENERGY
    }
    chords = []
    for section in sections:
        progression, beats = per_type[section.name]
        for index, start in enumerate(np.arange(section.start_beat, section.end_beat, beats)):
            degree = progression[index % len(progression)]
            pitch_classes = diatonic_chord(tonic, mode, degree, seventh)
            chords.append(Chord(float(start), beats, pitch_classes[0], pitch_classes))
    return tuple(chords)


def compose_song(seed: int, seconds: float, config: SynthConfig = SYNTH_CONFIG) -> SongPlan:
    """Draw a song's global parameters and form from ``seed`` (deterministic)."""
    if seconds <= 0:
        raise ValueError(f"song length must be positive, got {seconds} s")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    tempo = _draw(rng, config.tempo_range)
    steps_per_beat = 3 if rng.random() < config.triplet_probability else 4
    swing = _draw(rng, config.swing_range) if steps_per_beat == 4 and rng.random() < 0.4 else 0.0
    bar_seconds = BEATS_PER_BAR * 60.0 / tempo
    n_bars = max(math.ceil(seconds / bar_seconds - 1e-9), 1)
    mode = "minor" if rng.random() < 0.45 else "major"
    tonic = int(rng.integers(12))
    sections = _sections(rng, n_bars, config)
    chords = _chords(rng, sections, tonic, mode, rng.random() < config.seventh_probability)
    return SongPlan(
        seed=seed,
        seconds=float(seconds),
        tempo=tempo,
        steps_per_beat=steps_per_beat,
        swing=swing,
        tonic=tonic,
        mode=mode,
        sections=sections,
        chords=chords,
        rt60=_draw(rng, config.rt60_range),
        predelay=_draw(rng, config.predelay_range),
        reverb_send_db={stem: _draw(rng, config.reverb_send_db[stem]) for stem in STEMS},
        balance_db={stem: _draw(rng, config.balance_db[stem]) for stem in STEMS},
        mixture_rms_db=_draw(rng, config.mixture_rms_range),
        config=config,
    )
