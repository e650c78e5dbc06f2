"""xumx-sliCQ-V2: music source separation with the sliced Constant-Q transform."""

__version__ = "2.0.0.dev0"
