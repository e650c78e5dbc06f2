"""The evaluation-set submission: enhance the test songs on their evaluation segments, then zip.

``python -m cadenza.test`` (hydra config ``config_test.yaml`` = ``config.yaml`` with ``path.music_file`` and
``path.listeners_file`` set to the ``*.test.json`` files). As :mod:`cadenza.enhance`, but after NAL-R each stem
is cut to the song's ``objective_evaluation`` segment and the remix to its ``subjective_evaluation`` segment
(``path.music_segments_test_file``, seconds), and files go to ``<exp_folder>/enhanced_signals/evaluation/``.
When every batch is complete, ``enhanced_signals/evaluation`` is zipped to ``<exp_folder>/submission_<team_id>.zip``.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import hydra
from omegaconf import DictConfig

from cadenza.config import HYDRA_MAIN
from cadenza.enhance import EnhanceSummary, run_enhance
from cadenza.layout import ExpLayout
from xumx_slicq_v2.audio import atomic_path

log = logging.getLogger(__name__)


def make_submission(layout: ExpLayout, team_id: str) -> Path:
    """Zip ``enhanced_signals/evaluation`` (archive root ``evaluation/``) into ``submission_<team_id>.zip``."""
    target = layout.submission_zip(team_id)
    with atomic_path(target) as tmp:
        # make_archive appends ".zip" to the base name, so this writes the temporary file itself
        shutil.make_archive(str(tmp.with_suffix("")), "zip", root_dir=layout.enhanced_root, base_dir="evaluation")
    log.info("submission: %s", target)
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
    run_test(cfg)


if __name__ == "__main__":
    main()
