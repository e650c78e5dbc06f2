"""Evaluate: HAAQI per stem and ear as the CAD1 baseline computes it, plus the remix HAAQI of the leaderboard.

``python -m cadenza.evaluate`` (hydra; see ``config.yaml``). Per song-listener pair (numpy seeded with
``md5(song) % 10**8`` first when ``evaluate.set_random_seed``), for drums, bass, other, vocals and each ear:

- reference: the clean stem channel (16-bit full scale), resampled to ``stem_sample_rate`` with soxr HQ;
- processed: the enhanced stem FLAC times its ``.txt`` scale (at ``stem_sample_rate``);
- ``level1 = 65 - 20 log10(rms)`` of the reference channel at ``sample_rate``; equalisation 1 (HAAQI adds
  NAL-R to the reference itself).

Then per ear the remix: reference = the clean mixture channel, processed = that remix channel, both resampled to
``stem_sample_rate``, ``level1`` from the mixture channel. ``score`` is the mean of the 8 stem values,
``remix_score`` the mean of the two remix values. Rows go to ``scores.csv`` (``scores_<batch+1>-<batch_size>.csv``
when sharded); pairs already in the file are skipped. A single-batch run ends with the report (:mod:`report`).

``evaluate.haaqi`` chooses the HAAQI implementation: ``fast`` (:mod:`cadenza.haaqi`, the default) or ``pyclarity``
(``clarity.evaluator.haaqi``); both give the same scores, bit for bit. ``evaluate.jobs`` scores pairs in that many
worker processes (:mod:`cadenza.evaluate_pool`; ``auto``: see :func:`cadenza.evaluate_pool.auto_jobs`); the scores
file is the same as with one job, rows in the same order.
"""

from __future__ import annotations

if __name__ == "__main__":  # a lone --help is answered before hydra and numpy load (under 0.5 s)
    from cadenza.quick_help import exit_if_plain_help

    exit_if_plain_help("config")

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from cadenza.config import HYDRA_MAIN, ConfigError
from cadenza.data import EARS, INSTRUMENTS, Song, read_song_audio
from cadenza.enhance import enhance_settings, pair_is_complete
from cadenza.evaluate_pool import auto_jobs, score_pairs
from cadenza.flac_io import EnhancedFileError, read_enhanced
from cadenza.layout import ExpLayout
from cadenza.plan import RunPlan
from cadenza.report import report_files, write_report
from cadenza.scores import ScoresFile
from xumx_slicq_v2._optional import exit_if_missing
from xumx_slicq_v2.audio import remove_stale_temporaries
from xumx_slicq_v2.provenance import ProvenanceError, require_same_settings, write_record
from xumx_slicq_v2.signals import sigterm_exits

if TYPE_CHECKING:  # pyclarity (scipy, numba) loads with the first score, not for --help
    from clarity.utils.audiogram import Audiogram, Listener

log = logging.getLogger(__name__)

#: Presentation level of the reference, dB SPL (``level1`` maps its RMS to this).
REFERENCE_LEVEL_DB_SPL = 65.0

#: HAAQI implementations (``evaluate.haaqi``): ours (:mod:`cadenza.haaqi`) and pyclarity 0.9.0's; same scores.
HAAQI_ENGINES = ("fast", "pyclarity")

#: HAAQI implementation of a config without an ``evaluate.haaqi`` key (configs older than the key: pyclarity).
DEFAULT_HAAQI_ENGINE = "pyclarity"


def haaqi_engine(cfg: DictConfig) -> str:
    """``evaluate.haaqi`` of ``cfg``, checked (:class:`ConfigError` naming the key otherwise)."""
    engine = OmegaConf.select(cfg, "evaluate.haaqi", default=DEFAULT_HAAQI_ENGINE)
    if engine not in HAAQI_ENGINES:
        raise ConfigError(f"evaluate.haaqi={engine!r} must be one of {', '.join(HAAQI_ENGINES)}")
    return str(engine)


def compute_haaqi(engine: str, **kwargs) -> float:
    """``compute_haaqi(**kwargs)`` of ``engine`` (imported on the first call: scipy and numba load with it)."""
    if engine == "fast":
        from cadenza.haaqi import compute_haaqi as haaqi
    elif engine == "pyclarity":
        from clarity.evaluator.haaqi import compute_haaqi as haaqi
    else:
        raise ConfigError(f"evaluate.haaqi={engine!r} must be one of {', '.join(HAAQI_ENGINES)}")
    return haaqi(**kwargs)


def requested_jobs(cfg: DictConfig) -> int | str:
    """``evaluate.jobs`` of ``cfg``: a positive count or ``auto`` (:class:`ConfigError` naming the key otherwise)."""
    jobs = OmegaConf.select(cfg, "evaluate.jobs", default=1)
    if jobs == "auto":
        return "auto"
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"evaluate.jobs={jobs!r} must be a positive number of worker processes or auto")
    return jobs


def evaluate_jobs(cfg: DictConfig, song_seconds: float, pairs: int, engine: str) -> int:
    """The worker count for ``pairs`` pairs of songs up to ``song_seconds`` long: ``evaluate.jobs``, or for
    ``auto`` :func:`auto_jobs`; at most ``pairs``, at least 1."""
    jobs = requested_jobs(cfg)
    if jobs == "auto":
        jobs = auto_jobs(song_seconds, engine)
    return max(1, min(pairs, jobs))


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


def evaluate_pair(song: Song, listener: Listener, layout: ExpLayout, cfg: DictConfig) -> dict[str, object]:
    """The scores row of one pair (see the module docstring)."""
    return score_pair(song, listener, layout, PairSettings.from_config(cfg))


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


def song_seconds(music_dir: str, song: Song) -> float:
    """Length of ``song``'s mixture in seconds (its header only); 0.0 if unreadable (the scoring names it)."""
    import soundfile as sf

    try:
        return float(sf.info(str(song.folder(music_dir) / "mixture.wav")).duration)
    except (OSError, RuntimeError):
        return 0.0


def evaluate_settings(cfg: DictConfig) -> dict:
    """Everything that shapes the scores: the enhanced files' settings, the HAAQI engine and its seeding;
    recorded beside each scores file (``scores.settings.json``) and compared on resume and merge."""
    return {
        "enhance": enhance_settings(cfg),
        "haaqi": haaqi_engine(cfg),
        "set_random_seed": bool(cfg.evaluate.set_random_seed),
        "reference_level_db_spl": REFERENCE_LEVEL_DB_SPL,
    }


def check_scores_settings(scores_path: Path, record: Path, settings: dict) -> None:
    """Refuse to add to ``scores_path`` rows made with other settings (or with no record of them)."""
    remedy = f"Use another path.exp_folder, or delete {scores_path} and {record} to score every pair again"
    if scores_path.is_file() and not require_same_settings(record, settings, remedy):
        raise ProvenanceError(f"{scores_path}: no record of the settings its rows were made with ({record}). {remedy}")


def run_evaluate(cfg: DictConfig) -> Path:
    """Score every pair of the batch not yet in its scores file; returns the file.

    Pairs enhanced with other settings than ``cfg``'s, and a scores file made with other settings (separator,
    weights, rates, NAL-R, compressor, HAAQI engine, seeding), are refused with an error saying what differs.
    """
    plan = RunPlan.from_config(cfg)
    plan.describe(cfg, "cadenza.evaluate")
    batch, batch_size = int(cfg.evaluate.batch), int(cfg.evaluate.batch_size)
    scores_path, record = plan.layout.scores_csv(batch, batch_size), plan.layout.scores_record(batch, batch_size)
    # left by a killed run of this batch (the report is written by unsharded runs only)
    remove_stale_temporaries([scores_path, record, *(report_files(scores_path.parent) if batch_size <= 1 else ())])
    settings = evaluate_settings(cfg)
    pair_settings = PairSettings.from_config(cfg)
    requested_jobs(cfg)  # a bad value stops the run before it writes anything
    check_scores_settings(scores_path, record, settings)
    scores = ScoresFile(scores_path)
    todo = [(song, listener_id) for song, listener_id in plan.pairs if not scores.has(song.name, listener_id)]
    log.info("evaluate: %d pair(s) to score, %d already in %s", len(todo), len(plan.pairs) - len(todo), scores.path)
    for song, listener_id in todo:  # the enhanced files are of this run's settings (missing ones are named later)
        pair_is_complete(plan.layout, song.name, listener_id, settings["enhance"])
    if todo:
        write_record(record, settings)  # before the first row: a scores file never lacks its record
    seconds = max((song_seconds(pair_settings.music_dir, song) for song, _ in todo), default=0.0)
    jobs = evaluate_jobs(cfg, seconds, len(todo), pair_settings.engine)
    if todo:
        log.info("evaluate: HAAQI %s, %d job(s)", pair_settings.engine, jobs)
    tasks = [(song, plan.listeners[listener_id], plan.layout, pair_settings) for song, listener_id in todo]
    score_pairs(score_pair, tasks, jobs, scores.add, progress=lambda n: tqdm(total=n, desc="evaluate", unit="pair"))
    if batch_size <= 1:
        write_report(scores.path, plan.listeners)
    return scores.path


@hydra.main(**HYDRA_MAIN)
def main(cfg: DictConfig) -> None:
    with sigterm_exits(), exit_if_missing():  # SIGTERM: temporaries removed, a rerun resumes; no extra: exit 2
        run_evaluate(cfg)


if __name__ == "__main__":
    main()
