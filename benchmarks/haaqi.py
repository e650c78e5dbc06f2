"""HAAQI cost: pyclarity 0.9.0's ``compute_haaqi`` and ours (``cadenza.haaqi``) side by side, one thread.

Each (engine, duration) is measured in a fresh interpreter with OMP/MKL/OPENBLAS/NUMBA threads set to 1: a warm-up
call on 1 s of audio (imports, numba's cached kernels), then one timed call on a mono 24 kHz music-like reference
and a noisy, low-passed processed signal (moderate loss, equalisation 1, numpy seeded as the recipe does). Reported:
CPU seconds of the call per second of audio, the ratio pyclarity / ours, the peak RSS of the process (warm-up and
imports included), and whether the two scores are equal bit for bit. Then the projected wall time of a full CAD1
validation evaluation: 14 songs x 50 listeners x 10 calls on 4-minute songs, on ``--cores`` cores, with as many
workers as the cores and ``--memory-gb`` allow (the peak RSS at 240 s: measured, or extrapolated on the line through
the two longest runs).

    python benchmarks/haaqi.py                          # 10, 60 and 240 s (240 s pyclarity: ~12 GB, minutes)
    python benchmarks/haaqi.py --durations 10 60 --cores 16 --memory-gb 64

Prints a table and writes ``exp/benchmarks/haaqi.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent

ENGINES = ("pyclarity", "fast")

#: The CAD1 validation evaluation: songs, listeners, HAAQI calls per pair, seconds per song.
CAD1_VALID = {"songs": 14, "listeners": 50, "calls_per_pair": 10, "song_seconds": 240.0}

SINGLE_THREAD = {
    name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")
}

RATE = 24000


def signals(seconds: float, seed: int = 0):
    """``(reference, processed)``, ``(samples,)`` float64 at :data:`RATE`: chord, noise bursts and a vibrato
    tone; processed = low-passed (4 kHz) reference plus noise at about 25 dB SNR."""
    import numpy as np
    from scipy.signal import butter, lfilter

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    chord = sum(np.sin(2 * np.pi * f * t + rng.random()) for f in (196.0, 246.9, 293.7)) * np.exp(-8 * (t % 0.5))
    drums = rng.standard_normal(t.size) * np.exp(-40 * (t % 0.25)) * 0.3
    voice = 0.2 * np.sin(2 * np.pi * 440 * t + 4 * np.sin(2 * np.pi * 5 * t))
    reference = 0.1 * (chord + drums + voice)
    b, a = butter(4, 4000 / (RATE / 2))
    processed = lfilter(b, a, reference) + 0.006 * rng.standard_normal(t.size)
    return reference, processed


def measure(engine: str, seconds: float) -> dict:
    """One timed call of ``engine`` on ``seconds`` of audio in this process (after a 1 s warm-up call)."""
    import resource
    import time

    import numpy as np
    from clarity.utils.audiogram import Audiogram

    if engine == "pyclarity":
        from clarity.evaluator.haaqi import compute_haaqi
    else:
        from cadenza.haaqi import compute_haaqi
    audiogram = Audiogram(
        levels=[25, 30, 35, 45, 50, 55, 60, 65], frequencies=[250, 500, 1000, 2000, 3000, 4000, 6000, 8000]
    )

    def call(reference, processed):
        np.random.seed(12345678)  # noqa: NPY002 (HAAQI draws from the global generator)
        level1 = 65 - 20 * np.log10(np.sqrt(np.mean(reference**2)))
        return compute_haaqi(processed, reference, RATE, RATE, audiogram, 1, level1)

    call(*signals(1.0, seed=1))
    reference, processed = signals(seconds)
    start = time.process_time()
    score = call(reference, processed)
    cpu = time.process_time() - start
    return {
        "engine": engine,
        "seconds": seconds,
        "cpu_s": cpu,
        "cpu_s_per_audio_s": cpu / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "score": score,
    }


def measure_in_subprocess(engine: str, seconds: float) -> dict:
    env = {**os.environ, **SINGLE_THREAD}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY), env.get("PYTHONPATH")]))
    command = [sys.executable, __file__, "--measure", engine, str(seconds)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPOSITORY)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def peak_gb_at(runs: list[dict], seconds: float) -> tuple[float, str]:
    """Peak RSS (GB) at ``seconds`` of audio: measured, or extrapolated on the line through the two longest runs
    (one run: proportional); with how it was obtained."""
    for r in runs:
        if r["seconds"] == seconds:
            return r["peak_rss_mb"] / 1024, "measured"
    if len(runs) == 1:
        r = runs[0]
        return r["peak_rss_mb"] / 1024 * seconds / r["seconds"], f"scaled from {r['seconds']:g} s"
    a, b = runs[-2], runs[-1]
    slope = (b["peak_rss_mb"] - a["peak_rss_mb"]) / (b["seconds"] - a["seconds"])
    peak = b["peak_rss_mb"] + slope * (seconds - b["seconds"])
    return peak / 1024, f"extrapolated from {a['seconds']:g} and {b['seconds']:g} s"


def projection(results: list[dict], engine: str, cores: int, memory_gb: float) -> dict:
    """Wall hours of the CAD1 validation evaluation with ``engine`` on ``cores`` cores and ``memory_gb``: CPU time
    at the longest run's CPU-s per audio-s, as many single-thread workers as cores and memory allow."""
    runs = sorted((r for r in results if r["engine"] == engine), key=lambda r: r["seconds"])
    song = CAD1_VALID["song_seconds"]
    peak_gb, memory_from = peak_gb_at(runs, song)
    workers = max(1, min(cores, int(memory_gb // peak_gb)))
    calls = CAD1_VALID["songs"] * CAD1_VALID["listeners"] * CAD1_VALID["calls_per_pair"]
    cpu_hours = calls * song * runs[-1]["cpu_s_per_audio_s"] / 3600
    return {
        "cpu_hours": cpu_hours,
        "cpu_from_seconds": runs[-1]["seconds"],
        "peak_gb_per_worker": peak_gb,
        "memory_from": memory_from,
        "workers": workers,
        "wall_hours": cpu_hours / workers,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--durations", type=float, nargs="+", default=[10.0, 60.0, 240.0], help="seconds")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--cores", type=int, default=os.cpu_count(), help="cores of the projection (default: here)")
    parser.add_argument("--memory-gb", type=float, default=None, help="memory of the projection (default: here)")
    parser.add_argument("--out", type=Path, default=REPOSITORY / "exp" / "benchmarks")
    parser.add_argument("--measure", nargs=2, metavar=("ENGINE", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:  # benchmarks/cadenza.py would shadow the cadenza package
        here = Path(__file__).resolve().parent
        sys.path[:] = [str(REPOSITORY)] + [p for p in sys.path if Path(p or ".").resolve() != here]
        print(json.dumps(measure(args.measure[0], float(args.measure[1]))))
        return
    memory_gb = args.memory_gb or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30

    results = []
    for seconds in args.durations:
        for engine in args.engines:
            results.append(measure_in_subprocess(engine, seconds))
            r = results[-1]
            print(f"  {engine:>9} {seconds:>6g} s: {r['cpu_s']:.1f} CPU-s, {r['peak_rss_mb']:.0f} MB", flush=True)

    print(f"\n{'audio s':>8}  {'engine':>9}  {'CPU-s/audio-s':>13}  {'ratio':>6}  {'peak RSS MB':>11}  same score")
    for seconds in args.durations:
        row = {r["engine"]: r for r in results if r["seconds"] == seconds}
        for engine in args.engines:
            r = row[engine]
            ratio = same = ""
            if engine == "fast" and "pyclarity" in row:
                ratio = f"{row['pyclarity']['cpu_s'] / r['cpu_s']:.1f}x"
                same = (
                    "yes"
                    if r["score"] == row["pyclarity"]["score"]
                    else f"no ({r['score'] - row['pyclarity']['score']:.1e})"
                )
            print(
                f"{seconds:>8g}  {engine:>9}  {r['cpu_s_per_audio_s']:>13.3f}  {ratio:>6}  "
                f"{r['peak_rss_mb']:>11.0f}  {same}"
            )

    projections = {engine: projection(results, engine, args.cores, memory_gb) for engine in args.engines}
    print(
        f"\nCAD1 validation evaluation ({CAD1_VALID['songs']} songs x {CAD1_VALID['listeners']} listeners x "
        f"{CAD1_VALID['calls_per_pair']} calls, {CAD1_VALID['song_seconds']:g} s songs) on {args.cores} cores, "
        f"{memory_gb:.0f} GB:"
    )
    for engine, p in projections.items():
        print(
            f"  {engine:>9}: {p['cpu_hours']:.1f} CPU-h, "
            f"{p['peak_gb_per_worker']:.1f} GB per worker ({p['memory_from']}), "
            f"{p['workers']} worker(s): {p['wall_hours']:.1f} h wall"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    output = args.out / "haaqi.json"
    record = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "threads": 1,
        "sample_rate": RATE,
        "results": results,
        "projection": {"cores": args.cores, "memory_gb": memory_gb, **CAD1_VALID, "engines": projections},
    }
    output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nwritten {output}")


if __name__ == "__main__":
    main()
