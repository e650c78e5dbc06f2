"""Bad data and conflicting outputs give errors naming the file or key, and leave existing outputs intact."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import soundfile as sf

from cadenza.data import DataError
from cadenza.demix import StemCacheError, run_demix
from cadenza.enhance import EnhanceError, run_enhance
from cadenza.evaluate import run_evaluate
from cadenza.flac_io import EnhancedFileError
from cadenza.separators import SeparatorError


def _snapshot(exp):
    return {path: path.read_bytes() for path in sorted(exp.rglob("*")) if path.is_file()}


def _assert_intact(exp, before):
    """Every file that existed is unchanged, and no temporary file was left behind."""
    after = _snapshot(exp)
    assert {path: after.get(path) for path in before} == before
    assert not [path for path in after if ".part" in path.name]


@pytest.fixture
def first_song_done(own_cad1_root, cad1, config_for, fake_separator, tmp_path):
    """Outputs of the first song only (both listeners), in a private tree; returns (root, exp, snapshot)."""
    exp = tmp_path / "exp"
    songs = f"evaluate.songs=[{json.dumps(cad1.valid_songs[0])}]"
    run_enhance(config_for(own_cad1_root, exp, "separator.model=fake", songs))
    return own_cad1_root, exp, _snapshot(exp)


def _second_song_dir(root, cad1):
    return root / "audio" / "musdb18hq" / "train" / cad1.valid_songs[1]


def test_listener_missing_from_listeners_file(cad1_root, config_for, tmp_path):
    cfg = config_for(cad1_root, tmp_path / "exp", "separator.model=fake", "evaluate.listeners=[L5001,L9999]")
    with pytest.raises(DataError, match=r"listeners\.valid\.json: no listener 'L9999'"):
        run_enhance(cfg)
    with pytest.raises(DataError, match="L9999"):
        run_evaluate(cfg)
    assert not (tmp_path / "exp").exists()


def test_malformed_listener_entry(own_cad1_root, config_for, tmp_path):
    listeners_file = own_cad1_root / "metadata" / "listeners.valid.json"
    entries = json.loads(listeners_file.read_text())
    del entries["L5002"]["audiogram_levels_r"]
    listeners_file.write_text(json.dumps(entries))
    with pytest.raises(DataError, match=r"listeners\.valid\.json: listener 'L5002' is malformed.*audiogram_levels_r"):
        run_enhance(config_for(own_cad1_root, tmp_path / "exp", "separator.model=fake"))


def test_song_missing_from_music_file(cad1_root, config_for, tmp_path):
    cfg = config_for(cad1_root, tmp_path / "exp", "evaluate.songs=[Nope]")
    with pytest.raises(DataError, match=r"musdb18\.valid\.json: no song named 'Nope'"):
        run_enhance(cfg)


def test_song_folder_missing(first_song_done, cad1, config_for):
    root, exp, before = first_song_done
    folder = _second_song_dir(root, cad1)
    shutil.rmtree(folder)
    cfg = config_for(root, exp, "separator.model=fake")
    with pytest.raises(DataError, match=re.escape(f"{folder}: song folder of {cad1.valid_songs[1]!r} not found")):
        run_enhance(cfg)
    _assert_intact(exp, before)
    with pytest.raises(DataError, match=re.escape(str(folder))):
        run_evaluate(config_for(root, exp, "separator.model=fake", f"evaluate.songs=[{json.dumps(folder.name)}]"))
    _assert_intact(exp, before)


def test_mixture_at_48k(first_song_done, cad1, config_for):
    root, exp, before = first_song_done
    mixture = _second_song_dir(root, cad1) / "mixture.wav"
    cad1.write_pcm16(mixture, np.zeros((2, 4800)), sample_rate=48000)
    with pytest.raises(DataError, match=re.escape(f"{mixture}: sample rate 48000 Hz, expected 44100 Hz")):
        run_enhance(config_for(root, exp, "separator.model=fake"))
    _assert_intact(exp, before)


def test_corrupt_mixture(first_song_done, cad1, config_for):
    root, exp, before = first_song_done
    mixture = _second_song_dir(root, cad1) / "mixture.wav"
    mixture.write_bytes(b"RIFF not really a wave file")
    with pytest.raises(DataError, match=re.escape(f"{mixture}: cannot read audio file")):
        run_demix(config_for(root, exp, "separator.model=fake"))
    _assert_intact(exp, before)


def test_corrupt_stem_oracle_and_evaluate(own_cad1_root, cad1, config_for, tmp_path):
    root, exp = own_cad1_root, tmp_path / "exp"
    song, listener = json.dumps(cad1.valid_songs[0]), cad1.valid_listeners[0]
    cfg = config_for(
        root, exp, "separator.model=oracle", f"evaluate.songs=[{song}]", f"evaluate.listeners=[{listener}]"
    )
    run_enhance(cfg)
    before = _snapshot(exp)
    stem = root / "audio" / "musdb18hq" / "train" / cad1.valid_songs[0] / "bass.wav"
    stem.write_bytes(stem.read_bytes()[:30])  # truncated header
    with pytest.raises(DataError, match=re.escape(f"{stem}: cannot read audio file")):
        run_evaluate(cfg)  # drums is scored first, then bass fails
    _assert_intact(exp, before)
    shutil.rmtree(exp / "separated")  # the oracle must re-read the stems: now they are corrupt
    before = _snapshot(exp)
    with pytest.raises(DataError, match=re.escape(str(stem))):
        run_enhance(config_for(root, exp, "separator.model=oracle", f"evaluate.songs=[{song}]"))
    assert not (exp / "separated" / cad1.valid_songs[0] / "separation.json").exists()
    _assert_intact(exp, before)


def test_corrupt_cached_stem(first_song_done, cad1, config_for):
    root, exp, _ = first_song_done
    cached = exp / "separated" / cad1.valid_songs[0] / "drums.wav"
    cached.write_bytes(b"garbage")
    for marker in (exp / "progress").rglob("*.json"):
        marker.unlink()  # force the pairs to be redone, so the cache is read
    before = _snapshot(exp)
    with pytest.raises(StemCacheError, match=re.escape(str(cached))):
        run_enhance(config_for(root, exp, "separator.model=fake"))
    _assert_intact(exp, before)


def test_cache_from_another_separator_is_refused(first_song_done, cad1, config_for):
    root, exp, before = first_song_done
    record = exp / "separated" / cad1.valid_songs[0] / "separation.json"
    with pytest.raises(StemCacheError, match=re.escape(f"{record}: stems were separated by")):
        run_demix(config_for(root, exp, "separator.model=oracle"))
    _assert_intact(exp, before)


def test_outputs_of_other_settings_are_refused(first_song_done, cad1, config_for):
    root, exp, before = first_song_done
    marker = exp / "progress" / "enhanced_signals" / cad1.valid_listeners[0] / f"{cad1.valid_songs[0]}.json"
    with pytest.raises(EnhanceError, match=re.escape(f"{marker}: ")):
        run_enhance(config_for(root, exp, "separator.model=fake", "soft_clip=false"))
    _assert_intact(exp, before)


def test_missing_enhanced_file(first_song_done, cad1, config_for):
    root, exp, _ = first_song_done
    flac = next((exp / "enhanced_signals").rglob("*_left_drums.flac"))
    flac.unlink()
    with pytest.raises(EnhancedFileError, match=re.escape(f"{flac}: no such file")):
        run_evaluate(config_for(root, exp, "separator.model=fake"))
    assert not (exp / "scores.csv").exists()


def test_separator_with_wrong_stems(own_cad1_root, cad1, config_for, fake_separator, monkeypatch, tmp_path):
    monkeypatch.setattr(fake_separator, "sources", ("bass", "vocals", "other", "piano"))
    with pytest.raises(SeparatorError, match=r"returned stems \['bass', 'vocals', 'other', 'piano'\]"):
        run_enhance(config_for(own_cad1_root, tmp_path / "exp", "separator.model=fake"))
    assert not list((tmp_path / "exp" / "separated").rglob("*.wav"))


def test_stems_of_a_48k_separator_are_resampled(cad1_root, cad1, config_for, fake_separator, monkeypatch, tmp_path):
    """A model at another rate gets the mixture resampled to its rate and its stems resampled back."""
    monkeypatch.setattr(fake_separator, "sample_rate", 48000)
    exp = tmp_path / "exp"
    run_demix(config_for(cad1_root, exp, "separator.model=fake", f"evaluate.songs=[{json.dumps(cad1.valid_songs[0])}]"))
    assert fake_separator.calls == [round(cad1.samples * 48000 / 44100)]
    vocals, rate = sf.read(exp / "separated" / cad1.valid_songs[0] / "vocals.wav")
    assert rate == 44100 and vocals.shape == (cad1.samples, 2)



def test_nan_mixture_is_named_and_the_other_songs_finish(own_cad1_root, cad1, config_for, fake_separator, tmp_path):
    bad_song, good_song = cad1.valid_songs  # the bad song comes first
    mixture = own_cad1_root / "audio" / "musdb18hq" / "train" / bad_song / "mixture.wav"
    audio = sf.read(str(mixture), dtype="float32", always_2d=True)[0].T * 32768  # float WAVs are 16-bit scaled
    audio[0, 4410] = np.nan
    sf.write(str(mixture), audio.T, cad1.sample_rate, subtype="FLOAT")
    exp = tmp_path / "exp"
    message = f"{mixture}: non-finite audio: the first is nan at sample 4410 (0.100 s), channel 1 of 2"
    with pytest.raises(DataError, match=re.escape(message)):
        run_enhance(config_for(own_cad1_root, exp, "separator.model=fake"))
    assert not (exp / "separated" / bad_song).exists()
    for listener in cad1.valid_listeners:
        assert not (exp / "enhanced_signals" / listener / bad_song).exists()
        assert (exp / "progress" / "enhanced_signals" / listener / f"{good_song}.json").is_file()
    assert len(list((exp / "enhanced_signals").rglob("*.flac"))) == 2 * 9
    assert fake_separator.calls == [cad1.samples]  # only the good song was separated
