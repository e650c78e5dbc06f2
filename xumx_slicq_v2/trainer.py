"""The training loop of `xumx_slicq_v2.training` (processes and devices, input statistics, epochs, checkpoints
and resumption, TensorBoard logging): `train(TrainingConfig, ModelConfig)`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from ._optional import require
from .audio import atomic_path, write_text_atomic
from .checkpoint import METADATA_NAME, WEIGHTS_NAME, CheckpointError, load_weights, read_state_dict
from .data import FullTrackDataset, Track, TrainingDataset, list_tracks, seed_worker
from .losses import complex_mse, mask_sum_mse
from .model import SOURCES, ModelConfig, Unmix
from .training import CHECKPOINT_NAME, LOGDIR_NAME, TrainingConfig
from .transforms import SliCQT

#: Standard deviations below this fraction of a block's largest one are raised to it (input statistics).
STD_FLOOR = 1e-4

#: Length of the pieces the training mixtures are transformed in for the input statistics (bounds memory).
STATISTICS_CHUNK_SECONDS = 30.0


# ----------------------------------------------------------------------------------------------------------
# Processes and devices
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Runtime:
    """Where this process runs: its rank among ``world_size`` processes and its device."""

    rank: int
    world_size: int
    device: torch.device
    autocast_dtype: torch.dtype | None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def autocast(self):
        """Autocast context of the forward pass and loss (a no-op in float32)."""
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)


def setup_runtime(config: TrainingConfig) -> Runtime:
    """Join the process group when started by ``torchrun`` and pick the device and precision.

    On CUDA it also enables cuDNN benchmark mode and TF32 matmuls/convolutions.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    wanted = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(wanted)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"--device {wanted}: torch sees no CUDA device")
        if device.index is None:
            device = torch.device("cuda", local_rank if world_size > 1 else torch.cuda.current_device())
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.set_float32_matmul_precision("high")  # a call (the reference assigned to it, which did nothing)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    use_bf16 = config.precision == "bf16" or (config.precision == "auto" and device.type == "cuda")
    return Runtime(rank, world_size, device, torch.bfloat16 if use_bf16 else None)


def all_reduce_tensor(tensor: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    """Sum a CPU ``tensor`` over all processes (identity in a single process)."""
    if not runtime.distributed:
        return tensor
    reduced = tensor.to(runtime.device) if dist.get_backend() == "nccl" else tensor.clone()
    dist.all_reduce(reduced)
    return reduced.cpu()


def all_reduce_sum(values: Sequence[float], runtime: Runtime) -> list[float]:
    """Sum ``values`` over all processes (float64)."""
    return all_reduce_tensor(torch.tensor(values, dtype=torch.float64), runtime).tolist()


# ----------------------------------------------------------------------------------------------------------
# Input statistics
# ----------------------------------------------------------------------------------------------------------


def input_statistics(
    transform: SliCQT,
    mixtures: Iterable[torch.Tensor],
    device: torch.device,
    progress: bool = False,
    combine: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Mean and standard deviation of the mixture magnitude per frequency row of each sliCQT block.

    The magnitude is averaged over the channels and every ``(slice, coefficient)`` frame counts as one
    observation (as the reference's per-block StandardScaler). Standard deviations are floored at
    ``STD_FLOOR`` times the block's largest one.

    Args:
        transform: the model's sliCQT.
        mixtures: ``(channels, samples)`` waveforms; long ones are transformed in pieces of
            ``STATISTICS_CHUNK_SECONDS`` (zero-padded edges of the pieces add a few quiet frames).
        combine: sums the packed float64 moments ``(counts, sums, squares)`` over processes that each saw
            a share of the mixtures (e.g. an all-reduce); identity by default.

    Returns:
        per block ``(mean, std)``, float32 tensors of shape ``(freq_bins,)``.
    """
    rows = [freq for freq, _ in transform.block_shapes]
    count = torch.zeros(len(rows), dtype=torch.float64)
    sums = [torch.zeros(freq, dtype=torch.float64) for freq in rows]
    squares = [torch.zeros(freq, dtype=torch.float64) for freq in rows]
    chunk = round(STATISTICS_CHUNK_SECONDS * transform.sample_rate)
    transform = transform.to(device)
    for mixture in tqdm(mixtures, desc="input statistics", unit="track", disable=not progress):
        for start in range(0, mixture.shape[-1], chunk):
            with torch.no_grad():
                blocks = transform(mixture[..., start : start + chunk].to(device, torch.float32))
            for index, block in enumerate(blocks):
                magnitude = block.abs().mean(0).flatten(1).double().cpu()  # (freq, frames)
                count[index] += magnitude.shape[1]
                sums[index] += magnitude.sum(1)
                squares[index] += magnitude.square().sum(1)
    packed = torch.cat([count, *sums, *squares])
    if combine is not None:
        packed = combine(packed)
    count, *moments = packed.split([len(rows), *rows, *rows])
    if not count[0]:
        raise ValueError("input statistics need at least one mixture")
    statistics = []
    for frames, total, total_squares in zip(count, moments[: len(rows)], moments[len(rows) :]):
        mean = total / frames
        std = (total_squares / frames - mean.square()).clamp_min(0).sqrt()
        std = torch.maximum(std, STD_FLOOR * std.max())
        if not torch.all(std > 0):
            raise ValueError("input statistics: the training mixtures are silent in a whole sliCQT block")
        statistics.append((mean.float(), std.float()))
    return statistics


def set_input_statistics(model: Unmix, statistics: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Store ``input_mean = -mean`` and ``input_scale = 1 / std`` in each block's network."""
    if len(statistics) != len(model.sliced_umx):
        raise ValueError(f"expected statistics for {len(model.sliced_umx)} blocks, got {len(statistics)}")
    with torch.no_grad():
        for network, (mean, std) in zip(model.sliced_umx, statistics):
            network.input_mean.copy_(-mean)
            network.input_scale.copy_(1.0 / std)


# ----------------------------------------------------------------------------------------------------------
# Loss and epochs
# ----------------------------------------------------------------------------------------------------------


def batch_loss(model: nn.Module, transform: SliCQT, batch: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    """Complex MSE + mask-sum loss of one batch ``(batch, 5, 2, samples)`` = ``[mixture, *SOURCES]``.

    The sliCQT of the mixture goes through the network; its estimates are compared with the sliCQT of the
    true sources.
    """
    batch = batch.to(runtime.device, non_blocking=True)
    with torch.no_grad():
        mixture_blocks = transform(batch[:, 0])
        target_blocks = transform(batch[:, 1:])
    with runtime.autocast():
        estimates, masks = model(mixture_blocks, return_masks=True)
    # the loss in float32 (under autocast its matrix products would run in bfloat16)
    estimates = [estimate if estimate.is_complex() else estimate.float() for estimate in estimates]
    return complex_mse(estimates, target_blocks) + mask_sum_mse([mask.float() for mask in masks])


def train_epoch(
    model: nn.Module,
    transform: SliCQT,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    runtime: Runtime,
    progress: bool,
) -> float:
    """One pass over ``loader``; returns the mean loss over the examples of all processes."""
    model.train()
    total, examples = 0.0, 0
    bar = tqdm(loader, desc="train", unit="batch", leave=False, disable=not progress)
    for batch in bar:
        loss = batch_loss(model, transform, batch, runtime)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()
        total += value * batch.shape[0]
        examples += batch.shape[0]
        bar.set_postfix(loss=f"{value:.4g}")
    total, examples = all_reduce_sum([total, examples], runtime)
    return total / examples


def validate(
    model: Unmix, transform: SliCQT, loader: Iterable[torch.Tensor], runtime: Runtime, progress: bool
) -> float:
    """Mean loss over the validation examples of all processes (no gradients, eval mode)."""
    model.eval()
    total, examples = 0.0, 0
    with torch.no_grad():
        for batch in tqdm(loader, desc="valid", unit="track", leave=False, disable=not progress):
            total += batch_loss(model, transform, batch, runtime).item() * batch.shape[0]
            examples += batch.shape[0]
    total, examples = all_reduce_sum([total, examples], runtime)
    return total / examples


def crop_collate(items: Sequence[torch.Tensor]) -> torch.Tensor:
    """Stack full tracks ``(5, 2, samples_i)`` into one batch cut to the shortest track."""
    length = min(item.shape[-1] for item in items)
    return torch.stack([item[..., :length] for item in items])


def separate_example(model: Unmix, transform: SliCQT, mixture: torch.Tensor) -> torch.Tensor:
    """Separate one ``(2, samples)`` mixture with the current weights: ``(4, 2, samples)``."""
    model.eval()
    with torch.no_grad():
        estimates = model(transform(mixture[None]))
        return transform.inverse(estimates, mixture.shape[-1])[0]


@dataclass
class EarlyStopping:
    """Stop after ``patience`` epochs without a strictly lower validation loss, or at a NaN loss."""

    patience: int
    best: float = math.inf
    best_epoch: int = 0
    num_bad_epochs: int = 0

    def state_dict(self) -> dict[str, float | int]:
        return {"best": self.best, "best_epoch": self.best_epoch, "num_bad_epochs": self.num_bad_epochs}

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        self.best, self.best_epoch, self.num_bad_epochs = state["best"], state["best_epoch"], state["num_bad_epochs"]

    def step(self, loss: float, epoch: int) -> bool:
        """Record ``loss`` of ``epoch``; returns whether training should stop."""
        if math.isnan(loss):
            return True
        if loss < self.best:
            self.best, self.best_epoch, self.num_bad_epochs = loss, epoch, 0
        else:
            self.num_bad_epochs += 1
        return self.num_bad_epochs >= self.patience


# ----------------------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------------------


def rng_states() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) RNG states, as tensors and plain values."""
    name, keys, position, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    return {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def run_args(config: TrainingConfig, model_config: ModelConfig) -> dict[str, Any]:
    """The ``args`` of the JSON: every training argument plus the model's reference arguments."""
    return {**dataclasses.asdict(config), **model_config.to_reference_args()}


def metadata(args: dict[str, Any], history: dict[str, list[float]], stopper: EarlyStopping) -> dict[str, Any]:
    """The reference's JSON content."""
    return {
        "args": args,
        "best_epoch": stopper.best_epoch,
        "best_loss": stopper.best if math.isfinite(stopper.best) else None,
        "epochs_trained": len(history["train_loss_history"]),
        "num_bad_epochs": stopper.num_bad_epochs,
        **history,
    }


def write_metadata(model_dir: Path, content: dict[str, Any]) -> None:
    """Write the JSON atomically (reference layout: 4-space indent, sorted keys)."""
    write_text_atomic(model_dir / METADATA_NAME, json.dumps(content, indent=4, sort_keys=True) + "\n")


def check_same_model(saved_args: dict[str, Any], model_config: ModelConfig, path: Path) -> None:
    """Refuse to resume a model directory written for another network configuration (the excerpt length
    ``seq_dur`` may change)."""
    saved = ModelConfig.from_reference_args(saved_args).to_reference_args()
    current = model_config.to_reference_args()
    differing = sorted(key for key in current if key != "seq_dur" and saved.get(key) != current[key])
    if differing:
        details = ", ".join(f"{key}: saved {saved.get(key)!r}, asked {current[key]!r}" for key in differing)
        raise CheckpointError(f"{path}: the run there trained another model ({details}); use another --model-path")


# ----------------------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------------------


def _loader(dataset, batch_size: int, runtime: Runtime, workers: int, sampler=None, collate=None) -> DataLoader:
    generator = torch.Generator().manual_seed(getattr(dataset, "seed", 0) + runtime.rank)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=runtime.device.type == "cuda",
        worker_init_fn=seed_worker,
        generator=generator,
        collate_fn=collate,
    )


#: ``callback(epoch, model, valid_tracks)``, called by `train` after each epoch's files are written (single
#: process only); an exception it raises ends the run (e.g. a hyperparameter search pruning the trial).
EpochCallback = Callable[[int, Unmix, Sequence[Track]], None]


def train(
    config: TrainingConfig, model_config: ModelConfig, epoch_callback: EpochCallback | None = None
) -> dict[str, Any]:
    """Run (or resume) training; returns the final JSON metadata."""
    runtime = setup_runtime(config)
    if epoch_callback is not None and runtime.distributed:
        raise ValueError("an epoch callback needs a single process")
    try:
        return _train(config, model_config, runtime, epoch_callback)
    finally:
        if runtime.distributed and dist.is_initialized():
            dist.destroy_process_group()


def _train(
    config: TrainingConfig, model_config: ModelConfig, runtime: Runtime, epoch_callback: EpochCallback | None
) -> dict[str, Any]:
    if config.batch_size % runtime.world_size:
        raise ValueError(f"--batch-size {config.batch_size} is not divisible by the {runtime.world_size} processes")
    if model_config.seq_dur != config.seq_dur:
        model_config = dataclasses.replace(model_config, seq_dur=config.seq_dur)
    progress = runtime.is_main and not config.quiet
    log = print if runtime.is_main and not config.quiet else (lambda *_, **__: None)
    model_dir = Path(config.model_path)
    checkpoint_path = model_dir / CHECKPOINT_NAME
    random.seed(config.seed)
    np.random.seed(config.seed)  # noqa: NPY002
    torch.manual_seed(config.seed)

    train_tracks = list_tracks(config.musdb_root, "train", "train")
    valid_tracks = list_tracks(config.musdb_root, "train", "valid")
    transform = SliCQT(**model_config.transform_kwargs()).to(runtime.device)
    model = Unmix(model_config, transform.block_shapes)
    args = run_args(config, model_config)
    history: dict[str, list[float]] = {"train_loss_history": [], "valid_loss_history": [], "train_time_history": []}
    stopper = EarlyStopping(config.patience)
    resume_state = None

    if checkpoint_path.is_file():
        resume_state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        check_same_model(resume_state["args"], model_config, checkpoint_path)
        load_weights(model, resume_state["state_dict"], checkpoint_path)
        history = resume_state["history"]
        stopper.load_state_dict(resume_state["early_stopping"])
        log(f"resuming {checkpoint_path} after epoch {resume_state['epoch']}")
        if stopper.num_bad_epochs >= config.patience:
            log(f"the run stopped early after epoch {resume_state['epoch']}; raise --patience to go on")
            return metadata(args, history, stopper)
    elif (model_dir / WEIGHTS_NAME).is_file():
        if (model_dir / METADATA_NAME).is_file():
            check_same_model(json.loads((model_dir / METADATA_NAME).read_text())["args"], model_config, model_dir)
        load_weights(model, read_state_dict(model_dir / WEIGHTS_NAME), model_dir / WEIGHTS_NAME)
        log(f"starting from the weights in {model_dir / WEIGHTS_NAME} (no {CHECKPOINT_NAME}: new optimizer)")
    elif not config.debug:
        # each process reads a share of the training mixtures; the moments are summed over processes
        shard = train_tracks[runtime.rank :: runtime.world_size]
        mixtures = (item[0] for item in FullTrackDataset(shard, mixture_only=True)) if shard else iter(())
        combine = functools.partial(all_reduce_tensor, runtime=runtime)
        set_input_statistics(model, input_statistics(transform, mixtures, runtime.device, progress, combine))

    model.to(runtime.device)
    if runtime.device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    network: nn.Module = model
    if runtime.distributed:
        device_ids = [runtime.device.index] if runtime.device.type == "cuda" else None
        network = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode="min",
        factor=config.lr_decay_gamma,
        patience=config.lr_decay_patience,
        cooldown=config.lr_decay_cooldown,
    )
    first_epoch = 1
    if resume_state is not None:
        optimizer.load_state_dict(resume_state["optimizer"])
        scheduler.load_state_dict(resume_state["scheduler"])
        set_rng_states(resume_state["rng"])
        first_epoch = resume_state["epoch"] + 1

    train_set = TrainingDataset(train_tracks, config.seq_dur, config.samples_per_track, seed=config.seed)
    sampler = DistributedSampler(
        train_set, num_replicas=runtime.world_size, rank=runtime.rank, shuffle=True, seed=config.seed
    )
    per_process_batch = config.batch_size // runtime.world_size
    train_loader = _loader(train_set, per_process_batch, runtime, config.nb_workers, sampler=sampler)
    # validation tracks are shared out over the processes (a process may get none)
    valid_shard = valid_tracks[runtime.rank :: runtime.world_size]
    valid_loader: Iterable[torch.Tensor] = []
    if valid_shard:
        valid_set = FullTrackDataset(valid_shard)
        valid_loader = _loader(
            valid_set, config.batch_size_valid, runtime, min(config.nb_workers, 1), collate=crop_collate
        )

    writer = None
    if runtime.is_main:
        model_dir.mkdir(parents=True, exist_ok=True)
        require("tensorboard", extra="train", purpose="TensorBoard logging")
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(log_dir=str(model_dir / LOGDIR_NAME))
        n_params = sum(parameter.numel() for parameter in model.parameters())
        log(
            f"{len(train_tracks)} training and {len(valid_tracks)} validation tracks; {len(train_set)} examples "
            f"per epoch; {len(model.sliced_umx)} sliCQT blocks, {n_params:,} parameters; device {runtime.device}"
            f"{f', {runtime.world_size} processes' if runtime.distributed else ''}; "
            f"precision {'bfloat16 autocast' if runtime.autocast_dtype else 'float32'}"
        )
        log(f"TensorBoard: tensorboard --logdir {model_dir / LOGDIR_NAME}")

    epochs = tqdm(
        range(first_epoch, config.epochs + 1),
        desc="epochs",
        unit="epoch",
        initial=first_epoch - 1,
        total=config.epochs,
        disable=not progress,
    )
    for epoch in epochs:
        started = time.time()
        train_set.set_epoch(epoch)
        sampler.set_epoch(epoch)
        train_loss = train_epoch(network, transform, train_loader, optimizer, runtime, progress)
        valid_loss = validate(model, transform, valid_loader, runtime, progress)
        scheduler.step(valid_loss)
        elapsed = time.time() - started
        history["train_loss_history"].append(train_loss)
        history["valid_loss_history"].append(valid_loss)
        history["train_time_history"].append(elapsed)
        stop = stopper.step(valid_loss, epoch)
        epochs.set_postfix(train=f"{train_loss:.4g}", valid=f"{valid_loss:.4g}", best=f"{stopper.best:.4g}")
        diverged = math.isnan(train_loss) or math.isnan(valid_loss)
        if runtime.is_main:
            _log_epoch(writer, epoch, train_loss, valid_loss, optimizer, elapsed)
            if diverged:
                log(f"epoch {epoch}: the loss is NaN; stopping (the checkpoint keeps the previous epoch)")
                write_metadata(model_dir, metadata(args, history, stopper))
                break
            if config.audio_every and epoch % config.audio_every == 0:
                _log_audio(writer, epoch, model, transform, valid_tracks, config.audio_seconds)
            if stopper.best_epoch == epoch:  # before the checkpoint: a resumed run never lacks its best weights
                with atomic_path(model_dir / WEIGHTS_NAME) as part:
                    torch.save(_cpu_state(model), part)
            state = {
                "epoch": epoch,
                "state_dict": _cpu_state(model),
                "best_loss": stopper.best,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "early_stopping": stopper.state_dict(),
                "history": history,
                "rng": rng_states(),
                "args": args,
            }
            with atomic_path(checkpoint_path) as part:
                torch.save(state, part)
            write_metadata(model_dir, metadata(args, history, stopper))
            if epoch_callback is not None:
                try:
                    epoch_callback(epoch, model, valid_tracks)
                except BaseException:
                    writer.close()
                    raise
        if diverged:
            break
        if stop:
            log(f"early stopping after epoch {epoch}: no improvement for {stopper.num_bad_epochs} epochs")
            break
    if writer is not None:
        writer.close()
    return metadata(args, history, stopper)


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}


def _log_epoch(writer, epoch: int, train_loss: float, valid_loss: float, optimizer, elapsed: float) -> None:
    writer.add_scalar("Loss/train", train_loss, epoch)
    writer.add_scalar("Loss/valid", valid_loss, epoch)
    writer.add_scalar("LearningRate", optimizer.param_groups[0]["lr"], epoch)
    writer.add_scalar("EpochTime", elapsed, epoch)
    writer.flush()


def _log_audio(writer, epoch: int, model: Unmix, transform: SliCQT, tracks: Sequence[Track], seconds: float) -> None:
    """Separate the start of the first validation track and log the mixture and the estimates (mono)."""
    track = tracks[0]
    frames = min(track.frames, round(seconds * transform.sample_rate))
    frames = max(frames, transform.slice_length // 2 + 1)  # the network needs 3 slices
    mixture = torch.from_numpy(track.read("mixture", 0, frames)).to(transform.slice_window.device)
    if mixture.shape[-1] < frames:
        mixture = nn.functional.pad(mixture, (0, frames - mixture.shape[-1]))
    estimates = separate_example(model, transform, mixture).float().cpu()
    rate = int(transform.sample_rate)
    writer.add_audio("Audio/mixture", mixture.mean(0).cpu().clamp(-1, 1)[None], epoch, sample_rate=rate)
    for name, estimate in zip(SOURCES, estimates):
        writer.add_audio(f"Audio/{name}", estimate.mean(0).clamp(-1, 1)[None], epoch, sample_rate=rate)
    writer.flush()
