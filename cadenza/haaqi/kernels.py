"""Compiled inner loops of the HAAQI ear model and features (numba, double precision).

Each kernel performs the arithmetic of the reference formulation (pyclarity 0.9.0's ``eb`` module: scipy's
``lfilter`` in direct form II transposed, numpy's pairwise summation, Python's left-to-right ``sum``, numpy's
``correlate`` as one BLAS ``ddot`` per lag) in the same order, so that results are bit-identical; only the
loops around the arithmetic are fused. Transcendental functions other than ``sqrt`` stay in numpy (its SIMD
``log10`` and ``power`` differ from libm in the last bit), except where the reference itself uses libm
(the carriers and the Gaussian generator, see :mod:`cadenza.haaqi.legacy_random`).

All signals are 1-D contiguous ``float64`` arrays of ``n`` samples.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: numpy's pairwise summation block (``PW_BLOCKSIZE``).
_PAIRWISE_BLOCK = 128


@njit(cache=True, inline="always")
def _term(a, i, square):
    return a[i] * a[i] if square else a[i]


@njit(cache=True)
def _block_sum(a, start, n, square):
    """numpy's pairwise-summation leaf (``n <= 128``): eight interleaved partial sums, then the remainder."""
    if n < 8:
        res = 0.0
        for i in range(start, start + n):
            res += _term(a, i, square)
        return res
    r0, r1, r2 = _term(a, start, square), _term(a, start + 1, square), _term(a, start + 2, square)
    r3, r4, r5 = _term(a, start + 3, square), _term(a, start + 4, square), _term(a, start + 5, square)
    r6, r7 = _term(a, start + 6, square), _term(a, start + 7, square)
    i = start + 8
    stop = start + n - n % 8
    while i < stop:
        r0 += _term(a, i, square)
        r1 += _term(a, i + 1, square)
        r2 += _term(a, i + 2, square)
        r3 += _term(a, i + 3, square)
        r4 += _term(a, i + 4, square)
        r5 += _term(a, i + 5, square)
        r6 += _term(a, i + 6, square)
        r7 += _term(a, i + 7, square)
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < start + n:
        res += _term(a, i, square)
        i += 1
    return res


@njit(cache=True)
def _left_size(n):
    half = n // 2
    return half - half % 8


@njit(cache=True)
def pairwise_sum(a, start, n, square):
    """``np.sum(a[start:start + n])`` (or of its squares when ``square``) with numpy's pairwise summation order:
    ranges over 128 are split in two (the left part a multiple of 8) and the halves' sums added.

    Iterative (an explicit stack instead of recursion, which numba's cache does not reload safely).
    """
    if n <= _PAIRWISE_BLOCK:
        return _block_sum(a, start, n, square)
    depth = 64
    starts = np.empty(depth, dtype=np.int64)
    sizes = np.empty(depth, dtype=np.int64)
    left_sums = np.empty(depth)
    right_pending = np.zeros(depth, dtype=np.bool_)
    top = 0
    starts[0], sizes[0] = start, n
    while True:
        # Descend along left halves to a leaf.
        while sizes[top] > _PAIRWISE_BLOCK:
            half = _left_size(sizes[top])
            right_pending[top] = True
            starts[top + 1], sizes[top + 1] = starts[top], half
            top += 1
        value = _block_sum(a, starts[top], sizes[top], square)
        # Climb while right halves are complete; descend into the first pending right half.
        while True:
            if top == 0:
                return value
            top -= 1
            half = _left_size(sizes[top])
            if right_pending[top]:
                right_pending[top] = False
                left_sums[top] = value
                starts[top + 1], sizes[top + 1] = starts[top] + half, sizes[top] - half
                top += 1
                break
            value = left_sums[top] + value


@njit(cache=True)
def carriers(tpt, center_freq, cos_out, sin_out):
    """Cosine and sine carriers at ``center_freq`` Hz (``tpt = 2 pi / rate``) by the 2-D rotation recurrence."""
    cos_n = np.cos(tpt * center_freq)
    sin_n = np.sin(tpt * center_freq)
    cold = 1.0
    sold = 0.0
    cos_out[0] = cold
    sin_out[0] = sold
    for i in range(1, cos_out.shape[0]):
        arg = cold * cos_n + sold * sin_n
        sold = sold * cos_n - cold * sin_n
        cold = arg
        cos_out[i] = cold
        sin_out[i] = sold


@njit(cache=True, inline="always")
def _gammatone_step(x, c, s, k, z):
    """One sample of the demodulated 4th-order gammatone (both parts) in direct form II transposed, as
    ``lfilter([1, a1, a5], [1, p1, p2, p3, p4])`` computes it (numerator zero-padded). ``z``: 8 states."""
    xr = x * c
    xi = x * s
    yr = z[0] + 1.0 * xr
    z[0] = z[1] + xr * k[0] - yr * k[2]
    z[1] = z[2] + xr * k[1] - yr * k[3]
    z[2] = z[3] + xr * 0.0 - yr * k[4]
    z[3] = xr * 0.0 - yr * k[5]
    yi = z[4] + 1.0 * xi
    z[4] = z[5] + xi * k[0] - yi * k[2]
    z[5] = z[6] + xi * k[1] - yi * k[3]
    z[6] = z[7] + xi * 0.0 - yi * k[4]
    z[7] = xi * 0.0 - yi * k[5]
    return k[6] * np.sqrt(yr * yr + yi * yi), k[6] * (yr * c + yi * s)


@njit(cache=True)
def gammatone_pair(x, y, carriers_x, carriers_y, kx, ky, env_x, bm_x, env_y, bm_y, with_bm):
    """4th-order gammatone filters of ``x`` (carriers ``(cos, sin)``, coefficients ``kx``) and ``y``
    (``carriers_y``, ``ky``): envelopes, and basilar-membrane motions when ``with_bm``. Interleaving the two
    recursions hides their latency.

    ``k = (a1, a5, p1, p2, p3, p4, gain)``: numerator ``[1, a1, a5]``, denominator ``[1, p1, p2, p3, p4]``.
    """
    zx = np.zeros(8)
    zy = np.zeros(8)
    cos_x, sin_x = carriers_x
    cos_y, sin_y = carriers_y
    for i in range(x.shape[0]):
        ex, bx = _gammatone_step(x[i], cos_x[i], sin_x[i], kx, zx)
        ey, by = _gammatone_step(y[i], cos_y[i], sin_y[i], ky, zy)
        env_x[i] = ex
        env_y[i] = ey
        if with_bm:
            bm_x[i] = bx
            bm_y[i] = by


@njit(cache=True)
def floor_at(x, small, out):
    """``out = np.maximum(x, small)``."""
    for i in range(x.shape[0]):
        v = x[i]
        out[i] = v if v >= small or v != v else small


@njit(cache=True)
def add_scalar(x, small, out):
    """``out = x + small``."""
    for i in range(x.shape[0]):
        out[i] = x[i] + small


@njit(cache=True)
def compression_gain_db(log_control, level1, attn_ohc, threshold_low, slope, threshold_high):
    """OHC gains in dB / 20 from ``log10`` of the ``(2, n)`` control envelopes (levels clipped to
    ``[threshold_low, threshold_high]``), in place; ``attn_ohc``, ``threshold_low``, ``slope``: per row."""
    for row in range(log_control.shape[0]):
        attn, low, k = attn_ohc[row], threshold_low[row], slope[row]
        for i in range(log_control.shape[1]):
            level = level1 + 20 * log_control[row, i]
            level = min(level, threshold_high) if level == level else level
            level = max(level, low) if level == level else level
            log_control[row, i] = (-attn - (level - low) * k) / 20


@njit(cache=True)
def compress_pair(gain, b0, b1, a1, env, bm):
    """Both rows of ``(2, n)`` linear gains through ``lfilter([b0, b1], [1, a1])`` (1st-order low-pass), then
    multiplied into the rows of ``env`` and ``bm`` in place."""
    z0 = 0.0
    z1 = 0.0
    for i in range(gain.shape[1]):
        x0 = gain[0, i]
        x1 = gain[1, i]
        y0 = z0 + b0 * x0
        y1 = z1 + b0 * x1
        z0 = x0 * b1 - y0 * a1
        z1 = x1 * b1 - y1 * a1
        env[0, i] = y0 * env[0, i]
        env[1, i] = y1 * env[1, i]
        bm[0, i] = y0 * bm[0, i]
        bm[1, i] = y1 * bm[1, i]


@njit(cache=True)
def sensation_level(log_env, env, bm, offsets, small):
    """dB SL envelopes ``max(offset + 20 log10(env + small), 0)`` of the rows of ``(2, n)`` arrays, written
    over ``log_env`` (which holds the ``log10``); BM motions rescaled in place."""
    for row in range(env.shape[0]):
        offset = offsets[row]
        for i in range(env.shape[1]):
            db = offset + 20 * log_env[row, i]
            db = max(db, 0) if db == db else db
            log_env[row, i] = db
            bm[row, i] = (db + small) / (env[row, i] + small) * bm[row, i]


@njit(cache=True, inline="always")
def _ihc_step(v0, v1, v2, k):
    b1 = v0 * k[0] + k[1] * v1
    b2 = k[2] * v2
    v1 = k[3] * (k[7] * b1 - k[5] * b2)
    v2 = k[3] * (-k[6] * b1 + k[4] * b2)
    return (v0 - v1) * k[8], v1, v2


@njit(cache=True)
def ihc_adaptation_pair(db, bm, coefs, small):
    """Rapid and short-term IHC adaptation of both rows of the ``(2, n)`` dB SL envelopes ``db`` and BM
    motions ``bm``, in place (output floored at 0 dB, BM scaled by the envelope's gain).

    ``coefs = (r2, p1, p2, denom, a11, a12, a21, a22, r1_inv)`` of the equivalent RC circuit.
    """
    u1 = u2 = w1 = w2 = 0.0
    for i in range(db.shape[1]):
        u0 = db[0, i]
        w0 = db[1, i]
        out_u, u1, u2 = _ihc_step(u0, u1, u2, coefs)
        out_w, w1, w2 = _ihc_step(w0, w1, w2, coefs)
        out_u = max(out_u, 0) if out_u == out_u else out_u
        out_w = max(out_w, 0) if out_w == out_w else out_w
        bm[0, i] = (out_u + small) / (u0 + small) * bm[0, i]
        bm[1, i] = (out_w + small) / (w0 + small) * bm[1, i]
        db[0, i] = out_u
        db[1, i] = out_w


@njit(cache=True)
def shift_right(x, delay, out):
    """``out = concat(zeros(delay), x[:n - delay])`` for ``delay >= 0``, else ``concat(x[-delay:], zeros(-delay))``.

    ``out`` may be ``x`` (the copy runs in the safe direction).
    """
    n = x.shape[0]
    if delay >= 0:
        for i in range(n - 1, delay - 1, -1):
            out[i] = x[i - delay]
        for i in range(min(delay, n)):
            out[i] = 0.0
    else:
        for i in range(n + delay):
            out[i] = x[i - delay]
        for i in range(max(n + delay, 0), n):
            out[i] = 0.0


@njit(cache=True)
def env_smooth_band(r, window, half_sum, window_sum, nseg, out):
    """Windowed averages of ``r`` over 50 %-overlapping segments: half windows at both ends (pairwise sums),
    full von Hann windows between (left-to-right sums)."""
    nwin = window.shape[0]
    nhalf = nwin // 2
    buf = np.empty(nhalf)
    for j in range(nhalf):
        buf[j] = r[j] * window[nhalf + j]
    out[0] = pairwise_sum(buf, 0, nhalf, False) / half_sum
    start = 0
    for seg in range(1, nseg - 1):
        start += nhalf
        acc = 0.0
        for j in range(nwin):
            acc += r[start + j] * window[j]
        out[seg] = acc / window_sum
    start += nhalf
    for j in range(nhalf):
        buf[j] = r[start + j] * window[j]
    out[nseg - 1] = pairwise_sum(buf, 0, nhalf, False) / half_sum


@njit(cache=True)
def _windowed_zero_mean(x, start, window, w0, n, out):
    for j in range(n):
        out[j] = x[start + j] * window[w0 + j]
    mean = pairwise_sum(out, 0, n, False) / n
    for j in range(n):
        out[j] = out[j] - mean


@njit(cache=True)
def _approximate_lag_products(a_padded, b, n, maxlag, out):
    """``out[k + maxlag]`` ~ ``sum_i a[i + k] * b[i]`` for ``|k| <= maxlag`` (summed over ``i``, not as numpy
    sums), with ``a_padded = [0] * maxlag + a + [0] * maxlag``: one pass, all lags at once."""
    width = 2 * maxlag + 1
    for j in range(width):
        out[j] = 0.0
    for i in range(n):
        bi = b[i]
        for j in range(width):
            out[j] += a_padded[i + j] * bi


@njit(cache=True)
def _lag_product(a, b, n, k):
    """``np.correlate(a, b, 'full')[n - 1 + k]``: numpy's BLAS dot of the overlapping parts."""
    if k < 0:
        return 0.0 + np.dot(a[0 : n + k], b[-k:n])
    return 0.0 + np.dot(a[k:n], b[0 : n - k])


#: Bound on the relative error of a length-n dot product (either summation order), per unit of n * eps.
_DOT_ERROR = 4.0


@njit(cache=True)
def _peak_covariance(a_padded, b, n, maxlag, inv_corr, energy, approx):
    """``max |np.correlate(a, b, 'full')[n-1-maxlag : n+maxlag] * inv_corr|`` with numpy's values.

    The lags are first scored approximately; only those that can be the maximum within the round-off
    bound (``energy = sqrt(sum a^2 * sum b^2)`` times ``n`` eps) are computed as numpy computes them.
    """
    _approximate_lag_products(a_padded, b, n, maxlag, approx)
    a = a_padded[maxlag : maxlag + n]
    best = -1.0
    worst_weight = 0.0
    for j in range(2 * maxlag + 1):
        v = abs(approx[j] * inv_corr[j])
        if v != v:
            return v
        best = max(best, v)
        worst_weight = max(worst_weight, abs(inv_corr[j]))
    bound = 2.0 * _DOT_ERROR * n * 2.220446049250313e-16 * energy * worst_weight
    peak = -1.0
    for j in range(2 * maxlag + 1):
        if abs(approx[j] * inv_corr[j]) >= best - 2.0 * bound:
            v = abs(_lag_product(a, b, n, j - maxlag) * inv_corr[j])
            if v != v:
                return v
            peak = max(peak, v)
    return peak


@njit(cache=True)
def bm_covary_band(x, y, window, half_corr, win_corr, half_sum2, win_sum2, maxlag, nseg, small, cov, ms_x, ms_y):
    """Per-segment normalised cross-covariance peak (lags ``+-maxlag``) and mean squares of BM motions x, y.

    Segments of ``len(window)`` samples with 50 % overlap; the first and last use half windows.
    """
    nwin = window.shape[0]
    nhalf = nwin // 2
    padded_x = np.zeros(nwin + 2 * maxlag)
    by = np.empty(nwin)
    approx = np.empty(2 * maxlag + 1)
    start = 0
    for seg in range(nseg):
        if seg == 0 or seg == nseg - 1:
            n, w0, inv_corr, norm = nhalf, (nhalf if seg == 0 else 0), half_corr, half_sum2
        else:
            n, w0, inv_corr, norm = nwin, 0, win_corr, win_sum2
        if seg > 0:
            start += nhalf
        bx = padded_x[maxlag : maxlag + n]
        padded_x[maxlag + n :] = 0.0
        _windowed_zero_mean(x, start, window, w0, n, bx)
        _windowed_zero_mean(y, start, window, w0, n, by)
        sx = pairwise_sum(bx, 0, n, True)
        sy = pairwise_sum(by, 0, n, True)
        mx = sx * norm
        my = sy * norm
        peak = _peak_covariance(padded_x, by, n, maxlag, inv_corr, np.sqrt(sx * sy), approx)
        cov[seg] = peak / np.sqrt(mx * my) if (mx > small and my > small) else 0.0
        ms_x[seg] = mx
        ms_y[seg] = my
