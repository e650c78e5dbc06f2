"""Enhance: for each song-listener pair, NAL-R per stem and ear, the 8 stem FLACs and the remix.

``python -m cadenza.enhance`` (hydra; see ``config.yaml``). Each song is separated once (:mod:`cadenza.demix`
cache); per pair it writes to ``<exp_folder>/enhanced_signals/<listener>/<song>/``:
``<listener>_<song>_<left|right>_<stem>.flac`` (``stem_sample_rate``, 16-bit, peak-normalised) with ``.txt``
scale files, and ``<listener>_<song>_remix.flac`` (``remix_sample_rate``, 16-bit, soft-clipped). A completion
marker (``progress/...``) is written last; a pair whose marker and 17 files exist is skipped, so an
interrupted run resumes where it stopped and gives the same files.
"""

from __future__ import annotations

if __name__ == "__main__":  # a lone --help is answered before hydra and numpy load (under 0.5 s)
    from cadenza.quick_help import exit_if_plain_help

    exit_if_plain_help("config")

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from cadenza.config import HYDRA_MAIN, recipe_command
from cadenza.data import DataError, Song, load_segments
from cadenza.demix import StemCache
from cadenza.flac_io import write_clipped_remix, write_scaled_stem
from cadenza.hearing_aid import HearingAid, cut_segment, remix
from cadenza.layout import ExpLayout
from cadenza.plan import RunPlan
from cadenza.separators import separator_identity
from xumx_slicq_v2.audio import remove_stale_temporaries
from xumx_slicq_v2.provenance import ProvenanceError, require_same_settings, write_record

if TYPE_CHECKING:
    from clarity.utils.audiogram import Listener

log = logging.getLogger(__name__)


class EnhanceError(ProvenanceError):
    """Existing outputs conflict with this run's settings (the message names the file and the settings)."""


@dataclass
class EnhanceSummary:
    pairs: int  # pairs of this batch
    enhanced: int  # pairs written now
    skipped: int  # pairs already complete
    separated: list[str]  # songs separated now


def enhance_settings(
    cfg: DictConfig, segments: dict[str, tuple[float, float]] | None = None, separator: dict | None = None
) -> dict:
    """Everything that shapes a pair's files; recorded in its completion marker and compared on resume.

    ``separator``: `separator_identity` of ``cfg.separator``, if already known.
    """
    return {
        "separator": separator or separator_identity(cfg.separator),
        "sample_rate": int(cfg.sample_rate),
        "stem_sample_rate": int(cfg.stem_sample_rate),
        "remix_sample_rate": int(cfg.remix_sample_rate),
        "nalr": OmegaConf.to_container(cfg.nalr, resolve=True),
        "compressor": OmegaConf.to_container(cfg.compressor, resolve=True) if cfg.apply_compressor else None,
        "soft_clip": bool(cfg.soft_clip),
        "segments": None if segments is None else {kind: list(span) for kind, span in segments.items()},
    }


def pair_is_complete(layout: ExpLayout, song: str, listener_id: str, settings: dict) -> bool:
    """True when the pair's marker and all its files exist; a marker with other settings is an error."""
    marker = layout.pair_marker(listener_id, song)
    remedy = (
        f"Use another path.exp_folder, or delete {marker} and {layout.pair_dir(listener_id, song)} to enhance "
        f"{listener_id}/{song} again"
    )
    try:
        recorded = require_same_settings(marker, settings, remedy)
    except ProvenanceError as err:
        raise EnhanceError(str(err)) from None
    return recorded and all(path.is_file() for path in layout.pair_files(listener_id, song))


def enhance_pair(
    stems: dict[str, np.ndarray],
    listener: Listener,
    song: str,
    hearing_aid: HearingAid,
    layout: ExpLayout,
    cfg: DictConfig,
    segments: dict[str, tuple[float, float]] | None = None,
) -> None:
    """Write the 17 files of one pair from the song's stems ``{stem: (2, samples)}`` at ``sample_rate``.

    ``segments`` (evaluation set) cuts the processed stems to ``objective_evaluation`` and the remix to
    ``subjective_evaluation`` (seconds, after NAL-R) before saving.
    """
    sample_rate = int(cfg.sample_rate)
    processed = hearing_aid.process_stems(stems, listener)
    mixed = remix(processed)
    if segments is not None:
        processed = {
            ear: {
                stem: cut_segment(signal, segments["objective_evaluation"], sample_rate, f"{song} {ear} {stem}")
                for stem, signal in by_stem.items()
            }
            for ear, by_stem in processed.items()
        }
        mixed = cut_segment(mixed, segments["subjective_evaluation"], sample_rate, f"{song} remix")
    for ear, by_stem in processed.items():
        for stem, signal in by_stem.items():
            write_scaled_stem(
                layout.stem_flac(listener.id, song, ear, stem), signal, sample_rate, int(cfg.stem_sample_rate)
            )
    write_clipped_remix(
        layout.remix_flac(listener.id, song),
        mixed,
        sample_rate,
        int(cfg.remix_sample_rate),
        soft_clip=bool(cfg.soft_clip),
    )


def run_enhance(cfg: DictConfig, evaluation: bool = False) -> EnhanceSummary:
    """Enhance every pair of the batch (``evaluation``: the evaluation-set segments and layout of ``test``).

    A song whose data is unusable (missing folder, wrong rate, NaN samples...) is logged and its pairs skipped;
    the other songs are enhanced, then :class:`DataError` names every failed song (a rerun redoes only those).
    """
    plan = RunPlan.from_config(cfg, evaluation=evaluation)
    plan.describe(cfg, "cadenza.test" if evaluation else "cadenza.enhance")
    layout = plan.layout
    all_segments = load_segments(cfg.path.music_segments_test_file) if evaluation else None
    cache = StemCache(cfg, layout)
    hearing_aid = HearingAid.from_config(cfg)
    enhanced = skipped = 0
    separator = separator_identity(cfg.separator)  # once: it may checksum the weights
    failed: dict[str, str] = {}  # song -> why its data cannot be used
    for song, listener_id in tqdm(plan.pairs, desc="enhance", unit="pair"):
        if song.name in failed:
            continue
        try:
            segments = _song_segments(all_segments, song, cfg) if evaluation else None
            settings = enhance_settings(cfg, segments, separator)
            if pair_is_complete(layout, song.name, listener_id, settings):
                skipped += 1
                continue
            stems = cache.stems(song)
        except DataError as err:
            log.error("%s; the pairs of %r are skipped, the other songs go on", err, song.name)
            failed[song.name] = str(err)
            continue
        marker = layout.pair_marker(listener_id, song.name)
        remove_stale_temporaries([*layout.pair_files(listener_id, song.name), marker])  # left by a killed run
        enhance_pair(stems, plan.listeners[listener_id], song.name, hearing_aid, layout, cfg, segments)
        write_record(marker, settings)
        enhanced += 1
    log.info(
        "enhance: %d pair(s) written, %d already complete, %d song(s) separated now",
        enhanced,
        skipped,
        len(cache.separated),
    )
    if failed:
        raise DataError(
            f"{len(failed)} song(s) could not be enhanced (the pairs of the other songs are written): "
            + "; ".join(failed.values())
        )
    return EnhanceSummary(len(plan.pairs), enhanced, skipped, list(cache.separated))


def _song_segments(all_segments: dict, song: Song, cfg: DictConfig) -> dict[str, tuple[float, float]]:
    try:
        return all_segments[song.name]
    except KeyError:
        raise DataError(f"{cfg.path.music_segments_test_file}: no segments for song {song.name!r}") from None


@hydra.main(**HYDRA_MAIN)
def main(cfg: DictConfig) -> None:
    with recipe_command():
        run_enhance(cfg)


if __name__ == "__main__":
    main()
