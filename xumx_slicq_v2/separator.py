"""Inference: `Separator` turns a mixture waveform into four stems; `separate` does it for a numpy array at any
sample rate.

Long inputs are processed in chunks whose boundaries sit on the sliCQT's slice grid (multiples of half a slice),
each chunk padded with context on both sides and cross-faded (raised cosine) with its neighbours around the
boundaries; the output is the weighted sum of the chunks' estimates divided by the sum of their weights, so any
chunk length works, also one shorter than the cross-fade. The context must cover half the cross-fade plus the
network's receptive field (`Separator.receptive_field`); plans with less are refused (`ChunkingError`) before
an input of several chunks is separated. Then the network sees
exactly what it would see unchunked, so the realtime model gives the unchunked result up to float rounding; the
offline model's Wiener-EM estimates spatial covariances over windows of frames and so differs slightly near
chunk boundaries (never with a seam). Memory is bounded by the chunk length instead of the song length.
The reference used hard 60 s chunks without overlap.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence

import numpy as np
import soxr
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .audio import RESAMPLE_BLOCK, check_finite, resample
from .backends import NetworkFn, backend_device, build_network, check_backend
from .config import ChunkingConfig, ChunkingError
from .model import SOURCES, Unmix
from .transforms import SliCQT


def chunk_plan(length: int, chunk: int, context: int, crossfade: int) -> list[tuple[int, int, int, int]]:
    """Split ``length`` samples into chunks.

    Returns:
        per chunk ``(owned_start, owned_stop, input_start, input_stop)`` in samples; owned regions tile
        ``[0, length)``; input regions add ``context`` samples on each side (clipped to the signal). A last
        owned region shorter than the cross-fade is merged into the previous one.
    """
    bounds = [*range(0, length, chunk), length]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < max(crossfade, 1):
        del bounds[-2]
    return [
        (start, stop, max(0, start - context), min(length, stop + context))
        for start, stop in itertools.pairwise(bounds)
    ]


def crossfade_weights(
    input_start: int, input_stop: int, owned_start: int, owned_stop: int, length: int, crossfade: int
) -> Tensor:
    """Weight of one chunk's estimate over its input region ``(input_stop - input_start,)``.

    One inside the owned region, zero outside, with raised-cosine ramps of ``crossfade`` samples centred on the
    inner boundaries (none at the signal's start and end); where chunks are at least ``crossfade`` long the
    weights of neighbouring chunks sum to one (`Separator.stream` divides by their sum in any case). Inside the
    owned region the weight is above 1/4; it is zero ``ceil(crossfade / 2)`` samples or more outside it.
    """
    positions = torch.arange(input_start, input_stop, dtype=torch.float64) + 0.5
    weights = torch.ones_like(positions)
    if owned_start > 0:
        phase = ((positions - owned_start) / max(crossfade, 1) + 0.5).clamp(0, 1)
        weights = weights * torch.sin(phase * math.pi / 2) ** 2
    if owned_stop < length:
        phase = ((positions - owned_stop) / max(crossfade, 1) + 0.5).clamp(0, 1)
        weights = weights * torch.cos(phase * math.pi / 2) ** 2
    return weights.float()


class Separator(nn.Module):
    """Separate ``(batch, channels, samples)`` mixtures at ``sample_rate`` into ``(batch, 4, channels, samples)``.

    Targets come in the order of `sources` (bass, vocals, other, drums, as the reference models). Mono input
    is separated as dual mono and returned mono. Use `Separator.from_pretrained` to load a model.

    Args:
        model: the network (its ``config`` gives the sliCQT).
        chunking: chunk, context and cross-fade lengths.
        network: optional replacement of ``model.forward_real`` (a runtime backend, `xumx_slicq_v2.backends`).
    """

    def __init__(self, model: Unmix, chunking: ChunkingConfig | None = None, network: NetworkFn | None = None):
        super().__init__()
        self.model = model.eval()
        self.config = model.config
        self.transform = SliCQT(**model.config.transform_kwargs())
        if self.transform.block_shapes != model.block_shapes:
            raise ValueError("the model's block shapes do not match its sliCQT configuration")
        self.chunking = chunking or ChunkingConfig()
        self.network: NetworkFn = network or model.forward_real
        self.sources: tuple[str, ...] = SOURCES
        self.sample_rate: int = int(model.config.sample_rate)
        # the network needs 3 slices; the transform gives 3 slices from half a slice + 1 samples on
        self.min_length = self.transform.slice_length // 2 + 1

    @property
    def receptive_field(self) -> int:
        """Samples on each side of an output sample that the network's estimate of it depends on:
        ``2 + time_filter_2 / 4`` slices, 3 for the released models (measured on realtime models: an input sample
        changes the outputs up to ``1.25 + time_filter_2 / 4`` slices after it and fewer before it, for
        ``time_filter_2`` from 1 to 9; the offline models' Wiener-EM also spans its whole window of frames)."""
        return math.ceil((2 + self.config.time_filter_2 / 4) * self.transform.slice_length)

    def chunk_lengths(self) -> tuple[int, int, int]:
        """``(chunk, context, crossfade)`` in samples at `sample_rate` of `chunking`."""
        chunk = self._grid(self.chunking.chunk_seconds)
        context = self._grid(self.chunking.context_seconds) if self.chunking.context_seconds > 0 else 0
        return chunk, context, round(self.chunking.crossfade_seconds * self.sample_rate)

    def check_chunking(self) -> None:
        """Raise `ChunkingError` (a ``ValueError``) naming the lengths when the context does not cover half the
        cross-fade plus the `receptive_field`: chunks would then see their edges where their weight is not zero.

        `stream` checks this before separating an input of more than one chunk; the CLI at start.
        """
        _, context, crossfade = self.chunk_lengths()
        needed = math.ceil(crossfade / 2) + self.receptive_field
        if context < needed:
            raise ChunkingError(
                f"chunking: a context of {self.chunking.context_seconds} s ({context} samples at {self.sample_rate} "
                f"Hz) is too short for a cross-fade of {self.chunking.crossfade_seconds} s: it must cover half the "
                f"cross-fade plus the network's receptive field of {self.receptive_field / self.sample_rate:.2f} s, "
                f"{needed / self.sample_rate:.2f} s in all; raise context_seconds or lower crossfade_seconds"
            )

    @classmethod
    def from_pretrained(
        cls,
        name_or_dir: str,
        realtime: bool | None = None,
        device: str | torch.device = "cpu",
        runtime_backend: str | None = None,
        chunking: ChunkingConfig | None = None,
    ) -> Separator:
        """Load ``offline``, ``realtime``, ``demo`` or a reference-format model directory.

        Args:
            realtime: ``None`` keeps the checkpoint's own mode; ``True``/``False`` must agree with it.
            device: torch device for the torch backends.
            runtime_backend: ``torch-cpu``, ``torch-cuda``, ``onnx-cpu`` or ``onnx-cuda`` (default: torch on
                ``device``).
        """
        from .checkpoint import load_model

        backend = runtime_backend or ("torch-cuda" if torch.device(device).type == "cuda" else "torch-cpu")
        check_backend(backend)  # before loading anything: a missing package is a one-line error
        device = backend_device(backend, device)
        model, _config, model_dir = load_model(name_or_dir, realtime=realtime, device=device)
        network = build_network(backend, model, model_dir)
        return cls(model, chunking=chunking, network=network).to(device)

    @property
    def device(self) -> torch.device:
        return self.transform.slice_window.device

    def forward(self, audio: Tensor, progress: bool = False) -> Tensor:
        """Separate ``audio`` ``(batch, channels, samples)`` (1 or 2 channels) -> ``(batch, 4, channels, samples)``."""
        batch, channels, length = check_audio_shape(audio.shape)
        output = torch.empty(batch, len(self.sources), channels, length, device=self.device)
        for start, segment in self.stream(audio, progress):
            output[..., start : start + segment.shape[-1]] = segment
        return output

    def stream(self, audio: Tensor, progress: bool = False) -> Iterator[tuple[int, Tensor]]:
        """Separate chunk by chunk, yielding finished output as soon as it is final.

        Yields:
            ``(start, stems)``: consecutive segments ``(batch, 4, channels, n)`` starting at sample ``start``
            that tile ``[0, samples)``. Memory stays bounded by the chunk length, whatever the input length
            (the CLI writes the segments to disk as they come).

        Raises:
            ValueError: for a bad shape, or NaN or infinite samples (naming the first one), before any work;
                `ChunkingError` for an input of several chunks when `check_chunking` fails.
        """
        batch, channels, length = check_audio_shape(audio.shape)
        if not torch.isfinite(audio).all():
            check_finite(audio.detach().cpu().numpy(), "input audio")
        stereo = audio.expand(batch, 2, length) if channels == 1 else audio
        chunk, context, crossfade = self.chunk_lengths()
        half_fade = math.ceil(crossfade / 2)
        plan = chunk_plan(length, chunk, context, crossfade)
        if len(plan) > 1:
            self.check_chunking()
        # weighted estimates and their summed weights from sample `emitted` on (the context covers half the
        # cross-fade, so each chunk's input starts at or before `emitted`)
        emitted, pending, pending_weights = 0, None, None
        with torch.inference_mode():
            for index, (owned_start, owned_stop, start, stop) in enumerate(
                tqdm(plan, desc="chunks", unit="chunk", disable=not progress or len(plan) == 1, leave=False)
            ):
                part = stereo[..., start:stop].to(self.device, torch.float32)
                estimate = self.separate_chunk(part)
                if len(plan) == 1:
                    yield 0, estimate.mean(dim=2, keepdim=True) if channels == 1 else estimate
                    return
                weights = crossfade_weights(start, stop, owned_start, owned_stop, length, crossfade).to(estimate.device)
                estimate *= weights
                weighted, weight_sum = estimate[..., emitted - start :], weights[emitted - start :]
                if pending is not None:  # earlier chunks' shares from `emitted` on
                    weighted[..., : pending.shape[-1]] += pending
                    weight_sum[: pending.shape[-1]] += pending_weights
                # later chunks have zero weight before their owned start minus half the cross-fade
                final = length if index == len(plan) - 1 else max(emitted, plan[index + 1][0] - half_fade)
                if final > emitted:
                    segment = weighted[..., : final - emitted] / weight_sum[: final - emitted]
                    yield emitted, segment.mean(dim=2, keepdim=True) if channels == 1 else segment
                pending = weighted[..., final - emitted :].clone()
                pending_weights = weight_sum[final - emitted :].clone()
                emitted = final

    def _grid(self, seconds: float) -> int:
        """``seconds`` in samples, rounded up to a multiple of half a slice (keeps slices on one grid)."""
        hop = self.transform.slice_length // 2
        return max(1, math.ceil(seconds * self.sample_rate / hop)) * hop

    def separate_chunk(self, audio: Tensor) -> Tensor:
        """One pass of sliCQT -> network -> inverse sliCQT: ``(batch, 2, n)`` -> ``(batch, 4, 2, n)``.

        Inputs shorter than ``min_length`` are zero-padded (the network needs 3 slices) and cropped back. The
        targets are inverted one at a time, which keeps the inverse transform's memory at a quarter.
        """
        length = audio.shape[-1]
        if length < self.min_length:
            audio = nn.functional.pad(audio, (0, self.min_length - length))
        estimates = self.network([torch.view_as_real(block) for block in self.transform(audio)])
        output = audio.new_empty(audio.shape[0], len(self.sources), 2, length)
        for target in range(len(self.sources)):
            blocks = [torch.view_as_complex(estimate[:, target].contiguous()) for estimate in estimates]
            output[:, target] = self.transform.inverse(blocks, audio.shape[-1])[..., :length]
        return output


def check_audio_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    """``(batch, channels, samples)`` of a separator input's shape, or an error that says what is wrong."""
    if len(shape) != 3:
        raise ValueError(f"expected audio of shape (batch, channels, samples), got {tuple(shape)}")
    batch, channels, length = shape
    if channels not in (1, 2):
        raise ValueError(f"the models are stereo: got {channels} channels; downmix or pick two channels first")
    return batch, channels, length


def separate_stream(
    audio: np.ndarray, sample_rate: float, separator: Separator, progress: bool = False
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """`separate` segment by segment, with memory bounded by the chunk length (plus the input).

    The input is resampled once to the model's rate (and not referenced afterwards: a caller that drops its
    own reference frees it); each finished segment of `Separator.stream` is resampled back as it comes (one
    soxr stream over all stems and channels, flushed at the end: the same samples as resampling the whole
    stems at once), and the pieces are cropped or zero-padded so that they cover exactly the input.

    Args:
        audio: ``(channels, samples)`` with 1 or 2 channels, or ``(samples,)``.
        sample_rate: of ``audio`` in Hz.
        separator: a `Separator`, or any object with its ``sources``, ``sample_rate`` and ``stream``.

    Yields:
        ``(start, {source: array})``: consecutive pieces at ``sample_rate`` starting at sample ``start``, float32,
        shaped like ``audio`` with ``n`` samples; they tile ``[0, samples)``.
    """
    audio = np.asarray(audio)
    if audio.ndim not in (1, 2):
        raise ValueError(f"expected audio of shape (channels, samples) or (samples,), got {audio.shape}")
    mono_1d = audio.ndim == 1
    channels, length = (1, *audio.shape) if mono_1d else audio.shape
    check_audio_shape((1, channels, length))  # clear errors before any work
    check_finite(audio, "input audio", sample_rate)
    model_rate_audio = resample(np.atleast_2d(audio), sample_rate, separator.sample_rate, block=RESAMPLE_BLOCK)
    model_rate_audio = torch.from_numpy(model_rate_audio.astype(np.float32, copy=False))
    del audio
    shape = (len(separator.sources), channels)
    resampler = None
    if sample_rate != separator.sample_rate:  # same quality as `xumx_slicq_v2.audio.resample`
        resampler = soxr.ResampleStream(separator.sample_rate, sample_rate, math.prod(shape), "float32", "HQ")

    def pieces() -> Iterator[np.ndarray]:
        """Stems ``(sources, channels, n)`` at ``sample_rate``, in order (not yet cropped to ``length``)."""
        for _, segment in separator.stream(model_rate_audio[None], progress):
            stems = segment[0].cpu().numpy()
            if resampler is None:
                yield stems
                continue
            for start in range(0, stems.shape[-1], RESAMPLE_BLOCK):
                block = stems[..., start : start + RESAMPLE_BLOCK]
                frames = np.ascontiguousarray(block.reshape(-1, block.shape[-1]).T)  # (n, sources * channels)
                yield resampler.resample_chunk(frames).T.reshape(*shape, -1)
        if resampler is not None:
            yield resampler.resample_chunk(np.empty((0, math.prod(shape)), np.float32), last=True).T.reshape(*shape, -1)

    def named(stems: np.ndarray) -> dict[str, np.ndarray]:
        return {name: stem[0] if mono_1d else stem for name, stem in zip(separator.sources, stems, strict=True)}

    start = 0
    for stems in pieces():
        stems = stems[..., : length - start]
        if stems.shape[-1]:
            yield start, named(stems)
            start += stems.shape[-1]
    if start < length:  # the resampled stems came out short
        yield start, named(np.zeros((*shape, length - start), np.float32))


def separate(
    audio: np.ndarray,
    sample_rate: float,
    separator: Separator | None = None,
    model: str = "offline",
    device: str = "cpu",
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Separate a numpy mixture at any sample rate (in memory; `separate_stream` gives it piece by piece).

    Args:
        audio: ``(channels, samples)`` with 1 or 2 channels, or ``(samples,)``.
        sample_rate: of ``audio`` in Hz; the model's rate is used internally (soxr resampling both ways).
        separator: a loaded `Separator`; otherwise ``model`` is loaded on ``device``.

    Returns:
        ``{source: array}`` with the input's shape and sample rate, float32.

    Raises:
        ValueError: for a bad shape, or NaN or infinite samples (naming the first sample and channel).
    """
    separator = separator or Separator.from_pretrained(model, device=device)
    stems = {name: np.empty(np.shape(audio), np.float32) for name in separator.sources}
    for start, piece in separate_stream(audio, sample_rate, separator, progress):
        for name, stem in piece.items():
            stems[name][..., start : start + stem.shape[-1]] = stem
    return stems
