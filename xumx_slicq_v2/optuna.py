"""Hyperparameter study of the network with Optuna: ``python -m xumx_slicq_v2.optuna --storage URL --study-name NAME``.

Each trial trains a cut-down model in this process with `xumx_slicq_v2.trainer.train` (the training command's
flags set everything that is not searched; the defaults here are the reference's tuning run: 10 epochs, 16
samples per track, batch 32, 4 workers) and scores it after every epoch by the validation global SDR (each musdb
"valid" track separated whole, MDX global SDR per target, mean over tracks and targets; `xumx_slicq_v2.
evaluation.global_sdr`). The study maximises the last epoch's score with a seeded TPE sampler; the per-epoch
scores go to a median pruner.

The study lives in an Optuna RDB storage (any SQLAlchemy URL: ``sqlite:///study.db`` on one machine, PostgreSQL
or MySQL for many). ``--n-trials`` is the study's total of finished (complete or pruned) trials: every worker
started on the same storage and study name takes trials until the total is reached (a worker checks before it
starts a trial, so each additional worker may add at most one extra). A worker killed at any moment leaves its
trial running in the storage; its heartbeat stops, and after the grace period the next worker to start a trial
marks it failed and runs it again (same parameters; the training resumes from the failed trial's last epoch).

Files in ``--out-dir``: ``trials/<number>/`` (each trial's model folder, as the training command writes) and
``best.json`` (the best trial's parameters, its score and the training command line that uses them, rewritten
atomically after every trial).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import training
from ._cli import DefaultsHelpFormatter
from ._optional import exit_if_missing, require

if TYPE_CHECKING:
    import optuna

#: The reference's search space (``[low, high]``, both included).
DEFAULT_SEARCH_SPACE: dict[str, list] = {"hidden_size_1": [4, 256], "hidden_size_2": [4, 256], "time_filter_2": [1, 9]}

#: Searchable parameters (the training command's destinations) and how they are drawn.
INT_PARAMETERS = ("hidden_size_1", "hidden_size_2", "time_filter_2", "fbins")
FLOAT_PARAMETERS = ("fmin",)
LOG_PARAMETERS = ("lr",)
CATEGORICAL_PARAMETERS = ("fscale",)
PARAMETERS = INT_PARAMETERS + FLOAT_PARAMETERS + LOG_PARAMETERS + CATEGORICAL_PARAMETERS

#: Defaults of the reference's tuning run for the training flags.
TUNING_DEFAULTS = {"epochs": 10, "samples_per_track": 16, "batch_size": 32, "nb_workers": 4, "audio_every": 0}

#: Training settings that may differ between workers of one study (where and how fast, not what is trained).
RUNTIME_SETTINGS = ("musdb_root", "device", "nb_workers", "quiet", "precision")

#: Study attributes holding the search space and the fixed training settings of the first worker.
SPACE_ATTR, SETTINGS_ATTR = "search_space", "fixed_settings"

#: Trial attribute holding the folder its model trains in.
MODEL_PATH_ATTR = "model_path"

#: A worker stops after this many failed trials in a row.
MAX_CONSECUTIVE_FAILURES = 3

#: Name of the best-parameters file in ``--out-dir``.
BEST_NAME = "best.json"


class StudyError(ValueError):
    """Unusable study settings (the message names the flag or file)."""


def _optuna():
    optuna = require("optuna", extra="tune", purpose="the hyperparameter study")
    # the retry of failed trials is marked experimental in Optuna
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


# ----------------------------------------------------------------------------------------------------------
# Search space
# ----------------------------------------------------------------------------------------------------------


def check_search_space(space: dict[str, Any], source: str = "search space") -> dict[str, list]:
    """Validate ``{"name": [low, high], "fscale": [choices...]}`` and add the default ranges it lacks."""
    from .transforms import SCALES

    if not isinstance(space, dict):
        raise StudyError(f"{source}: expected a JSON object {{\"name\": [low, high], ...}}")
    unknown = sorted(set(space) - set(PARAMETERS))
    if unknown:
        raise StudyError(f"{source}: unknown parameter(s) {', '.join(unknown)}; searchable: {', '.join(PARAMETERS)}")
    checked = {**DEFAULT_SEARCH_SPACE}
    for name, values in space.items():
        if not isinstance(values, list) or not values:
            raise StudyError(f"{source}: {name} needs a list, got {values!r}")
        if name in CATEGORICAL_PARAMETERS:
            bad = [value for value in values if value not in SCALES]
            if bad or len(set(values)) != len(values):
                raise StudyError(f"{source}: {name} needs distinct scales from {', '.join(SCALES)}, got {values!r}")
        else:
            integer = name in INT_PARAMETERS
            kinds = (int,) if integer else (int, float)
            if len(values) != 2 or not all(isinstance(v, kinds) and not isinstance(v, bool) for v in values):
                raise StudyError(f"{source}: {name} needs [low, high] ({'integers' if integer else 'numbers'}), "
                                 f"got {values!r}")  # fmt: skip
            low, high = values
            if not low <= high or (name in LOG_PARAMETERS and low <= 0) or (integer and low < 1) or low < 0:
                raise StudyError(f"{source}: {name} needs 0 <= low <= high (> 0 for {', '.join(LOG_PARAMETERS)}; "
                                 f">= 1 for integers), got {values!r}")  # fmt: skip
        checked[name] = list(values)
    return checked


def read_search_space(path: str | None) -> dict[str, list]:
    """The search space of ``--search-space FILE`` (the reference's ranges without it)."""
    if path is None:
        return check_search_space({})
    try:
        space = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise StudyError(f"{path}: cannot read the search space ({err})") from err
    return check_search_space(space, str(path))


def suggest(trial: optuna.Trial, space: dict[str, list]) -> dict[str, Any]:
    """Draw the trial's parameters (integers uniform, ``lr`` log-uniform, ``fmin`` uniform, ``fscale``
    categorical)."""
    params = {}
    for name, values in space.items():
        if name in CATEGORICAL_PARAMETERS:
            params[name] = trial.suggest_categorical(name, values)
        elif name in INT_PARAMETERS:
            params[name] = trial.suggest_int(name, *values)
        else:
            params[name] = trial.suggest_float(name, *values, log=name in LOG_PARAMETERS)
    return params


# ----------------------------------------------------------------------------------------------------------
# Objective
# ----------------------------------------------------------------------------------------------------------


def validation_sdr(model, tracks: Sequence) -> float:
    """Mean over ``tracks`` and targets of the global SDR (dB) of the model's separation of each whole track."""
    import numpy as np
    import torch

    from .evaluation import global_sdr
    from .separator import Separator

    device = next(model.parameters()).device
    separator = Separator(model).to(device)
    scores = []
    for track in tracks:
        audio = track.read_all()
        estimates = separator(torch.from_numpy(audio[0])[None])[0].float().cpu().numpy()
        scores.append(np.mean(list(global_sdr(audio[1:], estimates).values())))
    return float(np.mean(scores))


def checkpoint_sdr(model_path: Path, model_config, musdb_root: str) -> float:
    """`validation_sdr` of the last weights in a model folder's resume checkpoint (NaN without one)."""
    import torch

    from .checkpoint import load_weights
    from .data import list_tracks
    from .model import Unmix
    from .transforms import SliCQT

    path = model_path / training.CHECKPOINT_NAME
    if not path.is_file():
        return math.nan
    model = Unmix(model_config, SliCQT(**model_config.transform_kwargs()).block_shapes)
    load_weights(model, torch.load(path, map_location="cpu", weights_only=True)["state_dict"], path)
    return validation_sdr(model, list_tracks(musdb_root, "train", "valid"))


def configs_for_trial(
    args: argparse.Namespace, params: dict[str, Any], model_path: Path
) -> tuple[training.TrainingConfig, Any]:
    """Training and model configuration of a trial: the command's settings with ``params`` in place."""
    trial_args = argparse.Namespace(**{**vars(args), **params, "model_path": str(model_path)})
    return training.configs_from_args(trial_args)


class Objective:
    """Train one trial and return its last validation SDR; report every epoch's score, prune on request."""

    def __init__(self, args: argparse.Namespace, space: dict[str, list]) -> None:
        self.args, self.space = args, space
        self.out_dir = Path(args.out_dir)

    def model_path(self, trial: optuna.Trial) -> Path:
        """``trials/<number>``; a retried trial continues in the folder of the trial it retries, any other
        trial needs a new folder (one left by another study in the same ``--out-dir`` is an error)."""
        optuna = _optuna()
        frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
        retried = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen)
        path = self.out_dir / "trials" / f"{trial.number if retried is None else retried:04d}"
        if retried is None and path.exists():
            raise StudyError(f"{path} exists, from another study in this --out-dir; use a new --out-dir per study")
        return path

    def __call__(self, trial: optuna.Trial) -> float:
        from .trainer import train

        optuna = _optuna()
        params = suggest(trial, self.space)
        model_path = self.model_path(trial)
        trial.set_user_attr(MODEL_PATH_ATTR, str(model_path))
        config, model_config = configs_for_trial(self.args, params, model_path)
        scores: list[float] = []

        def after_epoch(epoch: int, model, valid_tracks) -> None:
            score = validation_sdr(model, valid_tracks)
            scores.append(score)
            trial.report(score, epoch)
            if not self.args.quiet:
                print(f"trial {trial.number} epoch {epoch}: validation SDR {score:.3f} dB", file=sys.stderr)
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {epoch}: validation SDR {score:.3f} dB below the median")

        train(config, model_config, epoch_callback=after_epoch)
        if scores:
            return scores[-1]
        # A retried trial whose folder had trained every epoch (killed before it finished): score those weights.
        # No checkpoint: the first epoch diverged (NaN), and Optuna fails a trial that returns NaN.
        return checkpoint_sdr(Path(config.model_path), model_config, config.musdb_root)


# ----------------------------------------------------------------------------------------------------------
# Study
# ----------------------------------------------------------------------------------------------------------


def fixed_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The training settings every trial of the study shares (not the searched ones, not the runtime ones)."""
    ignored = {*RUNTIME_SETTINGS, "model_path", *STUDY_FLAGS}
    return {key: value for key, value in sorted(vars(args).items()) if key not in ignored}


def open_study(args: argparse.Namespace, space: dict[str, list]) -> optuna.Study:
    """Create or load the study (TPE seeded with ``--seed`` plus the trials it already holds, median pruner,
    heartbeats with retries of failed trials) and check it was started with this search space and settings."""
    optuna = _optuna()
    from sqlalchemy.exc import SQLAlchemyError

    engine_kwargs = {"connect_args": {"timeout": 60}} if args.storage.startswith("sqlite") else None
    try:
        storage = optuna.storages.RDBStorage(
            args.storage,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=args.heartbeat_interval,
            grace_period=args.grace_period,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=args.max_retry, inherit_intermediate_values=True
            ),
        )
    except (SQLAlchemyError, ValueError) as err:
        raise StudyError(f"--storage {args.storage}: cannot open it ({err})") from err
    try:
        existing = len(optuna.load_study(study_name=args.study_name, storage=storage).get_trials(deepcopy=False))
    except KeyError:  # a new study
        existing = 0
    study = optuna.create_study(
        storage=storage,
        study_name=args.study_name,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=args.seed + existing),
        pruner=optuna.pruners.MedianPruner(  # steps are epochs, counted from 1
            n_startup_trials=args.prune_startup_trials, n_warmup_steps=args.prune_warmup_epochs + 1
        ),
        load_if_exists=True,
    )
    settings = fixed_settings(args)
    for key, value in ((SPACE_ATTR, space), (SETTINGS_ATTR, settings)):
        stored = study.user_attrs.get(key)
        if stored is None:
            study.set_user_attr(key, value)
        elif stored != json.loads(json.dumps(value)):
            differing = sorted(k for k in {*stored, *value} if stored.get(k) != value.get(k))
            raise StudyError(
                f"study {args.study_name!r} in {args.storage} was started with another {key.replace('_', ' ')} "
                f"(differs in {', '.join(differing)}); use the same settings or another --study-name"
            )
    return study


def finished_trials(study: optuna.Study) -> list:
    optuna = _optuna()
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return study.get_trials(deepcopy=False, states=states)


def training_command(args: argparse.Namespace, params: dict[str, Any], model_path: str) -> str:
    """The training command line of a full run with ``params``: the study's model settings and the searched
    values; epochs, samples per track and batch size stay the training command's defaults."""
    defaults = vars(training.build_parser().parse_args(["--musdb-root", "."]))
    values = {**vars(args), **params}
    model_flags = ("fscale", "fbins", "fmin", "fgamma", "hidden_size_1", "hidden_size_2", "time_filter_2",
                   "lr", "seq_dur")  # fmt: skip
    words = ["python", "-m", "xumx_slicq_v2.training", "--musdb-root", str(args.musdb_root), "--model-path", model_path]
    for name in model_flags:
        if name in params or values[name] != defaults[name]:
            words += [f"--{name.replace('_', '-')}", str(values[name])]
    if values["realtime"]:
        words.append("--realtime")
    return shlex.join(words)


def write_best(study: optuna.Study, args: argparse.Namespace) -> dict[str, Any] | None:
    """Write ``best.json`` (atomically) for the best complete trial; ``None`` while there is none."""
    from .audio import write_text_atomic

    complete = [t for t in finished_trials(study) if t.state.name == "COMPLETE" and t.value is not None]
    if not complete:
        return None
    best = max(complete, key=lambda t: t.value)
    content = {
        "study": args.study_name,
        "storage": args.storage,
        "trial": best.number,
        "validation_sdr": best.value,
        "params": best.params,
        "model_path": best.user_attrs.get(MODEL_PATH_ATTR),
        "finished_trials": len(finished_trials(study)),
        "training_command": training_command(args, best.params, str(Path(args.out_dir) / "best_model")),
    }
    write_text_atomic(Path(args.out_dir) / BEST_NAME, json.dumps(content, indent=2) + "\n")
    return content


def run_study(args: argparse.Namespace) -> optuna.Study:
    """Take trials of the study until it holds ``--n-trials`` finished ones; returns the study."""
    optuna = _optuna()
    space = read_search_space(args.search_space)
    if args.quiet:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(args, space)
    objective = Objective(args, space)
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    stop_at_total = optuna.study.MaxTrialsCallback(args.n_trials, states=states)

    import torch

    # out of memory fails the trial (a configuration too large for the device) and the worker goes on; any other
    # error fails the trial and stops the worker
    caught = (MemoryError, torch.OutOfMemoryError)
    failures = 0

    def after_trial(study: optuna.Study, trial) -> None:
        nonlocal failures
        failures = failures + 1 if trial.state == optuna.trial.TrialState.FAIL else 0
        write_best(study, args)

    while len(finished_trials(study)) < args.n_trials:  # checked before each trial: other workers take some
        study.optimize(objective, n_trials=1, callbacks=[stop_at_total, after_trial], catch=caught)
        if failures >= MAX_CONSECUTIVE_FAILURES:
            raise StudyError(f"{failures} trials in a row failed in this worker; see the messages above")
    return study


# ----------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------

#: Destinations of the flags added to the training command's.
STUDY_FLAGS = (
    "storage", "study_name", "n_trials", "search_space", "out_dir", "heartbeat_interval", "grace_period",
    "max_retry", "prune_startup_trials", "prune_warmup_epochs",
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The training command's parser (its flags fix the settings that are not searched) plus the study's."""
    parser = argparse.ArgumentParser(
        prog="python -m xumx_slicq_v2.optuna",
        description=__doc__.split("\n\n")[0].replace("``", ""),
        formatter_class=DefaultsHelpFormatter,
        parents=[training.build_parser()],
        conflict_handler="resolve",
        epilog=(
            "Several workers (processes or machines) may run the same command on one storage. Watch the study: "
            "optuna-dashboard STORAGE. The searched parameters override the training flags of the same name."
        ),
    )
    parser.set_defaults(**TUNING_DEFAULTS)
    parser.add_argument("--model-path", default=None, help=argparse.SUPPRESS)  # trials go to OUT_DIR/trials/
    study = parser.add_argument_group("study")
    study.add_argument("--storage", required=True, help="Optuna RDB storage URL, e.g. sqlite:///study.db")
    study.add_argument("--study-name", required=True, help="study name (created, or resumed if it exists)")
    study.add_argument("--n-trials", type=int, default=100, help="finished (complete or pruned) trials of the study")
    study.add_argument("--search-space", help="JSON {\"name\": [low, high], \"fscale\": [scales]} over "
                       f"{', '.join(PARAMETERS)} (default {json.dumps(DEFAULT_SEARCH_SPACE)})")  # fmt: skip
    study.add_argument("--out-dir", required=True, help="trial model folders and best.json")
    study.add_argument("--heartbeat-interval", type=int, default=60, help="seconds between a trial's heartbeats")
    study.add_argument("--grace-period", type=int, default=180,
                       help="seconds without a heartbeat after which a running trial counts as failed")  # fmt: skip
    study.add_argument("--max-retry", type=int, default=3, help="times a failed (killed) trial is run again")
    study.add_argument("--prune-startup-trials", type=int, default=5, help="trials before the pruner acts")
    study.add_argument("--prune-warmup-epochs", type=int, default=1, help="first epochs of a trial never pruned")
    return parser


@exit_if_missing()
def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    args = build_parser().parse_args(argv)
    if args.model_path is not None:
        raise SystemExit("--model-path does not apply: trials train in OUT_DIR/trials/<number>")
    if not args.musdb_root:
        raise SystemExit("--musdb-root is required (or set $MUSDB_PATH)")
    if args.n_trials < 1 or args.heartbeat_interval < 1 or args.grace_period <= args.heartbeat_interval:
        raise SystemExit("need --n-trials >= 1, --heartbeat-interval >= 1 and --grace-period > --heartbeat-interval")
    from .checkpoint import CheckpointError
    from .data import DatasetError

    try:
        study = run_study(args)
        best = write_best(study, args)
    except (StudyError, DatasetError, CheckpointError) as err:
        raise SystemExit(f"error: {err}") from err
    total = len(finished_trials(study))
    if best is None:
        print(f"{total} finished trials, none complete (all pruned)")
    else:
        print(f"{total} finished trials; best: trial {best['trial']}, validation SDR {best['validation_sdr']:.3f} dB, "
              f"{best['params']}\n{Path(args.out_dir) / BEST_NAME}: {best['training_command']}")  # fmt: skip
    return best


if __name__ == "__main__":
    main()
