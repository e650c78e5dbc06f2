"""Summary of a scores CSV: means per stem, song, listener and hearing-loss severity; JSON, tables, plot.

``python -m cadenza.report SCORES.CSV [--listeners listeners.json] [--out-dir DIR]`` writes ``report.json`` and
``report.png`` beside the CSV (or in ``--out-dir``) and prints the tables. Severity is pyclarity's
``Audiogram.severity`` (mean threshold over 2-8 kHz: NOTHING, MILD > 15, MODERATE > 35, SEVERE > 56 dB HL),
reported two ways: per listener by the **better ear** (the less severe of the two), and per ear (each ear's 4 stem
scores and its remix channel grouped by that ear's severity). Means skip NaN (silent references).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas and pyclarity load when a report is made, not for --help
    import pandas as pd
    from clarity.utils.audiogram import Listener

#: Severity categories of ``Audiogram.severity``, least to most severe.
SEVERITIES = ("NOTHING", "MILD", "MODERATE", "SEVERE")


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def load_scores(scores_csv: str | Path) -> pd.DataFrame:
    """The scores CSV as a DataFrame with numeric score columns (columns checked)."""
    import pandas as pd

    from cadenza.scores import read_rows

    frame = pd.DataFrame(read_rows(scores_csv))
    for column in frame.columns.drop(["song", "listener"]):
        frame[column] = pd.to_numeric(frame[column])
    return frame


def listener_severities(listeners: Mapping[str, Listener]) -> pd.DataFrame:
    """Per listener id: ``severity_left``, ``severity_right`` and ``severity_better_ear``."""
    import pandas as pd

    rows = {}
    for listener_id, listener in listeners.items():
        left, right = listener.audiogram_left.severity, listener.audiogram_right.severity
        rows[listener_id] = {
            "severity_left": left,
            "severity_right": right,
            "severity_better_ear": min(left, right, key=SEVERITIES.index),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def summarise(scores: pd.DataFrame, listeners: Mapping[str, Listener] | None = None) -> dict:
    """The report as a JSON-ready dict (see the module docstring)."""
    from cadenza.data import EARS, INSTRUMENTS

    if scores.empty:
        raise ValueError("no scores to summarise")
    means = scores.drop(columns=["song", "listener"]).mean()
    summary: dict = {
        "pairs": len(scores),
        "songs": int(scores["song"].nunique()),
        "listeners": int(scores["listener"].nunique()),
        "overall": {key: _number(means[key]) for key in ("score", "remix_score", "remix_left", "remix_right")},
        "per_stem": {
            stem: {
                **{ear: _number(means[f"{ear}_{stem}"]) for ear in EARS},
                "mean": _number(scores[[f"{ear}_{stem}" for ear in EARS]].stack().mean()),
            }
            for stem in sorted(INSTRUMENTS)
        },
        "per_song": _group_means(scores, "song"),
        "per_listener": _group_means(scores, "listener"),
    }
    if listeners is not None:
        missing = sorted(set(scores["listener"]) - set(listeners))
        if missing:
            raise KeyError(f"listeners {missing} of the scores are not in the listeners file")
        severity = listener_severities({key: listeners[key] for key in scores["listener"].unique()})
        for listener_id, entry in summary["per_listener"].items():
            entry.update(severity.loc[listener_id].to_dict())
        summary["per_severity"] = {
            "better_ear": _severity_by_better_ear(scores, severity),
            "per_ear": _severity_by_ear(scores, severity),
        }
    return summary


def _group_means(scores: pd.DataFrame, key: str) -> dict:
    grouped = scores.groupby(key, sort=False)[["score", "remix_score"]].mean()
    return {name: {column: _number(value) for column, value in row.items()} for name, row in grouped.iterrows()}


def _severity_by_better_ear(scores: pd.DataFrame, severity: pd.DataFrame) -> dict:
    joined = scores.join(severity["severity_better_ear"], on="listener")
    out = {}
    for level in SEVERITIES:
        rows = joined[joined["severity_better_ear"] == level]
        if len(rows):
            out[level] = {
                "listeners": int(rows["listener"].nunique()),
                "pairs": len(rows),
                "score": _number(rows["score"].mean()),
                "remix_score": _number(rows["remix_score"].mean()),
            }
    return out


def _severity_by_ear(scores: pd.DataFrame, severity: pd.DataFrame) -> dict:
    import pandas as pd

    from cadenza.data import EARS, INSTRUMENTS

    per_ear = []
    for ear in EARS:
        columns = [f"{ear}_{stem}" for stem in INSTRUMENTS]
        per_ear.append(
            pd.DataFrame(
                {
                    "severity": scores["listener"].map(severity[f"severity_{ear}"]),
                    "stems": scores[columns].mean(axis=1),
                    "remix": scores[f"remix_{ear}"],
                }
            )
        )
    ears = pd.concat(per_ear)
    out = {}
    for level in SEVERITIES:
        rows = ears[ears["severity"] == level]
        if len(rows):
            out[level] = {
                "ear_pairs": len(rows),
                "stems": _number(rows["stems"].mean()),
                "remix": _number(rows["remix"].mean()),
            }
    return out


def format_tables(summary: dict) -> str:
    """The summary as plain-text tables."""

    def table(title: str, data: Mapping, columns: Sequence[str] | None = None) -> str:
        import pandas as pd

        frame = pd.DataFrame.from_dict(data, orient="index")
        if columns is not None:
            frame = frame[list(columns)]
        return f"{title}\n{frame.to_string(float_format=lambda v: f'{v:.4f}')}\n"

    overall = summary["overall"]
    parts = [
        f"HAAQI over {summary['pairs']} pair(s) ({summary['songs']} song(s) x {summary['listeners']} listener(s)):"
        f" 8-stem score {_fmt(overall['score'])}, remix score {_fmt(overall['remix_score'])} "
        f"(left {_fmt(overall['remix_left'])}, right {_fmt(overall['remix_right'])})\n",
        table("Per stem", summary["per_stem"]),
        table("Per song", summary["per_song"]),
        table("Per listener", summary["per_listener"]),
    ]
    if "per_severity" in summary:
        parts.append(table("Per severity (better ear)", summary["per_severity"]["better_ear"]))
        parts.append(
            table("Per severity (each ear: its 4 stems and its remix channel)", summary["per_severity"]["per_ear"])
        )
    return "\n".join(parts)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def plot_report(summary: dict, path: str | Path) -> None:
    """``report.png``: HAAQI per stem and ear (and remix), and per better-ear severity (else per listener)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (by_stem, by_group) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    labels = [*summary["per_stem"], "remix"]
    overall = summary["overall"]
    for offset, ear in ((-0.2, "left"), (0.2, "right")):
        values = [summary["per_stem"][stem][ear] for stem in summary["per_stem"]] + [overall[f"remix_{ear}"]]
        by_stem.bar([i + offset for i in range(len(labels))], [v or 0.0 for v in values], width=0.4, label=ear)
    by_stem.set_xticks(range(len(labels)), labels)
    by_stem.set(ylabel="HAAQI", ylim=(0, 1), title="HAAQI per stem and ear")
    by_stem.legend()
    if "per_severity" in summary:
        groups = summary["per_severity"]["better_ear"]
        names = [
            f"{level}\n({entry['listeners']} listener{'' if entry['listeners'] == 1 else 's'})"
            for level, entry in groups.items()
        ]
        title = "HAAQI per listener severity (better ear)"
    else:
        groups = summary["per_listener"]
        names = list(groups)
        title = "HAAQI per listener (no listeners file given)"
    for offset, key in ((-0.2, "score"), (0.2, "remix_score")):
        by_group.bar(
            [i + offset for i in range(len(groups))],
            [g[key] or 0.0 for g in groups.values()],
            width=0.4,
            label="8-stem score" if key == "score" else "remix score",
        )
    by_group.set_xticks(range(len(groups)), names)
    by_group.set(ylabel="HAAQI", ylim=(0, 1), title=title)
    by_group.legend()
    from xumx_slicq_v2.audio import atomic_path

    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)


def report_files(out_dir: str | Path) -> tuple[Path, Path]:
    """``report.json`` and ``report.png`` in ``out_dir``."""
    return Path(out_dir) / "report.json", Path(out_dir) / "report.png"


def write_report(
    scores_csv: str | Path,
    listeners: Mapping[str, Listener] | None = None,
    out_dir: str | Path | None = None,
    echo: bool = True,
) -> dict:
    """Summarise ``scores_csv``: ``report.json`` and ``report.png`` in ``out_dir`` (default: beside the CSV)."""
    scores_csv = Path(scores_csv)
    out_dir = scores_csv.parent if out_dir is None else Path(out_dir)
    from xumx_slicq_v2.audio import write_text_atomic

    summary = {"scores_csv": str(scores_csv), **summarise(load_scores(scores_csv), listeners)}
    json_path, png_path = report_files(out_dir)
    write_text_atomic(json_path, json.dumps(summary, indent=2) + "\n")
    plot_report(summary, png_path)
    if echo:
        print(format_tables(summary))
        print(f"Report: {json_path}, {png_path}")
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cadenza.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("scores_csv", type=Path, help="scores.csv written by cadenza.evaluate / merge_batches_results")
    parser.add_argument(
        "--listeners", type=Path, default=None, help="listeners JSON of the run (enables the per-severity tables)"
    )
    parser.add_argument("--out-dir", type=Path, default=None, help="where to write report.json/png (default: beside)")
    args = parser.parse_args(argv)
    from cadenza.config import require_pyclarity  # numpy and pyclarity, after the arguments
    from cadenza.data import load_listeners
    from xumx_slicq_v2._optional import exit_if_missing

    listeners = None
    if args.listeners is not None:
        with exit_if_missing():
            require_pyclarity()
        listeners = load_listeners(args.listeners)
    write_report(args.scores_csv, listeners, args.out_dir)


if __name__ == "__main__":
    main()
