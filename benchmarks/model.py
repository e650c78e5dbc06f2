"""Benchmark the network alone (no sliCQT) on the block shapes of a stereo input.

Random weights (eval mode, inference mode) and random complex blocks of the released Bark 262 sliCQT's block
shapes with the slice count a ``--seconds`` long input gives. Rows: the offline model (network + Wiener-EM), the
realtime model (network + mixture phase) and Wiener-EM alone on the offline model's inputs. Each row reports
wall-clock and process CPU seconds (median of ``--repeats`` calls after one warm-up call) and the wall time
scaled to one minute of audio, for each ``--threads`` count. Prints a table and writes JSON (default
``exp/benchmarks/model.json``).

    .venv/bin/python benchmarks/model.py --seconds 60 --threads 1 2

On a machine shared with other jobs, wall time includes waiting for the CPU. With 2 threads and a busy second
core it is far worse: OpenMP threads spin at every parallel region until the descheduled one arrives (10x
slower runs were measured); ``OMP_WAIT_POLICY=PASSIVE`` in the environment avoids that.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

#: glibc ``mallopt`` parameters: keep freed memory in the process instead of returning it to the kernel.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def slices_for(samples: int, slice_length: int) -> int:
    """Slices per block the transform gives for ``samples`` samples (slices hop by half a slice)."""
    return (math.ceil(samples / (slice_length // 4)) + 1) // 2 + 1


def keep_freed_memory() -> None:
    """Serve large tensors from the heap and never trim it (first-touch page faults are expensive in VMs)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024)
    libc.mallopt(M_TRIM_THRESHOLD, 1 << 40)


def measure(call: Callable[[], object], repeats: int) -> dict[str, object]:
    """Wall and CPU seconds of ``repeats`` calls after one warm-up call."""
    call()
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"wall_s": walls, "cpu_s": cpus, "median_wall_s": statistics.median(walls),
            "median_cpu_s": statistics.median(cpus)}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="input duration in seconds (44.1 kHz)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch intra-op thread counts")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per row (after one warm-up)")
    parser.add_argument("--keep-freed-memory", action="store_true", help="tune glibc malloc (see keep_freed_memory)")
    parser.add_argument("--output", type=Path, default=REPO / "exp" / "benchmarks" / "model.json")
    args = parser.parse_args(argv)
    import torch

    from xumx_slicq_v2.audio import write_text_atomic
    from xumx_slicq_v2.model import ModelConfig, Unmix
    from xumx_slicq_v2.transforms import SliCQT
    from xumx_slicq_v2.wiener import wiener_real

    if args.keep_freed_memory:
        keep_freed_memory()
    torch.manual_seed(0)
    config = ModelConfig()
    transform = SliCQT(**config.transform_kwargs())
    shapes = transform.block_shapes
    slices = slices_for(round(args.seconds * config.sample_rate), transform.slice_length)
    blocks = [torch.randn(1, 2, freq, slices, coefs, dtype=torch.complex64) for freq, coefs in shapes]
    offline = Unmix(config, shapes).eval()
    realtime = Unmix(dataclasses.replace(config, realtime=True), shapes).eval()
    with torch.inference_mode():
        wiener_inputs = [
            (masks.flatten(-2) * block.abs().flatten(-2)[:, None], torch.view_as_real(block).flatten(-3, -2))
            for masks, block in zip(offline(blocks, return_masks=True)[1], blocks, strict=True)
        ]
    rows = {
        "offline (network + Wiener-EM)": lambda: offline(blocks),
        "realtime (network + mixture phase)": lambda: realtime(blocks),
        "Wiener-EM alone": lambda: [wiener_real(magnitude, mix) for magnitude, mix in wiener_inputs],
    }
    print(f"{slices} slices ({args.seconds:g} s of stereo audio), load average {os.getloadavg()[0]:.1f}")
    print(f"{'row':<36} {'threads':>7} {'wall s':>8} {'cpu s':>8} {'wall s per minute':>18}")
    results = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for name, call in rows.items():
            with torch.inference_mode():
                result = {"row": name, "threads": threads, **measure(call, args.repeats)}
            result["wall_s_per_minute"] = result["median_wall_s"] * 60.0 / args.seconds
            results.append(result)
            print(f"{name:<36} {threads:>7} {result['median_wall_s']:>8.3f} {result['median_cpu_s']:>8.3f} "
                  f"{result['wall_s_per_minute']:>18.3f}")  # fmt: skip
    report = {
        "seconds": args.seconds,
        "slices": slices,
        "keep_freed_memory": args.keep_freed_memory,
        "environment": {
            name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
        },
        "load_average_1min": os.getloadavg()[0],
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "results": results,
    }
    write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
