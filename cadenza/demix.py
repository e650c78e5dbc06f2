"""Separate each song once and cache its four stems on disk, for every listener, batch and re-run.

``python -m cadenza.demix`` runs only this step: over the songs of ``path.music_file`` (default) or over every
song folder of a CAD1 / MUSDB18-HQ tree (``demix.songs=all``), sharded by ``evaluate.batch/batch_size`` over
songs. The cache is ``<exp_folder>/separated/<song>/<stem>.wav`` (float WAV at ``sample_rate``) plus
``separation.json`` (model, weights, stem order, length), written last; a cache made by another model or
weights is refused rather than reused. Parallel jobs lock a song while separating it.
"""

from __future__ import annotations

if __name__ == "__main__":  # a lone --help is answered before hydra and numpy load (under 0.5 s)
    from cadenza.quick_help import exit_if_plain_help

    exit_if_plain_help("config")

import json
import logging
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from cadenza.config import HYDRA_MAIN, check_config, prepare_data, recipe_command
from cadenza.data import (
    INSTRUMENTS,
    DataError,
    Song,
    find_song_folders,
    load_listeners,
    load_songs,
    read_song_audio,
    song_listener_pairs,
)
from cadenza.layout import ExpLayout
from cadenza.separators import SeparatorError, StemSeparator, load_separator, separator_identity
from xumx_slicq_v2.audio import (
    AudioError,
    audio_info,
    load_audio,
    remove_stale_temporaries,
    write_audio,
    write_text_atomic,
)
from xumx_slicq_v2.locking import exclusive_lock

log = logging.getLogger(__name__)

#: Name of the record written last in a song's cache folder.
RECORD_NAME = "separation.json"


class StemCacheError(RuntimeError):
    """A cached separation cannot be used (the message names the file)."""


class StemCache:
    """The separated stems of each song, computed at most once per exp folder.

    Args:
        cfg: the recipe config (``separator``, ``path.music_dir``, ``sample_rate``).
        layout: where the cache lives.
    """

    def __init__(self, cfg: DictConfig, layout: ExpLayout):
        self.cfg = cfg
        self.layout = layout
        self.sample_rate = int(cfg.sample_rate)
        self.identity = separator_identity(cfg.separator)
        self.separated: list[str] = []  # songs separated by this object (not read from the cache)
        self._separator: StemSeparator | None = None
        self._last: tuple[str, dict[str, np.ndarray]] | None = None

    @property
    def separator(self) -> StemSeparator:
        """The separator, loaded on first need (a fully cached run never loads the model)."""
        if self._separator is None:
            log.info("Loading separator %s", self.identity)
            self._separator = load_separator(self.cfg.separator, self.cfg)
        return self._separator

    def stems(self, song: Song) -> dict[str, np.ndarray]:
        """``{stem: (channels, samples)}`` float32 of ``song`` at ``sample_rate``, separating it if not cached."""
        if self._last is not None and self._last[0] == song.name:
            return self._last[1]
        folder = self.layout.song_stems_dir(song.name)
        with exclusive_lock(self.layout.separated_dir / f".{song.name}.lock"):
            stems = self._read_cache(song, folder)
            if stems is None:
                stems = self._separate(song, folder)
        self._last = (song.name, stems)
        return stems

    def _mixture_path(self, song: Song) -> Path:
        folder = song.folder(self.cfg.path.music_dir)
        if not folder.is_dir():
            raise DataError(f"{folder}: song folder of {song.name!r} not found")
        return folder / "mixture.wav"

    def _read_cache(self, song: Song, folder: Path) -> dict[str, np.ndarray] | None:
        record_path = folder / RECORD_NAME
        if not record_path.is_file():
            return None
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            made_by = {key: record.get(key) for key in {"model", "weights", *self.identity}}
            samples = int(record["samples"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise StemCacheError(f"{record_path}: unreadable separation record ({err!r}); delete {folder}") from err
        if made_by != self.identity:
            raise StemCacheError(
                f"{record_path}: stems were separated by {made_by}, this run uses {self.identity}; "
                f"use another path.exp_folder or delete {folder}"
            )
        mixture = self._mixture_path(song)
        try:
            mixture_samples = audio_info(mixture).frames
        except AudioError as err:
            raise DataError(str(err)) from err
        if samples != mixture_samples:
            raise StemCacheError(
                f"{record_path}: cached stems have {samples} samples but {mixture} has {mixture_samples}; "
                f"delete {folder}"
            )
        paths = {stem: folder / f"{stem}.wav" for stem in INSTRUMENTS}
        if not all(path.is_file() for path in paths.values()):
            return None
        stems = {}
        for stem, path in paths.items():
            try:
                audio, rate = load_audio(path)
            except AudioError as err:
                raise StemCacheError(f"{err}; delete {folder}") from err
            if rate != self.sample_rate or audio.shape[-1] != samples:
                raise StemCacheError(
                    f"{path}: {rate} Hz, {audio.shape[-1]} samples; expected {samples} "
                    f"samples at {self.sample_rate} Hz; delete {folder}"
                )
            stems[stem] = audio
        return stems

    def _separate(self, song: Song, folder: Path) -> dict[str, np.ndarray]:
        mixture = read_song_audio(self.cfg.path.music_dir, song, "mixture", self.sample_rate)
        stems = self.separator.separate(mixture, self.sample_rate, song)
        if sorted(stems) != sorted(INSTRUMENTS):
            raise SeparatorError(
                f"{song.name}: separator {self.identity['model']} returned stems {list(stems)}, "
                f"the recipe needs {list(INSTRUMENTS)}"
            )
        for stem, audio in stems.items():
            if audio.shape != mixture.shape or not np.all(np.isfinite(audio)):
                raise SeparatorError(
                    f"{song.name}: stem {stem!r} has shape {audio.shape} (mixture {mixture.shape}) "
                    "or non-finite samples"
                )
        stems = {stem: np.asarray(audio, dtype=np.float32) for stem, audio in stems.items()}
        remove_stale_temporaries([*(folder / f"{stem}.wav" for stem in stems), folder / RECORD_NAME])
        for stem, audio in stems.items():
            write_audio(folder / f"{stem}.wav", audio, self.sample_rate, subtype="FLOAT")
        record = {
            **self.identity,
            "stem_order": list(stems),
            "sample_rate": self.sample_rate,
            "samples": int(mixture.shape[-1]),
            "mixture": str(self._mixture_path(song)),
        }
        write_text_atomic(folder / RECORD_NAME, json.dumps(record, indent=2) + "\n")
        self.separated.append(song.name)
        return stems


def demix_songs(cfg: DictConfig) -> list[Song]:
    """The songs ``python -m cadenza.demix`` separates (see the module docstring)."""
    batch, batch_size = int(cfg.evaluate.batch), int(cfg.evaluate.batch_size)
    if cfg.demix.songs == "all":
        return find_song_folders(cfg.path.music_dir)[batch::batch_size]
    songs = load_songs(cfg.path.music_file, cfg.evaluate.songs)
    listeners = load_listeners(cfg.path.listeners_file, cfg.evaluate.listeners)
    pairs = song_listener_pairs(songs, list(listeners), small_test=bool(cfg.evaluate.small_test))
    return list(dict.fromkeys(song for song, _ in pairs))[batch::batch_size]


def run_demix(cfg: DictConfig) -> StemCache:
    """Separate (or find cached) every song of :func:`demix_songs`; returns the cache (``.separated`` lists the
    songs separated now)."""
    check_config(cfg)
    prepare_data(cfg, metadata=cfg.demix.songs == "metadata")
    layout = ExpLayout(Path(cfg.path.exp_folder))
    songs = demix_songs(cfg)
    cache = StemCache(cfg, layout)
    log.info(
        "demix: %d song(s) from %s, separator %s, cache %s",
        len(songs),
        cfg.path.music_dir if cfg.demix.songs == "all" else cfg.path.music_file,
        cache.identity,
        layout.separated_dir,
    )
    for song in tqdm(songs, desc="demix", unit="song"):
        cache.stems(song)
    log.info("demix: %d separated now, %d already cached", len(cache.separated), len(songs) - len(cache.separated))
    return cache


@hydra.main(**HYDRA_MAIN)
def main(cfg: DictConfig) -> None:
    with recipe_command():
        run_demix(cfg)


if __name__ == "__main__":
    main()
