"""`xumx_slicq_v2.audio.resample`: one-shot and block-streamed forms give the same samples."""

from __future__ import annotations

import numpy as np
import pytest

from xumx_slicq_v2.audio import resample


@pytest.mark.parametrize("shape", [(2, 30011), (3, 2, 12345), (7000,)])
@pytest.mark.parametrize(("rate", "target"), [(48000, 44100), (22050, 44100), (44100, 32000)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_streamed_in_blocks_equals_one_shot(shape, rate, target, dtype) -> None:
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, shape).astype(dtype)
    whole = resample(audio, rate, target)
    streamed = resample(audio, rate, target, block=1000)
    assert whole.dtype == streamed.dtype == dtype
    assert whole.shape[:-1] == streamed.shape[:-1] == shape[:-1]
    assert abs(whole.shape[-1] - round(shape[-1] * target / rate)) <= 1
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, rtol=0, atol=1e-6)


def test_same_rate_is_the_identity() -> None:
    audio = np.zeros((2, 100), np.float32)
    assert resample(audio, 44100, 44100) is audio
    assert resample(audio, 44100, 44100, block=10) is audio
