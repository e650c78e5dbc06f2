"""The MUSDB18-HQ tree: names, the musdb package reads it (train / valid / test), resumable writes."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import soundfile as sf

from data_prep.composer import compose_song
from data_prep.config import TRACK_FILES
from data_prep.layouts import (
    MANIFEST,
    all_active_spans,
    evaluation_segments,
    track_names,
    write_musdb_tree,
)
from xumx_slicq_v2.data import validation_track_names

FFMPEG_MISSING = shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None
NEEDS_FFMPEG = pytest.mark.skipif(
    FFMPEG_MISSING, reason="the musdb package reads audio through stempeg, which needs ffmpeg/ffprobe executables"
)

TRACK_NAME = re.compile(r"^[A-Z][A-Za-z ]+ - [A-Z][A-Za-z ]+$")


def test_tree_layout(musdb_tree):
    root, names = musdb_tree
    assert (root / MANIFEST).is_file()
    for split, folder in (("train", "train"), ("valid", "train"), ("test", "test")):
        for name in names[split]:
            assert sorted(p.name for p in (root / folder / name).iterdir()) == sorted(f"{f}.wav" for f in TRACK_FILES)
    assert not list(root.rglob(".*"))  # no staging or partial folders left
    assert sorted(p.name for p in root.iterdir()) == [MANIFEST, "test", "train"]


def test_track_names():
    names = track_names(seed=1, n_train=30, n_valid=14, n_test=30)
    assert names["valid"] == list(validation_track_names())
    invented = names["train"] + names["test"]
    assert len(set(invented)) == len(invented) == 60
    assert all(TRACK_NAME.match(name) for name in invented), invented
    assert not set(invented) & set(names["valid"])
    smaller = track_names(seed=1, n_train=3, n_valid=0, n_test=2)  # growing a dataset keeps its songs
    assert smaller["train"] == names["train"][:3] and smaller["test"] == names["test"][:2]
    assert track_names(seed=2, n_train=3, n_valid=0, n_test=0)["train"] != smaller["train"]
    with pytest.raises(ValueError, match="at most 14"):
        track_names(seed=1, n_train=0, n_valid=15, n_test=0)


@NEEDS_FFMPEG
def test_musdb_package_lists_and_loads_the_tree(musdb_tree):
    import musdb

    root, names = musdb_tree
    valid = musdb.DB(root=str(root), is_wav=True, subsets="train", split="valid")
    train = musdb.DB(root=str(root), is_wav=True, subsets="train", split="train")
    test = musdb.DB(root=str(root), is_wav=True, subsets="test")
    assert sorted(t.name for t in valid) == sorted(names["valid"])
    assert sorted(t.name for t in train) == sorted(names["train"])
    assert sorted(t.name for t in test) == sorted(names["test"])
    assert set(musdb.DB(root=str(root), is_wav=True).setup["validation_tracks"]) >= set(names["valid"])
    for track in [*valid, *test]:
        assert track.rate == 44100
        mixture = track.audio
        assert mixture.shape == (2 * 44100, 2)
        folder = root / ("test" if track.subset == "test" else "train") / track.name
        reference, _ = sf.read(folder / "vocals.wav", dtype="float32")
        np.testing.assert_allclose(track.targets["vocals"].audio, reference, atol=1e-6)
        np.testing.assert_allclose(track.targets["linear_mixture"].audio, mixture, atol=1e-6)


def test_rerun_resumes_and_keeps_finished_songs(musdb_tree, tmp_path):
    root = tmp_path / "tree"
    names = write_musdb_tree(root, 2, 0, 1, 1.0, seed=9, progress=False)
    first, second = (root / "train" / name for name in names["train"])
    kept = (first / "mixture.wav").stat().st_mtime_ns
    original = (second / "drums.wav").read_bytes()
    shutil.rmtree(second)  # as if the run had stopped before this song
    write_musdb_tree(root, 2, 0, 1, 1.0, seed=9, progress=False)
    assert (first / "mixture.wav").stat().st_mtime_ns == kept
    assert (second / "drums.wav").read_bytes() == original


def test_refuses_to_mix_settings_or_foreign_folders(tmp_path):
    root = tmp_path / "tree"
    write_musdb_tree(root, 1, 0, 0, 1.0, seed=9, progress=False)
    with pytest.raises(ValueError, match="generated with"):
        write_musdb_tree(root, 1, 0, 0, 2.0, seed=9, progress=False)
    foreign = tmp_path / "foreign"
    (foreign / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match="did not write"):
        write_musdb_tree(foreign, 1, 0, 0, 1.0, seed=9, progress=False)


def test_evaluation_segments_cover_all_stems_and_fit_the_song():
    rng = np.random.default_rng(0)
    long = compose_song(4, 45.0)
    segments = evaluation_segments(long, rng)
    objective, subjective = segments["objective_evaluation"], segments["subjective_evaluation"]
    assert objective["end"] - objective["start"] == pytest.approx(30.0)
    assert subjective["end"] - subjective["start"] == pytest.approx(15.0)
    for window in (objective, subjective):
        assert 0.0 <= window["start"] < window["end"] <= 45.0
    # no other start on the 0.5 s grid covers more time with all four stems playing
    spans = all_active_spans(long)

    def covered(start):
        return sum(max(0.0, min(b, start + 30.0) - max(a, start)) for a, b in spans)

    assert covered(objective["start"]) >= max(covered(s) for s in np.arange(0.0, 15.01, 0.5)) - 1e-9
    short = evaluation_segments(compose_song(4, 20.0), rng)
    assert short["objective_evaluation"] == {"start": 0.0, "end": 20.0}
    assert short["subjective_evaluation"]["end"] - short["subjective_evaluation"]["start"] == pytest.approx(15.0)
