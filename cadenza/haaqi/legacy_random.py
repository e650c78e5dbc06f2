"""numpy's global legacy generator (``np.random.standard_normal``: MT19937, polar Gaussians) as compiled code.

The reference HAAQI draws its threshold noise from numpy's global ``RandomState``. :class:`LegacyNormalStream`
takes over that generator's state, produces the same Gaussian values in the same order (fused with the
additions that use them, without materialising the noise) and hands the state back, so that the global
generator ends exactly where ``np.random.standard_normal`` would have left it, cached Gaussian included.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_N = 624
_M = 397
_MATRIX_A = 0x9908B0DF
_UPPER = 0x80000000
_LOWER = 0x7FFFFFFF


@njit(cache=True)
def _temper_all(key, words):
    """``words`` = the tempered outputs of the MT19937 state ``key``."""
    for i in range(_N):
        y = np.int64(key[i])
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C5680
        y ^= (y << 15) & 0xEFC60000
        y ^= y >> 18
        words[i] = y & 0xFFFFFFFF


@njit(cache=True)
def _twist(key, words):
    """Regenerate the 624-word MT19937 state ``key`` in place and put its tempered outputs in ``words``."""
    for i in range(_N):
        y = (np.int64(key[i]) & _UPPER) | (np.int64(key[i + 1 if i + 1 < _N else 0]) & _LOWER)
        j = i + _M if i + _M < _N else i + _M - _N
        key[i] = np.int64(key[j]) ^ (y >> 1) ^ ((y & 1) * _MATRIX_A)
    _temper_all(key, words)


@njit(cache=True)
def _gaussians(x, gain, out, offset, key, ints, cached):
    """For each ``i``: the next ``legacy_gauss`` value ``z``; ``out[i + offset] = x[i] + gain * z`` where
    ``i + offset < len(out)`` (later values are drawn and dropped).

    ``ints = [pos, has_gauss]``, ``cached = [gauss]``: the generator's position, cache flag and cached value.
    """
    words = np.empty(_N, dtype=np.int64)
    spare = np.empty(4, dtype=np.int64)
    pos = ints[0]
    _temper_all(key, words)
    has_gauss = ints[1]
    gauss = cached[0]
    for i in range(x.shape[0]):
        if has_gauss:
            has_gauss = 0
            z = gauss
            gauss = 0.0
        else:
            while True:
                if pos >= _N - 3:
                    # Not enough words left for one attempt without crossing a twist: take them one by one.
                    for k in range(4):
                        if pos == _N:
                            _twist(key, words)
                            pos = 0
                        spare[k] = words[pos]
                        pos += 1
                    w0, w1, w2, w3 = spare[0], spare[1], spare[2], spare[3]
                else:
                    w0, w1, w2, w3 = words[pos], words[pos + 1], words[pos + 2], words[pos + 3]
                    pos += 4
                x1 = 2.0 * (((w0 >> 5) * 67108864.0 + (w1 >> 6)) / 9007199254740992.0) - 1.0
                x2 = 2.0 * (((w2 >> 5) * 67108864.0 + (w3 >> 6)) / 9007199254740992.0) - 1.0
                r2 = x1 * x1 + x2 * x2
                if r2 < 1.0 and r2 != 0.0:
                    break
            f = np.sqrt(-2.0 * np.log(r2) / r2)
            gauss = f * x1
            has_gauss = 1
            z = f * x2
        if i + offset < out.shape[0]:
            out[i + offset] = x[i] + gain * z
    ints[0] = pos
    ints[1] = has_gauss
    cached[0] = gauss


class LegacyNormalStream:
    """The Gaussian stream of numpy's global legacy generator, from its current state.

    Use as a context manager: the state is read on entry and written back on exit (also after an error, so
    the global generator has advanced by exactly the values drawn).
    """

    def __enter__(self) -> LegacyNormalStream:
        name, key, pos, has_gauss, gauss = np.random.get_state(legacy=True)  # noqa: NPY002 (the reference's RNG)
        if name != "MT19937":
            raise RuntimeError(f"numpy's global generator is {name}, expected MT19937")
        self._key = np.array(key, dtype=np.uint32)
        self._ints = np.array([pos, has_gauss], dtype=np.int64)
        self._cached = np.array([gauss], dtype=np.float64)
        return self

    def __exit__(self, *exc) -> None:
        state = ("MT19937", self._key, int(self._ints[0]), int(self._ints[1]), float(self._cached[0]))
        np.random.set_state(state)  # noqa: NPY002

    def add_scaled(self, x: np.ndarray, gain: float, out: np.ndarray, delay: int = 0) -> np.ndarray:
        """``out = x + gain * standard_normal(x.size)`` delayed by ``delay >= 0`` samples (zeros first; the
        last ``delay`` sums drop off the end). ``out`` may be ``x`` when ``delay`` is 0."""
        out[:delay] = 0.0
        _gaussians(x, gain, out, delay, self._key, self._ints, self._cached)
        return out

    def normals(self, shape: tuple[int, ...]) -> np.ndarray:
        """``standard_normal(shape)``, C order."""
        out = np.zeros(int(np.prod(shape)))
        _gaussians(out, 1.0, out, 0, self._key, self._ints, self._cached)
        return out.reshape(shape)
