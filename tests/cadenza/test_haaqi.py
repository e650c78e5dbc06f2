"""cadenza.haaqi against pyclarity 0.9.0's HAAQI: same scores (within 1e-9; the count of bit-identical ones is
reported) and the same state of numpy's global generator, on short signals (2-3 s) of many kinds."""

# ruff: noqa: NPY002 (the legacy global generator is what both implementations must share)

from __future__ import annotations

import numpy as np
import pytest
from clarity.evaluator.haaqi import compute_haaqi as pyclarity_haaqi
from clarity.evaluator.haspi import eb
from clarity.utils.audiogram import Audiogram
from scipy.signal import butter, lfilter

from cadenza.haaqi import compute_haaqi
from cadenza.haaqi import ear_model as ear_model_module
from cadenza.haaqi.alignment import envelope_delay

CAD1_FREQUENCIES = [250, 500, 1000, 2000, 3000, 4000, 6000, 8000]
AUDIOGRAMS = {
    "normal": Audiogram(levels=np.zeros(8), frequencies=CAD1_FREQUENCIES),
    "mild": Audiogram(levels=[10, 15, 20, 25, 30, 30, 35, 40], frequencies=CAD1_FREQUENCIES),
    "moderate": Audiogram(levels=[25, 30, 35, 45, 50, 55, 60, 65], frequencies=CAD1_FREQUENCIES),
    "severe": Audiogram(levels=[50, 55, 60, 70, 75, 80, 85, 90], frequencies=CAD1_FREQUENCIES),
    "profound": Audiogram(levels=[80, 85, 90, 95, 100, 105, 110, 115], frequencies=CAD1_FREQUENCIES),
    # the worse ear of an asymmetric listener: a steep high-frequency drop with a notch
    "asymmetric": Audiogram(levels=[5, 10, 10, 60, 85, 70, 95, 100], frequencies=CAD1_FREQUENCIES),
    # not at the HAAQI frequencies: interpolated
    "sparse": Audiogram(levels=[20, 40, 70], frequencies=[500, 2000, 8000]),
}


def music(seconds: float, rate: int, seed: int) -> np.ndarray:
    """A music-like test signal: a decaying plucked chord, noise bursts, a vibrato tone, silence at the ends."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    beat = np.exp(-12 * (t % 0.5))
    chord = sum(np.sin(2 * np.pi * f * t + rng.random()) for f in (196.0, 246.9, 293.7)) * beat
    drums = rng.standard_normal(t.size) * np.exp(-40 * (t % 0.25)) * 0.3
    voice = 0.2 * np.sin(2 * np.pi * 440 * t + 4 * np.sin(2 * np.pi * 5 * t))
    signal = 0.1 * (chord + drums + voice)
    signal[: int(0.05 * rate)] = 0.0
    signal[-int(0.05 * rate) :] = 0.0
    return signal


def processed_version(kind: str, reference: np.ndarray, rate: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 100)
    if kind == "identical":
        return reference.copy()
    if kind == "lowpass":
        b, a = butter(4, 2000 / (rate / 2))
        return lfilter(b, a, reference)
    if kind == "clipped":
        return np.clip(3 * reference, -0.2, 0.2)
    if kind == "noisy":
        return reference + 0.03 * rng.standard_normal(reference.size)
    if kind == "delayed":  # 35 ms later and 6 dB quieter
        return 0.5 * np.concatenate((np.zeros(int(0.035 * rate)), reference))[: reference.size]
    if kind == "inverted":  # polarity inverted: the largest BM correlation is negative
        return -reference
    if kind == "silent":
        return np.zeros_like(reference)
    raise ValueError(kind)


# (rate, equalisation, processed kind, audiogram, seconds)
CASES = [
    (24000, 1, "identical", "moderate", 2.5),
    (24000, 2, "identical", "moderate", 2.0),
    (24000, 1, "noisy", "profound", 2.0),
    (24000, 1, "delayed", "asymmetric", 2.5),
    (24000, 1, "silent", "mild", 2.0),
    (24000, 1, "inverted", "moderate", 2.0),
    (24000, 2, "clipped", "normal", 2.0),
    (32000, 1, "lowpass", "mild", 2.0),
    (32000, 2, "noisy", "severe", 2.0),
    (44100, 1, "clipped", "severe", 2.0),
    (44100, 1, "delayed", "sparse", 2.0),
    (44100, 2, "lowpass", "asymmetric", 2.0),
]

_EXACT: dict[str, bool] = {}


def _score_and_state(function, processed, reference, rate, audiogram, equalisation, level1):
    np.random.seed(20240131)
    score = function(processed, reference, rate, rate, audiogram, equalisation, level1)
    return score, np.random.get_state()


def _assert_same_state(ours, theirs):
    assert ours[0] == theirs[0]
    np.testing.assert_array_equal(ours[1], theirs[1])
    assert ours[2:] == theirs[2:], "generator position or cached Gaussian differs"


@pytest.mark.parametrize(("rate", "equalisation", "kind", "audiogram", "seconds"), CASES)
def test_scores_and_generator_state_match_pyclarity(rate, equalisation, kind, audiogram, seconds):
    reference = music(seconds, rate, seed=rate + equalisation)
    processed = processed_version(kind, reference, rate, seed=rate)
    level1 = 65 - 20 * np.log10(np.sqrt(np.mean(reference**2)))
    args = (processed, reference, rate, AUDIOGRAMS[audiogram], equalisation, level1)
    ours, our_state = _score_and_state(compute_haaqi, *args)
    theirs, their_state = _score_and_state(pyclarity_haaqi, *args)
    assert abs(ours - theirs) <= 1e-9, f"{ours!r} vs pyclarity {theirs!r}"
    _assert_same_state(our_state, their_state)
    _EXACT[f"{rate}-{equalisation}-{kind}-{audiogram}"] = bool(ours == theirs)


def test_report_bit_identical_count(capsys):
    """Reports how many of the cases above gave exactly pyclarity's value (run with -s to see it)."""
    with capsys.disabled():
        print(f"\nHAAQI: {sum(_EXACT.values())} of {len(_EXACT)} cases bit-identical to pyclarity")
    assert len(_EXACT) in (0, len(CASES))


def test_chain_of_calls_after_one_seed():
    """Three calls after one seed, as the recipe makes them: the same scores and the same final state."""
    calls = [
        (music(1.5, 24000, 1), 24000, "mild", 1),
        (music(1.0, 44100, 2), 44100, "moderate", 2),
        (music(1.5, 24000, 3), 24000, "asymmetric", 1),
    ]
    results = []
    for function in (compute_haaqi, pyclarity_haaqi):
        np.random.seed(7)
        scores = []
        for reference, rate, audiogram, equalisation in calls:
            processed = processed_version("noisy", reference, rate, seed=5)
            scores.append(function(processed, reference, rate, rate, AUDIOGRAMS[audiogram], equalisation, 70.0))
        results.append((scores, np.random.get_state()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=0, atol=1e-9)
    _assert_same_state(results[0][1], results[1][1])


def test_empty_reference():
    audiogram = AUDIOGRAMS["mild"]
    assert compute_haaqi(np.array([]), np.array([]), 24000, 24000, audiogram) == 1.0
    assert compute_haaqi(np.ones(10), np.array([]), 24000, 24000, audiogram) == 0.0


def _reference_align_delay(reference, output):
    """pyclarity's envelope alignment, as the delay it applies."""
    shifted = eb.envelope_align(reference, output)
    for delay in range(-2400, 2401):
        candidate = np.zeros_like(output)
        if delay > 0:
            candidate[: len(output) - delay] = output[delay:]
        else:
            candidate[-delay:] = output[: len(output) + delay]
        if np.array_equal(candidate, shifted):
            return delay
    raise AssertionError("no delay reproduces pyclarity's alignment")


@pytest.mark.parametrize("case", ["random", "flat", "periodic", "inverted", "near_tie"])
def test_envelope_delay_matches_reference_alignment(case, monkeypatch):
    """The lag-window correlation picks pyclarity's lag, also where the correlation is flat or nearly tied
    (there the exact full correlation decides)."""
    rng = np.random.default_rng(3)
    n = 40000
    if case == "random":
        reference = np.abs(rng.standard_normal(n)).cumsum() % 7
        output = np.roll(reference, 123) + 0.1 * rng.standard_normal(n)
    elif case == "flat":  # a steady envelope: the correlation is a triangle
        reference = np.full(n, 0.3) + 1e-9 * rng.standard_normal(n)
        output = np.full(n, 0.2)
    elif case == "periodic":
        reference = np.sin(2 * np.pi * np.arange(n) / 48.0)
        output = np.roll(reference, 17)
    elif case == "inverted":  # the correlation's largest magnitude is negative: not the lag chosen
        reference = np.sin(2 * np.pi * np.arange(n) / 48.0) * (1 + 0.5 * np.sin(np.arange(n) / 900.0))
        output = -reference
    else:  # two lags with the same correlation up to round-off: force the exact path
        reference = rng.standard_normal(n)
        output = reference.copy()
        monkeypatch.setattr("cadenza.haaqi.alignment.TIE_MARGIN", np.inf)
    assert envelope_delay(reference, output) == _reference_align_delay(reference, output)


def test_nalr_fir_matches_pyclarity():
    from clarity.enhancer.nalr import NALR

    for name, audiogram in AUDIOGRAMS.items():
        levels = audiogram.resample(np.array([250, 500, 1000, 2000, 4000, 6000])).levels
        expected, _ = NALR(140, 24000.0).build(Audiogram(levels=levels, frequencies=[250, 500, 1000, 2000, 4000, 6000]))
        np.testing.assert_array_equal(ear_model_module.nalr_fir(levels), expected, err_msg=name)
