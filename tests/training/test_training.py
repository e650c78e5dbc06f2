"""The trainer: one epoch writes every file, a second invocation resumes, 2 gloo processes work, the loss
decreases on a fixed batch, input statistics and early stopping do what they say."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from xumx_slicq_v2 import trainer, training
from xumx_slicq_v2.checkpoint import load_model
from xumx_slicq_v2.data import TrainingDataset, list_tracks
from xumx_slicq_v2.model import ModelConfig, Unmix
from xumx_slicq_v2.transforms import SliCQT

REPO = Path(__file__).resolve().parents[2]

JSON_KEYS = {
    "args", "best_epoch", "best_loss", "epochs_trained", "num_bad_epochs",
    "train_loss_history", "valid_loss_history", "train_time_history",
}  # fmt: skip


def _optimizer_steps(checkpoint: dict) -> int:
    return int(next(iter(checkpoint["optimizer"]["state"].values()))["step"])


def _tensorboard_tags(logdir: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logdir), size_guidance={"audio": 0, "scalars": 0})
    events.Reload()
    return set(events.Tags()["scalars"]) | set(events.Tags()["audio"])


def test_one_epoch_writes_all_files_and_a_second_run_resumes(tmp_path, training_flags) -> None:
    model_dir = tmp_path / "model"
    training.main(training_flags(model_dir, epochs=1))

    for name in ("xumx_slicq_v2.pth", "xumx_slicq_v2.json", "xumx_slicq_v2.chkpnt"):
        assert (model_dir / name).is_file(), name
    metadata = json.loads((model_dir / "xumx_slicq_v2.json").read_text())
    assert JSON_KEYS <= set(metadata)
    assert metadata["epochs_trained"] == 1 and metadata["best_epoch"] == 1
    assert metadata["args"]["fbins"] == 8 and metadata["args"]["batch_size"] == 2
    assert metadata["args"]["sample_rate"] == 44100.0 and metadata["args"]["nb_channels"] == 2
    assert math.isfinite(metadata["best_loss"]) and metadata["best_loss"] == metadata["valid_loss_history"][0]
    tags = _tensorboard_tags(model_dir / "logdir")
    assert {"Loss/train", "Loss/valid", "LearningRate", "EpochTime", "Audio/vocals", "Audio/mixture"} <= tags

    first = torch.load(model_dir / "xumx_slicq_v2.chkpnt", weights_only=True)
    assert first["epoch"] == 1 and _optimizer_steps(first) == 1
    # the input statistics were computed: no block keeps the identity normalisation
    means = [value for key, value in first["state_dict"].items() if key.endswith("input_mean")]
    assert all(bool((mean < 0).all()) for mean in means)

    # the best weights load as a reference-format model directory
    _, config, _ = load_model(model_dir)
    assert config.bins == 8 and config.hidden_size_1 == 4

    training.main(training_flags(model_dir, epochs=2))
    second = torch.load(model_dir / "xumx_slicq_v2.chkpnt", weights_only=True)
    metadata = json.loads((model_dir / "xumx_slicq_v2.json").read_text())
    assert second["epoch"] == 2 and metadata["epochs_trained"] == 2
    assert len(metadata["train_loss_history"]) == len(metadata["valid_loss_history"]) == 2
    assert metadata["train_loss_history"][0] == first["history"]["train_loss_history"][0]
    # the optimizer state continued (a fresh AdamW would count 1 step)
    assert _optimizer_steps(second) == 2


def test_resume_refuses_another_model_configuration(tmp_path, training_flags) -> None:
    model_dir = tmp_path / "model"
    training.main(training_flags(model_dir, epochs=1))
    flags = training_flags(model_dir, epochs=2)
    flags[flags.index("--hidden-size-1") + 1] = "6"
    with pytest.raises(SystemExit, match="hidden_size_1"):
        training.main(flags)


def test_two_process_gloo_run(tmp_path, training_flags) -> None:
    model_dir = tmp_path / "model"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "xumx_slicq_v2.training", *training_flags(model_dir, epochs=1), "--device", "cpu",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    metadata = json.loads((model_dir / "xumx_slicq_v2.json").read_text())
    assert metadata["epochs_trained"] == 1 and math.isfinite(metadata["valid_loss_history"][0])
    checkpoint = torch.load(model_dir / "xumx_slicq_v2.chkpnt", weights_only=True)
    # global batch 2 over 2 processes: 2 examples per epoch -> one synchronised step
    assert _optimizer_steps(checkpoint) == 1
    assert not list(model_dir.glob(".*part*")), "no temporary files left behind"


def test_loss_decreases_on_a_fixed_batch(musdb_root) -> None:
    torch.manual_seed(0)
    config = ModelConfig(bins=8, hidden_size_1=4, hidden_size_2=4, time_filter_2=2)
    transform = SliCQT(**config.transform_kwargs())
    model = Unmix(config, transform.block_shapes)
    dataset = TrainingDataset(list_tracks(musdb_root, "train", "train"), seq_dur=1.0, samples_per_track=2, seed=1)
    batch = torch.stack([dataset[index] for index in range(4)])
    mixtures = (item[0] for item in batch)
    trainer.set_input_statistics(model, trainer.input_statistics(transform, mixtures, torch.device("cpu")))
    runtime = trainer.Runtime(0, 1, torch.device("cpu"), None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    model.train()
    for _ in range(8):
        loss = trainer.batch_loss(model, transform, batch, runtime)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses
    assert min(losses[4:]) < min(losses[:4]), losses


def test_bf16_autocast_path_runs_on_cpu(musdb_root) -> None:
    """The CUDA precision path (bfloat16 autocast) exercised on CPU: finite loss, float32 gradients."""
    config = ModelConfig(bins=8, hidden_size_1=4, hidden_size_2=4, time_filter_2=2)
    transform = SliCQT(**config.transform_kwargs())
    model = Unmix(config, transform.block_shapes).train()
    dataset = TrainingDataset(list_tracks(musdb_root, "train", "train"), seq_dur=1.0, samples_per_track=1)
    batch = torch.stack([dataset[0], dataset[1]])
    loss = trainer.batch_loss(model, transform, batch, trainer.Runtime(0, 1, torch.device("cpu"), torch.bfloat16))
    loss.backward()
    assert loss.dtype == torch.float32 and math.isfinite(loss.item())
    gradients = {name: p.grad for name, p in model.named_parameters()}
    assert [name for name, grad in gradients.items() if grad is None] == []  # every parameter gets one
    assert all(grad.dtype == torch.float32 and torch.isfinite(grad).all() for grad in gradients.values())
    assert all(grad.abs().sum() > 0 for name, grad in gradients.items() if "cdaes" in name and "weight" in name)


def test_input_statistics_match_a_direct_computation() -> None:
    transform = SliCQT(bins=8)
    generator = torch.Generator().manual_seed(3)
    mixtures = [torch.randn(2, 20000, generator=generator) * scale for scale in (0.1, 0.5)]
    statistics = trainer.input_statistics(transform, mixtures, torch.device("cpu"))
    for block_index, (mean, std) in enumerate(statistics):
        # (channels-averaged magnitude) with frames = all (slice, coefficient) pairs of both mixtures
        frames = torch.cat(
            [transform(mixture)[block_index].abs().mean(0).flatten(1) for mixture in mixtures], dim=1
        ).double()
        expected_std = frames.std(1, unbiased=False)
        expected_std = torch.maximum(expected_std, trainer.STD_FLOOR * expected_std.max())
        torch.testing.assert_close(mean.double(), frames.mean(1), rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(std.double(), expected_std, rtol=1e-4, atol=1e-7)

    # two processes with one mixture each, moments summed (as the all-reduce does): the same statistics
    other: dict[str, torch.Tensor] = {}
    trainer.input_statistics(transform, mixtures[1:], torch.device("cpu"), combine=lambda m: other.setdefault("m", m))
    sharded = trainer.input_statistics(transform, mixtures[:1], torch.device("cpu"), combine=lambda m: m + other["m"])
    for (mean, std), (shard_mean, shard_std) in zip(statistics, sharded):
        torch.testing.assert_close(shard_mean, mean)
        torch.testing.assert_close(shard_std, std)

    model = Unmix(ModelConfig(bins=8, hidden_size_1=4, hidden_size_2=4), transform.block_shapes)
    trainer.set_input_statistics(model, statistics)
    torch.testing.assert_close(model.sliced_umx[0].input_mean.data, -statistics[0][0])
    torch.testing.assert_close(model.sliced_umx[0].input_scale.data, 1 / statistics[0][1])


def test_early_stopping_counts_bad_epochs_and_stops_on_nan() -> None:
    stopper = trainer.EarlyStopping(patience=2)
    assert not stopper.step(1.0, 1)
    assert not stopper.step(1.0, 2)  # not strictly better
    assert stopper.num_bad_epochs == 1
    assert not stopper.step(0.5, 3)
    assert (stopper.best, stopper.best_epoch, stopper.num_bad_epochs) == (0.5, 3, 0)
    assert not stopper.step(0.7, 4)
    assert stopper.step(0.6, 5)
    assert trainer.EarlyStopping(patience=100).step(float("nan"), 1)


def test_rng_states_round_trip() -> None:
    states = trainer.rng_states()
    expected = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    trainer.set_rng_states(states)
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])  # noqa: NPY002
    assert random.random() == expected[2]
