"""sliCQT: block layout, reference coefficients, perfect reconstruction, gradients, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from xumx_slicq_v2.transforms import (
    SCALES,
    SliCQT,
    from_real_layout,
    num_slices,
    overlap_add,
    to_real_layout,
)

# one configuration per scale for the reconstruction tests (the released Bark one included)
SCALE_CONFIGS = {
    "bark": dict(scale="bark", bins=262, fmin=32.9),
    "mel": dict(scale="mel", bins=200, fmin=20.0),
    "cqlog": dict(scale="cqlog", bins=84, fmin=40.0),
    "vqlog": dict(scale="vqlog", bins=84, fmin=40.0, gamma=15.0),
    "linear": dict(scale="linear", bins=200, fmin=10.0),
}


@pytest.fixture(scope="module")
def bark() -> SliCQT:
    return SliCQT()


def test_bark262_layout(bark: SliCQT, bark262_block_shapes) -> None:
    assert (bark.slice_length, bark.transition_length) == (18060, 4516)
    assert len(bark.block_shapes) == 70
    assert bark.num_rows == 263
    assert bark.block_shapes == bark262_block_shapes
    freqs = bark.frequencies
    assert freqs[0] == 0 and freqs[-1] == 22050
    np.testing.assert_allclose(freqs[1:4], [32.9, 42.67, 52.46], atol=5e-3)
    np.testing.assert_allclose(freqs[-2], 21694.33, atol=5e-3)


@pytest.mark.parametrize(("length", "expected"), [(44100, 6), (88200, 11), (441000, 50), (2621440, 292)])
def test_slice_count_formula(bark: SliCQT, length: int, expected: int) -> None:
    formula = math.floor((math.ceil(length / 4515) + 1) / 2) + 1
    assert num_slices(length, bark.slice_length) == formula == expected
    if length <= 441000:
        blocks = bark(torch.zeros(1, length))
        assert {b.shape[-2] for b in blocks} == {expected}


def test_matches_reference_coefficients(bark: SliCQT, reference_vectors) -> None:
    x = torch.from_numpy(np.load(reference_vectors / "input.npy"))
    ref = np.load(reference_vectors / "slicqt_bark262.npz")
    blocks = bark(x)
    for i, block in enumerate(blocks):
        expected = ref[f"block{i:02d}"]
        assert to_real_layout(block).shape == expected.shape
        # tolerance from the reference-vectors README: abs 1e-4 (1.5e-6 of the 64.5 global max)
        np.testing.assert_allclose(to_real_layout(block).numpy(), expected, rtol=0, atol=1e-4, err_msg=f"block {i}")
    reconstruction = bark.inverse(blocks, x.shape[-1])
    np.testing.assert_allclose(reconstruction.numpy(), x.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(reconstruction.numpy(), ref["reconstruction"], rtol=0, atol=1e-6)
    # the inverse of the reference's own coefficients gives the reference's reconstruction
    ref_blocks = [from_real_layout(torch.from_numpy(ref[f"block{i:02d}"])) for i in range(70)]
    np.testing.assert_allclose(bark.inverse(ref_blocks, x.shape[-1]).numpy(), ref["reconstruction"], rtol=0, atol=1e-6)


def _test_signals(length: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(length)
    t = torch.arange(length, dtype=torch.float64) / 44100
    chirp = torch.sin(2 * math.pi * (30 * t + 5000 * t**2))
    impulses = torch.zeros(length, dtype=torch.float64)
    impulses[0] = 1.0
    impulses[-1] = -0.7
    signals = {
        "noise": torch.randn(2, length, generator=generator, dtype=torch.float64),
        "chirp": torch.stack([chirp, -0.5 * chirp]),
        "impulses": torch.stack([impulses, impulses.flip(-1)]),
    }
    return {name: s.to(dtype) for name, s in signals.items()}


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_perfect_reconstruction(scale: str, dtype: torch.dtype, tolerance: float) -> None:
    transform = SliCQT(**SCALE_CONFIGS[scale])
    for length in (9031, 44100, 88207):
        for name, signal in _test_signals(length, dtype).items():
            blocks = transform(signal)
            assert all(b.dtype == (torch.complex64 if dtype == torch.float32 else torch.complex128) for b in blocks)
            error = torch.linalg.norm(transform.inverse(blocks, length) - signal) / torch.linalg.norm(signal)
            assert error <= tolerance, f"{scale} {name} N={length}: relative error {error:.3g}"
        silence = torch.zeros(2, length, dtype=dtype)
        assert torch.equal(transform.inverse(transform(silence), length), silence)


def test_leading_dimensions(bark: SliCQT, bark262_block_shapes) -> None:
    x = torch.randn(4, 3, 2, 20000)  # (targets, batch, channels, samples)
    blocks = bark(x)
    assert [b.shape for b in blocks] == [torch.Size((4, 3, 2, f, 4, t)) for f, t in bark262_block_shapes]
    one = bark(x[2, 1])
    torch.testing.assert_close(blocks[5][2, 1], one[5])
    assert bark.inverse(blocks, 20000).shape == x.shape


def test_short_inputs_are_padded_and_empty_is_rejected(bark: SliCQT) -> None:
    for length in (1, 100, 4515):
        x = torch.randn(2, length)
        torch.testing.assert_close(bark.inverse(bark(x), length), x, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="at least 1 sample"):
        bark(torch.zeros(2, 0))
    with pytest.raises(TypeError):
        bark(torch.zeros(2, 100, dtype=torch.int16))


def test_inverse_rejects_mismatched_blocks(bark: SliCQT) -> None:
    blocks = bark(torch.randn(1, 9031))
    with pytest.raises(ValueError, match="expected 70 blocks"):
        bark.inverse(blocks[:-1], 9031)
    blocks[3] = blocks[3][..., :-1]
    with pytest.raises(ValueError, match="does not match"):
        bark.inverse(blocks, 9031)


def test_gradcheck_float64() -> None:
    transform = SliCQT(scale="mel", bins=16, fmin=50.0, sample_rate=8000)
    x = torch.randn(1, 300, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: tuple(transform(s)), (x,), fast_mode=True)
    blocks = [b.detach().requires_grad_() for b in transform(x.detach())]
    assert torch.autograd.gradcheck(lambda *bs: transform.inverse(bs, 300), tuple(blocks), fast_mode=True)


def test_time_alignment_of_an_impulse(bark: SliCQT) -> None:
    """Coefficient m of slice s of a block with T coefficients sits at (s - 1) L/2 + m L/T samples."""
    position = 30000
    x = torch.zeros(1, 60000)
    x[0, position] = 1.0
    block_index = 40  # 1 row, T = 172
    block = bark(x)[block_index][0, 0]  # (slices, T)
    coefs = block.shape[-1]
    magnitude = block.abs()
    slice_index, m = divmod(int(magnitude.argmax()), coefs)
    time = (slice_index - 1) * bark.slice_length / 2 + m * bark.slice_length / coefs
    assert abs(time - position) <= bark.slice_length / coefs
    continuous = overlap_add(bark(x)[block_index].abs())[0, 0]
    assert continuous.shape[-1] == block.shape[0] * coefs // 2
    frame = int(continuous.argmax())
    assert abs(frame * bark.slice_length / coefs - position) <= bark.slice_length / coefs


def test_real_layout_round_trip(bark: SliCQT) -> None:
    block = bark(torch.randn(2, 9031))[7]
    real = to_real_layout(block)
    assert real.shape == (*block.shape, 2)
    assert torch.equal(from_real_layout(real), block)
    with pytest.raises(ValueError, match="real/imag"):
        from_real_layout(torch.zeros(3, 4))


def test_invalid_configuration() -> None:
    with pytest.raises(ValueError, match="unknown frequency scale"):
        SliCQT(scale="erb")
    with pytest.raises(ValueError, match="fmin"):
        SliCQT(fmin=30000.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(bark: SliCQT) -> None:
    x = torch.randn(2, 2, 50000)
    cpu = bark(x)
    gpu_transform = SliCQT().cuda()
    gpu = gpu_transform(x.cuda())
    for a, b in zip(cpu, gpu, strict=True):
        torch.testing.assert_close(b.cpu(), a, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(gpu_transform.inverse(gpu, 50000).cpu(), x, atol=1e-5, rtol=0)
