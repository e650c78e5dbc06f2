"""Separation speed and memory: seconds per minute of stereo 44.1 kHz audio and peak RSS, per model and backend.

    python benchmarks/separate.py [--minutes 1 10] [--models offline realtime] \
        [--backends torch-cpu onnx-cpu] [--paths cli memory] [--threads 2]

Models have the released configuration (Bark 262 bins, 70 blocks) with random weights, saved once as
reference-format folders under ``exp/benchmarks/separate_models/`` (the ONNX networks are exported there before
timing, so export time is reported apart). Each case runs in a fresh subprocess so that its peak RSS is its
own: load the `Separator` (default chunking), separate one minute as a warm-up (streamed, output discarded),
then time one separation of the whole input along one of two paths:

- ``cli`` (the default, and the path of the RSS goal): what the command line does for one file
  (`xumx_slicq_v2.inference.separate_track`): decode a 16-bit wav, separate it chunk by chunk and stream the
  four float32 stems into files of a temporary folder as the segments come; the time includes decoding and
  writing.
- ``memory``: the in-memory API, ``separator(audio)`` on a tensor, which holds the whole input and the whole
  four-stem output (847 MB for 10 minutes) on top of the chunk's working memory.

Stage times (sliCQT forward, network, Wiener-EM, inverse sliCQT; the rest is chunking, overlap-add, decoding
and writing) are measured by wrapping those calls. Prints a table and writes JSON (default
``exp/benchmarks/separate.json``).

Goals on 2 CPU cores: offline <= 5 s and realtime <= 2.8 s per minute, peak RSS < 1.5 GB for
10 minutes, onnx-cpu realtime faster than torch-cpu realtime. The reference takes 7.5 s (offline) and 4.3 s
(realtime) per minute with about 2.1 GB peak RSS.

On a machine shared with other work, run with ``OMP_WAIT_POLICY=PASSIVE``: torch's OpenMP threads (libgomp) then
sleep instead of spinning at every parallel region, without which two threads on two busy cores can run 10x
slower. The policy and the load average before and after each case are recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

SAMPLE_RATE = 44100
WARMUP_SECONDS = 60.0  # the chunk shapes of every timed input (chunks of the default length) are seen once
PATHS = ("cli", "memory")
GOALS_S_PER_MIN = {"offline": 5.0, "realtime": 2.8}
GOAL_PEAK_RSS_MB = 1500.0


def prepare_models(folder: Path, models: list[str], backends: list[str]) -> dict[str, float]:
    """Random-weight released-configuration model folders (seed 0), and their ONNX export when an onnx backend
    is asked for. Returns export seconds per model (0 when the cached export was reused)."""
    import torch

    from xumx_slicq_v2.backends import cached_onnx
    from xumx_slicq_v2.checkpoint import load_model, save_model
    from xumx_slicq_v2.model import ModelConfig, build_unmix

    export_seconds = {}
    for name in models:
        model_dir = folder / name
        if not (model_dir / "xumx_slicq_v2.pth").is_file():
            torch.manual_seed(0)
            save_model(model_dir, build_unmix(ModelConfig(realtime=name == "realtime")))
        if any(backend.startswith("onnx") for backend in backends):
            model, _, _ = load_model(model_dir)
            start = time.perf_counter()
            cached_onnx(model, model_dir)
            export_seconds[name] = time.perf_counter() - start
    return export_seconds


class StageTimer:
    """Accumulates wall time of wrapped calls per stage name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, stage: str, function: Callable) -> Callable:
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - start

        return timed


def write_input(folder: Path, minutes: float) -> Path:
    """A 16-bit stereo 44.1 kHz wav of noise at -20 dBFS RMS (seed 0): the ``cli`` path's input."""
    import numpy as np
    import soundfile as sf

    path = folder / f"noise_{minutes:g}min.wav"
    if not path.is_file():
        noise = 0.1 * np.random.default_rng(0).standard_normal((int(minutes * 60 * SAMPLE_RATE), 2), np.float32)
        sf.write(str(path), noise, SAMPLE_RATE, subtype="PCM_16")
    return path


def run_case(
    model_dir: Path, backend: str, minutes: float, threads: int, chunk_seconds: float | None, path: str, input_file
) -> dict:
    """Load, warm up and time one separation inside this process (``path``: ``cli``, reading ``input_file``,
    or ``memory``)."""
    import soundfile as sf
    import torch

    from xumx_slicq_v2 import export, inference, model
    from xumx_slicq_v2.separator import ChunkingConfig, Separator

    torch.set_num_threads(threads)
    load_start = time.perf_counter()
    chunking = ChunkingConfig(chunk_seconds=chunk_seconds) if chunk_seconds else None
    separator = Separator.from_pretrained(str(model_dir), runtime_backend=backend, chunking=chunking)
    load_seconds = time.perf_counter() - load_start
    timer = StageTimer()
    transform = separator.transform
    transform.forward = timer.wrap("forward_slicqt", transform.forward)
    transform.inverse = timer.wrap("inverse_slicqt", transform.inverse)
    separator.network = timer.wrap("network", separator.network)
    # Wiener-EM runs inside the network call (torch) or after the ONNX graph (onnx): time it on its own too
    model.wiener_real = timer.wrap("wiener", model.wiener_real)
    export.wiener_real = timer.wrap("wiener", export.wiener_real)

    generator = torch.Generator().manual_seed(0)
    for _ in separator.stream(0.1 * torch.randn(1, 2, int(WARMUP_SECONDS * SAMPLE_RATE), generator=generator)):
        pass
    timer.seconds.clear()
    if path == "cli":
        with tempfile.TemporaryDirectory(prefix="separate_benchmark_") as out_dir:
            track = inference.Track(Path(input_file), Path(out_dir) / "track")
            start = time.perf_counter()
            result = inference.separate_track(track, separator, inference.OutputOptions())
            seconds = time.perf_counter() - start
            assert result.status == "done", result.messages
            written = [sf.info(str(stem)).frames for stem in track.outputs(inference.OutputOptions()).values()]
        assert written == [int(minutes * 60 * SAMPLE_RATE)] * len(separator.sources), written
    else:
        audio = 0.1 * torch.randn(1, 2, int(minutes * 60 * SAMPLE_RATE), generator=generator)
        start = time.perf_counter()
        stems = separator(audio)
        seconds = time.perf_counter() - start
        assert stems.shape == (1, 4, 2, audio.shape[-1])
    stages = dict(timer.seconds)
    # the network call includes Wiener-EM (offline models) on both backends
    stages["network"] = stages.get("network", 0.0) - stages.get("wiener", 0.0)
    stages["other"] = seconds - sum(stages.values())
    return {
        "seconds": seconds,
        "s_per_min": seconds / minutes,
        "stages_s_per_min": {stage: value / minutes for stage, value in stages.items()},
        "load_s": load_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def load_average() -> float:
    return os.getloadavg()[0]


def run_subprocess(args: argparse.Namespace, name: str, backend: str, minutes: float, path: str, input_file: Path):
    """One case in a fresh Python process (its own peak RSS), with the load average before and after."""
    command = [sys.executable, __file__, "--threads", str(args.threads)]
    if args.chunk_seconds:
        command += ["--chunk-seconds", str(args.chunk_seconds)]
    command += ["--case", str(args.model_folder / name), backend, str(minutes), path, str(input_file)]
    load_before = load_average()
    process = subprocess.run(command, capture_output=True, text=True)
    if process.returncode != 0:
        sys.exit(f"case {name} {backend} {path} {minutes} min failed:\n{process.stderr}")
    result = json.loads(process.stdout.strip().splitlines()[-1])
    result.update(model=name, backend=backend, path=path, minutes=minutes)
    result["load_average"] = [round(load_before, 2), round(load_average(), 2)]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0], help="input lengths")
    parser.add_argument("--models", nargs="+", default=["offline", "realtime"], choices=("offline", "realtime"))
    parser.add_argument("--backends", nargs="+", default=["torch-cpu", "onnx-cpu"], help="runtime backends")
    parser.add_argument(
        "--paths", nargs="+", default=["cli"], choices=PATHS, help="cli (streamed to files; default) and/or memory"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch (and ONNX Runtime) intra-op threads")
    parser.add_argument("--chunk-seconds", type=float, default=None, help="default: the Separator's default")
    parser.add_argument("--model-folder", type=Path, default=Path("exp/benchmarks/separate_models"))
    parser.add_argument("--output", type=Path, default=Path("exp/benchmarks/separate.json"))
    parser.add_argument(
        "--case", nargs=5, metavar=("MODEL_DIR", "BACKEND", "MINUTES", "PATH", "INPUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()

    if args.case:
        model_dir, backend, minutes, path, input_file = args.case
        print(
            json.dumps(
                run_case(Path(model_dir), backend, float(minutes), args.threads, args.chunk_seconds, path, input_file)
            )
        )
        return

    from xumx_slicq_v2.audio import write_text_atomic

    export_seconds = prepare_models(args.model_folder, args.models, args.backends)
    results = []
    with tempfile.TemporaryDirectory(prefix="separate_benchmark_inputs_") as inputs:
        for minutes in args.minutes:
            input_file = write_input(Path(inputs), minutes) if "cli" in args.paths else Path("-")
            for name in args.models:
                for backend in args.backends:
                    for path in args.paths:
                        result = run_subprocess(args, name, backend, minutes, path, input_file)
                        results.append(result)
                        stages = ", ".join(f"{k} {v:.2f}" for k, v in result["stages_s_per_min"].items())
                        print(
                            f"{name:8s} {backend:9s} {path:6s} {minutes:5.1f} min: {result['s_per_min']:6.2f} s/min, "
                            f"peak RSS {result['peak_rss_mb']:6.0f} MB (load {result['load_average'][0]:.1f}); "
                            f"{stages}",
                            flush=True,
                        )

    print("\n| model | backend | path | minutes | s per minute | goal | peak RSS (MB) | load avg (before, after) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        load = ", ".join(str(value) for value in r["load_average"])
        print(
            f"| {r['model']} | {r['backend']} | {r['path']} | {r['minutes']:g} | {r['s_per_min']:.2f} | "
            f"<= {GOALS_S_PER_MIN[r['model']]} | {r['peak_rss_mb']:.0f} | {load} |"
        )
    import onnxruntime
    import torch

    report = {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "threads": args.threads,
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "(default)"),
        },
        "chunk_seconds": args.chunk_seconds or "separator default",
        "goals": {"s_per_min": GOALS_S_PER_MIN, "peak_rss_mb_10min": GOAL_PEAK_RSS_MB, "rss_goal_path": "cli"},
        "onnx_export_s": export_seconds,
        "results": results,
    }
    write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
