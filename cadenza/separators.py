"""Music separators for the recipe, chosen by ``separator.model`` from a small registry.

A recipe separator turns a song's mixture into the four CAD1 stems, keyed by stem name. Two are built in:

- ``xumx_slicq_v2``: :class:`xumx_slicq_v2.Separator` (``separator.weights``: offline, realtime, demo or a
  directory), wrapped by :class:`TensorSeparator`: the library's streaming separation (chunks with context and
  cross-fades, resampled both ways, the stems exactly as long as the mixture).
- ``oracle``: the clean stems of the dataset (an upper bound, and a model-free path for tests).

Another model plugs in with :func:`register_separator` (a loader from the ``separator`` config node).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from omegaconf import DictConfig

from cadenza.data import INSTRUMENTS, Song, read_song_audio


class SeparatorError(RuntimeError):
    """A separator cannot be loaded or returned unusable stems."""


class StemSeparator(Protocol):
    """What the recipe needs from a separator."""

    def separate(self, mixture: np.ndarray, sample_rate: int, song: Song) -> dict[str, np.ndarray]:
        """Stems ``{name: (channels, samples)}`` of ``mixture`` ``(channels, samples)`` at ``sample_rate`` Hz."""


class TensorModel(Protocol):
    """The tensor contract of :class:`xumx_slicq_v2.Separator`: ``(batch, channels, samples)`` float32 in,
    ``(batch, len(sources), channels, samples)`` out, at ``sample_rate``; inputs go to its ``device`` if it has one.
    A model with a ``stream(audio, progress)`` method (as the Separator has) is run through it, piece by piece."""

    sources: tuple[str, ...]
    sample_rate: int

    def __call__(self, audio: Any) -> Any: ...


class TensorSeparator:
    """Adapts a :class:`TensorModel` (torch in, torch out) to :class:`StemSeparator` through the library's
    streaming path (:func:`xumx_slicq_v2.separator.separate`): the mixture is resampled to the model's rate and
    the stems back (soxr), then cropped or zero-padded to the mixture's length; a Separator runs chunk by chunk
    (``Separator.stream``), another model in one call. Stems are labelled with the model's own ``sources`` order.
    """

    def __init__(self, model: TensorModel):
        self.model = model
        self.sources = tuple(model.sources)
        self.sample_rate = int(model.sample_rate)

    def stream(self, audio, progress: bool = False):
        """`xumx_slicq_v2.Separator.stream`'s contract: ``(start, stems (batch, sources, channels, n))`` pieces."""
        stream = getattr(self.model, "stream", None)
        if stream is not None:
            yield from stream(audio, progress)
            return
        import torch

        with torch.inference_mode():
            estimates = self.model(audio.to(getattr(self.model, "device", "cpu")))
        expected = (audio.shape[0], len(self.sources), *audio.shape[1:])
        if tuple(estimates.shape) != expected:
            raise SeparatorError(
                f"separator returned shape {tuple(estimates.shape)}, expected {expected} "
                "(batch, sources, channels, samples)"
            )
        yield 0, estimates.detach().to("cpu", torch.float32)

    def separate(self, mixture: np.ndarray, sample_rate: int, song: Song) -> dict[str, np.ndarray]:
        from xumx_slicq_v2.separator import separate

        try:
            return separate(mixture.astype(np.float32, copy=False), sample_rate, separator=self)
        except SeparatorError as err:
            raise SeparatorError(f"{song.name}: {err}") from None


class OracleSeparator:
    """Returns the clean stems read from the song folder: the separation upper bound."""

    def __init__(self, music_dir: str | Path):
        self.music_dir = Path(music_dir)

    def separate(self, mixture: np.ndarray, sample_rate: int, song: Song) -> dict[str, np.ndarray]:
        return {name: read_song_audio(self.music_dir, song, name, sample_rate) for name in INSTRUMENTS}


@dataclass(frozen=True)
class SeparatorModel:
    """A registry entry: how to load the model, and whether ``separator.weights`` selects among variants."""

    load: Callable[[DictConfig, DictConfig], StemSeparator]
    uses_weights: bool = True
    checksum: Callable[[str], str] | None = None  # of the weights named by ``separator.weights``


#: ``separator.model`` -> loader taking ``(separator config, whole config)``.
SEPARATOR_MODELS: dict[str, SeparatorModel] = {}


def register_separator(name: str, uses_weights: bool = True, checksum: Callable[[str], str] | None = None):
    """Decorator registering a loader ``(separator_cfg, cfg) -> StemSeparator`` under ``separator.model=name``;
    ``checksum(weights)`` identifies the weights in the records of the outputs (with their name)."""

    def decorator(load: Callable[[DictConfig, DictConfig], StemSeparator]):
        SEPARATOR_MODELS[name] = SeparatorModel(load=load, uses_weights=uses_weights, checksum=checksum)
        return load

    return decorator


def _model_entry(separator_cfg: DictConfig) -> SeparatorModel:
    try:
        return SEPARATOR_MODELS[separator_cfg.model]
    except KeyError:
        raise SeparatorError(
            f"separator.model={separator_cfg.model!r} is unknown; choose one of {sorted(SEPARATOR_MODELS)}"
        ) from None


def resolve_device(device: str | None) -> str:
    """``None`` -> ``cuda`` if available else ``cpu``; ``gpuN`` -> ``cuda:N``; ``cpu``/``cuda``/``cuda:N`` as is."""
    if device is None:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    if device.startswith("gpu") and device[3:].isdigit():
        return f"cuda:{device[3:]}"
    if device == "cpu" or device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        return device
    raise SeparatorError(f"separator.device={device!r}: expected null, cpu, cuda, cuda:N or gpuN")


def separator_identity(separator_cfg: DictConfig) -> dict[str, str | None]:
    """What makes two separations interchangeable: the model and its weights (an absolute path for a folder),
    with the weights' checksum where the model has one (``weights_sha256``)."""
    entry = _model_entry(separator_cfg)
    weights = separator_cfg.weights if entry.uses_weights else None
    if weights is not None and Path(str(weights)).is_dir():
        weights = str(Path(str(weights)).resolve())
    identity = {"model": str(separator_cfg.model), "weights": None if weights is None else str(weights)}
    if entry.checksum is not None and weights is not None:
        try:
            identity["weights_sha256"] = entry.checksum(str(weights))
        except (OSError, RuntimeError) as err:
            raise SeparatorError(f"separator.weights={weights}: cannot read the weights ({err})") from err
    return identity


def describe_separator(separator_cfg: DictConfig) -> str:
    """One line naming the separator and, where it uses them, its weights."""
    entry = SEPARATOR_MODELS.get(separator_cfg.model)
    if entry is None:
        return f"{separator_cfg.model} (not a registered separator)"
    if not entry.uses_weights:
        return f"{separator_cfg.model} (weights not used)"
    return f"{separator_cfg.model}, weights {separator_cfg.weights}"


def load_separator(separator_cfg: DictConfig, cfg: DictConfig) -> StemSeparator:
    """The separator selected by ``separator.model`` (loading its weights)."""
    return _model_entry(separator_cfg).load(separator_cfg, cfg)


def _xumx_weights_sha256(weights: str) -> str:
    from xumx_slicq_v2.checkpoint import weights_sha256

    return weights_sha256(weights)


@register_separator("xumx_slicq_v2", checksum=_xumx_weights_sha256)
def _load_xumx_slicq_v2(separator_cfg: DictConfig, cfg: DictConfig) -> StemSeparator:
    from xumx_slicq_v2 import Separator

    device = resolve_device(separator_cfg.device)
    model = Separator.from_pretrained(
        str(separator_cfg.weights), device=device, runtime_backend=separator_cfg.runtime_backend
    )
    return TensorSeparator(model)


@register_separator("oracle", uses_weights=False)
def _load_oracle(separator_cfg: DictConfig, cfg: DictConfig) -> StemSeparator:
    return OracleSeparator(cfg.path.music_dir)
