"""HAAQI v1: the ear model's features combined into the quality index."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from cadenza.haaqi.ear_model import ear_model
from cadenza.haaqi.features import (
    modulation_cepstral_correlation,
    spectrum_differences,
    sync_weighted_covariance,
)

if TYPE_CHECKING:
    from clarity.utils.audiogram import Audiogram

log = logging.getLogger(__name__)

#: Audiometric frequencies HAAQI uses (Hz); other audiograms are interpolated to these.
HAAQI_AUDIOGRAM_FREQUENCIES = np.array([250, 500, 1000, 2000, 4000, 6000])


def haaqi_v1(
    reference: np.ndarray,
    reference_freq: float,
    processed: np.ndarray,
    processed_freq: float,
    audiogram: Audiogram,
    equalisation: int,
    level1: float = 65.0,
    silence_threshold: float = 2.5,
    add_noise: float = 0.0,
    segment_covariance: int = 16,
) -> tuple[float, float, float, list[float]]:
    """``(combined, nonlinear, linear, [cep_high, bm_sync5, d_loud, d_norm])`` for ``(samples,)`` signals.

    ``equalisation`` 1: NAL-R for ``audiogram`` is added to the reference; 2: the reference already has it.
    ``level1``: dB SPL of an RMS of 1. ``silence_threshold`` (dB SL) excludes quiet segments; ``add_noise``
    (dB SL) conditions the cepstral correlations; ``segment_covariance``: BM covariance segment, ms.
    """
    if not audiogram.has_frequencies(HAAQI_AUDIOGRAM_FREQUENCIES):
        log.warning("Audiogram does not have all HAAQI frequency measurements. Measurements will be interpolated")
    hearing_loss = audiogram.resample(HAAQI_AUDIOGRAM_FREQUENCIES).levels
    segment_size = 8  # envelope smoothing, ms (250 Hz envelope rate)
    ear = ear_model(
        reference,
        reference_freq,
        processed,
        processed_freq,
        hearing_loss,
        equalisation,
        level1,
        smooth_ms=segment_size,
        covariance_ms=segment_covariance,
    )
    cep_high = modulation_cepstral_correlation(
        ear.reference_smooth, ear.processed_smooth, silence_threshold, add_noise, segment_size
    )
    dloud, dnorm = spectrum_differences(ear.reference_sl, ear.processed_sl)
    bm_sync5 = sync_weighted_covariance(ear.cross_covariance, ear.reference_mean_square, silence_threshold)[4]

    d_loud = max(min(1.0 - dloud[1] / 2.5, 1), 0)
    d_norm = max(min(1.0 - dnorm[1] / 25, 1), 0)
    nonlinear = 0.754 * (cep_high**3) + 0.246 * bm_sync5
    linear = 0.329 * d_loud + 0.671 * d_norm
    combined = 0.336 * nonlinear + 0.001 * linear + 0.501 * (nonlinear**2) + 0.161 * (linear**2)
    return combined, nonlinear, linear, [cep_high, bm_sync5, d_loud, d_norm]


def compute_haaqi(
    processed_signal: np.ndarray,
    reference_signal: np.ndarray,
    processed_sample_rate: float,
    reference_sample_rate: float,
    audiogram: Audiogram,
    equalisation: int = 1,
    level1: float = 65.0,
) -> float:
    """HAAQI of ``processed_signal`` against ``reference_signal`` (``(samples,)`` each) for one ear's
    ``audiogram`` (pyclarity ``Audiogram``): the ``combined`` value of :func:`haaqi_v1`.

    An empty reference scores 1.0 with an empty processed signal, else 0.0 (with an error logged).
    """
    if len(reference_signal) == 0:
        if len(processed_signal) == 0:
            return 1.0
        log.error("If `Reference` is empty, `Processed` must be empty as well")
        return 0.0
    score, _, _, _ = haaqi_v1(
        reference=reference_signal,
        reference_freq=reference_sample_rate,
        processed=processed_signal,
        processed_freq=processed_sample_rate,
        audiogram=audiogram,
        equalisation=equalisation,
        level1=level1,
    )
    return score
