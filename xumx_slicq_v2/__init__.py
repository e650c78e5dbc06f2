"""xumx-sliCQ-V2: music source separation with the sliced Constant-Q transform.

from xumx_slicq_v2 import Separator
separator = Separator.from_pretrained("offline")      # or "realtime", "demo", a model directory
stems = separator(audio)                               # (batch, channels, samples) -> (batch, 4, ...)
"""

from .model import SOURCES, ModelConfig, Unmix
from .separator import ChunkingConfig, Separator, separate
from .transforms import SliCQT

__all__ = ["SOURCES", "ChunkingConfig", "ModelConfig", "Separator", "SliCQT", "Unmix", "separate"]
__version__ = "2.0.0.dev0"
