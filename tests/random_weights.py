"""The one random-model helper of the tests: networks with random weights and non-trivial normalisation."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from xumx_slicq_v2.model import ModelConfig, Unmix, build_unmix


def randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Fill ``module``'s state in place (seeded): weights, biases, BatchNorm means and the input offsets uniform
    in [-0.2, 0.2), BatchNorm running variances and the input scales in [0.5, 1.5); returns ``module``."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            noise = torch.rand(tensor.shape, generator=generator)
            if name.endswith(("running_var", "input_scale")):
                tensor.copy_(0.5 + noise)
            else:
                tensor.copy_(0.4 * (noise - 0.5))
    return module


def random_model(config: ModelConfig, seed: int = 0, block_shapes: Sequence[tuple[int, int]] | None = None) -> Unmix:
    """``config``'s network (block shapes from its sliCQT unless given) with `randomise`d state, in eval mode."""
    model = build_unmix(config) if block_shapes is None else Unmix(config, block_shapes)
    return randomise(model, seed).eval()
