"""Pair selection, dataset reading conventions and the stem/remix file format."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from clarity.utils.flac_encoder import read_flac_signal

from cadenza.data import DataError, Song, read_music_wav, song_listener_pairs
from cadenza.flac_io import EnhancedFileError, read_enhanced, write_scaled_stem


def test_pairs_song_major_small_test_and_batches():
    """clarity test_make_song_listener_list, plus the strided batches partitioning the pairs."""
    songs = [Song(f"song{i}", "valid") for i in (1, 2, 3)]
    listeners = ["listener1", "listener2", "listener3"]
    pairs = [(song.name, listener) for song, listener in song_listener_pairs(songs, listeners)]
    assert pairs == [(s, lid) for s in ("song1", "song2", "song3") for lid in listeners]
    small = song_listener_pairs(songs, listeners, small_test=True)
    assert [(song.name, listener) for song, listener in small] == [("song1", "listener1")]
    batches = [song_listener_pairs(songs, listeners, batch, 4) for batch in range(4)]
    assert [len(b) for b in batches] == [3, 2, 2, 2]
    assert sorted((s.name, lid) for b in batches for s, lid in b) == sorted(pairs)
    assert batches[1][0][0].name == "song1" and batches[1][1][0].name == "song2"  # pairs[1::4]


def test_validation_songs_live_in_train(tmp_path):
    assert Song("a", "valid").folder(tmp_path) == tmp_path / "train" / "a"
    assert Song("a", "test").folder(tmp_path) == tmp_path / "test" / "a"


def test_music_wav_scaling_conventions(tmp_path):
    samples = np.array([[-32768, -1, 0, 1, 32767], [100, 200, 300, 400, 500]], dtype=np.int16)
    sf.write(tmp_path / "pcm.wav", samples.T, 44100, subtype="PCM_16")
    np.testing.assert_array_equal(read_music_wav(tmp_path / "pcm.wav", 44100), samples / np.float32(32768))
    # floating-point WAVs hold 16-bit-scaled values in the recipe's data (divided by 32768 like scipy's reader)
    sf.write(tmp_path / "float.wav", samples.T.astype(np.float32), 44100, subtype="FLOAT")
    np.testing.assert_allclose(read_music_wav(tmp_path / "float.wav", 44100), samples / 32768, rtol=1e-7)
    with pytest.raises(DataError, match=r"float\.wav: sample rate 44100 Hz, expected 48000 Hz"):
        read_music_wav(tmp_path / "float.wav", 48000)
    with pytest.raises(DataError, match=r"nope\.wav: no such file"):
        read_music_wav(tmp_path / "nope.wav", 44100)


def test_scaled_stem_round_trip(tmp_path):
    signal = 2.5 * np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)  # above full scale: the scale absorbs it
    path = tmp_path / "stem.flac"
    scale = write_scaled_stem(path, signal, 44100, 24000)
    assert float(path.with_suffix(".txt").read_text()) == scale
    assert scale == pytest.approx(2.5, rel=1e-3)
    decoded, rate = read_flac_signal(path)  # pyclarity's reader applies the scale
    assert rate == 24000 and decoded.shape == (24000,)
    np.testing.assert_allclose(read_enhanced(path, 24000), decoded)
    expected = 2.5 * np.sin(2 * np.pi * 440 * np.arange(24000) / 24000)
    assert np.max(np.abs(decoded[100:-100] - expected[100:-100])) < 1e-3


def test_silent_stem_has_unit_scale(tmp_path):
    path = tmp_path / "silent.flac"
    with np.errstate(all="raise"):
        assert write_scaled_stem(path, np.zeros(4410), 44100, 24000) == 1.0
    assert path.with_suffix(".txt").read_text() == "1.0"
    assert not np.any(read_enhanced(path, 24000))


def test_read_enhanced_errors(tmp_path):
    path = tmp_path / "stem.flac"
    write_scaled_stem(path, np.ones(100) * 0.5, 24000, 24000)
    with pytest.raises(EnhancedFileError, match=r"stem\.flac: sample rate 24000 Hz, expected 32000 Hz"):
        read_enhanced(path, 32000)
    path.with_suffix(".txt").write_text("half")
    with pytest.raises(EnhancedFileError, match=r"stem\.txt: not a scale value"):
        read_enhanced(path, 24000)
    path.write_bytes(b"fLaC broken")
    with pytest.raises(EnhancedFileError, match=r"stem\.flac: cannot decode FLAC"):
        read_enhanced(path, 24000)
