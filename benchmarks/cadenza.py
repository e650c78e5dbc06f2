"""Wall time of the Cadenza recipe per song-listener pair, with 1 and 2 workers; separation timed on its own.

Runs the documented command lines (``python -m cadenza.<step>``; several workers = hydra multirun with the
``cadenza_local`` joblib launcher, ``evaluate.batch=0..W-1 evaluate.batch_size=W``) in a fresh exp folder:

1. ``cadenza.demix``: each song separated once (the cost paid once per song, not per pair);
2. ``cadenza.enhance`` with each worker count (outputs removed between counts; the stem cache is kept);
3. ``cadenza.evaluate`` likewise, one process per shard (``evaluate.jobs=1``; HAAQI dominates: 10 calls per pair,
   ~0.15 CPU-s per second of audio with ``evaluate.haaqi=fast``, ~1 with ``pyclarity``);
4. a re-run of enhance with everything complete: the fixed cost of starting a command (imports, hydra).

Prints a table and writes ``exp/benchmarks/cadenza.json``. On the demo dataset (3 songs x 4 listeners, 20 s songs)
evaluate takes a few minutes of CPU per worker count (pyclarity's HAAQI: about half an hour); ``--listeners 1`` or
``--small-test`` shorten it.

    python benchmarks/cadenza.py                                   # oracle separator (no weights needed)
    python benchmarks/cadenza.py --separator xumx_slicq_v2 --weights demo --workers 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent


def run_step(step: str, overrides: list[str], workers: int) -> float:
    """Run ``python -m cadenza.<step>`` (multirun over ``workers`` batches when > 1); returns wall seconds."""
    command = [sys.executable, "-m", f"cadenza.{step}"]
    if workers > 1:  # --multirun before the overrides: hydra's parser takes no flag after them
        batches = ",".join(str(b) for b in range(workers))
        command += [
            "--multirun",
            f"evaluate.batch={batches}",
            f"evaluate.batch_size={workers}",
            "hydra/launcher=cadenza_local",
            f"hydra.launcher.n_jobs={workers}",
        ]
    command += overrides
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return seconds


def remove_outputs(exp: Path, step: str) -> None:
    """Forget the results of ``step`` so that it runs again in full (the stem cache stays)."""
    if step == "enhance":
        for folder in ("enhanced_signals", "progress"):
            shutil.rmtree(exp / folder, ignore_errors=True)
    for path in [*exp.glob("scores*.csv"), exp / "report.json", exp / "report.png"]:
        path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=None, help="CAD1 task-1 root (default: the demo dataset)")
    parser.add_argument("--separator", default="oracle", help="separator.model (default: oracle)")
    parser.add_argument("--weights", default="demo", help="separator.weights (default: demo)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default: 1 2)")
    parser.add_argument("--listeners", type=int, default=None, help="use only the first N listeners")
    parser.add_argument("--small-test", action="store_true", help="evaluate.small_test=true (every 15th pair)")
    parser.add_argument("--out", type=Path, default=REPOSITORY / "exp" / "benchmarks")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPOSITORY))
    from cadenza.config import compose_config
    from cadenza.plan import RunPlan

    exp = args.out / "cadenza_run"
    shutil.rmtree(exp, ignore_errors=True)
    overrides = [
        f"separator.model={args.separator}",
        f"separator.weights={args.weights}",
        f"path.exp_folder={exp}",
        f"evaluate.small_test={str(args.small_test).lower()}",
        "evaluate.jobs=1",  # the workers are the shards
    ]
    if args.root is not None:
        overrides.append(f"path.root={args.root}")
    cfg = compose_config(overrides)
    if args.listeners is not None:
        listener_ids = list(json.loads(Path(cfg.path.listeners_file).read_text()))[: args.listeners]
        overrides.append(f"evaluate.listeners=[{','.join(listener_ids)}]")
        cfg = compose_config(overrides)
    plan = RunPlan.from_config(cfg)
    songs = sorted({song.name for song, _ in plan.pairs})
    import soundfile as sf

    seconds_per_song = [
        sf.info(song.folder(cfg.path.music_dir) / "mixture.wav").duration for song in plan.songs if song.name in songs
    ]
    pairs = len(plan.pairs)
    results: dict = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "data": str(Path(cfg.path.root).resolve()),
        "separator": {"model": args.separator, "weights": args.weights},
        "songs": len(songs),
        "pairs": pairs,
        "audio_seconds_per_song": seconds_per_song,
    }
    print(f"{pairs} pair(s), {len(songs)} song(s) of {seconds_per_song} s, separator {args.separator}")
    demix = run_step("demix", overrides, 1)
    results["demix"] = {"wall_s": demix, "per_song_s": demix / len(songs)}
    for step in ("enhance", "evaluate"):  # evaluate scores the files of the last enhance run
        results[step] = {}
        for workers in args.workers:
            remove_outputs(exp, step)
            wall = run_step(step, overrides, workers)
            results[step][str(workers)] = {"wall_s": wall, "per_pair_s": wall / pairs}
            print(f"  {step} with {workers} worker(s): {wall:.1f} s, {wall / pairs:.2f} s per pair")
    results["startup_s"] = run_step("enhance", overrides, 1)  # every pair complete: only the fixed cost

    rows = [("demix (once per song)", f"{demix:.1f}", f"{demix / len(songs):.2f} per song")]
    for step in ("enhance", "evaluate"):
        for workers, entry in results[step].items():
            rows.append(
                (f"{step}, {workers} worker(s)", f"{entry['wall_s']:.1f}", f"{entry['per_pair_s']:.2f} per pair")
            )
    rows.append(("command start-up (all pairs done)", f"{results['startup_s']:.1f}", ""))
    width = max(len(r[0]) for r in rows)
    print(f"\n{'step':<{width}}  {'wall s':>8}  per unit")
    for name, wall, unit in rows:
        print(f"{name:<{width}}  {wall:>8}  {unit}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cadenza.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten {args.out / 'cadenza.json'}")


if __name__ == "__main__":
    main()
