"""Spectrograms of the four stems of one track folder, in one PNG.

python -m data_prep.plot data/demo/cad1/task1/audio/musdb18hq/train/<Track Name> --out song.png
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from data_prep.config import STEMS
from xumx_slicq_v2.audio import atomic_path, load_audio

#: STFT of the plot: window length and hop in samples; colour range in dB below the loudest bin.
WINDOW = 2048
HOP = 512
DYNAMIC_RANGE_DB = 90.0


def spectrogram_db(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Power spectrogram in dB of the channel mean of ``audio`` ``(channels, samples)``.

    Returns ``(frequencies_hz, times_s, power_db)`` with ``power_db`` of shape ``(frequencies, frames)``.
    """
    import scipy.signal

    frequencies, times, power = scipy.signal.spectrogram(
        audio.mean(axis=0), fs=sample_rate, window="hann", nperseg=WINDOW, noverlap=WINDOW - HOP, mode="psd"
    )
    return frequencies, times, 10.0 * np.log10(power + 1e-20)


def plot_stems(song_dir: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Draw the spectrograms of ``bass, drums, other, vocals`` of ``song_dir`` into the PNG ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    song_dir, out = Path(song_dir), Path(out)
    missing = [stem for stem in STEMS if not (song_dir / f"{stem}.wav").is_file()]
    if missing:
        raise FileNotFoundError(f"{song_dir}: missing stem files {', '.join(m + '.wav' for m in missing)}")
    spectra = {}
    for stem in STEMS:
        audio, sample_rate = load_audio(song_dir / f"{stem}.wav")
        spectra[stem] = spectrogram_db(audio, sample_rate)
    top = max(float(power.max()) for _, _, power in spectra.values())
    figure, axes = plt.subplots(len(STEMS), 1, figsize=(12, 10), sharex=True, constrained_layout=True)
    for axis, stem in zip(axes, STEMS):
        frequencies, times, power = spectra[stem]
        image = axis.pcolormesh(
            times, frequencies, power, shading="auto", cmap="magma", vmin=top - DYNAMIC_RANGE_DB, vmax=top
        )
        axis.set_yscale("symlog", linthresh=200.0)
        axis.set_ylim(20.0, frequencies[-1])
        axis.set_ylabel("frequency (Hz)")
        axis.set_title(stem, loc="left")
    axes[-1].set_xlabel("time (s)")
    figure.colorbar(image, ax=axes, label="power (dB)")
    figure.suptitle(song_dir.name)
    with atomic_path(out) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.plot",
        description="Draw the spectrograms (dB colour, time in s, frequency in Hz) of the four stems "
        "bass, drums, other and vocals of one MUSDB18-HQ track folder into one PNG.",
    )
    parser.add_argument("song_dir", type=Path, help="track folder holding bass.wav, drums.wav, other.wav, vocals.wav")
    parser.add_argument(
        "--out", type=Path, default=None, help="PNG to write (default: ./<track folder name>.spectrograms.png)"
    )
    args = parser.parse_args(argv)
    out = args.out or Path(f"{args.song_dir.resolve().name}.spectrograms.png")
    try:
        print(plot_stems(args.song_dir, out))
    except (FileNotFoundError, OSError) as err:
        raise SystemExit(str(err)) from err


if __name__ == "__main__":
    main()
