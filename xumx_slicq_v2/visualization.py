"""Plot the sliCQT of an audio file: one PNG per block and one overlap-added spectrogram of the whole file.

python -m xumx_slicq_v2.visualization --input song.wav --out-dir plots/
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._cli import DefaultsHelpFormatter
from .audio import atomic_path, load_audio, resample
from .config import SCALES

if TYPE_CHECKING:  # torch loads after the arguments are parsed
    from .transforms import SliCQT


def block_magnitudes_db(transform: SliCQT, audio: np.ndarray) -> list[np.ndarray]:
    """Overlap-added magnitude of every block in dB, channels averaged: list of ``(F_b, frames_b)``."""
    import torch

    from .transforms import overlap_add

    with torch.inference_mode():
        blocks = transform(torch.as_tensor(audio, dtype=torch.float32))
        return [20 * np.log10(overlap_add(b.abs()).mean(0).numpy() + 1e-9) for b in blocks]


def colour_limits(magnitudes_db: list[np.ndarray], dynamic_range: float) -> tuple[float, float]:
    """Colour range: ``dynamic_range`` dB below the 99.9 % quantile of all coefficients."""
    top = float(np.quantile(np.concatenate([m.ravel() for m in magnitudes_db]), 0.999))
    return top - dynamic_range, top


def plot_spectrogram(
    transform: SliCQT,
    magnitudes_db: list[np.ndarray],
    path: Path,
    title: str,
    cmap: str = "magma",
    dynamic_range: float = 120.0,
) -> None:
    """Whole-signal spectrogram: rows on the transform's (e.g. Bark) axis labelled in Hz, time in seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vmin, vmax = colour_limits(magnitudes_db, dynamic_range)
    fig, ax = plt.subplots(figsize=(12, 6), dpi=120)
    mesh = None
    for (start, stop), (_, coefs), magnitude in zip(
        transform.block_rows, transform.block_shapes, magnitudes_db, strict=True
    ):
        frame_seconds = transform.slice_length / coefs / transform.sample_rate
        time_edges = (np.arange(magnitude.shape[-1] + 1) - 0.5) * frame_seconds
        row_edges = np.arange(start, stop + 1) - 0.5
        mesh = ax.pcolormesh(time_edges, row_edges, magnitude, cmap=cmap, vmin=vmin, vmax=vmax, shading="flat")
    ticks = np.unique(np.linspace(0, transform.num_rows - 1, 12).round().astype(int))
    ax.set_yticks(ticks, [f"{transform.frequencies[t]:.0f}" for t in ticks])
    ax.set_ylabel(f"frequency (Hz, {transform.scale} scale)")
    ax.set_xlabel("time (s)")
    ax.set_title(title)
    fig.colorbar(mesh, ax=ax, label="magnitude (dB)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def plot_block(
    transform: SliCQT,
    index: int,
    magnitude_db: np.ndarray,
    path: Path,
    limits: tuple[float, float],
    cmap: str = "magma",
) -> None:
    """One block: its rows against time, colour in dB."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    freqs = transform.block_frequencies()[index]
    coefs = transform.block_shapes[index][1]
    frame_seconds = transform.slice_length / coefs / transform.sample_rate
    fig, ax = plt.subplots(figsize=(10, 3 + 0.02 * len(freqs)), dpi=100)
    time_edges = (np.arange(magnitude_db.shape[-1] + 1) - 0.5) * frame_seconds
    mesh = ax.pcolormesh(
        time_edges, np.arange(len(freqs) + 1) - 0.5, magnitude_db, cmap=cmap, vmin=limits[0], vmax=limits[1]
    )
    ticks = np.unique(np.linspace(0, len(freqs) - 1, min(len(freqs), 6)).round().astype(int))
    ax.set_yticks(ticks, [f"{freqs[t]:.0f}" for t in ticks])
    ax.set_ylabel("frequency (Hz)")
    ax.set_xlabel("time (s)")
    ax.set_title(f"block {index}: {len(freqs)} rows x {coefs} coefficients per slice")
    fig.colorbar(mesh, ax=ax, label="dB")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Plot the sliCQT of an audio file: one PNG per block and one overlap-added spectrogram "
        "of the whole file (dB colour scale, time in seconds, frequency in Hz).",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--input", required=True, type=Path, help="audio file (any format soundfile reads)")
    parser.add_argument("--out-dir", required=True, type=Path, help="folder for the PNG files")
    parser.add_argument("--scale", default="bark", choices=SCALES, help="frequency scale")
    parser.add_argument("--bins", type=int, default=262, help="frequency bins of the scale")
    parser.add_argument("--fmin", type=float, default=32.9, help="lowest scale frequency (Hz)")
    parser.add_argument("--sample-rate", type=int, default=44100, help="audio is resampled to this rate (Hz)")
    parser.add_argument("--cmap", default="magma", help="matplotlib colour map")
    parser.add_argument("--dynamic-range", type=float, default=120.0, help="colour range in dB")
    parser.add_argument("--no-blocks", action="store_true", help="only the whole-file spectrogram")
    args = parser.parse_args(argv)
    from .transforms import SliCQT

    audio, rate = load_audio(args.input)
    audio = resample(audio, rate, args.sample_rate)
    transform = SliCQT(scale=args.scale, bins=args.bins, fmin=args.fmin, sample_rate=args.sample_rate)
    magnitudes = block_magnitudes_db(transform, audio)
    name = args.input.stem
    spectrogram = args.out_dir / f"{name}-slicqt.png"
    title = f"{name}: sliCQT, {args.scale} scale, {args.bins} bins from {args.fmin:g} Hz"
    plot_spectrogram(transform, magnitudes, spectrogram, title, args.cmap, args.dynamic_range)
    print(f"wrote {spectrogram}")
    if not args.no_blocks:
        limits = colour_limits(magnitudes, args.dynamic_range)
        for index, magnitude in enumerate(magnitudes):
            plot_block(transform, index, magnitude, args.out_dir / f"{name}-block-{index:02d}.png", limits, args.cmap)
        print(f"wrote {len(magnitudes)} block plots to {args.out_dir}")


if __name__ == "__main__":
    main()
