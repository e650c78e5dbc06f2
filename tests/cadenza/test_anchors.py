"""Numeric anchors of the pyclarity 0.9.0 recipe and library tests, reproduced through our code."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from clarity.enhancer.compressor import Compressor
from clarity.utils.audiogram import Audiogram, Listener
from clarity.utils.flac_encoder import FlacEncoder

from cadenza.config import compose_config
from cadenza.data import Song
from cadenza.evaluate import evaluate_pair
from cadenza.flac_io import write_clipped_remix
from cadenza.hearing_aid import HearingAid
from cadenza.layout import ExpLayout
from cadenza.scoring import song_seed

RECIPE_KEYS = (
    "left_drums",
    "right_drums",
    "left_bass",
    "right_bass",
    "left_other",
    "right_other",
    "left_vocals",
    "right_vocals",
)
RECIPE_EXPECTED = {
    "left_drums": 0.14229280292204488,
    "right_drums": 0.15044867874762802,
    "left_bass": 0.13337685099485902,
    "right_bass": 0.14541734646032817,
    "left_other": 0.16310385596493193,
    "right_other": 0.1542791489799909,
    "left_vocals": 0.12291878218281638,
    "right_vocals": 0.13683790592287856,
}
SIX_FREQUENCIES = [250, 500, 1000, 2000, 4000, 6000]


def test_recipe_evaluate_case_through_evaluate_pair(tmp_path):
    """clarity tests/recipes/cad1/task1/baseline/test_evaluate.py::test_evaluate_song_listener (doc 10.2)."""
    song, listener_id = "punk_is_not_dead", "my_music_listener"
    cfg = compose_config(
        [
            f"path.root={tmp_path}",
            f"path.music_dir={tmp_path / 'reference'}",
            f"path.exp_folder={tmp_path / 'exp'}",
            "sample_rate=44100",
            "stem_sample_rate=44100",
        ]
    )
    layout = ExpLayout(tmp_path / "exp")
    np.random.seed(2023)  # noqa: NPY002 (the recipe test's data come from the global RNG)
    for key in RECIPE_KEYS:
        ear, instrument = key.split("_")
        path = layout.stem_flac(listener_id, song, ear, instrument)
        path.parent.mkdir(parents=True, exist_ok=True)
        samples = (np.random.uniform(-1, 1, 4410).astype(np.float32) * 32768).astype(np.int16)  # noqa: NPY002
        FlacEncoder().encode(samples, 44100, path)
        path.with_suffix(".txt").write_text("1.0")
    song_dir = tmp_path / "reference" / "test" / song
    song_dir.mkdir(parents=True)
    references = []
    for instrument in ("drums", "bass", "other", "vocals"):
        reference = np.random.uniform(-1, 1, (4410, 2)).astype(np.float32) * 32768  # noqa: NPY002
        sf.write(song_dir / f"{instrument}.wav", reference, 44100, subtype="FLOAT")
        references.append(reference)
    # Our evaluate also scores the remix (after the 8 stem calls, so it cannot change them): give it one.
    sf.write(song_dir / "mixture.wav", sum(references), 44100, subtype="FLOAT")
    remix = (np.random.uniform(-1, 1, (3200, 2)) * 32767).astype(np.int16)  # noqa: NPY002
    FlacEncoder().encode(remix, 32000, layout.remix_flac(listener_id, song))
    levels = [20, 30, 35, 45, 50, 60, 65, 60]
    frequencies = [250, 500, 1000, 2000, 3000, 4000, 6000, 8000]
    listener = Listener(Audiogram(levels, frequencies), Audiogram(levels, frequencies), id=listener_id)

    row = evaluate_pair(Song(song, "test"), listener, layout, cfg)

    assert row["score"] == pytest.approx(0.14358442152193474, rel=1e-7, abs=1e-7)
    for key, expected in RECIPE_EXPECTED.items():
        assert row[key] == pytest.approx(expected, rel=1e-7, abs=1e-7), key
    assert 0.0 <= row["remix_left"] <= 1.0 and 0.0 <= row["remix_right"] <= 1.0


def test_song_seed_matches_recipe():
    np.random.seed(song_seed("my favorite song"))  # noqa: NPY002
    assert np.random.randint(100) == 83  # noqa: NPY002
    np.random.seed(song_seed("another song"))  # noqa: NPY002
    assert np.random.randint(100) == 3  # noqa: NPY002
    assert song_seed("Actions - One Minute Smile") == 87297760
    assert song_seed("Young Griffo - Pennies") == 32922704


@pytest.mark.parametrize(
    ("frequencies", "expected"),
    [(SIX_FREQUENCIES, 28.846583644263408), ([250, 500, 1000, 1500, 4000, 6000], 29.808253441926134)],
)
def test_nalr_fir_of_enhance(frequencies, expected):
    """clarity tests/enhancer/test_nalr.py, through the hearing aid enhance builds from the default config."""
    aid = HearingAid.from_config(compose_config())
    fir = aid.fir(Audiogram(levels=[45, 45, 35, 45, 60, 65], frequencies=frequencies))
    assert fir.shape == (221,)
    assert np.sum(np.abs(fir)) == pytest.approx(expected, rel=1e-7, abs=1e-7)


def test_hearing_aid_uses_each_ears_audiogram():
    aid = HearingAid(nfir=220, sample_rate=44100)
    listener = Listener(
        Audiogram([10, 20, 30, 40, 50, 60], SIX_FREQUENCIES),
        Audiogram([40, 40, 40, 60, 70, 70], SIX_FREQUENCIES),
        id="L",
    )
    rng = np.random.default_rng(1)
    stems = {"bass": rng.standard_normal((2, 1000)), "vocals": rng.standard_normal((2, 1000))}
    processed = aid.process_stems(stems, listener)
    for channel, (ear, audiogram) in enumerate(
        [("left", listener.audiogram_left), ("right", listener.audiogram_right)]
    ):
        for stem, audio in stems.items():
            expected = np.convolve(audio[channel], aid.fir(audiogram))
            np.testing.assert_allclose(processed[ear][stem], expected, rtol=1e-12, atol=1e-12)
            assert processed[ear][stem].shape == (1220,)
    assert not np.allclose(aid.fir(listener.audiogram_left), aid.fir(listener.audiogram_right))


def test_compressor_runs_at_the_configured_rate():
    """The baseline left Compressor.fs at its default; ours follows sample_rate (quirk 12)."""
    cfg = compose_config(["apply_compressor=true", "sample_rate=22050"])
    aid = HearingAid.from_config(cfg)
    assert aid.compressor.fs == 22050
    assert aid.compressor.win_len == int(0.064 * 22050)
    signal = np.random.default_rng(2).standard_normal(3000)
    fir = aid.fir(Audiogram([30, 30, 30, 40, 50, 60], SIX_FREQUENCIES))
    reference = Compressor(
        fs=22050, threshold=0.35, attenuation=0.1, attack=50, release=1000, rms_buffer_size=0.064
    ).process(np.convolve(signal, fir))[0]
    np.testing.assert_allclose(aid.apply(fir, signal), reference)


def test_remix_clipping_anchor(tmp_path):
    """clarity test_clip_signal: uniform(-2, 2, 50) with seed 0 hard-clips 22 samples; soft clip none."""
    np.random.seed(0)  # noqa: NPY002
    signal = np.random.uniform(-2, 2, 50).reshape(2, 25)  # noqa: NPY002
    assert write_clipped_remix(tmp_path / "hard.flac", signal, 32000, 32000, soft_clip=False) == 22
    assert write_clipped_remix(tmp_path / "soft.flac", signal, 32000, 32000, soft_clip=True) == 0
    decoded, _ = sf.read(tmp_path / "hard.flac", dtype="int16")
    np.testing.assert_array_equal(decoded, np.clip(signal.T * 32768, -32768, 32767).astype(np.int16))
    decoded, _ = sf.read(tmp_path / "soft.flac", dtype="int16")
    np.testing.assert_array_equal(decoded, (np.tanh(signal.T) * 32768).clip(-32768, 32767).astype(np.int16))
