"""The baseline hearing aid: NAL-R per ear with that ear's audiogram, an optional compressor (pyclarity), the
stereo remix, and the evaluation-segment cut. Plain numpy in and out; signals are ``(samples,)`` per ear.

NAL-R is the library's `xumx_slicq_v2.hearing` (pyclarity's ``NALR`` design, equal to it within float rounding),
the same functions the web mixer (``python -m xumx_slicq_v2.demixui``) plays its listener's stems through."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
from omegaconf import DictConfig, OmegaConf

from cadenza.data import EARS
from xumx_slicq_v2 import hearing

if TYPE_CHECKING:  # pyclarity loads with the first hearing aid, not when a command shows its --help
    from clarity.utils.audiogram import Audiogram, Listener


class HearingAid:
    """NAL-R (``nfir``-order FIR, `xumx_slicq_v2.hearing.nalr_fir`) followed by an optional pyclarity ``Compressor``.

    Args:
        nfir: NAL-R filter order (``nfir + 1`` taps, ``nfir // 2`` samples of delay).
        sample_rate: rate of the signals it processes, Hz (also the compressor's ``fs``).
        compressor: ``Compressor`` keyword arguments (``threshold``, ``attenuation``, ``attack`` ms, ``release`` ms,
            ``rms_buffer_size`` s), or ``None`` for no compression.
    """

    def __init__(self, nfir: int, sample_rate: int, compressor: Mapping[str, float] | None = None):
        from clarity.enhancer.compressor import Compressor

        self.nfir, self.sample_rate = nfir, sample_rate
        self.compressor = None if compressor is None else Compressor(fs=sample_rate, **compressor)

    @classmethod
    def from_config(cls, cfg: DictConfig) -> HearingAid:
        compressor = OmegaConf.to_container(cfg.compressor) if cfg.apply_compressor else None
        return cls(nfir=int(cfg.nalr.nfir), sample_rate=int(cfg.nalr.sample_rate), compressor=compressor)

    def fir(self, audiogram: Audiogram) -> np.ndarray:
        """The NAL-R FIR ``(nfir + 1,)`` for one ear's audiogram (a pure delay for no hearing loss)."""
        return hearing.nalr_fir(to_library_audiogram(audiogram), self.nfir, self.sample_rate)

    def apply(self, fir: np.ndarray, signal: np.ndarray) -> np.ndarray:
        """Filter ``signal`` ``(samples,)`` with ``fir`` (full convolution: ``samples + nfir`` out), then compress."""
        out = hearing.apply_fir(fir, signal)
        if self.compressor is not None:
            out, _, _ = self.compressor.process(out)
        return out

    def process_stems(self, stems: Mapping[str, np.ndarray], listener: Listener) -> dict[str, dict[str, np.ndarray]]:
        """``{ear: {stem: (samples + nfir,)}}``: channel ``i`` of each stem ``(2, samples)`` through ear ``i``'s aid."""
        audiograms = {"left": listener.audiogram_left, "right": listener.audiogram_right}
        processed = {}
        for channel, ear in enumerate(EARS):
            fir = self.fir(audiograms[ear])
            processed[ear] = {stem: self.apply(fir, audio[channel]) for stem, audio in stems.items()}
        return processed


def to_library_audiogram(audiogram: Audiogram) -> hearing.Audiogram:
    """pyclarity's ``Audiogram`` as the library's (levels dB HL, frequencies Hz)."""
    return hearing.Audiogram(tuple(audiogram.levels), tuple(audiogram.frequencies))


def remix(processed: Mapping[str, Mapping[str, np.ndarray]]) -> np.ndarray:
    """``(2, samples)``: per ear, the plain sum of that ear's processed stems (no gains, no normalisation)."""
    return np.stack([np.sum(list(processed[ear].values()), axis=0) for ear in EARS])


def cut_segment(signal: np.ndarray, segment: tuple[float, float], sample_rate: int, what: str) -> np.ndarray:
    """``signal[..., int(start * rate):int(end * rate)]``; ``what`` names the signal in the error if out of range."""
    start, end = (int(seconds * sample_rate) for seconds in segment)
    if not 0 <= start < end <= signal.shape[-1]:
        raise ValueError(
            f"{what}: segment {segment[0]}-{segment[1]} s is outside the signal "
            f"({signal.shape[-1] / sample_rate:.3f} s)"
        )
    return signal[..., start:end]
