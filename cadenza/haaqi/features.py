"""HAAQI features from the ear model's outputs: envelope modulation cepstral correlation, long-term spectrum
differences, and the IHC-synchronisation-weighted BM covariance. Inputs are small ``(bands, segments)`` arrays."""

from __future__ import annotations

import logging

import numpy as np
from scipy.signal import convolve, firwin

from cadenza.haaqi.ear_model import center_frequency
from cadenza.haaqi.legacy_random import LegacyNormalStream

log = logging.getLogger(__name__)

#: Edges (Hz) of the 8 envelope modulation bands covering 0-125 Hz.
MODULATION_EDGES = (4.0, 8.0, 12.5, 20.0, 32.0, 50.0, 80.0)


def _cepstral_basis(nbands: int, ncoef: int) -> np.ndarray:
    basis = np.cos(np.outer(np.arange(nbands), np.arange(ncoef)) * np.pi / (nbands - 1))
    return basis / np.linalg.norm(basis, axis=0, keepdims=True)


def _modulation_filters(segment_ms: float) -> tuple[np.ndarray, int]:
    """``(8, nfir + 1)`` linear-phase FIR modulation filters at the envelope rate, and ``nfir``."""
    nyquist = 0.5 * (1000.0 / (0.5 * segment_ms))
    nfir = int(2 * np.floor(np.around(128 * (nyquist / 125)) / 2))
    nmod = len(MODULATION_EDGES) + 1
    b = np.zeros((nmod, nfir + 1))
    b[0, :] = firwin(nfir + 1, MODULATION_EDGES[0] / nyquist, window="hann", pass_zero="lowpass")
    b[nmod - 1, :] = firwin(nfir + 1, MODULATION_EDGES[-1] / nyquist, window="hann", pass_zero="highpass")
    for m in range(1, nmod - 1):
        edges = [MODULATION_EDGES[m - 1] / nyquist, MODULATION_EDGES[m] / nyquist]
        b[m, :] = firwin(nfir + 1, edges, window="hann", pass_zero="bandpass")
    return b, nfir


def modulation_cepstral_correlation(
    reference: np.ndarray,
    processed: np.ndarray,
    threshold: float,
    add_noise: float,
    segment_ms: float,
    ncoef: int = 6,
) -> np.floating | float:
    """Average cross-covariance of the cepstral coefficients 2-6 in the four upper modulation bands (20-125 Hz)
    of the smoothed dB SL envelopes ``(bands, segments)``, over segments whose loudness exceeds ``threshold``.

    Draws two ``(bands, active segments)`` Gaussian arrays from numpy's global legacy generator, scaled by
    ``add_noise`` (0 in HAAQI: they then only advance the generator).
    """
    nbands = reference.shape[0]
    loudness = 20 * np.log10(np.sum(10 ** (reference / 20), 0) / nbands)
    index = np.where(loudness > threshold)[0]
    nsamp = index.shape[0]
    if nsamp <= 1:
        log.warning("modulation cepstral correlation: signal below threshold, set to 0")
        return 0.0
    reference = reference[:, index]
    processed = processed[:, index]
    with LegacyNormalStream() as noise:
        reference += add_noise * noise.normals(reference.shape)
        processed += add_noise * noise.normals(processed.shape)
    basis = _cepstral_basis(nbands, ncoef)
    reference_cep = np.dot(basis.T, reference[:, :nsamp])
    processed_cep = np.dot(basis.T, processed[:, :nsamp])
    reference_cep -= np.mean(reference_cep, axis=1, keepdims=True)
    processed_cep -= np.mean(processed_cep, axis=1, keepdims=True)

    b, nfir = _modulation_filters(segment_ms)
    nmod = b.shape[0]
    first = int(nfir / 2)
    covariance = np.zeros((nmod, ncoef))
    for m in range(nmod):
        x = np.empty((ncoef, nsamp))
        y = np.empty((ncoef, nsamp))
        for j in range(ncoef):
            x[j] = convolve(b[m], reference_cep[j, :], mode="full")[first : first + nsamp]
            y[j] = convolve(b[m], processed_cep[j, :], mode="full")[first : first + nsamp]
        x -= np.mean(x, axis=1, keepdims=True)
        y -= np.mean(y, axis=1, keepdims=True)
        x_sum = np.sum(x**2, axis=1)
        y_sum = np.sum(y**2, axis=1)
        xy = np.sum(x * y, axis=1)
        ok = ~((x_sum < 1.0e-30) | (y_sum < 1.0e-30))
        covariance[m, ok] = np.abs(xy[ok]) / np.sqrt(x_sum[ok] * y_sum[ok])
    return np.sum(covariance[4:8, 1:]) / (4 * (ncoef - 1))


def spectrum_differences(reference_sl: np.ndarray, processed_sl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(sum |d|, nbands * std d, max |d|)`` of the loudness-normalised specific-loudness spectrum difference
    ``d`` and of its relative version ``d / (ref + proc)``, from ``(bands,)`` dB SL spectra."""
    nbands = reference_sl.shape[0]
    reference = 10 ** (reference_sl / 20)
    processed = 10 ** (processed_sl / 20)
    reference /= np.sum(reference)
    processed /= np.sum(processed)
    stats = []
    for diff in (reference - processed, (reference - processed) / (reference + processed)):
        stats.append(np.array([np.sum(np.abs(diff)), nbands * np.std(diff), np.max(np.abs(diff))]))
    return stats[0], stats[1]


def sync_weighted_covariance(
    cross_covariance: np.ndarray, reference_mean_square: np.ndarray, threshold_db: float
) -> np.ndarray:
    """``(6,)`` averages of the segment cross-covariances ``(bands, segments)`` over tiles above ``threshold_db``
    (dB SL), weighted by six low-pass models of the IHC loss of synchronisation (orders 1, 3, 5, 5, 5, 5;
    cut-offs 1.5 to 4 kHz)."""
    nchan = cross_covariance.shape[0]
    order = np.array([1, 3, 5, 5, 5, 5])
    cutoff = 1000 * np.array([1.5, 2.0, 2.5, 3.0, 3.5, 4.0])
    fc2p = np.atleast_2d(cutoff ** (2 * order)).repeat(nchan, axis=0).T
    freq2p = center_frequency(nchan) ** (2 * np.atleast_2d(order).repeat(nchan, axis=0).T)
    fsync = np.sqrt(fc2p / (fc2p + freq2p))

    rms = np.sqrt(reference_mean_square)
    loudness = 20 * np.log10(np.sum(10 ** (rms / 20), 0) / nchan)
    index = np.argwhere(loudness > threshold_db).T
    if index.size != 1:
        index = index.squeeze()
    nseg = index.shape[0]
    if nseg <= 1:
        log.warning("BM covariance: signal below threshold, set to 0")
        return np.zeros(6)
    cross_covariance = cross_covariance[:, index]
    mask = rms[:, index] > threshold_db
    wsync = np.zeros((6, nchan, nseg))
    wsync[:, mask] = np.repeat(fsync[..., None], nseg, axis=2)[:, mask]
    return np.sum(wsync * cross_covariance, axis=(1, 2)) / np.sum(wsync, axis=(1, 2))
