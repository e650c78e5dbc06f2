"""render_song / write_song: determinism, the exact 16-bit sum, the API contract, the CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from data_prep.composer import compose_song
from data_prep.config import INT16_SCALE, SAMPLE_RATE, STEMS, SYNTH_CONFIG, TRACK_FILES
from data_prep.synth import main, render_song, to_int16, write_song


def _read_int16(folder) -> dict[str, np.ndarray]:
    return {name: sf.read(folder / f"{name}.wav", dtype="int16", always_2d=True)[0].T for name in TRACK_FILES}


def test_same_seed_gives_identical_files(tmp_path):
    for folder in ("first", "second"):
        write_song(tmp_path / folder, render_song(21, 3.0))
    for name in TRACK_FILES:
        first = (tmp_path / "first" / f"{name}.wav").read_bytes()
        assert first == (tmp_path / "second" / f"{name}.wav").read_bytes(), name


def test_different_seeds_give_different_songs():
    plans = [compose_song(seed, 3.0) for seed in (21, 22)]
    described = [(plan.tempo, plan.tonic, plan.mode, plan.sections) for plan in plans]
    assert described[0] != described[1]
    first, second = render_song(21, 3.0), render_song(22, 3.0)
    for stem in STEMS:
        assert not np.array_equal(first[stem], second[stem]), stem


def test_mixture_on_disk_is_the_exact_sum_of_the_stems(tmp_path, songs):
    for seed, stems in songs.items():
        write_song(tmp_path / str(seed), stems)
        data = _read_int16(tmp_path / str(seed))
        total = np.sum([data[stem].astype(np.int32) for stem in STEMS], axis=0)
        np.testing.assert_array_equal(data["mixture"].astype(np.int32), total)
        for stem in STEMS:  # the files hold exactly the rendered stems
            np.testing.assert_array_equal(data[stem].astype(np.float32) / INT16_SCALE, stems[stem])
        info = sf.info(tmp_path / str(seed) / "mixture.wav")
        assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 2, "PCM_16")


def test_render_song_contract(songs):
    ceiling = 10 ** (SYNTH_CONFIG.peak_ceiling_db / 20)
    for stems in songs.values():
        assert list(stems) == list(STEMS)
        mixture = sum(stems.values())
        for signal in [*stems.values(), mixture]:
            assert signal.dtype == np.float32
            assert signal.shape == (2, round(6.0 * SAMPLE_RATE))
            assert np.max(np.abs(signal)) <= ceiling + 4 / INT16_SCALE  # 4 stems, each rounded by half an LSB
        for signal in stems.values():  # on the 16-bit grid
            np.testing.assert_array_equal(np.round(signal * INT16_SCALE), signal * INT16_SCALE)
        assert np.ptp(mixture[0] - mixture[1]) > 0  # stereo, not dual mono


def test_other_sample_rate():
    stems = render_song(3, 1.5, sample_rate=22050)
    assert all(signal.shape == (2, round(1.5 * 22050)) for signal in stems.values())


def test_to_int16_rejects_audio_off_the_16_bit_grid():
    stems = {stem: np.full((2, 10), 0.1, dtype=np.float32) for stem in STEMS}
    with pytest.raises(ValueError, match="not 16-bit"):
        to_int16(stems)
    loud = {stem: np.full((2, 10), 0.5, dtype=np.float32) for stem in STEMS}
    with pytest.raises(ValueError, match="exceeds 16 bits"):
        to_int16(loud)


def test_write_song_never_overwrites(tmp_path):
    (tmp_path / "song").mkdir()
    with pytest.raises(FileExistsError):
        write_song(tmp_path / "song", render_song(1, 0.5))


def test_bad_song_length():
    with pytest.raises(ValueError, match="positive"):
        render_song(1, 0.0)


def test_cli_help_explains_the_layouts():
    result = subprocess.run(
        [sys.executable, "-m", "data_prep.synth", "--help"], capture_output=True, text=True, check=True
    )
    for word in ("--out", "--songs", "--seconds", "--seed", "--layout", "--valid", "--test", "mixture.wav"):
        assert word in result.stdout


def test_cli_writes_both_layouts(tmp_path, capsys):
    main(["--out", str(tmp_path / "m"), "--songs", "1", "--test", "1", "--seconds", "1", "--seed", "4"])
    assert len(list((tmp_path / "m" / "train").iterdir())) == 1
    assert len(list((tmp_path / "m" / "test").iterdir())) == 1
    main(["--out", str(tmp_path / "c"), "--songs", "0", "--valid", "1", "--seconds", "1", "--layout", "cad1",
          "--listeners", "2"])  # fmt: skip
    assert (tmp_path / "c" / "cad1" / "task1" / "metadata" / "listeners.valid.json").is_file()
    assert "cad1" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "x"), "--songs", "-1"])
    with pytest.raises(SystemExit, match="generated with"):  # other settings into the same tree
        main(["--out", str(tmp_path / "m"), "--songs", "1", "--seconds", "2", "--seed", "4"])
