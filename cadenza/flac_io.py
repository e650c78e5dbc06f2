"""The recipe's output files, written atomically with pyclarity's signal utilities.

Stems: resampled (soxr HQ), divided by their peak, 16-bit FLAC, the peak written beside them as ``.txt``
(pyclarity ``read_flac_signal`` re-applies it). Remix: resampled, soft-clipped (tanh) then clipped to [-1, 1],
16-bit FLAC. These are the semantics of pyclarity's ``save_flac_signal``, except that files appear atomically
and a silent stem gets scale 1.0 instead of a division by zero.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from xumx_slicq_v2.audio import atomic_path, write_text_atomic

log = logging.getLogger(__name__)


class EnhancedFileError(RuntimeError):
    """An enhanced FLAC or its scale file is missing or unusable (the message names the file)."""


def _write_flac(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Encode int16 ``samples`` (``(samples,)`` or ``(samples, channels)``) to ``path`` atomically."""
    from clarity.utils.flac_encoder import FlacEncoder

    with atomic_path(path) as tmp:
        FlacEncoder().encode(samples, int(sample_rate), tmp)


def write_scaled_stem(path: str | Path, signal: np.ndarray, signal_rate: int, output_rate: int) -> float:
    """Write a mono stem ``(samples,)`` at ``output_rate`` as peak-normalised 16-bit FLAC + ``.txt`` scale.

    Returns the scale written (the peak after resampling; 1.0 for a silent stem).
    """
    from clarity.utils.signal_processing import resample, to_16bit

    path = Path(path)
    resampled = resample(np.asarray(signal), signal_rate, output_rate)
    peak = float(np.max(np.abs(resampled))) if resampled.size else 0.0
    scale = peak if peak > 0.0 else 1.0
    _write_flac(path, to_16bit(resampled / scale), output_rate)
    write_text_atomic(path.with_suffix(".txt"), f"{scale}")
    return scale


def write_clipped_remix(
    path: str | Path, signal: np.ndarray, signal_rate: int, output_rate: int, soft_clip: bool
) -> int:
    """Write a stereo remix ``(2, samples)`` at ``output_rate`` as 16-bit FLAC, (tanh then) clipped to [-1, 1].

    Returns the number of samples that had to be hard-clipped (0 with ``soft_clip``).
    """
    from clarity.utils.signal_processing import clip_signal, resample, to_16bit

    resampled = resample(np.ascontiguousarray(np.asarray(signal).T), signal_rate, output_rate)
    clipped, n_clipped = clip_signal(resampled, soft_clip)
    if n_clipped:
        log.warning("%s: %d samples clipped", path, n_clipped)
    _write_flac(Path(path), to_16bit(clipped), output_rate)
    return n_clipped


def read_enhanced(path: str | Path, sample_rate: int) -> np.ndarray:
    """An enhanced FLAC (with its ``.txt`` scale if present) as float32 ``(samples,)`` or ``(samples, channels)``.

    Raises :class:`EnhancedFileError` if the file is missing, undecodable, or not at ``sample_rate`` Hz.
    """
    from clarity.utils.flac_encoder import read_flac_signal

    path = Path(path)
    if not path.is_file():
        raise EnhancedFileError(f"{path}: no such file (run python -m cadenza.enhance with the same settings first)")
    try:
        signal, rate = read_flac_signal(path)
    except ValueError as err:
        raise EnhancedFileError(f"{path.with_suffix('.txt')}: not a scale value ({err})") from err
    except Exception as err:  # pyflac and soundfile raise several types
        raise EnhancedFileError(f"{path}: cannot decode FLAC ({err})") from err
    if int(rate) != int(sample_rate):
        raise EnhancedFileError(f"{path}: sample rate {rate:g} Hz, expected {sample_rate} Hz")
    return signal
