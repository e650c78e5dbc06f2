"""The HAAQI ear model (Kates & Arehart): middle ear, gammatone filter bank with level-dependent bandwidths,
OHC compression, envelope alignment, dB SL conversion, IHC adaptation and threshold noise, per auditory band.

The reference implementation keeps eight ``(bands, samples)`` arrays and reduces them afterwards. Here each
band is reduced as soon as it is computed: its dB envelope is smoothed into 8 ms segments and its BM motion
is kept for the segment covariances, which need the processed signal's threshold noise, drawn only after all
of the reference's. So two ``(bands, samples)`` arrays are held (the BM motions) and memory grows linearly
with the signal. The bandwidths of all bands are computed first (:func:`reference_bandwidths`) because the
group-delay correction of every band depends on all of them.

Signals are ``(samples,)`` float64 at :data:`RATE` Hz after :func:`resample_24khz`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.interpolate
from scipy.signal import butter, cheby2, correlate, group_delay, lfilter, resample_poly

from cadenza.haaqi import kernels
from cadenza.haaqi.alignment import envelope_delay, input_align
from cadenza.haaqi.legacy_random import LegacyNormalStream

#: Sampling rate of the cochlear model, Hz.
RATE = 24000.0

#: Audiometric frequencies of the hearing loss, Hz.
AUDIOMETRIC_FREQUENCIES = np.array([250, 500, 1000, 2000, 4000, 6000])

#: Glasberg-Moore ERB parameters.
EAR_Q = 9.26449
MIN_BANDWIDTH = 24.7

#: NAL-R FIR order at 24 kHz added to the reference (``equalisation == 1``).
NALR_ORDER = 140

#: Envelope floor, and the linear-amplitude floor added before logarithms.
SMALL = 1e-30

#: Threshold noise level, dB re auditory threshold.
IHC_THRESHOLD_DB = -10

#: IHC adaptation overshoot factor.
IHC_OVERSHOOT = 2


def center_frequency(nchan: int, low_freq: float = 80, high_freq: float = 8000) -> np.ndarray:
    """``(nchan,)`` ERB-spaced centre frequencies from ``low_freq`` to ``high_freq`` Hz (Slaney's formula)."""
    spacing = EAR_Q * MIN_BANDWIDTH
    freqs = -spacing + np.exp(
        np.arange(1, nchan) * (-np.log(high_freq + spacing) + np.log(low_freq + spacing)) / (nchan - 1)
    ) * (high_freq + spacing)
    return np.flip(np.insert(freqs, 0, high_freq))


@dataclass(frozen=True)
class CochlearParameters:
    """Per-band ``(nchan,)`` parameters for a hearing loss: OHC attenuation (dB), bandwidth factor, lower
    compression knee (dB SPL), compression ratio, IHC attenuation (dB)."""

    attn_ohc: np.ndarray
    bandwidth: np.ndarray
    low_knee: np.ndarray
    compression_ratio: np.ndarray
    attn_ihc: np.ndarray

    @classmethod
    def for_loss(cls, hearing_loss: np.ndarray, center_freq: np.ndarray) -> CochlearParameters:
        """Apportion ``hearing_loss`` (dB at :data:`AUDIOMETRIC_FREQUENCIES`) to OHC and IHC (Moore et al. 1999)."""
        nfilt = len(center_freq)
        freqs = np.insert(AUDIOMETRIC_FREQUENCIES, [0, len(AUDIOMETRIC_FREQUENCIES)], [center_freq[0], center_freq[-1]])
        levels = np.insert(hearing_loss, [0, len(hearing_loss)], [hearing_loss[0], hearing_loss[-1]])
        loss = np.maximum(np.interp(center_freq, freqs, levels), 0)
        normal_ratio = 1.25 + 2.25 * np.arange(nfilt) / (nfilt - 1)
        max_ohc = 70 * (1 - (1 / normal_ratio))
        theoretical_ohc = 1.25 * max_ohc
        attn_ohc = 0.8 * np.copy(loss)
        attn_ihc = 0.2 * np.copy(loss)
        over = loss >= theoretical_ohc
        attn_ohc[over] = 0.8 * theoretical_ohc[over]
        attn_ihc[over] = 0.2 * theoretical_ohc[over] + (loss[over] - theoretical_ohc[over])
        bandwidth = np.ones(nfilt) + (attn_ohc / 50.0) + 2.0 * (attn_ohc / 50.0) ** 6
        low_knee = attn_ohc + 30
        upamp = 30 + (70 / normal_ratio)
        ratio = (100 - low_knee) / (upamp + attn_ohc - low_knee)
        return cls(attn_ohc, bandwidth, low_knee, ratio, attn_ihc)


def resample_24khz(signal: np.ndarray, rate: float) -> np.ndarray:
    """``signal`` at 24 kHz (rates rounded to whole kHz), RMS-matched to the input (within 21 kHz when
    downsampling); returned unchanged when the rounded rate is 24 kHz."""
    target_khz = np.round(RATE / 1000)
    rate_khz = np.round(rate / 1000)
    if rate_khz == target_khz:
        return signal
    resampled = resample_poly(signal, target_khz, rate_khz)
    if rate_khz < target_khz:
        signal_rms = np.sqrt(np.mean(signal**2))
        resampled_rms = np.sqrt(np.mean(resampled**2))
    else:
        b, a = cheby2(7, 30, 21 / rate_khz)
        signal_rms = np.sqrt(np.mean(lfilter(b, a, signal, axis=0) ** 2))
        b, a = cheby2(7, 30, 21 / target_khz)
        resampled_rms = np.sqrt(np.mean(lfilter(b, a, resampled, axis=0) ** 2))
    return (signal_rms / resampled_rms) * resampled


def nalr_fir(hearing_loss: np.ndarray, nfir: int = NALR_ORDER, rate: float = RATE) -> np.ndarray:
    """``(nfir + 1,)`` linear-phase NAL-R FIR for ``hearing_loss`` at :data:`AUDIOMETRIC_FREQUENCIES` (frequency
    sampling on a 512-point grid, Hamming window: MATLAB's ``fir2``); a pure delay of ``nfir // 2`` without loss."""
    if np.max(hearing_loss) <= 0:
        fir = np.zeros(nfir + 1)
        fir[nfir // 2] = 1.0
        return fir
    critical_loss = hearing_loss[1] + hearing_loss[2] + hearing_loss[3]
    x_ave = 0.05 * critical_loss if critical_loss <= 180 else 9.0 + 0.116 * (critical_loss - 180)
    gain_db = np.clip(x_ave + 0.31 * hearing_loss + np.array([-17, -8, 1, -1, -2, -2]), a_min=0, a_max=None)
    fmax = 0.5 * rate
    interpolate = scipy.interpolate.interp1d(
        np.concatenate((np.array([0.0]), AUDIOMETRIC_FREQUENCIES, np.array([fmax]))),
        np.concatenate(([gain_db[0]], gain_db, [gain_db[-1]])),
    )
    grid = np.linspace(0, nfir, nfir + 1) / nfir
    gains = np.power(10, interpolate(fmax * grid) / 20.0)
    return _fir2(nfir + 1, grid, gains)


def _fir2(ntaps: int, freqs: np.ndarray, gains: np.ndarray, npoints: int = 512) -> np.ndarray:
    """Frequency-sampling FIR design (no repeated frequencies): gains interpolated on ``npoints + 1`` bins."""
    from scipy.signal.windows import hamming

    response = np.zeros(npoints + 1)
    response[0] = gains[0]
    bins = npoints + 1
    start = 0
    for i in range(len(freqs) - 1):
        stop = int(np.fix(freqs[i + 1] * bins)) - 1
        j = np.arange(start, stop + 1)
        inc = 0.0 if start == stop else (j - start) / (stop - start)
        response[start : stop + 1] = inc * gains[i + 1] + (1 - inc) * gains[i]
        start = stop + 1
    delay = 0.5 * (ntaps - 1)
    response = response * np.exp(-delay * 1j * np.pi * np.arange(0, bins) / (bins - 1))
    response = np.concatenate((response, response[bins - 2 : 0 : -1].conj()))
    return np.real(np.fft.ifft(response))[0:ntaps] * hamming(ntaps)


def middle_ear(signal: np.ndarray, rate: float = RATE) -> np.ndarray:
    """1-pole Butterworth low-pass at 5 kHz then 2-pole Butterworth high-pass at 350 Hz."""
    b, a = butter(1, 5000 / (0.5 * rate))
    filtered = lfilter(b, a, signal)
    b, a = butter(2, 350 / (0.5 * rate), "high")
    return lfilter(b, a, filtered)


def _pole(bandwidth: float, center_freq: float, rate: float) -> float:
    erb = MIN_BANDWIDTH + (center_freq / EAR_Q)
    return np.exp(-(bandwidth * (2 * np.pi / rate) * erb * 1.019))


def gammatone_coefficients(bandwidth: float, center_freq: float, rate: float = RATE) -> np.ndarray:
    """``(a1, a5, p1, p2, p3, p4, gain)`` of the 4th-order gammatone at ``center_freq`` (bandwidth factor
    ``bandwidth`` times the ERB): numerator ``[1, a1, a5]``, denominator ``[1, p1, p2, p3, p4]``."""
    a = _pole(bandwidth, center_freq, rate)
    a_1 = 4.0 * a
    a_2 = -6.0 * a * a
    a_3 = 4.0 * a * a * a
    a_4 = -a * a * a * a
    a_5 = 4.0 * a * a
    gain = 2.0 * (1 - a_1 - a_2 - a_3 - a_4) / (1 + a_1 + a_5)
    return np.array([a_1, a_5, -a_1, -a_2, -a_3, -a_4, gain], dtype=float)


def group_delay_correction(bandwidths: np.ndarray, center_freq: np.ndarray, rate: float = RATE) -> np.ndarray:
    """``(nchan,)`` integer delays (samples) that give every gammatone band the largest band's group delay."""
    erb = MIN_BANDWIDTH + (center_freq / EAR_Q)
    a = np.exp(-(2 * np.pi / rate * 1.019 * bandwidths * erb))
    delays = np.zeros(len(bandwidths))
    for n in range(len(bandwidths)):
        b_n = np.array([1.0, 4.0 * a[n], 4.0 * a[n] * a[n]])
        a_n = np.array(
            [1.0, -(4.0 * a[n]), -(-6.0 * a[n] * a[n]), -(4.0 * a[n] * a[n] * a[n]), -(-a[n] * a[n] * a[n] * a[n])]
        )
        delays[n] = group_delay((b_n, a_n), w=1)[1][0]
    delays = np.rint(delays).astype(int)
    return np.max(delays) - delays


def _rms(x: np.ndarray) -> float:
    """``np.sqrt(np.mean(x**2))`` without the temporary."""
    return np.sqrt(kernels.pairwise_sum(x, 0, len(x), True) / len(x))


def bandwidth_adjust(control: np.ndarray, bandwidth_min: float, bandwidth_max: float, level1: float) -> float:
    """Bandwidth factor raised with the control envelope's level: ``bandwidth_min`` below 50 dB SPL, up to
    ``bandwidth_max`` at 100 dB SPL."""
    control_db = 20 * np.log10(_rms(control)) + level1
    if control_db < 50:
        return bandwidth_min
    if control_db > 100:
        return bandwidth_max
    return bandwidth_min + ((control_db - 50) / 50) * (bandwidth_max - bandwidth_min)


def convert_rms_to_sl(
    rms: np.ndarray, control_rms: np.ndarray, params: CochlearParameters, level1: float
) -> np.ndarray:
    """``(nchan,)`` compressed RMS band levels in dB above the impaired threshold."""
    control_db = level1 + 20 * np.log10(np.maximum(control_rms, SMALL))
    control_db = np.maximum(np.minimum(control_db, 100), params.low_knee)
    gain = -params.attn_ohc - (control_db - params.low_knee) * (1 - (1 / params.compression_ratio))
    level_db = np.maximum(level1 + 20 * np.log10(np.maximum(rms, SMALL)), 0)
    return np.maximum(level_db + gain - params.attn_ihc, 0)


@lru_cache(maxsize=8)
def _smoothing_window(segment_ms: float, rate: float) -> tuple[np.ndarray, float, float]:
    nwin = int(np.around(segment_ms * (0.001 * rate)))
    nwin += nwin % 2
    window = np.hanning(nwin)
    return window, float(np.sum(window[nwin // 2 :])), float(np.sum(window))


def segment_count(npts: int, nwin: int) -> int:
    """Number of 50 %-overlapping segments of ``nwin`` samples (half segments at both ends)."""
    return int(1 + np.floor(npts / nwin) + np.floor((npts - nwin / 2) / nwin))


@lru_cache(maxsize=8)
def _covariance_window(segment_ms: float, rate: float) -> tuple:
    maxlag = int(np.around(1.0 * (0.001 * rate)))
    nwin = int(np.around(segment_ms * (0.001 * rate)))
    nwin += nwin % 2 == 1
    window = np.hanning(nwin)
    half = window[nwin // 2 :]
    win_corr = 1 / correlate(window, window, "full")[nwin - 1 - maxlag : maxlag + nwin]
    half_corr = 1 / correlate(half, half, "full")[len(half) - 1 - maxlag : maxlag + len(half)]
    return window, half_corr, win_corr, 1.0 / np.sum(half**2), 1.0 / np.sum(window**2), maxlag


@dataclass
class EarModelOutput:
    """What the HAAQI features need from the ear model.

    ``reference_smooth``, ``processed_smooth``: ``(nchan, nseg_env)`` dB SL envelopes averaged over 50 %-overlapping
    ``smooth_ms`` segments. ``cross_covariance``: ``(nchan, nseg_bm)`` peak normalised cross-covariance (lags
    +-1 ms) of the BM motions over ``covariance_ms`` segments, in ``[0, 1]``; ``reference_mean_square``: the
    reference BM mean square per segment (x2, dB SL scale). ``reference_sl``, ``processed_sl``: ``(nchan,)``
    long-term band levels, dB SL.
    """

    reference_smooth: np.ndarray
    processed_smooth: np.ndarray
    cross_covariance: np.ndarray
    reference_mean_square: np.ndarray
    reference_sl: np.ndarray
    processed_sl: np.ndarray


def _prepare_signals(reference, reference_rate, processed, processed_rate, hearing_loss, equalisation):
    reference = resample_24khz(reference, reference_rate)
    processed = resample_24khz(processed, processed_rate)
    n = min(len(reference), len(processed))
    reference, processed = input_align(reference[:n], processed[:n])
    nsamp = len(reference)
    if equalisation == 1:
        reference = np.convolve(reference, nalr_fir(hearing_loss))[NALR_ORDER : NALR_ORDER + nsamp]
    return middle_ear(reference), middle_ear(processed)


class _BandBuffers:
    """Work arrays of one band, reused across bands: carriers ``(cos, sin)`` of ``(n,)`` (and a second pair for
    a second band); control envelopes, envelopes, BM
    motions and a scratch array ``(2, n)`` (row 0 the reference, row 1 the processed signal)."""

    def __init__(self, n: int):
        self.carriers = (np.empty(n), np.empty(n))
        self.other_carriers = (np.empty(n), np.empty(n))
        self.control, self.env, self.bm, self.tmp = (np.empty((2, n)) for _ in range(4))


@contextlib.contextmanager
def _small_pages():
    """Turn off numpy's transparent-huge-page advice for its arrays while the ear model runs.

    The model's large arrays are written once, band by band; where the kernel compacts memory to serve huge
    pages on first touch (``defrag=madvise``) that costs more than the computation itself.
    """
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # another numpy layout: leave the advice as it is
        yield
        return
    previous = _set_madvise_hugepage(False)
    try:
        yield
    finally:
        _set_madvise_hugepage(previous)


def ear_model(
    reference: np.ndarray,
    reference_rate: float,
    processed: np.ndarray,
    processed_rate: float,
    hearing_loss: np.ndarray,
    equalisation: int,
    level1: float,
    smooth_ms: float = 8,
    covariance_ms: float = 16,
    nchan: int = 32,
) -> EarModelOutput:
    """The cochlear model of both signals, reduced to the HAAQI features' inputs (see :class:`EarModelOutput`).

    ``hearing_loss``: dB HL at :data:`AUDIOMETRIC_FREQUENCIES`; ``equalisation`` 1 adds NAL-R to the reference,
    2 takes it as already equalised (0: normal-hearing reference, the intelligibility variant). ``level1``: dB SPL
    of an RMS of 1. Draws ``2 * nchan * samples`` Gaussian values from numpy's global legacy generator,
    reference first, band by band.
    """
    with _small_pages():
        return _ear_model(
            reference, reference_rate, processed, processed_rate, hearing_loss, equalisation, level1,
            smooth_ms, covariance_ms, nchan,
        )  # fmt: skip


def _ear_model(
    reference, reference_rate, processed, processed_rate, hearing_loss, equalisation, level1, smooth_ms,
    covariance_ms, nchan,
) -> EarModelOutput:  # fmt: skip
    center_freq = center_frequency(nchan)
    processed_params = CochlearParameters.for_loss(hearing_loss, center_freq)
    reference_loss = np.zeros(len(hearing_loss)) if equalisation == 0 else hearing_loss
    reference_params = CochlearParameters.for_loss(reference_loss, center_freq)
    max_bandwidth = CochlearParameters.for_loss(np.full(6, 100), center_freq).bandwidth

    reference, processed = _prepare_signals(
        reference, reference_rate, processed, processed_rate, hearing_loss, equalisation
    )
    npts = len(reference)
    buf = _BandBuffers(npts)
    tpt = 2 * np.pi / RATE

    def control_envelopes(signals, bands):
        """Control envelopes (widest bandwidth) of ``signals[i]`` in ``bands[i]``, in ``buf.control[i]``."""
        kernels.carriers(tpt, center_freq[bands[0]], *buf.carriers)
        if bands[1] != bands[0]:
            kernels.carriers(tpt, center_freq[bands[1]], *buf.other_carriers)
        control = buf.control
        kernels.gammatone_pair(
            signals[0], signals[1], buf.carriers, buf.carriers if bands[1] == bands[0] else buf.other_carriers,
            gammatone_coefficients(max_bandwidth[bands[0]], center_freq[bands[0]]),
            gammatone_coefficients(max_bandwidth[bands[1]], center_freq[bands[1]]),
            control[0], control[0], control[1], control[1], False,
        )  # fmt: skip

    # Pass 1: the reference's level-adjusted bandwidths, on which every band's group delay correction depends
    # (two bands at a time).
    reference_bandwidth = np.zeros(nchan)
    for first in range(0, nchan, 2):
        bands = (first, min(first + 1, nchan - 1))
        control_envelopes((reference, reference), bands)
        for row, band in enumerate(bands):
            reference_bandwidth[band] = bandwidth_adjust(
                buf.control[row], reference_params.bandwidth[band], max_bandwidth[band], level1
            )
    correction = group_delay_correction(reference_bandwidth, center_freq)

    window, half_sum, window_sum = _smoothing_window(smooth_ms, RATE)
    nseg_env = segment_count(npts, len(window))
    smooth = np.zeros((2, nchan, nseg_env))
    averages = np.zeros((2, nchan))
    control_averages = np.zeros((2, nchan))
    bm_reference, bm_processed = np.empty((nchan, npts)), np.empty((nchan, npts))
    noise_gain = 10 ** ((IHC_THRESHOLD_DB - level1) / 20)
    ihc = _ihc_coefficients(IHC_OVERSHOOT, RATE)
    lowpass_b, lowpass_a = butter(1, 800 / (0.5 * RATE))
    params = (reference_params, processed_params)
    env, bm, tmp = buf.env, buf.bm, buf.tmp

    with LegacyNormalStream() as noise:
        for band in range(nchan):
            control_envelopes((reference, processed), (band, band))
            processed_bandwidth = bandwidth_adjust(
                buf.control[1], processed_params.bandwidth[band], max_bandwidth[band], level1
            )
            kernels.gammatone_pair(
                reference, processed, buf.carriers, buf.carriers,
                gammatone_coefficients(reference_bandwidth[band], center_freq[band]),
                gammatone_coefficients(processed_bandwidth, center_freq[band]),
                env[0], bm[0], env[1], bm[1], True,
            )  # fmt: skip
            for row in range(2):
                averages[row, band] = _rms(env[row])
                control_averages[row, band] = _rms(buf.control[row])
            _compress(buf.control, env, bm, params, band, level1, lowpass_b, lowpass_a, tmp)
            # Align the processed envelope and BM motion with the reference's.
            for signal in (env, bm):
                kernels.shift_right(signal[1], -envelope_delay(signal[0], signal[1]), signal[1])
            # dB SL, IHC adaptation (tmp: the dB envelopes), group delay, smoothing.
            kernels.add_scalar(env.ravel(), SMALL, tmp.ravel())
            np.log10(tmp, out=tmp)
            offsets = np.array([level1 - p.attn_ihc[band] for p in params])
            kernels.sensation_level(tmp, env, bm, offsets, SMALL)
            kernels.ihc_adaptation_pair(tmp, bm, ihc, SMALL)
            delay = int(correction[band])
            for row in range(2):
                kernels.shift_right(tmp[row], delay, env[row])
                kernels.env_smooth_band(env[row], window, half_sum, window_sum, nseg_env, smooth[row, band])
            # The reference's threshold noise is drawn band by band (the processed signal's after all bands).
            noise.add_scaled(bm[0], noise_gain, bm_reference[band], delay)
            bm_processed[band] = bm[1]

        covariance = _bm_covary(bm_reference, bm_processed, correction, noise, noise_gain, covariance_ms, tmp[0])

    return EarModelOutput(
        reference_smooth=smooth[0],
        processed_smooth=smooth[1],
        cross_covariance=covariance[0],
        reference_mean_square=covariance[1],
        reference_sl=convert_rms_to_sl(averages[0], control_averages[0], reference_params, level1),
        processed_sl=convert_rms_to_sl(averages[1], control_averages[1], processed_params, level1),
    )


def _compress(control, env, bm, params, band, level1, lowpass_b, lowpass_a, tmp):
    """OHC compression of both rows of ``env`` and ``bm`` in place, the gain following the control envelope."""
    kernels.floor_at(control.ravel(), SMALL, tmp.ravel())
    np.log10(tmp, out=tmp)
    attn = np.array([p.attn_ohc[band] for p in params])
    knee = np.array([p.low_knee[band] for p in params])
    slope = np.array([1 - (1 / p.compression_ratio[band]) for p in params])
    kernels.compression_gain_db(tmp, level1, attn, knee, slope, 100)
    np.power(10, tmp, out=tmp)
    kernels.compress_pair(tmp, lowpass_b[0], lowpass_b[1], lowpass_a[1], env, bm)


def _ihc_coefficients(delta: float, rate: float) -> np.ndarray:
    delta = max(delta, 1.0001)
    tau1, tau2 = 0.001 * 2, 0.001 * 60
    period = 1 / rate
    r_1 = 1 / delta
    r_2 = 0.5 * (1 - r_1)
    r_3 = r_2
    c_1 = tau1 * (r_1 + r_2) / (r_1 * r_2)
    c_2 = tau2 / ((r_1 + r_2) * r_3)
    a11 = r_1 + r_2 + r_1 * r_2 * (c_1 / period)
    a12 = -r_1
    a21 = -r_3
    a22 = r_2 + r_3 + r_2 * r_3 * (c_2 / period)
    denom = 1 / ((a11 * a22) - (a21 * a12))
    return np.array([r_2, r_1 * r_2 * (c_1 / period), r_2 * r_3 * (c_2 / period), denom, a11, a12, a21, a22, 1 / r_1])


def _bm_covary(bm_reference, bm_processed, correction, noise, noise_gain, covariance_ms, work):
    """Add the processed signal's threshold noise band by band (then delay the band like the reference's),
    and compute the segment cross-covariances and reference mean squares ``(nchan, nseg_bm)``."""
    window, half_corr, win_corr, half_sum2, win_sum2, maxlag = _covariance_window(covariance_ms, RATE)
    nchan, npts = bm_reference.shape
    nseg = segment_count(npts, len(window))
    covariance = np.zeros((nchan, nseg))
    ms_reference = np.zeros((nchan, nseg))
    ms_processed = np.zeros((nchan, nseg))
    for band in range(nchan):
        noise.add_scaled(bm_processed[band], noise_gain, work, int(correction[band]))
        kernels.bm_covary_band(
            bm_reference[band], work, window, half_corr, win_corr, half_sum2, win_sum2, maxlag, nseg, 1.0e-30,
            covariance[band], ms_reference[band], ms_processed[band],
        )  # fmt: skip
    return np.clip(covariance, 0, 1), ms_reference * 2.0
