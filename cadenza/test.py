"""The evaluation-set submission: enhance the test songs on their evaluation segments, then zip.

``python -m cadenza.test`` (hydra config ``config_test.yaml`` = ``config.yaml`` with ``path.music_file`` and
``path.listeners_file`` set to the ``*.test.json`` files). As :mod:`cadenza.enhance`, but after NAL-R each stem
is cut to the song's ``objective_evaluation`` segment and the remix to its ``subjective_evaluation`` segment
(``path.music_segments_test_file``, seconds), and files go to ``<exp_folder>/enhanced_signals/evaluation/``.
When every batch is complete, ``enhanced_signals/evaluation`` is zipped to ``<exp_folder>/submission_<team_id>.zip``.
"""

from __future__ import annotations

if __name__ == "__main__":  # a lone --help is answered before hydra and numpy load (under 0.5 s)
    from cadenza.quick_help import exit_if_plain_help

    exit_if_plain_help("config_test")

import logging
import zipfile
from pathlib import Path

import hydra
from omegaconf import DictConfig

from cadenza.config import HYDRA_MAIN, recipe_command
from cadenza.enhance import EnhanceSummary, run_enhance
from cadenza.layout import ExpLayout
from xumx_slicq_v2.audio import atomic_path, remove_stale_temporaries

log = logging.getLogger(__name__)

#: Timestamp of every member of the submission zip (the earliest a zip can hold), for reproducible archives.
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


def make_submission(layout: ExpLayout, team_id: str) -> Path:
    """Zip ``enhanced_signals/evaluation`` (archive root ``evaluation/``) into ``submission_<team_id>.zip``.

    Hidden files (temporary files of killed writers, lock files) are left out; members are in sorted order with a
    fixed timestamp, so the same enhanced files always give the same zip, byte for byte.
    """
    target = layout.submission_zip(team_id)
    remove_stale_temporaries([target])
    root = layout.enhanced_root
    files = sorted(
        path
        for path in (root / "evaluation").rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )
    with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            member = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=ZIP_TIMESTAMP)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o644 << 16
            archive.writestr(member, path.read_bytes())
    log.info("submission: %s (%d files)", target, len(files))
    return target


def run_test(cfg: DictConfig) -> tuple[EnhanceSummary, Path | None]:
    """Enhance the evaluation-set pairs of the batch; zip the submission when the run is not sharded."""
    summary = run_enhance(cfg, evaluation=True)
    if int(cfg.evaluate.batch_size) > 1:
        log.info(
            "sharded run: zip after the last batch with python -m cadenza.test evaluate.batch_size=1 "
            "(finished pairs are skipped)"
        )
        return summary, None
    return summary, make_submission(ExpLayout(Path(cfg.path.exp_folder), evaluation=True), str(cfg.team_id))


@hydra.main(**{**HYDRA_MAIN, "config_name": "config_test"})
def main(cfg: DictConfig) -> None:
    with recipe_command():
        run_test(cfg)


if __name__ == "__main__":
    main()
