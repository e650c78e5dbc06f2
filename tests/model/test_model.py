"""The network: grouped forward == per-target modules, BatchNorm in training, causality, config, layouts."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from xumx_slicq_v2.model import (
    SOURCES,
    CausalConv2d,
    ModelConfig,
    SlicedCDAE,
    Unmix,
    frequency_kernel,
    half_overlap_conv_transpose,
)

from ..random_weights import random_model

#: Small blocks covering the three frequency-kernel heights (1, 3, 5).
SMALL_SHAPES = [(3, 8), (12, 12), (21, 16)]
SMALL = ModelConfig(hidden_size_1=6, hidden_size_2=7, time_filter_2=3)


def random_blocks(shapes, slices=5, batch=2, seed=1, dtype=torch.complex64) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 2, freq, slices, coefs, dtype=dtype, generator=generator) for freq, coefs in shapes]


def per_target_masks(block: SlicedCDAE, mix: torch.Tensor) -> torch.Tensor:
    """Masks computed the plain way: each target's ``nn.Sequential`` on the normalised magnitude."""
    batch, channels, freq, slices, coefs = mix.shape
    magnitude = mix.abs().reshape(batch, channels, freq, slices * coefs)
    normalised = (magnitude + block.input_mean[:, None]) * block.input_scale[:, None]
    masks = [cdae(normalised)[..., :freq, : slices * coefs] for cdae in block.cdaes]
    return torch.stack(masks, 1).reshape(batch, len(SOURCES), channels, freq, slices, coefs)


@pytest.mark.parametrize("realtime", [False, True], ids=["offline", "realtime"])
def test_grouped_forward_equals_the_per_target_modules(realtime):
    model = random_model(dataclasses.replace(SMALL, realtime=realtime), block_shapes=SMALL_SHAPES)
    blocks = random_blocks(SMALL_SHAPES)
    with torch.no_grad():
        estimates, masks = model(blocks, return_masks=True)
    for block, mix, estimate, mask in zip(model.sliced_umx, blocks, estimates, masks, strict=True):
        with torch.no_grad():
            expected = per_target_masks(block, mix)
        torch.testing.assert_close(mask, expected, rtol=1e-5, atol=1e-6)
        assert estimate.shape == mask.shape == (2, 4, 2, *mix.shape[2:])
        assert estimate.dtype == torch.complex64
        if realtime:  # mixture phase
            torch.testing.assert_close(estimate, mask * mix[:, None])


def test_training_mode_matches_per_target_batchnorm_and_gradients():
    model = random_model(SMALL, block_shapes=SMALL_SHAPES).train()
    reference = copy.deepcopy(model)
    blocks = random_blocks(SMALL_SHAPES)
    _, masks = model(blocks, return_masks=True)
    expected = [per_target_masks(block, mix) for block, mix in zip(reference.sliced_umx, blocks, strict=True)]
    for mask, wanted in zip(masks, expected, strict=True):
        torch.testing.assert_close(mask, wanted, rtol=1e-5, atol=1e-6)
    # running statistics updated per target, as the plain BatchNorm modules do
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert model.state_dict()["sliced_umx.0.cdaes.3.4.num_batches_tracked"].item() == 1
    first = model.state_dict()["sliced_umx.0.cdaes.0.1.running_mean"]
    assert not torch.allclose(first, model.state_dict()["sliced_umx.0.cdaes.1.1.running_mean"])
    # gradients of every parameter equal the plain computation's
    weights = [torch.rand(mask.shape, generator=torch.Generator().manual_seed(3)) for mask in masks]
    sum((mask * weight).sum() for mask, weight in zip(masks, weights)).backward()
    sum((mask * weight).sum() for mask, weight in zip(expected, weights)).backward()
    for (name, parameter), wanted in zip(model.named_parameters(), reference.parameters(), strict=True):
        assert parameter.grad is not None, name
        scale = wanted.grad.abs().max().item()
        torch.testing.assert_close(parameter.grad, wanted.grad, rtol=1e-4, atol=1e-4 * scale + 1e-7, msg=name)


def test_half_overlap_conv_transpose_equals_the_strided_transposed_convolution():
    generator = torch.Generator().manual_seed(0)
    for height, width in [(1, 8), (3, 12), (5, 16)]:
        x = torch.randn(2, 12, 6, 9, generator=generator, dtype=torch.float64)
        weight = torch.randn(12, 2, height, width, generator=generator, dtype=torch.float64)
        bias = torch.randn(8, generator=generator, dtype=torch.float64)
        expected = F.conv_transpose2d(x, weight, bias, stride=(1, width // 2), groups=4)
        torch.testing.assert_close(half_overlap_conv_transpose(x, weight, bias, groups=4), expected)
    inputs = (
        torch.randn(1, 4, 2, 3, generator=generator, dtype=torch.float64, requires_grad=True),
        torch.randn(4, 2, 3, 4, generator=generator, dtype=torch.float64, requires_grad=True),
        torch.randn(8, generator=generator, dtype=torch.float64, requires_grad=True),
    )
    assert torch.autograd.gradcheck(lambda x, w, b: half_overlap_conv_transpose(x, w, b, groups=4), inputs)


def test_causal_conv_sees_only_the_past():
    conv = CausalConv2d(2, 3, (1, 8), stride=(1, 4), bias=False)
    x = torch.randn(1, 2, 1, 40)
    changed = x.clone()
    changed[..., 21:] += 1.0  # output k covers input frames [4k - 7, 4k]: outputs 0..5 end at frame <= 20
    with torch.no_grad():
        before, after = conv(x), conv(changed)
    assert before.shape[-1] == 10  # one output per hop, the first one at frame 0
    assert torch.equal(before[..., :6], after[..., :6])
    assert not torch.equal(before[..., 6:], after[..., 6:])


@pytest.mark.parametrize(("realtime", "lookahead_hops"), [(True, 3), (False, 4)])
def test_lookahead_of_the_network(realtime, lookahead_hops):
    """Mask frame t depends on input frames up to (t // hop + 3) * hop in the realtime model and up to
    (t // hop + 5) * hop - 1 offline (hop = half a slice): the causal first layer removes two hops of
    lookahead, the layers after it still look 1.5 slices ahead (as in the reference). So a change from
    frame ``cut`` on reaches back to frame ``cut - lookahead_hops * hop``."""
    coefs, hop, slices = 16, 8, 12
    model = random_model(dataclasses.replace(SMALL, realtime=realtime, time_filter_2=4), block_shapes=[(3, coefs)])
    mix = random_blocks([(3, coefs)], slices=slices, batch=1)[0]
    cut = 9 * coefs  # input frames from here on are changed
    changed = mix.reshape(1, 2, 3, -1).clone()
    changed[..., cut:] *= 3.0
    with torch.no_grad():
        before = model([mix], return_masks=True)[1][0].reshape(1, 4, 2, 3, -1)
        after = model([changed.reshape(mix.shape)], return_masks=True)[1][0].reshape(1, 4, 2, 3, -1)
    unaffected = cut - lookahead_hops * hop  # the first frame that changes
    assert torch.equal(before[..., :unaffected], after[..., :unaffected])
    assert not torch.equal(before[..., unaffected : unaffected + hop], after[..., unaffected : unaffected + hop])


def test_real_and_complex_entry_points_agree_and_inference_mode_works():
    model = random_model(SMALL, block_shapes=SMALL_SHAPES)
    blocks = random_blocks(SMALL_SHAPES)
    with torch.no_grad():
        complex_estimates = model(blocks)
        real_estimates = model.forward_real([torch.view_as_real(block) for block in blocks])
    with torch.inference_mode():
        inference_estimates = model(blocks)
    for complex_estimate, real_estimate, inference_estimate in zip(
        complex_estimates, real_estimates, inference_estimates, strict=True
    ):
        assert real_estimate.shape == (*complex_estimate.shape, 2)
        assert torch.equal(torch.view_as_real(complex_estimate), real_estimate)
        assert torch.equal(inference_estimate, complex_estimate)


def test_float64_model():
    model = random_model(SMALL, block_shapes=SMALL_SHAPES)
    blocks = random_blocks(SMALL_SHAPES)
    with torch.no_grad():
        single = model(blocks)
        double = model.double()([block.to(torch.complex128) for block in blocks])
    for a, b in zip(single, double, strict=True):
        assert b.dtype == torch.complex128
        torch.testing.assert_close(a.to(torch.complex128), b, rtol=1e-4, atol=1e-5)


def test_bad_inputs_are_reported():
    model = Unmix(SMALL, SMALL_SHAPES).eval()
    blocks = random_blocks(SMALL_SHAPES)
    with pytest.raises(ValueError, match="expected 3 sliCQT blocks, got 2"):
        model(blocks[:2])
    with pytest.raises(ValueError, match="does not fit a network built for"):
        model([blocks[1], blocks[0], blocks[2]])
    with pytest.raises(ValueError, match="at least 2 slices"):  # time_filter_2 = 3 needs 3 first-layer frames
        model(random_blocks(SMALL_SHAPES, slices=1))
    assert Unmix(ModelConfig(), [(1, 8)]).sliced_umx[0].min_slices == 3  # as the reference separator pads to
    assert Unmix(ModelConfig(realtime=True), [(1, 8)]).sliced_umx[0].min_slices == 2
    with pytest.raises(ValueError, match="even number of coefficients"):
        Unmix(SMALL, [(3, 9)])


def test_frequency_kernel_rule():
    assert [frequency_kernel(freq) for freq in (1, 9, 10, 19, 20, 86)] == [1, 1, 3, 3, 5, 5]


def test_config_from_the_released_reference_args():
    args = {"fscale": "bark", "fbins": 262, "fmin": 32.9, "fgamma": 15.0, "sample_rate": 44100.0,
            "seq_dur": 2.0, "realtime": True, "nb_channels": 2, "lr": 0.001, "batch_size": 64}  # fmt: skip
    config = ModelConfig.from_reference_args(args)
    assert config == ModelConfig(realtime=True)
    assert (config.hidden_size_1, config.hidden_size_2, config.time_filter_2) == (50, 51, 4)
    assert config.sample_rate == 44100 and isinstance(config.sample_rate, int)
    written = config.to_reference_args()
    assert {key: written[key] for key in args if key in written} == {
        key: value for key, value in args.items() if key not in ("lr", "batch_size")
    }
    assert ModelConfig.from_reference_args(written) == config
    assert ModelConfig.from_reference_args({**args, "realtime": "false", "sllen": 1, "slice_length": "2016.0"}) == (
        dataclasses.replace(config, realtime=False, slice_length=2016)
    )
    tiny = dataclasses.replace(SMALL, scale="mel", bins=32, fmax=7000.0, slice_length=2016, wiener_window=None)
    assert ModelConfig.from_reference_args(tiny.to_reference_args()) == tiny


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"fbins": 262, "fmin": 32.9}, "lack 'fscale'"),
        ({"fscale": "bark", "fbins": 262, "fmin": 32.9, "lstm": True}, "'lstm' models"),
        ({"fscale": "bark", "fbins": 262, "fmin": 32.9, "nb_channels": 1}, "nb_channels must be 2"),
        ({"fscale": "bark", "fbins": 262.5, "fmin": 32.9}, "'fbins' has an invalid value"),
        ({"fscale": "bark", "fbins": "many", "fmin": 32.9}, "'fbins' has an invalid value"),
        ({"fscale": "bark", "fbins": 262, "fmin": 32.9, "fmax": "high"}, "'fmax' has an invalid value"),
        ({"fscale": "bark", "fbins": 262, "fmin": 32.9, "realtime": "maybe"}, "'realtime' has an invalid value"),
        ({"fscale": "bark", "fbins": 262, "fmin": None}, "'fmin' has an invalid value"),
    ],
)
def test_config_errors_name_the_argument(args, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig.from_reference_args(args)
