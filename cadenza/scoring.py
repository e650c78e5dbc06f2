"""Scoring one song-listener pair: HAAQI per stem and ear, and of the remix (what :mod:`cadenza.evaluate` runs,
in this process or in its worker processes).

The functions here are imported by reference in the workers (``spawn``), so they live in a module of their own:
``python -m cadenza.evaluate`` runs that module as ``__main__``, which a worker started by another program (a
SLURM launcher's runner) cannot import.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from omegaconf import DictConfig, OmegaConf

from cadenza.config import ConfigError
from cadenza.data import EARS, INSTRUMENTS, Song, read_song_audio
from cadenza.flac_io import EnhancedFileError, read_enhanced
from cadenza.layout import ExpLayout

if TYPE_CHECKING:  # pyclarity (scipy, numba) loads with the first score, not for --help
    from clarity.utils.audiogram import Audiogram, Listener

log = logging.getLogger(__name__)

#: Presentation level of the reference, dB SPL (``level1`` maps its RMS to this).
REFERENCE_LEVEL_DB_SPL = 65.0

#: HAAQI implementations (``evaluate.haaqi``): ours (:mod:`cadenza.haaqi`) and pyclarity 0.9.0's; same scores.
HAAQI_ENGINES = ("fast", "pyclarity")

#: HAAQI implementation of a config without an ``evaluate.haaqi`` key (configs older than the key: pyclarity).
DEFAULT_HAAQI_ENGINE = "pyclarity"


def checked_engine(engine: object) -> str:
    """``engine`` if it is one of :data:`HAAQI_ENGINES` (:class:`ConfigError` naming ``evaluate.haaqi`` otherwise)."""
    if engine not in HAAQI_ENGINES:
        raise ConfigError(f"evaluate.haaqi={engine!r} must be one of {', '.join(HAAQI_ENGINES)}")
    return str(engine)


def haaqi_engine(cfg: DictConfig) -> str:
    """``evaluate.haaqi`` of ``cfg``, checked."""
    return checked_engine(OmegaConf.select(cfg, "evaluate.haaqi", default=DEFAULT_HAAQI_ENGINE))


def compute_haaqi(engine: str, **kwargs) -> float:
    """``compute_haaqi(**kwargs)`` of ``engine`` (imported on the first call: scipy and numba load with it)."""
    if checked_engine(engine) == "fast":
        from cadenza.haaqi import compute_haaqi as haaqi
    else:
        from clarity.evaluator.haaqi import compute_haaqi as haaqi
    return haaqi(**kwargs)


def song_seed(song: str) -> int:
    """The baseline's per-song numpy seed: ``md5(song) mod 10**8``."""
    return int(hashlib.md5(song.encode("utf-8")).hexdigest(), 16) % 10**8


def haaqi_score(
    processed: np.ndarray,
    processed_rate: int,
    reference: np.ndarray,
    reference_rate: int,
    audiogram: Audiogram,
    haaqi_rate: int,
    engine: str = "fast",
) -> float:
    """HAAQI of one ear, ``(samples,)`` signals, both resampled (soxr HQ) to ``haaqi_rate`` Hz first.

    The reference is presented at 65 dB SPL (``level1`` from its RMS at ``reference_rate``) and the processed
    signal on the same scale; equalisation 1; ``engine``: see :data:`HAAQI_ENGINES`. A silent reference has no
    level: NaN, with a warning.
    """
    from clarity.utils.signal_processing import compute_rms, resample

    rms = compute_rms(reference)
    if rms == 0:
        log.warning("silent reference signal: HAAQI undefined (NaN)")
        return float("nan")
    return float(
        compute_haaqi(
            engine,
            processed_signal=resample(processed, processed_rate, haaqi_rate),
            reference_signal=resample(reference, reference_rate, haaqi_rate),
            processed_sample_rate=haaqi_rate,
            reference_sample_rate=haaqi_rate,
            audiogram=audiogram,
            equalisation=1,
            level1=REFERENCE_LEVEL_DB_SPL - 20 * np.log10(rms),
        )
    )


@dataclass(frozen=True)
class PairSettings:
    """What scoring a pair reads from the config (plain values: sent to worker processes)."""

    music_dir: str
    sample_rate: int
    stem_sample_rate: int
    remix_sample_rate: int
    set_random_seed: bool
    engine: str

    @classmethod
    def from_config(cls, cfg: DictConfig) -> PairSettings:
        return cls(
            music_dir=str(cfg.path.music_dir),
            sample_rate=int(cfg.sample_rate),
            stem_sample_rate=int(cfg.stem_sample_rate),
            remix_sample_rate=int(cfg.remix_sample_rate),
            set_random_seed=bool(cfg.evaluate.set_random_seed),
            engine=haaqi_engine(cfg),
        )


def score_pair(song: Song, listener: Listener, layout: ExpLayout, settings: PairSettings) -> dict[str, object]:
    """The scores row of one pair; numpy's global generator seeded first when ``settings.set_random_seed``, so
    that the row does not depend on what the process computed before."""
    if settings.set_random_seed:
        np.random.seed(song_seed(song.name))  # noqa: NPY002 (HAAQI draws from numpy's global RNG)
    sample_rate, stem_rate, remix_rate = settings.sample_rate, settings.stem_sample_rate, settings.remix_sample_rate
    engine, music_dir = settings.engine, settings.music_dir
    audiograms = {"left": listener.audiogram_left, "right": listener.audiogram_right}
    stem_scores = {}
    for instrument in INSTRUMENTS:
        reference = read_song_audio(music_dir, song, instrument, sample_rate)
        for channel, ear in enumerate(EARS):
            processed = read_enhanced(layout.stem_flac(listener.id, song.name, ear, instrument), stem_rate)
            if processed.ndim != 1:
                raise EnhancedFileError(f"{layout.stem_flac(listener.id, song.name, ear, instrument)}: not mono")
            stem_scores[f"{ear}_{instrument}"] = haaqi_score(
                processed, stem_rate, reference[channel], sample_rate, audiograms[ear], stem_rate, engine
            )
    mixture = read_song_audio(music_dir, song, "mixture", sample_rate)
    remix_path = layout.remix_flac(listener.id, song.name)
    remixed = read_enhanced(remix_path, remix_rate)
    if remixed.ndim != 2 or remixed.shape[1] != len(EARS):
        raise EnhancedFileError(f"{remix_path}: expected a stereo remix, got shape {remixed.shape}")
    remix_scores = {
        f"remix_{ear}": haaqi_score(
            remixed[:, channel], remix_rate, mixture[channel], sample_rate, audiograms[ear], stem_rate, engine
        )
        for channel, ear in enumerate(EARS)
    }
    return {
        "song": song.name,
        "listener": listener.id,
        "score": _mean(stem_scores.values()),
        **stem_scores,
        **remix_scores,
        "remix_score": _mean(remix_scores.values()),
    }


def _mean(values) -> float:
    values = np.asarray(list(values), dtype=float)
    return float("nan") if np.all(np.isnan(values)) else float(np.nanmean(values))
