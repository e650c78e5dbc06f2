"""The MUSDB18-HQ datasets: layout checks with clear errors, the reference's sampling, seeding."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from xumx_slicq_v2.data import (
    AugmentConfig,
    DatasetError,
    FullTrackDataset,
    TrainingDataset,
    augment_source,
    list_tracks,
    seed_worker,
    validation_track_names,
)
from xumx_slicq_v2.model import SOURCES


def test_splits_follow_the_musdb_validation_list(musdb_root) -> None:
    valid_names = set(validation_track_names())
    assert len(valid_names) == 14
    train = list_tracks(musdb_root, "train", "train")
    valid = list_tracks(musdb_root, "train", "valid")
    assert len(train) == 2 and len(valid) == 1
    assert not {t.name for t in train} & valid_names and {t.name for t in valid} <= valid_names
    assert len(list_tracks(musdb_root, "train")) == 3 and len(list_tracks(musdb_root, "test")) == 1
    assert all(track.frames == 3 * 44100 for track in train)


def test_missing_folders_and_files_are_named(musdb_root, tmp_path) -> None:
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / "test"))):
        list_tracks(tmp_path, "test")
    copy = tmp_path / "copy"
    shutil.copytree(musdb_root, copy)
    track = next((copy / "test").iterdir())
    (track / "drums.wav").unlink()
    with pytest.raises(DatasetError, match=r"drums\.wav: missing"):
        list_tracks(copy, "test")
    with pytest.raises(DatasetError, match="no track"):
        list_tracks(musdb_root, "test", names=["No Such Song"])


def _ramp_tree(root: Path, lengths: tuple[int, ...]) -> Path:
    """A tree whose stems reveal where an excerpt came from: left channel constant (0.2 + 0.1 * track),
    right channel a ramp 0.5 * n / 2**17 (n = sample index)."""
    for index, length in enumerate(lengths):
        folder = root / "train" / f"Ramp {index}"
        folder.mkdir(parents=True)
        audio = np.stack([np.full(length, 0.2 + 0.1 * index), 0.5 * np.arange(length) / 2**17]).T
        for stem in ("mixture", *SOURCES):
            sf.write(folder / f"{stem}.wav", audio * (len(SOURCES) if stem == "mixture" else 1) / 8, 44100,
                     subtype="FLOAT")  # fmt: skip
    return root


def test_training_items_follow_the_reference_sampling(tmp_path) -> None:
    lengths = (60000, 80000, 100000)
    tracks = list_tracks(_ramp_tree(tmp_path, lengths), "train")
    dataset = TrainingDataset(tracks, seq_dur=0.5, samples_per_track=20, seed=7)
    assert len(dataset) == 60
    seen_tracks, swaps, gains, starts = set(), 0, [], []
    for index in range(len(dataset)):
        item = dataset[index].numpy().astype(np.float64)
        assert item.shape == (1 + len(SOURCES), 2, 22050)
        # the mixture is the sum of the augmented sources
        np.testing.assert_allclose(item[0], item[1:].sum(0), atol=1e-6)
        for source in item[1:]:
            swapped = np.ptp(source[1]) == 0  # the constant channel moved to the right
            constant, ramp = (source[1], source[0]) if swapped else (source[0], source[1])
            swaps += swapped
            # gain * (0.2 + 0.1 k) / 8 and gain * 0.5 * n / 2**17 / 8: the ramp's slope gives the gain
            gain = np.polyfit(np.arange(ramp.size), ramp, 1)[0] * 8 * 2**17 / 0.5
            track = round((constant[0] * 8 / gain - 0.2) / 0.1)
            start = round(ramp[0] * 8 / gain / 0.5 * 2**17)
            np.testing.assert_allclose(ramp * 8 / gain / 0.5 * 2**17, start + np.arange(22050), atol=0.1)
            assert 0 <= start <= lengths[track] - 22050
            seen_tracks.add(track)
            gains.append(gain)
            starts.append(start / (lengths[track] - 22050))
    total = len(dataset) * len(SOURCES)
    assert seen_tracks == {0, 1, 2}  # a random track per source
    assert 0.25 <= min(gains) and max(gains) <= 1.25 and max(gains) - min(gains) > 0.8
    assert 0.35 * total < swaps < 0.65 * total
    assert min(starts) < 0.1 and max(starts) > 0.9  # uniform start positions
    # same (seed, epoch, index): same item; another epoch: other draws
    assert torch.equal(dataset[4], dataset[4])
    other = TrainingDataset(tracks, seq_dur=0.5, samples_per_track=20, seed=7)
    other.set_epoch(1)
    assert not torch.equal(other[4], dataset[4])


def test_augmentation_ranges() -> None:
    rng = np.random.default_rng(0)
    audio = np.stack([np.ones(10, np.float32), 2 * np.ones(10, np.float32)])
    swaps, gains = 0, []
    for _ in range(400):
        out = augment_source(audio, rng, AugmentConfig())
        swapped = out[0, 0] > out[1, 0]
        swaps += swapped
        gains.append(out[1 if swapped else 0, 0])
    assert 0.25 <= min(gains) and max(gains) <= 1.25 and max(gains) - min(gains) > 0.8
    assert 150 < swaps < 250


def test_short_tracks_are_zero_padded(musdb_root) -> None:
    dataset = TrainingDataset(list_tracks(musdb_root, "train", "train"), seq_dur=4.0, samples_per_track=1)
    item = dataset[0]
    assert item.shape[-1] == 4 * 44100
    assert not torch.any(item[..., 3 * 44100 :])


def test_full_tracks_are_unaugmented(musdb_root) -> None:
    track = list_tracks(musdb_root, "train", "valid")[0]
    item = FullTrackDataset([track])[0]
    assert item.shape == (5, 2, track.frames)
    # mixture.wav is the exact 16-bit sum of the stems
    torch.testing.assert_close(item[0], item[1:].sum(0), atol=1e-6, rtol=0)
    assert FullTrackDataset([track], mixture_only=True)[0].shape == (1, 2, track.frames)


class _GlobalDraws(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> int:
        return int(np.random.randint(1 << 30))  # noqa: NPY002 - what seed_worker seeds


def test_workers_get_distinct_seeds() -> None:
    loader = DataLoader(
        _GlobalDraws(), batch_size=1, num_workers=2, worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    first = [int(x) for x in loader]
    # worker 0 serves items 0 and 2, worker 1 items 1 and 3: their first draws differ
    assert first[0] != first[1]
    # the loader's generator makes the worker seeds reproducible
    again = DataLoader(
        _GlobalDraws(), batch_size=1, num_workers=2, worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert [int(x) for x in again] == first
