"""Delays between reference and processed signals: the broadband bulk delay and the per-band envelope delay.

Both are arg-maxes of cross-correlations that the reference computes by full-length FFTs. The envelope delay
only looks at lags within +-100 ms, so :func:`envelope_delay` computes just those lags (block FFTs of
:data:`BLOCK` samples, spectra accumulated over blocks) and accepts the arg-max when it leads the runner-up by
more than the round-off of either FFT; otherwise (near-ties, non-finite values) it repeats the reference's
full-length correlation, so the chosen lag is always the one the reference chooses.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from scipy.signal import correlate

#: FFT length of the blocked lag-window correlation.
BLOCK = 32768

#: Runner-up margin, relative to ``||reference|| * ||output||``, below which the exact correlation decides.
#: FFT round-off of a correlation is about ``eps * log2(n)`` of that product (1e-14); this leaves a wide margin.
TIE_MARGIN = 2e-10

#: Blocks transformed together (bounds the temporary memory to a few times BLOCK x this x 16 bytes).
BLOCKS_PER_BATCH = 4


def bulk_delay(reference: np.ndarray, processed: np.ndarray) -> int:
    """Lag maximising ``|xcov(reference, processed)|`` over all lags, as a delay in samples (before the 2 ms
    back-off of :func:`input_align`)."""
    n = min(len(reference), len(processed))
    correlation = correlate(reference[:n] - np.mean(reference[:n]), processed[:n] - np.mean(processed[:n]), "full")
    return int(n - np.argmax(np.abs(correlation)) - 1)


def input_align(reference: np.ndarray, processed: np.ndarray, rate: float = 24000.0) -> tuple[np.ndarray, np.ndarray]:
    """Shift ``processed`` by the bulk delay less 2 ms (zero fill), then cut both to the span where
    ``|reference|`` exceeds 0.001 of its peak."""
    processed_n = len(processed)
    delay = int(np.rint(bulk_delay(reference, processed) - 2 * rate / 1000.0))
    if delay > 0:
        processed = np.concatenate((processed[delay:processed_n], np.zeros(delay)))
    else:
        processed = np.concatenate((np.zeros(-delay), processed[: processed_n + delay]))
    reference_abs = np.abs(reference)
    above = np.where(reference_abs > 0.001 * np.max(reference_abs))[0]
    last = min(above[-1], processed_n)
    return reference[above[0] : last + 1], processed[above[0] : last + 1]


def _exact_window_argmax(reference: np.ndarray, output: np.ndarray, lags: int) -> int:
    npts = len(reference)
    return int(np.argmax(correlate(reference, output, "full")[npts - lags : npts + lags]))


def _window_correlation(reference: np.ndarray, output: np.ndarray, lags: int) -> np.ndarray:
    """``c[j] = sum_l reference[l + j - lags + 1] * output[l]`` for ``j`` in ``[0, 2 lags)``, by block FFTs.

    Block ``b`` correlates ``output[b * step : (b + 1) * step]`` with the reference window starting
    ``lags - 1`` samples earlier (``step = BLOCK - 2 lags``: no circular wrap); the spectra are summed.
    """
    n = len(reference)
    step = BLOCK - 2 * lags
    nblocks = -(-n // step)
    work = np.empty((min(nblocks, BLOCKS_PER_BATCH), BLOCK))
    spectrum = np.zeros(BLOCK // 2 + 1, dtype=complex)
    for first in range(0, nblocks, BLOCKS_PER_BATCH):
        count = min(BLOCKS_PER_BATCH, nblocks - first)
        for row in range(count):
            start = (first + row) * step - (lags - 1)
            lo, hi = max(start, 0), min(start + BLOCK, n)
            work[row, : lo - start] = 0.0
            work[row, lo - start : hi - start] = reference[lo:hi]
            work[row, hi - start :] = 0.0
        product = scipy.fft.rfft(work[:count], axis=1)
        for row in range(count):
            part = output[(first + row) * step : (first + row + 1) * step]
            work[row, : len(part)] = part
            work[row, len(part) :] = 0.0
        other = scipy.fft.rfft(work[:count], axis=1)
        product *= np.conjugate(other, out=other)
        spectrum += product.sum(axis=0)
    return scipy.fft.irfft(spectrum, n=BLOCK)[: 2 * lags]


def envelope_delay(reference: np.ndarray, output: np.ndarray, rate: int = 24000, corr_range_ms: int = 100) -> int:
    """Delay (samples) of ``output`` relative to ``reference`` (same length): the arg-max of their
    cross-correlation within ``+-corr_range_ms``, the lag the reference implementation picks."""
    npts = len(reference)
    lags = min(int(np.rint(0.001 * corr_range_ms * rate)), npts)
    scale = float(np.sqrt(np.dot(reference, reference) * np.dot(output, output)))
    if scale == 0.0:
        location = 0  # an all-zero FFT correlation: numpy's arg-max of zeros
    elif lags == npts or not np.isfinite(scale):
        location = _exact_window_argmax(reference, output, lags)
    else:
        correlation = _window_correlation(reference, output, lags)
        location = int(np.argmax(correlation))
        runner_up = np.max(np.delete(correlation, location))
        if not correlation[location] - runner_up > TIE_MARGIN * scale:
            location = _exact_window_argmax(reference, output, lags)
    return lags - location - 1
