"""xumx-sliCQ-V2: music source separation with the sliced Constant-Q transform.

from xumx_slicq_v2 import Separator
separator = Separator.from_pretrained("offline")      # or "realtime", "demo", a model directory
stems = separator(audio)                               # (batch, channels, samples) -> (batch, 4, ...)

The names below are imported on first use, so that the command lines (``python -m xumx_slicq_v2...``) answer
``--help`` and argument errors without loading torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .config import SOURCES

if TYPE_CHECKING:
    from .config import ChunkingConfig, ModelConfig
    from .model import Unmix
    from .separator import Separator, separate
    from .transforms import SliCQT

#: Public name -> the submodule that defines it.
_LAZY = {
    "ModelConfig": "config",
    "Unmix": "model",
    "ChunkingConfig": "config",
    "Separator": "separator",
    "separate": "separator",
    "SliCQT": "transforms",
}

__all__ = ["SOURCES", "ChunkingConfig", "ModelConfig", "Separator", "SliCQT", "Unmix", "separate"]
__version__ = "2.0.0.dev0"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
