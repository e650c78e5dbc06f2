"""Where a run's files live inside ``path.exp_folder`` (one place for every output name).

- ``separated/<song>/<stem>.wav`` (44.1 kHz float) + ``separation.json``: the once-per-song stem cache.
- ``enhanced_signals/<listener>/<song>/<listener>_<song>_<left|right>_<stem>.flac`` (+ ``.txt`` scale) and
  ``<listener>_<song>_remix.flac``; ``enhanced_signals/evaluation/...`` for the evaluation-set submission.
- ``progress/<enhanced_signals|evaluation>/<listener>/<song>.json``: a pair's completion marker, written last.
- ``scores.csv`` or ``scores_<batch+1>-<batch_size>.csv``, each with the record of its settings
  (``scores.settings.json``...); ``report.json``, ``report.png`` (beside the scores, :mod:`cadenza.report`);
  ``submission_<team_id>.zip``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cadenza.data import EARS, INSTRUMENTS


@dataclass(frozen=True)
class ExpLayout:
    """File names of one run; ``evaluation`` selects the evaluation-set (submission) outputs."""

    exp_folder: Path
    evaluation: bool = False

    @property
    def separated_dir(self) -> Path:
        return self.exp_folder / "separated"

    def song_stems_dir(self, song: str) -> Path:
        return self.separated_dir / song

    @property
    def enhanced_root(self) -> Path:
        return self.exp_folder / "enhanced_signals"

    @property
    def enhanced_dir(self) -> Path:
        return self.enhanced_root / "evaluation" if self.evaluation else self.enhanced_root

    def pair_dir(self, listener: str, song: str) -> Path:
        return self.enhanced_dir / listener / song

    def stem_flac(self, listener: str, song: str, ear: str, stem: str) -> Path:
        return self.pair_dir(listener, song) / f"{listener}_{song}_{ear}_{stem}.flac"

    def remix_flac(self, listener: str, song: str) -> Path:
        return self.pair_dir(listener, song) / f"{listener}_{song}_remix.flac"

    def pair_files(self, listener: str, song: str) -> list[Path]:
        """The 17 files of a pair: 8 stem FLACs, their 8 ``.txt`` scale files, the remix FLAC."""
        stems = [self.stem_flac(listener, song, ear, stem) for stem in INSTRUMENTS for ear in EARS]
        return [*stems, *(flac.with_suffix(".txt") for flac in stems), self.remix_flac(listener, song)]

    def pair_marker(self, listener: str, song: str) -> Path:
        return (
            self.exp_folder
            / "progress"
            / ("evaluation" if self.evaluation else "enhanced_signals")
            / listener
            / (f"{song}.json")
        )

    def scores_csv(self, batch: int = 0, batch_size: int = 1) -> Path:
        name = "scores.csv" if batch_size <= 1 else f"scores_{batch + 1}-{batch_size}.csv"
        return self.exp_folder / name

    def scores_record(self, batch: int = 0, batch_size: int = 1) -> Path:
        """The settings that produced a scores CSV: ``scores.settings.json`` beside ``scores.csv``, etc."""
        return self.scores_csv(batch, batch_size).with_suffix(".settings.json")

    def submission_zip(self, team_id: str) -> Path:
        return self.exp_folder / f"submission_{team_id}.zip"
