"""Each stem is what it claims to be: pitched vocals and bass, transient broadband drums, harmony in the
middle register, silence where the song structure leaves a stem out, realistic loudness."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest

from data_prep.analysis import band_share, downmix, energy_concentration, loud_frames, pitched_fraction, yin
from data_prep.composer import compose_song
from data_prep.config import INT16_SCALE, SAMPLE_RATE, STEMS
from data_prep.synth import render_song

#: Plausible f0 ranges (Hz) of a sung line and of a bass line.
VOCAL_F0 = (80.0, 1000.0)
BASS_F0 = (35.0, 260.0)


def _mono(songs) -> dict[int, dict[str, np.ndarray]]:
    return {seed: {stem: downmix(audio, SAMPLE_RATE) for stem, audio in stems.items()} for seed, stems in songs.items()}


@pytest.fixture(scope="module")
def mono(songs):
    return _mono(songs)


def test_vocals_are_pitched_in_a_human_range(mono):
    for stems in mono.values():
        assert pitched_fraction(stems["vocals"], VOCAL_F0) > 0.8
        # ...and mostly not in the bass range: a voice, not a bass line
        f0, _ = yin(stems["vocals"])
        assert np.nanmedian(f0[loud_frames(stems["vocals"])]) > 100.0


def test_bass_is_pitched_in_the_bass_range(mono):
    for stems in mono.values():
        assert pitched_fraction(stems["bass"], BASS_F0) > 0.8
        assert band_share(stems["bass"], 0.0, 300.0) > 0.6


def test_drums_are_transient_and_broadband(mono):
    for stems in mono.values():
        drums = stems["drums"]
        assert energy_concentration(drums) < 0.2  # half the energy in under a fifth of the frames
        assert band_share(drums, 0.0, 150.0) > 0.2  # kick
        assert band_share(drums, 4000.0, 11025.0) > 0.005  # hats, cymbals, snare wires
        for pitched in ("bass", "other", "vocals"):  # far more high-frequency energy than the pitched stems
            assert band_share(drums, 4000.0, 11025.0) > 5 * band_share(stems[pitched], 4000.0, 11025.0)
        _, aperiodicity = yin(drums)
        _, vocal_aperiodicity = yin(stems["vocals"])
        assert np.median(aperiodicity[loud_frames(drums)]) > np.median(vocal_aperiodicity[loud_frames(stems["vocals"])])


def test_other_is_harmonic_in_the_middle_register(mono):
    for stems in mono.values():
        other = stems["other"]
        assert band_share(other, 100.0, 2000.0) > 0.8
        assert band_share(other, 0.0, 100.0) < 0.05
        _, aperiodicity = yin(other)
        assert np.median(aperiodicity[loud_frames(other)]) < 0.3  # periodic (chords share a period)
        # chords, not a single line: no single f0 in the vocal range on most frames
        assert pitched_fraction(other, VOCAL_F0) < 0.6


def test_vocals_have_formants_in_the_speech_band(mono):
    for stems in mono.values():
        assert band_share(stems["vocals"], 200.0, 4000.0) > 0.85


def _first_seed_with_a_stop(seconds: float) -> int:
    """A song whose plan silences some stem after it played (so the release and reverb tail are tested)."""
    for seed in range(100):
        plan = compose_song(seed, seconds)
        if any(start > 0 and end - start > 0.3 for stem in STEMS for start, end in plan.silent_spans(stem)):
            return seed
    raise AssertionError("no song of the first 100 seeds stops a stem mid-song")


def test_stems_are_exactly_silent_where_the_structure_leaves_them_out(songs):
    seconds = 10.0
    seed = _first_seed_with_a_stop(seconds)
    cases = [(seed, seconds, render_song(seed, seconds))] + [(s, 6.0, stems) for s, stems in songs.items()]
    checked = 0.0
    for seed, seconds, stems in cases:
        plan = compose_song(seed, seconds)
        for stem in STEMS:
            samples = np.round(stems[stem] * INT16_SCALE)
            for start, end in plan.silent_spans(stem):
                span = samples[:, int(np.ceil(start * SAMPLE_RATE)) : int(end * SAMPLE_RATE)]
                assert not np.any(span), f"song {seed}: {stem} not silent in {start:.2f}-{end:.2f} s"
                checked += end - start
            for start, end in plan.active_spans(stem):  # ...and audible where it plays
                span = stems[stem][:, int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
                assert 20 * np.log10(np.sqrt(np.mean(span.astype(float) ** 2)) + 1e-12) > -50.0, (seed, stem)
    assert checked > 5.0


def test_loudness_per_stem_is_realistic(songs):
    meter = pyloudnorm.Meter(SAMPLE_RATE)
    for stems in songs.values():
        for stem, audio in stems.items():
            loudness = meter.integrated_loudness(audio.T.astype(np.float64))
            assert -32.0 < loudness < -12.0, (stem, loudness)
        mixture = sum(stems.values()).T.astype(np.float64)
        assert -24.0 < meter.integrated_loudness(mixture) < -8.0
        assert np.max(np.abs(mixture)) < 1.0
