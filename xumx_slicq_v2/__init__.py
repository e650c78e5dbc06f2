"""xumx-sliCQ-V2: music source separation with the sliced Constant-Q transform.

from xumx_slicq_v2 import Separator
separator = Separator.from_pretrained("offline")      # or "realtime", "demo", a model directory
stems = separator(audio)                               # (batch, channels, samples) -> (batch, 4, ...)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: The public names and their modules, imported on first use (so that ``python -m xumx_slicq_v2.<command>
#: --help`` does not wait for torch).
_EXPORTS = {
    "SOURCES": "model",
    "ModelConfig": "model",
    "Unmix": "model",
    "ChunkingConfig": "separator",
    "Separator": "separator",
    "separate": "separator",
    "SliCQT": "transforms",
}

__all__ = ["SOURCES", "ChunkingConfig", "ModelConfig", "Separator", "SliCQT", "Unmix", "separate"]
__version__ = "2.0.0.dev0"

if TYPE_CHECKING:
    from .model import SOURCES, ModelConfig, Unmix
    from .separator import ChunkingConfig, Separator, separate
    from .transforms import SliCQT


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
