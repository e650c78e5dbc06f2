"""Synthetic music generator: speed (x real time on one core) and "listening by numbers" per stem.

    python benchmarks/synth.py [--songs 8] [--seconds 30] [--seed 0] [--out exp/benchmarks/synth.json]

Renders ``--songs`` songs of ``--seconds`` seconds in this process (numpy/scipy FFTs run on one thread),
timing ``render_song`` in CPU seconds of this process and in wall-clock seconds. For each song it also
reports per stem: loudness (LUFS, pyloudnorm), the share of loud frames with a YIN f0 in the vocal
(80-1000 Hz) or bass (35-260 Hz) range, and the energy share above 4 kHz. Prints a table and writes JSON.
Goal: at least 20x faster than real time.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from data_prep.config import SAMPLE_RATE  # noqa: E402


def measure_song(seed: int, seconds: float, meter) -> dict:
    """Render one song, time it and describe its stems (``meter``: a ``pyloudnorm.Meter``)."""
    from data_prep.analysis import band_share, downmix, pitched_fraction
    from data_prep.composer import compose_song
    from data_prep.synth import render_song

    cpu, wall = time.process_time(), time.perf_counter()
    stems = render_song(seed, seconds)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    plan = compose_song(seed, seconds)
    mixture = sum(stems.values())
    row = {
        "seed": seed,
        "tempo_bpm": round(plan.tempo, 1),
        "sections": "-".join(section.name for section in plan.sections),
        "cpu_s": cpu,
        "wall_s": wall,
        "x_real_time_cpu": seconds / cpu,
        "mixture_lufs": meter.integrated_loudness(mixture.T.astype(np.float64)),
        "mixture_peak": float(np.max(np.abs(mixture))),
        "stems": {},
    }
    for stem, audio in stems.items():
        mono = downmix(audio, SAMPLE_RATE)
        row["stems"][stem] = {
            "lufs": meter.integrated_loudness(audio.T.astype(np.float64)),
            "vocal_f0_share": pitched_fraction(mono, (80.0, 1000.0)),
            "bass_f0_share": pitched_fraction(mono, (35.0, 260.0)),
            "above_4khz_share": band_share(mono, 4000.0, 11025.0),
        }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--songs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0, help="first song seed")
    parser.add_argument("--out", type=Path, default=REPO / "exp" / "benchmarks" / "synth.json")
    args = parser.parse_args()

    import pyloudnorm

    from data_prep.synth import render_song
    from xumx_slicq_v2.audio import write_text_atomic

    meter = pyloudnorm.Meter(SAMPLE_RATE)
    render_song(args.seed, 1.0)  # warm-up: imports, filter design caches
    rows = [measure_song(args.seed + index, args.seconds, meter) for index in range(args.songs)]

    print(f"{'seed':>5} {'tempo':>6} {'cpu s':>6} {'wall s':>6} {'x rt':>6} {'mix LUFS':>8}  per-stem LUFS (b/d/o/v)")
    for row in rows:
        lufs = "/".join(f"{row['stems'][s]['lufs']:.1f}" for s in ("bass", "drums", "other", "vocals"))
        print(
            f"{row['seed']:>5} {row['tempo_bpm']:>6.1f} {row['cpu_s']:>6.2f} {row['wall_s']:>6.2f} "
            f"{row['x_real_time_cpu']:>6.1f} {row['mixture_lufs']:>8.1f}  {lufs}"
        )
    total_cpu = sum(row["cpu_s"] for row in rows)
    summary = {
        "songs": args.songs,
        "seconds_per_song": args.seconds,
        "x_real_time_cpu_overall": args.songs * args.seconds / total_cpu,
        "x_real_time_cpu_median": statistics.median(row["x_real_time_cpu"] for row in rows),
        "x_real_time_wall_overall": args.songs * args.seconds / sum(row["wall_s"] for row in rows),
    }
    print(
        f"overall: {summary['x_real_time_cpu_overall']:.1f}x real time (CPU time), "
        f"{summary['x_real_time_wall_overall']:.1f}x (wall clock)"
    )
    result = {"machine": platform.platform(), "processor": platform.processor(), "summary": summary, "rows": rows}
    write_text_atomic(args.out, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
