"""A tiny model trains: the losses decrease on a fixed batch (gradients flow through Wiener-EM too)."""

from __future__ import annotations

import pytest
import torch

from xumx_slicq_v2 import model as model_module
from xumx_slicq_v2 import wiener
from xumx_slicq_v2.losses import complex_mse, mask_sum_mse
from xumx_slicq_v2.model import ModelConfig, Unmix

SHAPES = [(3, 8), (12, 12)]


def fixed_batch(seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Mixture blocks ``(4, 2, F, 4, T)`` and their four sources ``(4, 4, 2, F, 4, T)``: each source has its own
    level per frequency row, so masks that depend on the row and target beat a constant mask."""
    generator = torch.Generator().manual_seed(seed)
    mixtures, sources = [], []
    for freq, coefs in SHAPES:
        levels = torch.rand(1, 4, 1, freq, 1, 1, generator=generator) ** 3
        source = levels * torch.randn(4, 4, 2, freq, 4, coefs, dtype=torch.complex64, generator=generator)
        mixtures.append(source.sum(1))
        sources.append(source)
    return mixtures, sources


@pytest.mark.parametrize("realtime", [False, True], ids=["offline", "realtime"])
def test_tiny_model_loss_decreases(realtime):
    torch.manual_seed(0)
    model = Unmix(ModelConfig(hidden_size_1=8, hidden_size_2=8, time_filter_2=2, realtime=realtime), SHAPES)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.02)
    mixtures, sources = fixed_batch()
    model.train()
    losses = []
    for _ in range(12):
        optimizer.zero_grad()
        estimates, masks = model(mixtures, return_masks=True)
        loss = complex_mse(estimates, sources) + mask_sum_mse(masks)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(parameter.grad is not None for parameter in model.parameters())
    assert losses[-1] < 0.5 * losses[0], losses
    assert model.state_dict()["sliced_umx.1.cdaes.2.7.num_batches_tracked"].item() == 12


@pytest.mark.parametrize("realtime", [False, True], ids=["offline", "realtime"])
def test_training_step_under_bfloat16_autocast(realtime, monkeypatch):
    """The reference trains under autocast; Wiener-EM then still runs in float32: called under autocast, it
    computes its statistics and filters with autocast off, on float32 tensors, and returns float32."""
    calls = []

    def spy(name, function):
        def recorded(*args, **kwargs):
            result = function(*args, **kwargs)
            tensors = [arg for arg in args if isinstance(arg, torch.Tensor)]
            calls.append((name, [t.dtype for t in tensors], torch.is_autocast_enabled("cpu"), result))
            return result

        monkeypatch.setattr(wiener, name, recorded)

    spy("wiener_real", wiener.wiener_real)
    monkeypatch.setattr(model_module, "wiener_real", wiener.wiener_real)  # the network calls it by this name
    for name in ("_wiener", "_mix_phase_statistics", "_filter"):
        spy(name, getattr(wiener, name))
    torch.manual_seed(0)
    model = Unmix(ModelConfig(hidden_size_1=8, hidden_size_2=8, time_filter_2=2, realtime=realtime), SHAPES).train()
    mixtures, sources = fixed_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        estimates, masks = model(mixtures, return_masks=True)
        loss = complex_mse(estimates, sources) + mask_sum_mse(masks)
    loss.backward()
    assert estimates[0].dtype == torch.complex64 and torch.isfinite(loss)
    assert all(torch.isfinite(parameter.grad).all() for parameter in model.parameters())
    if realtime:
        assert calls == []  # mixture phase, no Wiener-EM
        return
    entries = [name for name, *_ in calls if name == "wiener_real"]
    assert len(entries) == len(SHAPES)
    for name, dtypes, autocast_on, result in calls:
        if name == "wiener_real":
            assert autocast_on and result.dtype == torch.float32  # entered from the autocast region
        else:  # everything inside Wiener-EM: float32 inputs and outputs, autocast disabled
            assert set(dtypes) == {torch.float32}, (name, dtypes)
            assert not autocast_on, name
            outputs = result if isinstance(result, tuple) else (result,)
            assert all(output.dtype == torch.float32 for output in outputs), name
    assert {name for name, *_ in calls} == {"wiener_real", "_wiener", "_mix_phase_statistics", "_filter"}
