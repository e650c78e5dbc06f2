"""Drum kit: one-shots from pitch- and noise-envelope synthesis, grooves, fills and crashes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from data_prep import dsp
from data_prep.composer import BEATS_PER_BAR, Section, SongPlan

#: Grooves on a one-bar grid: one character per step ('X' accent, 'x' normal, 'o' soft, 'g' ghost).
#: Straight grooves have 16 steps (16ths), triplet grooves 12 (8th-note triplets).
GROOVES = {
    4: {
        "rock": {"kick": "X.......x.x.....", "snare": "....X.......X...", "hat": "x.x.x.x.x.x.x.x."},
        "pop": {"kick": "X......xX.......", "snare": "....X.......X...", "hat": "x.o.x.o.x.o.x.o."},
        "four_on_the_floor": {
            "kick": "X...X...X...X...",
            "snare": "....X.......X...",
            "hat": "..x...x...x...x.",
        },
        "half_time": {"kick": "X.........x.....", "snare": "........X.......", "hat": "x.x.x.x.x.x.x.x."},
        "funk": {"kick": "X..x..x...x..x..", "snare": "....X..g.g..X..g", "hat": "xoxoxoxoxoxoxoxo"},
        "breakbeat": {"kick": "X.x.......xx....", "snare": "....X..g.x..X...", "hat": "x.x.x.x.x.x.x.x."},
        "ballad": {"kick": "X.......x.......", "snare": "........X.......", "hat": "x...x...x...x..."},
    },
    3: {
        "shuffle": {"kick": "X.....x.....", "snare": "...X.....X..", "hat": "x.ox.ox.ox.o"},
        "twelve_eight": {"kick": "X.....x..x..", "snare": "......X.....", "hat": "xoxxoxxoxxox"},
        "half_time_shuffle": {"kick": "X........x..", "snare": "......X.....", "hat": "x.ox.ox.ox.o"},
    },
}

VELOCITY = {"X": 1.0, "x": 0.8, "o": 0.55, "g": 0.3}

#: Fill pieces in playing order (high to low), one per step of the fill.
FILL_PIECES = ("snare", "tom_high", "tom_high", "tom_mid", "tom_mid", "tom_low", "tom_low", "kick")

#: One-shot variants per piece (picked at random per hit, like round-robin samples).
VARIANTS = 3

#: Inharmonic partial ratios of the metallic cymbal tone (six square waves).
METAL_RATIOS = np.array([1.0, 1.4471, 1.617, 1.9265, 2.5028, 2.6637])

#: Timing and velocity humanisation.
TIMING_JITTER = 0.004  # s (standard deviation)
VELOCITY_JITTER = 0.08


def _kick(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    samples = int(0.5 * sample_rate)
    t = np.arange(samples) / sample_rate
    f_end = rng.uniform(42.0, 60.0)
    f_start = f_end * rng.uniform(2.2, 3.5)
    frequency = f_end + (f_start - f_end) * np.exp(-t / rng.uniform(0.025, 0.06))
    body = np.sin(2 * np.pi * np.cumsum(frequency) / sample_rate) * np.exp(-t / rng.uniform(0.12, 0.3))
    drive = rng.uniform(1.0, 3.0)
    body = np.tanh(drive * body) / np.tanh(drive)
    click = dsp.filtered(rng.standard_normal(samples), 2, 2000.0, "highpass", sample_rate)
    click *= np.exp(-t / 0.003) * rng.uniform(0.1, 0.3)
    return body + click


def _snare(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    samples = int(0.45 * sample_rate)
    t = np.arange(samples) / sample_rate
    f1 = rng.uniform(170.0, 250.0)
    tone = np.sin(2 * np.pi * f1 * t) + 0.6 * np.sin(2 * np.pi * f1 * rng.uniform(1.5, 1.75) * t)
    tone *= np.exp(-t / rng.uniform(0.05, 0.1))
    low, high = rng.uniform(1200.0, 2500.0), rng.uniform(7000.0, 11000.0)
    noise = dsp.filtered(rng.standard_normal(samples), 2, (low, high), "bandpass", sample_rate)
    noise *= np.exp(-t / rng.uniform(0.08, 0.2)) * rng.uniform(1.2, 2.2)
    return 0.5 * tone + noise


def _metal(
    rng: np.random.Generator, sample_rate: int, seconds: float, time_constant: float, highpass: float
) -> np.ndarray:
    """Cymbal-like tone: inharmonic square waves plus noise, high-passed, exponential decay."""
    samples = int(seconds * sample_rate)
    t = np.arange(samples) / sample_rate
    base = rng.uniform(300.0, 480.0)
    cycles = base * METAL_RATIOS[:, None] * t[None, :]
    square_waves = (cycles - np.floor(cycles) < 0.5).sum(axis=0)
    tone = (2.0 * square_waves - len(METAL_RATIOS)) / len(METAL_RATIOS)
    mixed = 0.6 * tone + rng.standard_normal(samples)
    mixed = dsp.filtered(mixed, 4, highpass, "highpass", sample_rate)
    return mixed * np.exp(-t / time_constant) * np.minimum(t / 0.001, 1.0)


def _tom(pitch: float) -> Callable[[np.random.Generator, int], np.ndarray]:
    def make(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
        samples = int(0.6 * sample_rate)
        t = np.arange(samples) / sample_rate
        f_end = pitch * rng.uniform(0.95, 1.05)
        frequency = f_end * (1.0 + 0.6 * np.exp(-t / 0.04))
        body = np.sin(2 * np.pi * np.cumsum(frequency) / sample_rate) * np.exp(-t / rng.uniform(0.15, 0.3))
        noise = dsp.filtered(rng.standard_normal(samples), 2, 1500.0, "highpass", sample_rate)
        return body + 0.15 * noise * np.exp(-t / 0.02)

    return make


PIECES: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "kick": _kick,
    "snare": _snare,
    "closed_hat": lambda rng, sr: 0.6 * _metal(rng, sr, 0.2, rng.uniform(0.025, 0.05), 7000.0),
    "open_hat": lambda rng, sr: 0.5 * _metal(rng, sr, 0.6, rng.uniform(0.2, 0.35), 6500.0),
    "ride": lambda rng, sr: 0.35 * _metal(rng, sr, 1.0, rng.uniform(0.3, 0.5), 4500.0),
    "crash": lambda rng, sr: 0.6 * _metal(rng, sr, 1.5, rng.uniform(0.45, 0.8), 3500.0),
    "tom_high": _tom(200.0),
    "tom_mid": _tom(150.0),
    "tom_low": _tom(105.0),
}


def _kit(rng: np.random.Generator, sample_rate: int) -> dict[str, list[np.ndarray]]:
    """A song's drum kit: normalised one-shot variants per piece. Variants share the piece's character
    (a per-song kit seed) and differ in the details (per-variant noise and small tuning changes)."""
    kit = {}
    for name, make in PIECES.items():
        piece_seed = int(rng.integers(2**32))
        variants = []
        for variant in range(VARIANTS):
            shot = make(np.random.default_rng([piece_seed, variant]), sample_rate)
            variants.append(shot / np.max(np.abs(shot)))
        kit[name] = variants
    return kit


def _pieces_for_section(rng: np.random.Generator, section: Section, groove: dict[str, str]) -> dict[str, str]:
    """Map the groove's 'hat' line to the cymbal the section plays."""
    lines = {"kick": groove["kick"], "snare": groove["snare"]}
    if section.name == "chorus":
        lines["ride" if rng.random() < 0.4 else "open_hat"] = groove["hat"]
    elif section.name == "intro" and rng.random() < 0.5:
        lines = {"closed_hat": groove["hat"]}  # intros often start on the hats alone
    else:
        lines["closed_hat"] = groove["hat"]
    return lines


def _section_hits(
    rng: np.random.Generator, plan: SongPlan, section: Section, groove: dict[str, str], fill: bool
) -> list[tuple[str, float, float]]:
    """``(piece, beat, velocity)`` of the hits of one section."""
    steps = plan.steps_per_beat * BEATS_PER_BAR
    lines = _pieces_for_section(rng, section, groove)
    hits = []
    for bar in range(section.bars):
        bar_start = section.start_beat + bar * BEATS_PER_BAR
        last_bar = bar == section.bars - 1
        fill_from = steps - plan.steps_per_beat * int(rng.choice([1, 2])) if fill and last_bar else steps
        for piece, line in lines.items():
            for step, symbol in enumerate(line[:fill_from]):
                if symbol in VELOCITY:
                    hits.append((piece, bar_start + step / plan.steps_per_beat, VELOCITY[symbol]))
        for position, step in enumerate(range(fill_from, steps)):
            piece = FILL_PIECES[min(position * len(FILL_PIECES) // max(steps - fill_from, 1), 7)]
            hits.append((piece, bar_start + step / plan.steps_per_beat, 0.7 + 0.3 * position / steps))
    return hits


def render_drums(plan: SongPlan, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Dry stereo drum stem ``(2, samples)`` of the whole song."""
    kit = _kit(rng, sample_rate)
    pans = {
        "kick": 0.0,
        "snare": rng.uniform(-0.15, 0.15),
        "tom_high": rng.uniform(-0.5, -0.2),
        "tom_mid": rng.uniform(-0.1, 0.1),
        "tom_low": rng.uniform(0.2, 0.5),
    }
    hat_side = float(rng.choice([-1.0, 1.0]))
    pans |= {"closed_hat": hat_side * rng.uniform(0.2, 0.5), "open_hat": hat_side * rng.uniform(0.2, 0.5)}
    pans |= {"ride": -hat_side * rng.uniform(0.3, 0.6), "crash": -hat_side * rng.uniform(0.2, 0.6)}
    piece_gain = {"kick": 1.0, "snare": 0.8, "closed_hat": 0.5, "open_hat": 0.45, "ride": 0.45}
    piece_gain |= {"crash": 0.45, "tom_high": 0.6, "tom_mid": 0.6, "tom_low": 0.6}
    groove_names = sorted(GROOVES[plan.steps_per_beat])
    grooves = {  # one groove per section type, mostly the song's main groove
        name: GROOVES[plan.steps_per_beat][str(rng.choice(groove_names))] for name in ("intro", "bridge")
    }
    main = GROOVES[plan.steps_per_beat][str(rng.choice(groove_names))]
    samples = round(plan.seconds * sample_rate)
    out = np.zeros((2, samples), dtype=np.float32)
    sections = list(plan.sections)
    for index, section in enumerate(sections):
        if "drums" not in section.active:
            continue
        following = sections[index + 1] if index + 1 < len(sections) else None
        fill = following is not None and "drums" in following.active and rng.random() < 0.7
        hits = _section_hits(rng, plan, section, grooves.get(section.name, main), fill)
        previous = sections[index - 1] if index > 0 else None
        if section.name != "intro" and (previous is None or previous.name != section.name) and rng.random() < 0.8:
            hits.append(("crash", section.start_beat, 0.9))
        for piece, beat, velocity in hits:
            time = float(plan.seconds_at(beat)) + float(np.clip(rng.normal(0, TIMING_JITTER), -0.01, 0.01))
            level = velocity * (0.6 + 0.4 * section.energy) * (1.0 + VELOCITY_JITTER * rng.standard_normal())
            shot = kit[piece][int(rng.integers(VARIANTS))] * piece_gain[piece] * max(level, 0.05) ** 1.5
            dsp.add_at(out, dsp.pan(shot, pans[piece]), round(max(time, 0.0) * sample_rate))
    return out
