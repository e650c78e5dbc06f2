"""The scores CSV: the baseline's columns plus the remix HAAQI, one row per song-listener pair.

Rows are kept as the strings written (Python ``csv`` formatting: full ``repr`` of each float), and the file is
rewritten atomically after every pair, so an interrupted evaluation loses at most the pair in progress.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path

from cadenza.data import EARS, INSTRUMENTS
from xumx_slicq_v2.audio import write_text_atomic

#: Per-ear stem columns in the baseline's order (bass, drums, other, vocals; left before right).
STEM_COLUMNS = tuple(f"{ear}_{stem}" for stem in sorted(INSTRUMENTS) for ear in EARS)

#: Remix HAAQI columns (the CAD1 leaderboard metric): per ear and their mean.
REMIX_COLUMNS = ("remix_left", "remix_right", "remix_score")

#: All columns: ``song, listener, score`` (mean of the 8 stem values), the stem columns, the remix columns.
COLUMNS = ("song", "listener", "score", *STEM_COLUMNS, *REMIX_COLUMNS)


class ScoresFileError(RuntimeError):
    """A scores CSV is unreadable or has other columns (the message names the file)."""


def read_rows(path: str | Path) -> list[dict[str, str]]:
    """The rows of a scores CSV with exactly :data:`COLUMNS` (strings as written)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows = list(reader)
            header = tuple(reader.fieldnames or ())
    except (OSError, csv.Error, UnicodeDecodeError) as err:
        raise ScoresFileError(f"{path}: cannot read scores ({err})") from err
    if header != COLUMNS:
        raise ScoresFileError(f"{path}: columns {list(header)}, expected {list(COLUMNS)}")
    return rows


def write_rows(path: str | Path, rows: Iterable[Mapping[str, object]]) -> None:
    """Write ``rows`` (values formatted by ``csv``) under a :data:`COLUMNS` header, atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


class ScoresFile:
    """A scores CSV that grows one pair at a time and can resume (existing rows are kept and skipped)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.rows: list[dict[str, object]] = list(read_rows(self.path)) if self.path.is_file() else []
        self._pairs = {(row["song"], row["listener"]) for row in self.rows}

    def has(self, song: str, listener: str) -> bool:
        return (song, listener) in self._pairs

    def add(self, row: Mapping[str, object]) -> None:
        missing = [column for column in COLUMNS if column not in row]
        if missing:
            raise KeyError(f"score row lacks {missing}")
        self.rows.append({column: row[column] for column in COLUMNS})
        self._pairs.add((str(row["song"]), str(row["listener"])))
        write_rows(self.path, self.rows)
