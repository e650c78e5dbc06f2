"""MUSDB18-HQ (WAV) datasets for training: random-mix excerpts for training, full tracks for validation.

The tree is read directly with soundfile (no ``musdb`` package, no ffmpeg)::

    ROOT/{train,test}/<Track Name>/{mixture,bass,vocals,other,drums}.wav    (stereo, 44.1 kHz)

The musdb "valid" split (14 tracks inside ``train/``) is defined by the ``validation_tracks`` list of the
installed ``musdb`` package's ``configs/mus.yaml``, read as a file (the package is not imported).

Items are batch-first ``(5, channels, samples)`` tensors stacked as ``[mixture, *SOURCES]``, i.e.
``[mixture, bass, vocals, other, drums]`` (the model's target order): index 0 is the network input, 1: are the
targets.
"""

from __future__ import annotations

import importlib.util
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset

from ._optional import MissingDependency
from .config import NB_CHANNELS, SAMPLE_RATE, SOURCES

#: File (without ``.wav``) of the mixture in a track folder.
MIXTURE = "mixture"

#: ``subset`` folders of the tree and the ``split`` values of the training subset.
SUBSETS = ("train", "test")
SPLITS = ("train", "valid")


class DatasetError(RuntimeError):
    """The dataset tree is missing a folder or file, or a file has an unusable format (the message names it)."""


@dataclass(frozen=True)
class AugmentConfig:
    """Per-source augmentations of a training excerpt (the reference's values).

    Attributes:
        gain_range: ``(low, high)`` of the uniform linear gain applied to each source.
        channel_swap_probability: probability of swapping the left and right channels of each source.
    """

    gain_range: tuple[float, float] = (0.25, 1.25)
    channel_swap_probability: float = 0.5


@dataclass(frozen=True)
class Track:
    """One track folder: its name, folder and length in samples (all files checked to agree)."""

    name: str
    folder: Path
    frames: int

    def path(self, stem: str) -> Path:
        """``<folder>/<stem>.wav`` for ``stem`` in ``mixture`` or `SOURCES`."""
        return self.folder / f"{stem}.wav"

    def read(self, stem: str, start: int = 0, frames: int = -1) -> np.ndarray:
        """Samples ``[start, start + frames)`` of one file as float32 ``(channels, frames)``; only that part
        is read from disk (``frames=-1``: to the end)."""
        path = self.path(stem)
        try:
            audio, _ = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
        except Exception as err:  # soundfile raises several exception types
            raise DatasetError(f"{path}: cannot read ({err})") from err
        return np.ascontiguousarray(audio.T)

    def read_all(self, start: int = 0, frames: int = -1) -> np.ndarray:
        """``[mixture, *SOURCES]`` as float32 ``(5, channels, frames)``."""
        return np.stack([self.read(stem, start, frames) for stem in (MIXTURE, *SOURCES)])


def validation_track_names() -> tuple[str, ...]:
    """Names of the musdb "valid" split, from the installed ``musdb`` package's ``configs/mus.yaml``.

    Raises:
        MissingDependency: musdb is not installed (the message names the extra).
    """
    spec = importlib.util.find_spec("musdb")
    if spec is None or not spec.submodule_search_locations:
        # only its configs/mus.yaml is read (the package is not imported)
        raise MissingDependency("musdb", extra="musdb", purpose="the train/valid split (the musdb validation list)")
    import yaml  # a dependency of musdb

    setup_path = Path(next(iter(spec.submodule_search_locations))) / "configs" / "mus.yaml"
    try:
        with open(setup_path, encoding="utf-8") as file:
            names = (yaml.safe_load(file) or {}).get("validation_tracks")
    except (OSError, yaml.YAMLError) as err:
        raise DatasetError(f"{setup_path}: cannot read the musdb validation list ({err})") from err
    if not names:
        raise DatasetError(f"{setup_path}: no 'validation_tracks' list")
    return tuple(str(name) for name in names)


def _check_track(folder: Path) -> Track:
    frames = None
    for stem in (MIXTURE, *SOURCES):
        path = folder / f"{stem}.wav"
        if not path.is_file():
            raise DatasetError(
                f"{path}: missing (a MUSDB18-HQ track folder holds {MIXTURE}.wav and one WAV per source)"
            )
        try:
            info = sf.info(str(path))
        except Exception as err:
            raise DatasetError(f"{path}: cannot read ({err})") from err
        if info.samplerate != SAMPLE_RATE or info.channels != NB_CHANNELS:
            raise DatasetError(
                f"{path}: expected {NB_CHANNELS} channels at {SAMPLE_RATE} Hz, "
                f"got {info.channels} at {info.samplerate} Hz"
            )
        if frames is not None and info.frames != frames:
            raise DatasetError(f"{path}: {info.frames} samples, but {MIXTURE}.wav has {frames}")
        frames = info.frames
    if not frames:
        raise DatasetError(f"{folder}: the track is empty")
    return Track(folder.name, folder, frames)


def list_tracks(
    root: str | os.PathLike, subset: str = "train", split: str | None = None, names: Sequence[str] | None = None
) -> list[Track]:
    """Tracks of a MUSDB18-HQ tree, sorted by name.

    Args:
        root: the folder holding ``train/`` and ``test/``.
        subset: ``train`` or ``test``.
        split: for ``subset="train"``: ``train`` (without the musdb "valid" tracks), ``valid`` (only those),
            or ``None`` (all).
        names: keep only these track names (each must exist).
    """
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
    if split is not None and (subset != "train" or split not in SPLITS):
        raise ValueError(f"split must be None or one of {SPLITS} (train subset only), got {split!r}")
    folder = Path(root) / subset
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such folder (expected a MUSDB18-HQ tree ROOT/{{train,test}}/<track>/)")
    folders = sorted(
        (path for path in folder.iterdir() if path.is_dir() and not path.name.startswith(".")),
        key=lambda p: p.name,
    )
    if split is not None:
        valid = set(validation_track_names())
        folders = [path for path in folders if (path.name in valid) == (split == "valid")]
    if names is not None:
        available = {path.name for path in folders}
        unknown = [name for name in names if name not in available]
        if unknown:
            raise DatasetError(f"{folder}: no track(s) {', '.join(map(repr, unknown))} in this subset/split")
        folders = [path for path in folders if path.name in set(names)]
    if not folders:
        where = f"{folder} ({split} split)" if split else str(folder)
        raise DatasetError(f"{where}: no track folders")
    return [_check_track(path) for path in folders]


def augment_source(audio: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Scale ``audio`` ``(channels, samples)`` by a random gain, then swap its channels with some probability."""
    audio = audio * np.float32(rng.uniform(*config.gain_range))
    if audio.shape[0] == 2 and rng.random() < config.channel_swap_probability:
        audio = audio[::-1]
    return audio


class TrainingDataset(Dataset):
    """Random-mix training excerpts (the reference's sampling).

    For each source independently: a random track, a random excerpt of ``seq_dur`` seconds (uniform start;
    tracks shorter than that are zero-padded at the end), a random gain and a random channel swap. The
    mixture is the sum of the augmented sources. An epoch has ``len(tracks) * samples_per_track`` items.

    Randomness: item ``index`` of epoch ``epoch`` is drawn from its own generator seeded with
    ``(seed, epoch, index)``, so items do not depend on the number of workers or processes and a resumed run
    sees the data it would have seen. Call `set_epoch` before iterating each epoch (with non-persistent
    DataLoader workers, which copy the dataset when an epoch starts).
    """

    def __init__(
        self,
        tracks: Sequence[Track],
        seq_dur: float = 2.0,
        samples_per_track: int = 64,
        augment: AugmentConfig | None = None,
        seed: int = 42,
    ) -> None:
        if not tracks:
            raise ValueError("TrainingDataset needs at least one track")
        if seq_dur <= 0 or samples_per_track < 1:
            raise ValueError(f"need seq_dur > 0 and samples_per_track >= 1, got {seq_dur}, {samples_per_track}")
        self.tracks = list(tracks)
        self.samples = round(seq_dur * SAMPLE_RATE)
        self.samples_per_track = samples_per_track
        self.augment = augment or AugmentConfig()
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the random draws of ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.tracks) * self.samples_per_track

    def __getitem__(self, index: int) -> torch.Tensor:
        """``(5, 2, samples)`` float32: ``[mixture, *SOURCES]``."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        sources = []
        for stem in SOURCES:
            track = self.tracks[rng.integers(len(self.tracks))]
            frames = min(track.frames, self.samples)
            start = int(rng.integers(track.frames - frames + 1))
            audio = augment_source(track.read(stem, start, frames), rng, self.augment)
            if frames < self.samples:
                audio = np.pad(audio, ((0, 0), (0, self.samples - frames)))
            sources.append(audio)
        stacked = np.stack(sources)
        return torch.from_numpy(np.concatenate([stacked.sum(0, keepdims=True), stacked]))


class FullTrackDataset(Dataset):
    """Whole tracks, no augmentation (validation, input statistics): item ``(5, 2, track samples)`` float32
    ``[mixture, *SOURCES]`` with the mixture read from ``mixture.wav``; ``mixture_only`` reads just
    ``(1, 2, samples)``."""

    def __init__(self, tracks: Sequence[Track], mixture_only: bool = False) -> None:
        if not tracks:
            raise ValueError("FullTrackDataset needs at least one track")
        self.tracks = list(tracks)
        self.mixture_only = mixture_only

    def __len__(self) -> int:
        return len(self.tracks)

    def __getitem__(self, index: int) -> torch.Tensor:
        track = self.tracks[index]
        audio = track.read(MIXTURE)[None] if self.mixture_only else track.read_all()
        return torch.from_numpy(audio)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed Python's, numpy's and torch's global generators of each worker
    distinctly (from the per-worker seed that torch derives from the loader's generator), so that any code
    drawing from them does not repeat across workers."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - the legacy global generator is what third-party code uses


def dataset_summary(tracks: Sequence[Track]) -> dict[str, float]:
    """``{"tracks": n, "seconds": total}`` of a track list."""
    return {"tracks": len(tracks), "seconds": sum(track.frames for track in tracks) / SAMPLE_RATE}


__all__ = [
    "MIXTURE",
    "SAMPLE_RATE",
    "AugmentConfig",
    "DatasetError",
    "FullTrackDataset",
    "Track",
    "TrainingDataset",
    "augment_source",
    "dataset_summary",
    "list_tracks",
    "seed_worker",
    "validation_track_names",
]
