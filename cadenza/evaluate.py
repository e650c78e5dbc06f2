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

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from cadenza.config import HYDRA_MAIN, ConfigError, recipe_command
from cadenza.enhance import enhance_settings, pair_is_complete
from cadenza.evaluate_pool import auto_jobs, score_pairs
from cadenza.plan import RunPlan
from cadenza.report import report_files, write_report
from cadenza.scores import ScoresFile
from cadenza.scoring import REFERENCE_LEVEL_DB_SPL, PairSettings, haaqi_engine, score_pair
from xumx_slicq_v2.audio import remove_stale_temporaries
from xumx_slicq_v2.provenance import ProvenanceError, require_same_settings, write_record

if TYPE_CHECKING:
    from clarity.utils.audiogram import Listener

    from cadenza.data import Song
    from cadenza.layout import ExpLayout

log = logging.getLogger(__name__)


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


def evaluate_pair(song: Song, listener: Listener, layout: ExpLayout, cfg: DictConfig) -> dict[str, object]:
    """The scores row of one pair (see the module docstring)."""
    return score_pair(song, listener, layout, PairSettings.from_config(cfg))


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
    songs = {song.name: song for song, _ in todo}.values()  # each song's header read once
    seconds = max((song_seconds(pair_settings.music_dir, song) for song in songs), default=0.0)
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
    with recipe_command():
        run_evaluate(cfg)


if __name__ == "__main__":
    main()
