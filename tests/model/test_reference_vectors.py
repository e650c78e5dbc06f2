"""The network against the reference vectors (formula-defined weights, stored sliCQT of ``input.npy``).

Tolerances are those of ``tests/reference_vectors/README.md`` section 6.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from xumx_slicq_v2.checkpoint import METADATA_NAME, WEIGHTS_NAME, load_model
from xumx_slicq_v2.model import ModelConfig, Unmix

#: ``args`` of the released offline model's JSON (reference facts, section 5.7).
RELEASED_ARGS = {
    "batch_size": 64,
    "batch_size_valid": 1,
    "cuda_device": -1,
    "debug": False,
    "epochs": 1000,
    "fbins": 262,
    "fgamma": 15.0,
    "fmin": 32.9,
    "fscale": "bark",
    "lr": 0.001,
    "lr_decay_gamma": 0.3,
    "lr_decay_patience": 80,
    "nb_channels": 2,
    "nb_workers": 8,
    "patience": 1000,
    "quiet": False,
    "realtime": False,
    "samples_per_track": 64,
    "sample_rate": 44100.0,
    "seed": 42,
    "seq_dur": 2.0,
    "weight_decay": 1e-05,
}

#: README section 6: (abs on stored values, |sum diff| / abssum, |abssum diff| / abssum)
TOLERANCES = {
    "mask": (1e-6, 1e-6, 1e-6),
    "realtime": (1e-4, 1e-4, 1e-3),
    "offline": (5e-3, 1e-4, 1e-4),
}


def test_formula_weights_match_the_reference_checksums(formula_state_dict, weights_helper, reference_vectors):
    rows = weights_helper.read_checksums(reference_vectors / "weight_checksums.txt")
    assert [key for key, _, _ in rows] == list(formula_state_dict)
    for key, total, abs_total in rows:
        values = formula_state_dict[key].double()
        # one float32 ulp on one element would move a sum by ~4e-9
        assert values.sum().item() == pytest.approx(total, rel=1e-9, abs=1e-8), key
        assert values.abs().sum().item() == pytest.approx(abs_total, rel=1e-9, abs=1e-8), key


@pytest.mark.parametrize("realtime", [False, True], ids=["offline", "realtime"])
def test_state_dict_has_the_reference_keys_shapes_and_size(
    realtime, bark262_block_shapes, weights_helper, reference_vectors
):
    model = Unmix(ModelConfig(realtime=realtime), bark262_block_shapes)
    expected = weights_helper.read_state_dict_keys(reference_vectors / "state_dict_keys.txt")
    state = model.state_dict()
    assert len(state) == 5740
    got = [(key, tuple(value.shape), str(value.dtype).removeprefix("torch.")) for key, value in state.items()]
    assert got == expected  # names, order, shapes and dtypes
    assert sum(parameter.numel() for parameter in model.parameters()) == 15_010_446
    assert all(parameter.requires_grad for parameter in model.parameters())


def write_reference_dir(directory: Path, state: dict, realtime: bool) -> Path:
    """A model directory as the reference writes it: bare state_dict + JSON with the released args."""
    directory.mkdir(parents=True)
    torch.save(state, directory / WEIGHTS_NAME)
    metadata = {"args": {**RELEASED_ARGS, "realtime": realtime}, "best_epoch": 0, "best_loss": 0.0}
    (directory / METADATA_NAME).write_text(json.dumps(metadata, indent=4, sort_keys=True))
    return directory


def run_reference_model(directory: Path, blocks: list[np.ndarray], realtime: bool) -> tuple[list, list]:
    """(estimates, masks) of the model loaded from a reference-format directory, on the stored blocks."""
    model, config, _ = load_model(directory)
    assert config.realtime == realtime
    with torch.inference_mode():
        return model([torch.view_as_complex(torch.from_numpy(block.copy())) for block in blocks], return_masks=True)


@pytest.fixture(scope="module")
def offline_outputs(tmp_path_factory, formula_state_dict, reference_block_arrays):
    directory = write_reference_dir(tmp_path_factory.mktemp("offline") / "model", formula_state_dict, False)
    return run_reference_model(directory, reference_block_arrays, realtime=False)


@pytest.fixture(scope="module")
def realtime_outputs(tmp_path_factory, formula_state_dict, reference_block_arrays):
    directory = write_reference_dir(tmp_path_factory.mktemp("realtime") / "model", formula_state_dict, True)
    return run_reference_model(directory, reference_block_arrays, realtime=True)


def compare(name: str, got: np.ndarray, reference, tolerances: tuple[float, float, float]) -> None:
    """``got`` against the stored summaries ``<name>_...`` (targets-first layout, as stored)."""
    absolute, sum_tolerance, abssum_tolerance = tolerances
    assert got.shape == tuple(reference[f"{name}_shape"]), name
    flat = got.reshape(-1)
    np.testing.assert_allclose(flat[reference[f"{name}_idx"]], reference[f"{name}_vals"], rtol=0, atol=absolute)
    if f"{name}_full" in reference:
        np.testing.assert_allclose(got, reference[f"{name}_full"], rtol=0, atol=absolute)
    got64 = got.astype(np.float64)
    abssum = float(reference[f"{name}_abssum"])
    assert abs(got64.sum() - float(reference[f"{name}_sum"])) <= sum_tolerance * abssum, name
    assert abs(np.abs(got64).sum() - abssum) <= abssum_tolerance * abssum, name
    target_abssum = reference[f"{name}_target_abssum"]
    target_sums = got64.reshape(got.shape[0], -1).sum(1)
    assert np.all(np.abs(target_sums - reference[f"{name}_target_sum"]) <= sum_tolerance * target_abssum), name


@pytest.mark.parametrize("variant", ["offline", "realtime"])
def test_block_outputs_match_the_reference(variant, request, reference_vectors):
    estimates, masks = request.getfixturevalue(f"{variant}_outputs")
    with np.load(reference_vectors / f"model_{variant}.npz") as reference:
        for index, (estimate, mask) in enumerate(zip(estimates, masks, strict=True)):
            # ours: batch-first complex; stored: targets first with a trailing real/imag axis
            compare(f"block{index:02d}", torch.view_as_real(estimate).transpose(0, 1).numpy(), reference,
                    TOLERANCES[variant])  # fmt: skip
            compare(f"mask{index:02d}", mask.transpose(0, 1).numpy(), reference, TOLERANCES["mask"])


def test_offline_estimates_sum_back_to_the_mixture(offline_outputs, reference_blocks):
    """Wiener-EM without a residual source: sum_j y_j = x - sqrt(eps) C^-1 x, where C >= sqrt(eps) I is the
    mixture covariance. The sum never exceeds the mixture per coefficient pair, and it equals the mixture
    where the mixture power dominates sqrt(eps) (loud blocks); in this input's near-silent blocks (rms 0.005)
    the regulariser takes up to a quarter of the mixture, so the stated tolerance is on the energy over all
    blocks: the error is below -40 dB (1% relative)."""
    estimates, _ = offline_outputs
    error_energy = mixture_energy = 0.0
    for estimate, mix in zip(estimates, reference_blocks, strict=True):
        error = estimate.sum(1) - mix
        # per (frame, bin): || sum_j y_j - x || <= || x || over the two channels
        assert torch.all(error.abs().square().sum(1) <= mix.abs().square().sum(1) * (1 + 1e-4) + 1e-12)
        error_energy += error.abs().square().sum().item()
        mixture_energy += mix.abs().square().sum().item()
        if mix.abs().square().mean().sqrt() > 1.0:  # loud blocks (0 to 9 here)
            assert error.norm() <= 0.03 * mix.norm()
    assert error_energy <= 1e-4 * mixture_energy
