"""Benchmark the network alone (no sliCQT): seconds per call for the block shapes of a stereo input.

Random weights (eval mode, inference mode) and random complex blocks of the Bark 262 block table with the
slice count a ``--seconds`` long input gives. Rows: the offline model (network + Wiener-EM), the offline
network with Wiener-EM replaced by the mixture phase (``wiener_iterations=0``; the difference is the
Wiener-EM cost) and the realtime model. Prints a table and writes JSON (default
``exp/benchmarks/model.json``).

    .venv/bin/python benchmarks/model.py --seconds 60 --threads 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from xumx_slicq_v2.audio import write_text_atomic
from xumx_slicq_v2.model import ModelConfig, Unmix

REPO = Path(__file__).resolve().parent.parent

#: (freq_bins, coefs) per block of the released Bark 262 / 32.9 Hz transform.
BARK262_BLOCK_SHAPES = [
    (1, 28), (86, 16), (14, 20), (11, 24), (9, 28), (8, 32), (7, 36), (6, 40), (6, 44), (5, 48),
    (5, 52), (4, 56), (5, 60), (3, 64), (4, 68), (4, 72), (3, 76), (3, 80), (3, 84), (3, 88),
    (2, 92), (3, 96), (2, 100), (3, 104), (2, 108), (2, 112), (2, 116), (2, 120), (2, 124), (2, 128),
    (2, 132), (2, 136), (2, 140), (1, 144), (2, 148), (2, 152), (1, 156), (2, 160), (1, 164), (2, 168),
    (1, 172), (2, 176), (1, 180), (1, 184), (2, 188), (1, 192), (1, 196), (1, 200), (2, 204), (1, 208),
    (1, 212), (1, 216), (1, 220), (1, 224), (1, 228), (2, 232), (1, 236), (1, 240), (1, 244), (1, 248),
    (1, 252), (1, 256), (1, 264), (1, 268), (1, 272), (1, 276), (1, 280), (1, 284), (1, 288), (1, 292),
]  # fmt: skip

#: Half the released slice length (18060 samples): the hop between slices in samples, rounded up.
SLICE_HOP = 4515


def slices_for(samples: int) -> int:
    """Slices per block the released transform gives for ``samples`` samples."""
    return (math.ceil(samples / SLICE_HOP) + 1) // 2 + 1


def time_model(config: ModelConfig, blocks: list[torch.Tensor], repeats: int) -> list[float]:
    """Wall-clock seconds of ``repeats`` forward calls after one warm-up call."""
    model = Unmix(config, BARK262_BLOCK_SHAPES).eval()
    times = []
    with torch.inference_mode():
        model(blocks)
        for _ in range(repeats):
            start = time.perf_counter()
            model(blocks)
            times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="input duration in seconds (44.1 kHz)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per row (after one warm-up)")
    parser.add_argument("--output", type=Path, default=REPO / "exp" / "benchmarks" / "model.json")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    slices = slices_for(round(args.seconds * 44100))
    blocks = [torch.randn(1, 2, freq, slices, coefs, dtype=torch.complex64) for freq, coefs in BARK262_BLOCK_SHAPES]
    rows = {
        "offline (network + Wiener-EM)": ModelConfig(),
        "offline network, mixture phase": ModelConfig(wiener_iterations=0),
        "realtime": ModelConfig(realtime=True),
    }
    results = []
    print(f"{slices} slices ({args.seconds:g} s of stereo audio), {args.threads} threads")
    print(f"{'model':<34} {'median s':>9} {'min s':>7} {'s per minute':>13}")
    for name, config in rows.items():
        times = time_model(config, blocks, args.repeats)
        per_minute = statistics.median(times) * 60.0 / args.seconds
        results.append(
            {
                "model": name,
                "config": dataclasses.asdict(config),
                "times_s": times,
                "median_s": statistics.median(times),
                "seconds_per_minute": per_minute,
            }
        )
        print(f"{name:<34} {statistics.median(times):>9.3f} {min(times):>7.3f} {per_minute:>13.3f}")
    report = {
        "seconds": args.seconds,
        "slices": slices,
        "threads": args.threads,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "machine": platform.processor() or platform.machine(),
        "results": results,
    }
    write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
