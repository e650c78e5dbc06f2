"""The CAD1 Task 1 tree: folders, metadata schemas, listeners readable by pyclarity, segments."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from data_prep.config import TRACK_FILES
from data_prep.listeners import (
    CLARITY_FREQUENCIES,
    SEVERITIES,
    four_frequency_average,
    listener_ids,
    make_listeners,
    severity_sequence,
    synthetic_audiogram,
)

METADATA_FILES = {
    "musdb18.train.json",
    "musdb18.valid.json",
    "musdb18.test.json",
    "listeners.train.json",
    "listeners.valid.json",
    "listeners.test.json",
    "musdb18.segments.test.json",
}


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_tree_and_music_metadata(cad1_tree):
    assert cad1_tree.parts[-2:] == ("cad1", "task1")
    metadata = cad1_tree / "metadata"
    assert {p.name for p in metadata.iterdir()} == METADATA_FILES
    music = cad1_tree / "audio" / "musdb18hq"
    counts = {"train": 1, "valid": 2, "test": 2}
    for split, count in counts.items():
        records = _load(metadata / f"musdb18.{split}.json")
        assert isinstance(records, list) and len(records) == count
        songs = pd.DataFrame.from_records(records)  # as the recipe reads it
        assert list(songs.columns) == ["Track Name", "Split"]
        assert set(songs["Split"]) == {split}
        for name in songs["Track Name"]:
            folder = music / ("test" if split == "test" else "train") / name  # the recipe's split_dir rule
            for file in TRACK_FILES:
                info = sf.info(folder / f"{file}.wav")
                assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "PCM_16")
                assert info.frames == 3 * 44100


def test_listener_files_load_with_pyclarity(cad1_tree):
    from clarity.utils.audiogram import Listener

    first_ids = {"train": "L0001", "valid": "L5000", "test": "L6001"}
    for split, first in first_ids.items():
        path = cad1_tree / "metadata" / f"listeners.{split}.json"
        listeners = Listener.load_listener_dict(path)
        assert len(listeners) == 5 and next(iter(listeners)) == first
        for listener_id, listener in listeners.items():
            assert listener.id == listener_id and re.fullmatch(r"L\d{4}", listener_id)
            for audiogram in (listener.audiogram_left, listener.audiogram_right):
                assert list(audiogram.frequencies) == list(CLARITY_FREQUENCIES)
                assert all(level % 5 == 0 for level in audiogram.levels)
        raw = _load(path)
        assert all(
            set(record) == {"name", "audiogram_cfs", "audiogram_levels_l", "audiogram_levels_r"}
            for record in raw.values()
        )


def test_segments_file(cad1_tree):
    segments = _load(cad1_tree / "metadata" / "musdb18.segments.test.json")
    test_songs = [record["Track Name"] for record in _load(cad1_tree / "metadata" / "musdb18.test.json")]
    assert sorted(segments) == sorted(test_songs)
    for windows in segments.values():
        assert set(windows) == {"objective_evaluation", "subjective_evaluation"}
        assert windows["objective_evaluation"] == {"start": 0.0, "end": 3.0}  # 30 s clipped to the 3 s song
        subjective = windows["subjective_evaluation"]
        assert isinstance(subjective["start"], float) and 0.0 <= subjective["start"] < subjective["end"] <= 3.0


def test_listeners_span_the_severities_with_asymmetric_ears():
    assert severity_sequence(4) == ["no_loss", "mild", "moderately_severe", "severe"]
    assert set(severity_sequence(12)) == set(SEVERITIES)
    listeners = make_listeners("valid", 10, seed=0)
    assert list(listeners) == listener_ids("valid", 10) == [f"L{5000 + i}" for i in range(10)]
    better_ear = []
    asymmetric = 0
    for record in listeners.values():
        left, right = record["audiogram_levels_l"], record["audiogram_levels_r"]
        better_ear.append(min(four_frequency_average(left), four_frequency_average(right)))
        asymmetric += max(abs(a - b) for a, b in zip(left, right)) >= 15
    assert min(better_ear) <= 15.0 and max(better_ear) >= 71.0
    assert asymmetric >= 3
    assert make_listeners("valid", 10, seed=0) == listeners and make_listeners("valid", 10, seed=1) != listeners


@pytest.mark.parametrize("severity", list(SEVERITIES))
def test_audiograms_fall_in_their_severity_band_and_slope(severity):
    (low, high), _ = SEVERITIES[severity]
    rng = np.random.default_rng(1)
    for _ in range(50):
        levels = synthetic_audiogram(rng, severity)
        assert low <= four_frequency_average(levels) <= high
        assert all(level % 5 == 0 for level in levels)
        if severity != "no_loss":
            assert levels[-1] > levels[0]  # sloping towards the high frequencies


def test_unknown_split():
    with pytest.raises(ValueError, match="unknown split"):
        listener_ids("dev", 2)
