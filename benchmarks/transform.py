"""sliCQT speed and memory: forward and inverse of stereo 44.1 kHz audio (Bark 262 bins from 32.9 Hz).

    python benchmarks/transform.py [--durations 30 300] [--devices cpu cuda] [--threads 2]

Each case runs in a fresh subprocess so that its peak RSS is its own. Prints a table and writes JSON
(default ``exp/benchmarks/transform.json``). Goal: forward + inverse of 30 s stereo under 0.2 s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path


def run_case(duration: float, device: str, threads: int, repeats: int) -> dict:
    """Time forward and inverse (best of ``repeats`` after one warm-up) inside this process."""
    import torch

    from xumx_slicq_v2.transforms import SliCQT

    torch.set_num_threads(threads)
    transform = SliCQT().to(device)
    audio = torch.randn(1, 2, int(duration * 44100), device=device)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    forward_times, inverse_times = [], []
    with torch.inference_mode():
        for _ in range(repeats + 1):
            sync()
            start = time.perf_counter()
            blocks = transform(audio)
            sync()
            middle = time.perf_counter()
            signal = transform.inverse(blocks, audio.shape[-1])
            sync()
            forward_times.append(middle - start)
            inverse_times.append(time.perf_counter() - middle)
            del blocks
        error = float((signal - audio).norm() / audio.norm())
    result = {
        "duration_s": duration,
        "device": device,
        "threads": threads,
        "forward_s": min(forward_times[1:]),
        "inverse_s": min(inverse_times[1:]),
        "relative_error": error,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mb": base_rss,
    }
    if device.startswith("cuda"):
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    result["total_s"] = result["forward_s"] + result["inverse_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--durations", type=float, nargs="+", default=[30.0, 300.0], help="seconds of audio")
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=Path("exp/benchmarks/transform.json"))
    parser.add_argument("--case", nargs=2, metavar=("DURATION", "DEVICE"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.case:
        print(json.dumps(run_case(float(args.case[0]), args.case[1], args.threads, args.repeats)))
        return

    devices = args.devices
    if devices is None:
        import torch

        devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    results = []
    for device in devices:
        for duration in args.durations:
            command = [sys.executable, __file__, "--case", str(duration), device, "--threads", str(args.threads),
                       "--repeats", str(args.repeats)]  # fmt: skip
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results.append(json.loads(output.strip().splitlines()[-1]))

    header = f"{'device':<6} {'audio':>7} {'forward':>9} {'inverse':>9} {'total':>9} {'peak RSS':>10} {'rel. err':>9}"
    print(header)
    print("-" * len(header))
    for r in results:
        memory = f"{r['peak_cuda_mb']:.0f} MB GPU" if "peak_cuda_mb" in r else f"{r['peak_rss_mb']:.0f} MB"
        print(f"{r['device']:<6} {r['duration_s']:>6.0f}s {r['forward_s']:>8.3f}s {r['inverse_s']:>8.3f}s "
              f"{r['total_s']:>8.3f}s {memory:>10} {r['relative_error']:>9.1e}")  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.processor() or platform.machine(), "python": platform.python_version()}
    args.output.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
