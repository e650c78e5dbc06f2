"""Audio I/O at the edges: soundfile for reading/writing, soxr for resampling, atomic writes.

Arrays are channels-first everywhere: ``(channels, samples)`` float32 in [-1, 1] full scale.
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

#: File extensions picked up when a folder is given as input.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".opus", ".m4a")

#: soundfile subtype per ``bits`` setting.
SUBTYPES = {"16": "PCM_16", "24": "PCM_24", "float": "FLOAT"}


class AudioError(RuntimeError):
    """An audio file could not be read or has an unusable format (the message names the file)."""


def first_nonfinite(audio: np.ndarray) -> tuple[int, ...] | None:
    """Index of the earliest NaN or infinite sample of ``audio`` ``(..., samples)``, or ``None`` if all are finite.

    "Earliest" is along the last (time) axis; among the rows bad at that sample, the first. The index has one
    entry per axis (e.g. ``(channel, sample)``).
    """
    audio = np.asarray(audio)
    if audio.size == 0 or np.isfinite(audio).all():
        return None
    bad = ~np.isfinite(audio.reshape(-1, audio.shape[-1]))
    sample = int(bad.any(axis=0).argmax())
    row = int(bad[:, sample].argmax())
    return (*(int(i) for i in np.unravel_index(row, audio.shape[:-1])), sample)


def check_finite(audio: np.ndarray, where: str, sample_rate: float | None = None, offset: int = 0) -> None:
    """Raise ``ValueError`` naming ``where``, the first non-finite sample and its channel, if ``audio``
    ``(channels, samples)`` (or ``(samples,)``, or ``(batch, channels, samples)``) holds NaN or infinity.

    ``offset``: index in the file of ``audio``'s first sample (e.g. after a ``--start``), added to the sample index.
    """
    index = first_nonfinite(audio)
    if index is None:
        return
    *rows, sample = index
    value = np.asarray(audio)[tuple(index)]
    position = f"sample {sample + offset}"
    if sample_rate:
        position += f" ({(sample + offset) / sample_rate:.3f} s)"
    shape = np.shape(audio)
    where_in = []
    if len(rows) == 2:
        where_in.append(f"batch item {rows[0]}")
    if rows:
        where_in.append(f"channel {rows[-1] + 1} of {shape[-2]}")
    raise ValueError(f"{where}: non-finite audio: the first is {value} at {', '.join([position, *where_in])}")


def audio_info(path: str | os.PathLike) -> sf._SoundFileInfo:
    """soundfile metadata (samplerate, channels, frames, subtype) with a clear error on failure."""
    try:
        return sf.info(str(path))
    except Exception as err:  # soundfile raises several exception types
        raise AudioError(f"{path}: cannot read audio file ({err})") from err


def load_audio(
    path: str | os.PathLike,
    start: float = 0.0,
    duration: float | None = None,
    dtype: str = "float32",
) -> tuple[np.ndarray, int]:
    """Read an audio file.

    Args:
        path: any format libsndfile decodes (wav, flac, ogg, mp3, ...).
        start: offset in seconds.
        duration: seconds to read; ``None`` reads to the end.

    Returns:
        ``(audio, sample_rate)`` with ``audio`` of shape ``(channels, samples)``.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    info = audio_info(path)
    first = round(start * info.samplerate)
    if first < 0 or (info.frames > 0 and first >= info.frames):
        raise AudioError(f"{path}: start {start} s is outside the file ({info.frames / info.samplerate:.2f} s)")
    frames = -1 if duration is None else max(round(duration * info.samplerate), 0)
    try:
        audio, sample_rate = sf.read(str(path), start=first, frames=frames, dtype=dtype, always_2d=True)
    except Exception as err:
        raise AudioError(f"{path}: cannot decode audio ({err})") from err
    return np.ascontiguousarray(audio.T), int(sample_rate)


#: Samples per call of a soxr resampling stream (`resample` with ``block``).
RESAMPLE_BLOCK = 1 << 16


def resample(
    audio: np.ndarray, sample_rate: float, target_rate: float, quality: str = "HQ", block: int | None = None
) -> np.ndarray:
    """Resample along the last axis with soxr; ``audio`` is ``(..., samples)``. Identity if rates match.

    ``block``: resample through one soxr stream, ``block`` samples at a time (e.g. `RESAMPLE_BLOCK`): the same
    samples, holding only the input and the output instead of transposed copies of the whole signal.
    """
    if sample_rate == target_rate:
        return audio
    flat = audio.reshape(-1, audio.shape[-1])
    if block is None:
        out = np.asarray(soxr.resample(np.ascontiguousarray(flat.T), sample_rate, target_rate, quality=quality))
        return np.ascontiguousarray(out.T, dtype=audio.dtype).reshape(*audio.shape[:-1], out.shape[0])
    channels, length = flat.shape
    stream = soxr.ResampleStream(sample_rate, target_rate, channels, str(audio.dtype), quality)
    out = np.empty((channels, math.ceil(length * target_rate / sample_rate)), audio.dtype)  # soxr's maximum
    filled = 0
    for start in range(0, max(length, 1), block):
        frames = np.ascontiguousarray(flat[:, start : start + block].T)  # (n, channels)
        resampled = stream.resample_chunk(frames, last=start + block >= length)
        out[:, filled : filled + resampled.shape[0]] = resampled.T
        filled += resampled.shape[0]
    return out[:, :filled].reshape(*audio.shape[:-1], filled)


#: Names of `atomic_path`'s temporary files: ``.<stem>.<pid>.<8 hex digits>.part<suffix>``.
TEMPORARY_NAME = re.compile(r"^\..+\.\d+\.[0-9a-f]{8}\.part(\.[^.]+)?$")


def is_temporary(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named as a temporary file of `atomic_path` (left behind if its writer was killed)."""
    return TEMPORARY_NAME.match(Path(path).name) is not None


def remove_stale_temporaries(outputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Delete the temporary files that killed writers left beside ``outputs`` (see `atomic_path`); returns them.

    Call it only for outputs this process owns (about to write them), as another live writer's files look alike.
    """
    removed = []
    for path in map(Path, outputs):
        if path.parent.is_dir():
            for stale in path.parent.glob(f".{glob.escape(path.stem)}.*.part{glob.escape(path.suffix)}"):
                if is_temporary(stale):
                    stale.unlink(missing_ok=True)
                    removed.append(stale)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    An interrupted or failing write leaves neither a partial ``path`` nor the temporary file. The temporary
    file is created by the caller, so it gets the usual permissions (umask), not mkstemp's private 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.parent / f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part{path.suffix}"
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_audio(
    path: str | os.PathLike,
    audio: np.ndarray,
    sample_rate: int,
    subtype: str = "FLOAT",
) -> None:
    """Write ``audio`` ``(channels, samples)`` (or ``(samples,)``) atomically; the format follows the suffix.

    ``subtype`` is a soundfile subtype (``PCM_16``, ``PCM_24``, ``FLOAT``). Integer subtypes are written
    by soundfile, which clips out-of-range samples; callers decide the clip policy first.
    """
    path = Path(path)
    data = audio.T if audio.ndim == 2 else audio
    with atomic_path(path) as tmp:
        sf.write(str(tmp), data, int(sample_rate), subtype=subtype, format=path.suffix.lstrip(".").upper())
