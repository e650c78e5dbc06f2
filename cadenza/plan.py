"""What a run works on: the song-listener pairs of its batch, the listeners, the output layout."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from cadenza.config import check_config, prepare_data
from cadenza.data import Song, load_listeners, load_songs, song_listener_pairs
from cadenza.layout import ExpLayout
from cadenza.separators import describe_separator

if TYPE_CHECKING:
    from clarity.utils.audiogram import Listener

log = logging.getLogger(__name__)


@dataclass
class RunPlan:
    """The pairs ``(song, listener id)`` selected by ``evaluate.*``, in song-major order."""

    layout: ExpLayout
    songs: list[Song]
    listeners: dict[str, Listener]
    pairs: list[tuple[Song, str]]

    @classmethod
    def from_config(cls, cfg: DictConfig, evaluation: bool = False, batched: bool = True) -> RunPlan:
        """The plan of ``cfg``; ``evaluation`` selects the submission layout; ``batched=False`` takes every batch."""
        check_config(cfg)
        prepare_data(cfg)
        songs = load_songs(cfg.path.music_file, cfg.evaluate.songs)
        listeners = load_listeners(cfg.path.listeners_file, cfg.evaluate.listeners)
        batch, batch_size = (int(cfg.evaluate.batch), int(cfg.evaluate.batch_size)) if batched else (0, 1)
        pairs = song_listener_pairs(songs, list(listeners), batch, batch_size, bool(cfg.evaluate.small_test))
        return cls(ExpLayout(Path(cfg.path.exp_folder), evaluation), songs, listeners, pairs)

    def describe(self, cfg: DictConfig, command: str) -> None:
        """Log which data, separator and outputs the run uses."""
        log.info("%s: data %s", command, Path(cfg.path.root).resolve())
        log.info(
            "  songs %s (%d), listeners %s (%d)",
            cfg.path.music_file,
            len(self.songs),
            cfg.path.listeners_file,
            len(self.listeners),
        )
        log.info(
            "  %d song-listener pair(s) in batch %d of %d%s",
            len(self.pairs),
            int(cfg.evaluate.batch) + 1,
            int(cfg.evaluate.batch_size),
            " (small_test)" if cfg.evaluate.small_test else "",
        )
        log.info("  separator %s", describe_separator(cfg.separator))
        log.info("  outputs %s", self.layout.exp_folder)
