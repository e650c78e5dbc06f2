"""The library's NAL-R (`xumx_slicq_v2.hearing`) against pyclarity 0.9.0's ``NALR``, and its streaming form."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from xumx_slicq_v2.hearing import (
    Audiogram,
    AudiogramError,
    FirStream,
    apply_fir,
    delay_fir,
    nalr_fir,
    nalr_gains_db,
    read_listeners,
)

clarity_nalr = pytest.importorskip("clarity.enhancer.nalr", reason="pyclarity is the reference for NAL-R")
clarity_audiogram = pytest.importorskip("clarity.utils.audiogram")

CAD1_FREQUENCIES = (250, 500, 1000, 2000, 3000, 4000, 6000, 8000)

#: Audiograms (levels dB HL, frequencies Hz): pyclarity's own test case at two frequency sets, no loss, mild,
#: profound (three-frequency loss above 180 dB), a notch, frequencies outside 250-6000 Hz, non-integer levels.
AUDIOGRAMS = [
    ((45, 45, 35, 45, 60, 65), (250, 500, 1000, 2000, 4000, 6000)),
    ((45, 45, 35, 45, 60, 65), (250, 500, 1000, 1500, 4000, 6000)),
    ((0,) * 8, CAD1_FREQUENCIES),
    ((-5, 0, 0, -10, 0, 0, 0, 0), CAD1_FREQUENCIES),
    ((10, 15, 20, 25, 30, 30, 35, 40), CAD1_FREQUENCIES),
    ((80, 85, 90, 95, 100, 105, 110, 115), CAD1_FREQUENCIES),
    ((10, 10, 60, 10, 10, 10, 10, 10), CAD1_FREQUENCIES),
    ((20, 30, 40, 50, 70), (125, 750, 1500, 3000, 10000)),
    ((12.5, 17.25, 33.3, 41.9, 58.1, 66.6, 71.2, 80.0), CAD1_FREQUENCIES),
]


def pyclarity_fir(levels, frequencies, nfir: int, sample_rate: float) -> np.ndarray:
    audiogram = clarity_audiogram.Audiogram(levels=list(levels), frequencies=list(frequencies))
    fir, _delay = clarity_nalr.NALR(nfir=nfir, sample_rate=sample_rate).build(audiogram)
    return fir


@pytest.mark.parametrize(("levels", "frequencies"), AUDIOGRAMS)
@pytest.mark.parametrize(("nfir", "sample_rate"), [(220, 44100), (220, 48000), (220, 24000), (101, 44100)])
def test_taps_equal_pyclarity(levels, frequencies, nfir, sample_rate):
    expected = pyclarity_fir(levels, frequencies, nfir, sample_rate)
    taps = nalr_fir(Audiogram(levels, frequencies), nfir, sample_rate)
    assert taps.shape == (nfir + 1,)
    np.testing.assert_allclose(taps, expected, rtol=0, atol=1e-9 * max(1.0, np.abs(expected).max()))


@pytest.mark.parametrize(("levels", "frequencies"), AUDIOGRAMS[:1] + AUDIOGRAMS[4:7])
def test_filtered_signal_equals_pyclarity(levels, frequencies):
    signal = np.random.default_rng(3).standard_normal(44100).astype(np.float32) * 0.3
    fir = pyclarity_fir(levels, frequencies, 220, 44100)
    expected = clarity_nalr.NALR(nfir=220, sample_rate=44100).apply(fir, signal)
    filtered = apply_fir(nalr_fir(Audiogram(levels, frequencies)), signal)
    assert filtered.shape == (44100 + 220,)
    np.testing.assert_allclose(filtered, expected, rtol=0, atol=1e-6 * np.abs(expected).max())


def test_pyclarity_anchor():
    """pyclarity's tests/enhancer/test_nalr.py: |taps| sums to 28.846583644263408."""
    taps = nalr_fir(Audiogram((45, 45, 35, 45, 60, 65), (250, 500, 1000, 2000, 4000, 6000)), 220, 44100)
    assert np.sum(np.abs(taps)) == pytest.approx(28.846583644263408, rel=1e-12)


def test_gains_formula():
    bias = np.array([-17, -8, 1, -1, -2, -2])
    # three-frequency loss 120 dB: X = 0.05 * 120; 300 dB (above 180): X = 9 + 0.116 * (300 - 180)
    np.testing.assert_allclose(nalr_gains_db(np.full(6, 40.0)), np.clip(6 + 12.4 + bias, 0, None))
    np.testing.assert_allclose(nalr_gains_db(np.full(6, 100.0)), 9 + 0.116 * 120 + 31 + bias)
    np.testing.assert_array_equal(nalr_gains_db(np.zeros(6)), [0, 0, 1, 0, 0, 0])  # clipped at 0 dB


def test_no_loss_is_a_pure_delay():
    taps = nalr_fir(Audiogram((0,) * 8, CAD1_FREQUENCIES))
    np.testing.assert_array_equal(taps, delay_fir(220))
    assert taps[110] == 1.0 and np.count_nonzero(taps) == 1


def test_stream_equals_one_shot_filtering():
    signal = np.random.default_rng(5).standard_normal((4, 2, 9000)).astype(np.float32)
    fir = nalr_fir(Audiogram((30, 35, 40, 50, 55, 60, 65, 70), CAD1_FREQUENCIES))
    expected = np.stack([[apply_fir(fir, channel) for channel in stem] for stem in signal])
    stream = FirStream(fir)
    bounds = [0, 7, 8, 8, 150, 4000, 9000]  # blocks shorter than the filter, empty, long
    pieces = [stream.process(signal[..., a:b]) for a, b in itertools.pairwise(bounds)]
    assert [piece.shape[-1] for piece in pieces] == [b - a for a, b in itertools.pairwise(bounds)]
    streamed = np.concatenate([*pieces, stream.flush().reshape(4, 2, -1)], axis=-1)
    np.testing.assert_allclose(streamed, expected, rtol=0, atol=1e-12)


def test_bad_audiograms_are_refused():
    with pytest.raises(AudiogramError, match="as many levels"):
        Audiogram((10, 20), (250, 500, 1000))
    with pytest.raises(AudiogramError, match="ascending"):
        Audiogram((10, 20), (500, 250))
    with pytest.raises(AudiogramError, match="finite"):
        Audiogram((10, float("nan")), (250, 500))
    with pytest.raises(ValueError, match="too low"):
        nalr_fir(Audiogram((10, 20), (250, 500)), sample_rate=8000)


def test_read_listeners(tmp_path):
    path = tmp_path / "listeners.json"
    path.write_text(
        json.dumps(
            {
                "L1": {"audiogram_cfs": [250, 500], "audiogram_levels_l": [10, 20], "audiogram_levels_r": [30, 40]},
                "L2": {"audiogram_cfs": [250], "audiogram_levels_l": [5], "audiogram_levels_r": [5]},
            }
        )
    )
    listeners = read_listeners(path)
    assert list(listeners) == ["L1", "L2"]
    assert listeners["L1"].left == Audiogram((10, 20), (250, 500))
    assert listeners["L1"].right.levels == (30.0, 40.0)
    path.write_text(json.dumps({"L1": {"audiogram_cfs": [250, 500], "audiogram_levels_l": [10]}}))
    with pytest.raises(AudiogramError, match="L1"):
        read_listeners(path)
