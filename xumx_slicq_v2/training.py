"""Train xumx-sliCQ-V2 on MUSDB18-HQ (WAV): ``python -m xumx_slicq_v2.training --musdb-root ROOT``.

The reference recipe (flags and defaults of the reference trainer, with the released runs' batch 64, 8 workers
and fgamma 15): random-mix 2 s excerpts, the 14-combination complex MSE plus the mask-sum loss on the model's
sliCQT outputs, AdamW, ReduceLROnPlateau on the validation loss, early stopping, input statistics computed once
from the training mixtures. On CUDA: bfloat16 autocast, channels_last, cuDNN benchmark and TF32 matmuls.

Files in ``--model-path`` (reference format):

- ``xumx_slicq_v2.pth``: best weights (bare state_dict), written when the validation loss improves;
- ``xumx_slicq_v2.json``: ``args`` and the loss/time histories, every epoch;
- ``xumx_slicq_v2.chkpnt``: everything needed to resume (weights, optimizer, scheduler, early-stopping state,
  histories, RNG states), every epoch; a killed run started again with the same command loses at most the
  epoch it was in;
- ``logdir/``: TensorBoard (``tensorboard --logdir <model-path>/logdir``).

Several processes: ``torchrun --nproc-per-node N -m xumx_slicq_v2.training ...`` (DistributedDataParallel;
NCCL on CUDA, gloo on CPU); ``--batch-size`` is the global batch, split over the processes; rank 0 writes.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from ._cli import DefaultsHelpFormatter
from ._optional import exit_if_missing
from .config import ModelConfig

#: Resume file in the model directory.
CHECKPOINT_NAME = "xumx_slicq_v2.chkpnt"

#: TensorBoard folder in the model directory.
LOGDIR_NAME = "logdir"


@dataclass(frozen=True)
class TrainingConfig:
    """Everything about a training run except the model (`ModelConfig`); the defaults are the reference's
    (batch size, workers: the released runs')."""

    musdb_root: str
    model_path: str = "exp/xumx_slicq_v2"
    samples_per_track: int = 64
    seq_dur: float = 2.0
    epochs: int = 1000
    batch_size: int = 64
    batch_size_valid: int = 1
    lr: float = 1e-3
    weight_decay: float = 1e-5
    lr_decay_patience: int = 80
    lr_decay_gamma: float = 0.3
    lr_decay_cooldown: int = 10
    patience: int = 1000
    seed: int = 42
    nb_workers: int = 8
    debug: bool = False
    device: str | None = None
    precision: str = "auto"
    audio_every: int = 10
    audio_seconds: float = 10.0
    quiet: bool = False

    def __post_init__(self) -> None:
        positive = ("samples_per_track", "epochs", "batch_size", "batch_size_valid", "patience")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.seq_dur <= 0 or self.lr <= 0 or not 0 < self.lr_decay_gamma < 1:
            raise ValueError("need --seq-dur > 0, --lr > 0 and 0 < --lr-decay-gamma < 1")
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {PRECISIONS}, got {self.precision!r}")


#: ``auto``: bfloat16 autocast on CUDA, float32 elsewhere.
PRECISIONS = ("auto", "bf16", "fp32")


# ----------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    defaults = ModelConfig()
    parser = argparse.ArgumentParser(
        prog="python -m xumx_slicq_v2.training",
        description=__doc__.split("\n\n")[0].replace("``", ""),
        formatter_class=DefaultsHelpFormatter,
        epilog=(
            "Run the same command again to resume a killed run. Several processes: torchrun --nproc-per-node N "
            "-m xumx_slicq_v2.training ... Watch it: tensorboard --logdir MODEL_PATH/logdir"
        ),
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--musdb-root",
        default=os.environ.get("MUSDB_PATH"),
        help="MUSDB18-HQ (WAV) root holding train/ and test/ (default: $MUSDB_PATH)",
    )
    data.add_argument("--samples-per-track", type=int, default=64, help="random excerpts per track and epoch")
    data.add_argument("--seq-dur", type=float, default=2.0, help="excerpt length in seconds")
    data.add_argument("--nb-workers", type=int, default=8, help="DataLoader worker processes per process")

    run = parser.add_argument_group("training")
    run.add_argument("--model-path", default="exp/xumx_slicq_v2", help="output (and resume) directory")
    run.add_argument("--epochs", type=int, default=1000, help="last epoch")
    run.add_argument("--batch-size", type=int, default=64, help="global batch size (split over processes)")
    run.add_argument("--batch-size-valid", type=int, default=1, help="validation tracks per batch")
    run.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate")
    run.add_argument("--weight-decay", type=float, default=1e-5, help="AdamW weight decay")
    run.add_argument("--lr-decay-patience", type=int, default=80, help="ReduceLROnPlateau patience (epochs)")
    run.add_argument("--lr-decay-gamma", type=float, default=0.3, help="ReduceLROnPlateau factor")
    run.add_argument("--lr-decay-cooldown", type=int, default=10, help="ReduceLROnPlateau cooldown (epochs)")
    run.add_argument("--patience", type=int, default=1000, help="early stopping patience (epochs)")
    run.add_argument("--seed", type=int, default=42, help="random seed")
    run.add_argument("--debug", action="store_true", help="skip the input statistics pass")
    run.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    run.add_argument(
        "--precision", choices=PRECISIONS, default="auto", help="auto: bfloat16 autocast on CUDA, float32 on CPU"
    )
    run.add_argument("--audio-every", type=int, default=10, help="log a separated example every N epochs (0: never)")
    run.add_argument("--audio-seconds", type=float, default=10.0, help="length of the logged example")
    run.add_argument("--quiet", action="store_true", help="no progress bars or messages")

    net = parser.add_argument_group("model (the released models' values by default)")
    net.add_argument(
        "--fscale", default=defaults.scale, help="sliCQT frequency scale (bark, mel, cqlog, vqlog, linear)"
    )
    net.add_argument("--fbins", type=int, default=defaults.bins, help="sliCQT frequency bins")
    net.add_argument("--fmin", type=float, default=defaults.fmin, help="lowest sliCQT frequency (Hz)")
    net.add_argument("--fgamma", type=float, default=defaults.gamma, help="vqlog frequency offset (Hz)")
    net.add_argument("--hidden-size-1", type=int, default=defaults.hidden_size_1, help="channels of the 1st layer")
    net.add_argument("--hidden-size-2", type=int, default=defaults.hidden_size_2, help="channels of the 2nd layer")
    net.add_argument("--time-filter-2", type=int, default=defaults.time_filter_2, help="time kernel of the 2nd layer")
    net.add_argument("--realtime", action="store_true", help="causal first layer and mixture phase (no Wiener-EM)")
    return parser


def configs_from_args(args: argparse.Namespace) -> tuple[TrainingConfig, ModelConfig]:
    """Split parsed arguments into the training and the model configuration."""
    if not args.musdb_root:
        raise SystemExit("--musdb-root is required (or set $MUSDB_PATH)")
    model_config = ModelConfig(
        scale=args.fscale,
        bins=args.fbins,
        fmin=args.fmin,
        gamma=args.fgamma,
        hidden_size_1=args.hidden_size_1,
        hidden_size_2=args.hidden_size_2,
        time_filter_2=args.time_filter_2,
        realtime=args.realtime,
        seq_dur=args.seq_dur,
    )
    names = {field.name for field in dataclasses.fields(TrainingConfig)}
    config = TrainingConfig(**{key: value for key, value in vars(args).items() if key in names})
    return config, model_config


@exit_if_missing()
def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        config, model_config = configs_from_args(args)
    except ValueError as err:
        raise SystemExit(str(err)) from err
    from .checkpoint import CheckpointError
    from .data import DatasetError
    from .trainer import train

    try:
        result = train(config, model_config)
    except (DatasetError, CheckpointError) as err:
        raise SystemExit(f"error: {err}") from err
    if int(os.environ.get("RANK", "0")) == 0 and not config.quiet:
        print(
            f"best validation loss {result['best_loss']} at epoch {result['best_epoch']} "
            f"({result['epochs_trained']} epochs trained); model in {config.model_path}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
