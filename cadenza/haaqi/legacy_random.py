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
def _twist(key):
    for i in range(_N):
        y = (np.int64(key[i]) & _UPPER) | (np.int64(key[(i + 1) % _N]) & _LOWER)
        key[i] = np.int64(key[(i + _M) % _N]) ^ (y >> 1) ^ ((y & 1) * _MATRIX_A)


@njit(cache=True)
def _next_uint32(key, ints):
    if ints[0] == _N:
        _twist(key)
        ints[0] = 0
    y = np.int64(key[ints[0]])
    ints[0] += 1
    y ^= y >> 11
    y ^= (y << 7) & 0x9D2C5680
    y ^= (y << 15) & 0xEFC60000
    y ^= y >> 18
    return y & 0xFFFFFFFF


@njit(cache=True)
def _next_double(key, ints):
    a = _next_uint32(key, ints) >> 5
    b = _next_uint32(key, ints) >> 6
    return (a * 67108864.0 + b) / 9007199254740992.0


@njit(cache=True)
def _next_gauss(key, ints, cached):
    """One ``legacy_gauss`` value; ``ints = [pos, has_gauss]``, ``cached = [gauss]``."""
    if ints[1]:
        ints[1] = 0
        value = cached[0]
        cached[0] = 0.0
        return value
    while True:
        x1 = 2.0 * _next_double(key, ints) - 1.0
        x2 = 2.0 * _next_double(key, ints) - 1.0
        r2 = x1 * x1 + x2 * x2
        if r2 < 1.0 and r2 != 0.0:
            break
    f = np.sqrt(-2.0 * np.log(r2) / r2)
    cached[0] = f * x1
    ints[1] = 1
    return f * x2


@njit(cache=True)
def _add_scaled_normals(x, gain, out, key, ints, cached):
    for i in range(x.shape[0]):
        out[i] = x[i] + gain * _next_gauss(key, ints, cached)


@njit(cache=True)
def _skip_normals(count, key, ints, cached):
    for _ in range(count):
        _next_gauss(key, ints, cached)


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

    def add_scaled(self, x: np.ndarray, gain: float, out: np.ndarray) -> np.ndarray:
        """``out = x + gain * standard_normal(x.size)`` (``out`` may be ``x``)."""
        _add_scaled_normals(x, gain, out, self._key, self._ints, self._cached)
        return out

    def normals(self, shape: tuple[int, ...]) -> np.ndarray:
        """``standard_normal(shape)``, C order."""
        out = np.zeros(int(np.prod(shape)))
        _add_scaled_normals(out, 1.0, out, self._key, self._ints, self._cached)
        return out.reshape(shape)

    def skip(self, count: int) -> None:
        """Advance by ``count`` Gaussian values."""
        _skip_normals(count, self._key, self._ints, self._cached)
