"""The models' names and settings, without torch: targets, scales, `ModelConfig`, `ChunkingConfig` (read by the
command lines before they load anything heavy; `xumx_slicq_v2.model`, `.transforms` and `.separator` re-export
them)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Target names in output order (index 0 = bass, ...), as in the reference checkpoints.
SOURCES = ("bass", "vocals", "other", "drums")

#: Sample rate of MUSDB18-HQ and of the released models (Hz).
SAMPLE_RATE = 44100

#: Stereo only: the first convolution has 2 input channels and Wiener-EM uses 2x2 spatial covariances.
NB_CHANNELS = 2

#: Frequency scales of the sliCQT (`xumx_slicq_v2.transforms.SliCQT`).
SCALES = ("bark", "mel", "cqlog", "vqlog", "linear")

#: Regulariser of the Wiener-EM step: machine epsilon of float32 (``torch.finfo(torch.float32).eps``), whatever
#: dtype the data have (the published models were trained and evaluated with this value; the float64 epsilon
#: changes the estimates by up to 10%).
WIENER_EPS = 2.0**-23


#: Config fields whose name differs in the reference JSON ``args``.
REFERENCE_ARG_NAMES = {"scale": "fscale", "bins": "fbins", "fmin": "fmin", "gamma": "fgamma"}

#: Reference ``args`` without which a model cannot be rebuilt.
REQUIRED_REFERENCE_ARGS = ("fscale", "fbins", "fmin")


@dataclass(frozen=True)
class ModelConfig:
    """Transform, network and Wiener-EM settings of one model (the defaults are the released models')."""

    # sliCQT (see `xumx_slicq_v2.transforms.SliCQT`)
    scale: str = "bark"
    bins: int = 262
    fmin: float = 32.9
    fmax: float | None = None
    sample_rate: int = SAMPLE_RATE
    gamma: float = 15.0
    slice_length: int | None = None
    transition_length: int | None = None
    min_window: int = 16
    # network
    hidden_size_1: int = 50
    hidden_size_2: int = 51
    time_filter_2: int = 4
    realtime: bool = False
    # Wiener-EM (offline models only)
    wiener_iterations: int = 1
    wiener_window: int | None = 5000
    wiener_eps: float = WIENER_EPS
    # training excerpt length in seconds (recorded in the checkpoint metadata)
    seq_dur: float = 2.0

    def __post_init__(self) -> None:
        for name in ("bins", "hidden_size_1", "hidden_size_2", "time_filter_2", "sample_rate"):
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.wiener_iterations < 0:
            raise ValueError(f"ModelConfig.wiener_iterations must be >= 0, got {self.wiener_iterations}")

    def transform_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `xumx_slicq_v2.transforms.SliCQT` for this model."""
        return {
            "scale": self.scale,
            "bins": self.bins,
            "fmin": self.fmin,
            "fmax": self.fmax,
            "sample_rate": self.sample_rate,
            "slice_length": self.slice_length,
            "transition_length": self.transition_length,
            "min_window": self.min_window,
            "gamma": self.gamma,
        }

    @classmethod
    def from_reference_args(cls, args: Mapping[str, Any]) -> ModelConfig:
        """Config from the ``args`` of a checkpoint JSON (reference keys ``fscale``, ``fbins``, ``fmin``,
        ``fgamma``, ``sample_rate``, ``realtime``, ``seq_dur``; fields missing there keep their defaults;
        unrelated training arguments are ignored)."""
        missing = [key for key in REQUIRED_REFERENCE_ARGS if key not in args]
        if missing:
            raise ValueError(f"checkpoint args lack {', '.join(repr(key) for key in missing)}")
        if args.get("lstm"):
            raise ValueError("checkpoint args: 'lstm' models (the reference's experimental LSTM) are not supported")
        if int(args.get("nb_channels", NB_CHANNELS)) != NB_CHANNELS:
            raise ValueError(f"checkpoint args: nb_channels must be {NB_CHANNELS}, got {args['nb_channels']}")
        values = {}
        for field in dataclasses.fields(cls):
            key = REFERENCE_ARG_NAMES.get(field.name, field.name)
            if key in args:
                values[field.name] = _coerce(args[key], field, key)
        return cls(**values)

    def to_reference_args(self) -> dict[str, Any]:
        """The ``args`` entries of a checkpoint JSON for this config (reference key names where they exist)."""
        args: dict[str, Any] = {
            REFERENCE_ARG_NAMES.get(field.name, field.name): getattr(self, field.name)
            for field in dataclasses.fields(self)
        }
        args["sample_rate"] = float(self.sample_rate)
        args["nb_channels"] = NB_CHANNELS
        return args


def _coerce(value: Any, field: dataclasses.Field, key: str) -> Any:
    """Convert a JSON value to the field's type (``bool``, ``int``, ``float`` or ``str``, optionally ``None``)."""
    kind = str(field.type).split("|")[0].strip()
    if value is None and str(field.type).endswith("None"):
        return None
    try:
        if kind == "bool":
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            if not isinstance(value, (bool, int)):
                raise TypeError
            return bool(value)
        if kind == "int":
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if kind == "float":
            return float(value)
        return str(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"checkpoint args: {key!r} has an invalid value {value!r}") from err


class ChunkingError(ValueError):
    """A chunking plan that cannot give the unchunked result (the message names the lengths)."""


@dataclass(frozen=True)
class ChunkingConfig:
    """How long inputs are split (all in seconds; chunk and context rounded up to the transform's half-slice grid).

    Attributes:
        chunk_seconds: audio owned by one chunk; memory grows linearly with it. Any positive length works
            (short chunks cost time: each is separated with its context).
        context_seconds: extra audio given to a chunk on each side; it must cover half the cross-fade plus the
            network's receptive field (`Separator.receptive_field`, about 1.2 s for the released models), so that
            chunk edges do not change the estimates.
        crossfade_seconds: raised-cosine cross-fade centred on each chunk boundary (at most 2 x context).
    """

    chunk_seconds: float = 30.0
    context_seconds: float = 2.5
    crossfade_seconds: float = 1.0

    def __post_init__(self) -> None:
        if not (self.chunk_seconds > 0 and self.context_seconds >= 0 and self.crossfade_seconds >= 0):
            raise ChunkingError(
                f"chunking needs chunk_seconds > 0 and context_seconds, crossfade_seconds >= 0; got chunk "
                f"{self.chunk_seconds} s, context {self.context_seconds} s, cross-fade {self.crossfade_seconds} s"
            )
        if self.crossfade_seconds > 2 * self.context_seconds:
            raise ChunkingError(
                f"a cross-fade of {self.crossfade_seconds} s reaches beyond a context of {self.context_seconds} s "
                f"on each side of the chunk: use crossfade_seconds <= 2 x context_seconds"
            )
