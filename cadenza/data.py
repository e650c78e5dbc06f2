"""The CAD1 task-1 dataset: song and listener metadata, song-listener pairs, and the MUSDB18-HQ WAVs.

Layout (``path.*`` keys): ``<music_dir>/<train|test>/<Track Name>/{mixture,bass,drums,other,vocals}.wav`` and
``<metadata_dir>/{musdb18.<split>.json, listeners.<split>.json, musdb18.segments.test.json}``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from xumx_slicq_v2.audio import AudioError, audio_info, check_finite

if TYPE_CHECKING:  # pyclarity loads when listeners are read, not when a command shows its --help
    from clarity.utils.audiogram import Listener

#: The four CAD1 stems, in the order the recipe evaluates them.
INSTRUMENTS = ("drums", "bass", "other", "vocals")

#: The two ears; ear ``i`` listens to channel ``i`` of a stereo signal.
EARS = ("left", "right")

#: Keep every n-th pair when ``evaluate.small_test`` is set (as the baseline).
SMALL_TEST_STRIDE = 15

#: soundfile subtypes holding floating-point samples (stored in 16-bit full scale by the recipe's convention).
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")


class DataError(RuntimeError):
    """A dataset file or entry is missing or malformed (the message names the file or key)."""


@dataclass(frozen=True)
class Song:
    """A MUSDB18-HQ track of the CAD1 metadata."""

    name: str
    split: str

    @property
    def split_dir(self) -> str:
        """``test`` for test songs; train and validation songs live in ``train/``."""
        return "test" if self.split == "test" else "train"

    def folder(self, music_dir: str | Path) -> Path:
        return Path(music_dir) / self.split_dir / self.name


def _read_json(path: str | Path) -> object:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read JSON ({err})") from err


def load_songs(music_file: str | Path, names: Sequence[str] | None = None) -> list[Song]:
    """Songs of a ``musdb18.<split>.json`` file (a list of records with ``Track Name`` and ``Split``).

    ``names`` keeps only these tracks, in the given order; a name absent from the file is an error.
    """
    records = _read_json(music_file)
    if not isinstance(records, list):
        raise DataError(f"{music_file}: expected a JSON list of song records")
    songs = []
    for index, record in enumerate(records):
        missing = [key for key in ("Track Name", "Split") if not isinstance(record, dict) or key not in record]
        if missing:
            raise DataError(f"{music_file}: record {index} has no {', '.join(repr(k) for k in missing)}")
        songs.append(Song(name=str(record["Track Name"]), split=str(record["Split"])))
    if names is None:
        return songs
    by_name = {song.name: song for song in songs}
    absent = [name for name in names if name not in by_name]
    if absent:
        raise DataError(f"{music_file}: no song named {', '.join(repr(n) for n in absent)} (evaluate.songs)")
    return [by_name[name] for name in names]


def load_listeners(listeners_file: str | Path, ids: Sequence[str] | None = None) -> dict[str, Listener]:
    """Listeners of a ``listeners.<split>.json`` file (pyclarity ``Listener``), keyed by id, in file order.

    ``ids`` keeps only these listeners, in the given order; an id absent from the file is an error.
    """
    from clarity.utils.audiogram import Listener

    entries = _read_json(listeners_file)
    if not isinstance(entries, dict):
        raise DataError(f"{listeners_file}: expected a JSON object keyed by listener id")
    wanted = list(entries) if ids is None else list(ids)
    absent = [listener_id for listener_id in wanted if listener_id not in entries]
    if absent:
        raise DataError(f"{listeners_file}: no listener {', '.join(repr(i) for i in absent)}")
    listeners = {}
    for listener_id in wanted:
        entry = entries[listener_id]
        try:
            listener = Listener.from_dict({"name": listener_id, **entry})
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"{listeners_file}: listener {listener_id!r} is malformed ({err!r})") from err
        listeners[listener_id] = listener
    return listeners


def song_listener_pairs(
    songs: Sequence[Song],
    listener_ids: Sequence[str],
    batch: int = 0,
    batch_size: int = 1,
    small_test: bool = False,
) -> list[tuple[Song, str]]:
    """Song-major product of songs and listeners; every 15th if ``small_test``; then ``[batch::batch_size]``."""
    pairs = list(itertools.product(songs, listener_ids))
    if small_test:
        pairs = pairs[::SMALL_TEST_STRIDE]
    return pairs[batch::batch_size]


def find_song_folders(music_dir: str | Path) -> list[Song]:
    """Every song folder with a ``mixture.wav`` under ``<music_dir>/{train,test}`` (a whole MUSDB18-HQ tree)."""
    songs = []
    for split in ("train", "test"):
        for mixture in sorted((Path(music_dir) / split).glob("*/mixture.wav")):
            songs.append(Song(name=mixture.parent.name, split=split))
    if not songs:
        raise DataError(f"{music_dir}: no <train|test>/<song>/mixture.wav found")
    return songs


def load_segments(segments_file: str | Path) -> dict[str, dict[str, tuple[float, float]]]:
    """``musdb18.segments.test.json``: per song, ``objective_evaluation`` and ``subjective_evaluation`` (s)."""
    entries = _read_json(segments_file)
    if not isinstance(entries, dict):
        raise DataError(f"{segments_file}: expected a JSON object keyed by track name")
    segments = {}
    for song, entry in entries.items():
        try:
            segments[song] = {
                kind: (float(entry[kind]["start"]), float(entry[kind]["end"]))
                for kind in ("objective_evaluation", "subjective_evaluation")
            }
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"{segments_file}: segments of {song!r} are malformed ({err!r})") from err
    return segments


def read_music_wav(path: str | Path, sample_rate: int) -> np.ndarray:
    """A MUSDB18-HQ WAV as float32 ``(channels, samples)`` in 16-bit full scale, checked to be at ``sample_rate``.

    Integer PCM reads as ``int / 32768`` (for 16-bit files: exactly the baseline's scipy read). Floating-point
    WAVs are divided by 32768 as the baseline does (its test data store 16-bit-scaled floats).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        info = audio_info(path)
    except AudioError as err:
        raise DataError(str(err)) from err
    if info.samplerate != sample_rate:
        raise DataError(f"{path}: sample rate {info.samplerate} Hz, expected {sample_rate} Hz (sample_rate)")
    try:
        audio, _ = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises several exception types
        raise DataError(f"{path}: cannot decode audio ({err})") from err
    if info.subtype in FLOAT_SUBTYPES:
        audio = audio / np.float32(32768.0)
    audio = np.ascontiguousarray(audio.T)
    try:
        check_finite(audio, str(path), sample_rate)
    except ValueError as err:
        raise DataError(str(err)) from None
    return audio


def read_song_audio(music_dir: str | Path, song: Song, name: str, sample_rate: int) -> np.ndarray:
    """``<song folder>/<name>.wav`` (``mixture`` or a stem) as stereo ``(2, samples)``; the song folder must exist."""
    folder = song.folder(music_dir)
    if not folder.is_dir():
        raise DataError(f"{folder}: song folder of {song.name!r} not found")
    path = folder / f"{name}.wav"
    audio = read_music_wav(path, sample_rate)
    if audio.shape[0] != len(EARS):
        raise DataError(f"{path}: {audio.shape[0]} channel(s), expected stereo (one channel per ear)")
    return audio
