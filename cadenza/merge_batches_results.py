"""Merge the scores of a sharded run: ``scores_1-N.csv ... scores_N-N.csv`` -> ``scores.csv`` (+ report).

``python -m cadenza.merge_batches_results evaluate.batch_size=N`` (same other settings as the batches). Every
batch file must exist and hold exactly its batch's pairs; rows are written in the single-run (song-major) order,
so the merged file equals the ``scores.csv`` of an unsharded run. Batches scored with other settings than this
run's (their ``scores_<i>-<N>.settings.json``) are refused, naming the setting that differs.
"""

from __future__ import annotations

if __name__ == "__main__":  # a lone --help is answered before hydra and numpy load (under 0.5 s)
    from cadenza.quick_help import exit_if_plain_help

    exit_if_plain_help("config")

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from cadenza.config import HYDRA_MAIN, check_config, recipe_command
from cadenza.data import Song, song_listener_pairs
from cadenza.evaluate import check_scores_settings, evaluate_settings
from cadenza.plan import RunPlan
from cadenza.report import report_files, write_report
from cadenza.scores import ScoresFileError, read_rows, write_rows
from xumx_slicq_v2.audio import remove_stale_temporaries
from xumx_slicq_v2.provenance import write_record

log = logging.getLogger(__name__)


def run_merge(cfg: DictConfig) -> Path:
    """Concatenate the batch files of ``evaluate.batch_size`` into ``scores.csv``; returns its path."""
    check_config(cfg)
    batch_size = int(cfg.evaluate.batch_size)
    plan = RunPlan.from_config(cfg, batched=False)
    layout = plan.layout
    files = [layout.scores_csv(batch, batch_size) for batch in range(batch_size)]
    missing = [str(path) for path in files if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"missing batch score file(s): {', '.join(missing)}")
    settings = evaluate_settings(cfg)
    rows = {}
    for batch, path in enumerate(files):
        # every batch must have been scored with this run's settings (check_scores_settings names the difference)
        check_scores_settings(path, layout.scores_record(batch, batch_size), settings)
        expected = _pair_names(
            song_listener_pairs(plan.songs, list(plan.listeners), batch, batch_size, bool(cfg.evaluate.small_test))
        )
        found = {(row["song"], row["listener"]): row for row in read_rows(path)}
        if set(found) != set(expected):
            absent, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
            raise ScoresFileError(
                f"{path}: {len(absent)} pair(s) of batch {batch + 1}/{batch_size} missing (e.g. {absent[:2]}), "
                f"{len(extra)} unexpected (e.g. {extra[:2]}); finish or rerun that batch with the same settings"
            )
        rows.update(found)
    merged = layout.scores_csv()
    record = layout.scores_record()
    remove_stale_temporaries([merged, record, *report_files(merged.parent)])  # left by a killed merge
    write_record(record, settings)
    write_rows(merged, [rows[pair] for pair in _pair_names(plan.pairs)])
    log.info("merged %d batch file(s), %d rows -> %s", batch_size, len(rows), merged)
    write_report(merged, plan.listeners)
    return merged


def _pair_names(pairs: list[tuple[Song, str]]) -> list[tuple[str, str]]:
    return [(song.name, listener_id) for song, listener_id in pairs]


@hydra.main(**HYDRA_MAIN)
def main(cfg: DictConfig) -> None:
    with recipe_command():
        run_merge(cfg)


if __name__ == "__main__":
    main()
