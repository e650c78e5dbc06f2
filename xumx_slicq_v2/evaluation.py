"""Score separations on MUSDB18-HQ (WAV) as the literature does: ``python -m xumx_slicq_v2.evaluation``.

Each track is separated whole (the `Separator` chunks long tracks internally) and scored with museval's
BSSEval v4 (1 s windows, 1 s hops; SDR, SIR, ISR, SAR per window). Per track, two JSON files:

- ``OUT/<subset>/<track>.json``: museval's own per-track format (what ``museval.eval_mus_track`` writes);
- ``OUT/global_sdr/<subset>/<track>.json``: the whole-track SDR of each target used by the MDX challenges,
  ``10 log10((eps + sum ref^2) / (eps + sum (ref - est)^2))`` with eps = 1e-7.

The summary is the median over frames, then the median over tracks, per target and metric (museval's
``EvalStore``), the total SDR (mean of the four target SDRs), and the global SDR (mean over tracks, then over
targets); it is printed and written to ``OUT/summary.json``. Tracks whose JSON files exist are not scored
again, so an interrupted run resumes.

Baselines are scored the same way: ``mixture`` (the mixture as every estimate) and ``oracle-irm`` (the ideal
ratio mask ``|S_j| / sum_k |S_k|`` of the true sources applied to the mixture's sliCQT coefficients, then the
inverse sliCQT; the transform of ``--model`` if given, else the released models').

museval (and the musdb package it imports) is needed: ``pip install 'xumx-slicq-v2[musdb]'``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._cli import DefaultsHelpFormatter
from ._optional import exit_if_missing, require
from .audio import write_text_atomic
from .config import SAMPLE_RATE, SOURCES, ModelConfig

if TYPE_CHECKING:  # torch and the datasets load after the arguments are parsed
    from .data import Track

#: BSSEval v4 window and hop in seconds (museval's defaults).
WINDOW_SECONDS = 1.0
HOP_SECONDS = 1.0

#: Metrics of a museval frame, in the order of its printout.
METRICS = ("SDR", "SIR", "ISR", "SAR")

#: Regulariser of the MDX global SDR.
GLOBAL_SDR_EPS = 1e-7

#: Folder of the global-SDR files inside the output folder.
GLOBAL_SDR_DIR = "global_sdr"

#: Names of the baselines.
BASELINES = ("mixture", "oracle-irm")

#: ``(mixture (2, samples), sources (4, 2, samples)) -> estimates (4, 2, samples)``, float32 numpy arrays,
#: sources in `SOURCES` order (the true sources are given for oracles; real separators ignore them).
Estimator = Callable[[np.ndarray, np.ndarray], np.ndarray]


# ----------------------------------------------------------------------------------------------------------
# Scores
# ----------------------------------------------------------------------------------------------------------


def _museval():
    """museval (musdb, which it imports, needs the ffmpeg and ffprobe executables on PATH)."""
    return require(
        "museval",
        extra="musdb",
        purpose="BSSEval scoring",
        executables=("ffmpeg", "ffprobe"),
        executables_remedy="install ffmpeg (for example: sudo apt-get install ffmpeg)",
    )


def bss_eval(references: np.ndarray, estimates: np.ndarray, sample_rate: int = SAMPLE_RATE) -> dict[str, dict]:
    """BSSEval v4 framewise scores (museval, 1 s windows and hops).

    Args:
        references, estimates: ``(4, channels, samples)`` in `SOURCES` order; estimates are cut or zero-padded
            to the references' length.

    Returns:
        ``{target: {metric: [per-frame values]}}``.
    """
    museval = _museval()
    sdr, isr, sir, sar = museval.evaluate(
        np.swapaxes(references, 1, 2),
        np.swapaxes(estimates, 1, 2),
        win=int(WINDOW_SECONDS * sample_rate),
        hop=int(HOP_SECONDS * sample_rate),
        mode="v4",
    )
    return {
        target: {"SDR": sdr[i].tolist(), "SIR": sir[i].tolist(), "ISR": isr[i].tolist(), "SAR": sar[i].tolist()}
        for i, target in enumerate(SOURCES)
    }


def museval_json(track_name: str, framewise: dict[str, dict]) -> str:
    """The per-track JSON exactly as museval writes it (its ``TrackStore``; infinite values become NaN)."""
    museval = _museval()
    store = museval.TrackStore(track_name=track_name, win=WINDOW_SECONDS, hop=HOP_SECONDS)
    for target, values in framewise.items():
        store.add_target(target_name=target, values=values)
    store.validate()
    return store.json


def global_sdr(references: np.ndarray, estimates: np.ndarray) -> dict[str, float]:
    """MDX whole-track SDR in dB per target of ``(4, channels, samples)`` arrays (estimates cut to length)."""
    length = references.shape[-1]
    if estimates.shape[-1] < length:
        estimates = np.pad(estimates, [(0, 0), (0, 0), (0, length - estimates.shape[-1])])
    references = references.astype(np.float64)
    errors = references - estimates[..., :length].astype(np.float64)
    signal = np.square(references).sum(axis=(1, 2))
    noise = np.square(errors).sum(axis=(1, 2))
    values = 10 * np.log10((GLOBAL_SDR_EPS + signal) / (GLOBAL_SDR_EPS + noise))
    return dict(zip(SOURCES, values.tolist()))


# ----------------------------------------------------------------------------------------------------------
# Estimators
# ----------------------------------------------------------------------------------------------------------


class MixtureEstimator:
    """Baseline: the mixture as the estimate of every source."""

    def __call__(self, mixture: np.ndarray, sources: np.ndarray) -> np.ndarray:
        return np.repeat(mixture[None], len(SOURCES), axis=0)


@dataclass
class OracleIRMEstimator:
    """Oracle: ideal ratio masks ``|S_j| / (eps + sum_k |S_k|)`` of the true sources' sliCQT coefficients,
    applied to the mixture's coefficients, inverse sliCQT. Long tracks go in ``chunk_seconds`` pieces with
    one slice of context and a half-slice cross-fade on each side (the masks are pointwise)."""

    config: ModelConfig
    chunk_seconds: float = 30.0
    eps: float = 1e-10

    def __call__(self, mixture: np.ndarray, sources: np.ndarray) -> np.ndarray:
        import torch

        from .separator import chunk_plan, crossfade_weights
        from .transforms import SliCQT

        transform = SliCQT(**self.config.transform_kwargs())
        mixture_t, sources_t = torch.from_numpy(mixture), torch.from_numpy(sources)
        length = mixture.shape[-1]
        hop = transform.slice_length // 2
        chunk = max(1, math.ceil(self.chunk_seconds * transform.sample_rate / hop)) * hop
        output = torch.zeros(len(SOURCES), *mixture.shape)
        with torch.no_grad():
            for owned_start, owned_stop, start, stop in chunk_plan(length, chunk, 2 * hop, hop):
                weights = crossfade_weights(start, stop, owned_start, owned_stop, length, hop)
                masked = [
                    mix * (source.abs() / (self.eps + source.abs().sum(0)))
                    for mix, source in zip(
                        transform(mixture_t[..., start:stop]), transform(sources_t[..., start:stop]), strict=True
                    )
                ]
                output[..., start:stop] += transform.inverse(masked, stop - start) * weights
        return output.numpy()


class SeparatorEstimator:
    """A trained model (``offline``, ``realtime``, ``demo`` or a model directory), loaded on first use."""

    def __init__(self, name_or_dir: str, device: str = "cpu") -> None:
        self.name_or_dir, self.device = name_or_dir, device
        self._separator = None

    def __getstate__(self) -> dict[str, Any]:
        return {"name_or_dir": self.name_or_dir, "device": self.device, "_separator": None}

    def __call__(self, mixture: np.ndarray, sources: np.ndarray) -> np.ndarray:
        if self._separator is None:
            from .separator import Separator

            self._separator = Separator.from_pretrained(self.name_or_dir, device=self.device)
        import torch

        audio = torch.from_numpy(np.ascontiguousarray(mixture))[None]
        return self._separator(audio)[0].float().cpu().numpy()


# ----------------------------------------------------------------------------------------------------------
# Tracks and summary
# ----------------------------------------------------------------------------------------------------------


def result_paths(out_dir: Path, subset: str, track_name: str) -> tuple[Path, Path]:
    """``(museval JSON, global-SDR JSON)`` of a track."""
    return out_dir / subset / f"{track_name}.json", out_dir / GLOBAL_SDR_DIR / subset / f"{track_name}.json"


def evaluate_track(track: Track, estimator: Estimator, out_dir: Path, subset: str) -> None:
    """Separate and score one track; write its two JSON files (atomically, the museval file last)."""
    audio = track.read_all()
    mixture, references = audio[0], audio[1:]
    estimates = np.asarray(estimator(mixture, references), dtype=np.float32)
    if estimates.shape[:2] != references.shape[:2]:
        raise ValueError(f"{track.name}: the estimator returned shape {estimates.shape}, expected (4, 2, samples)")
    museval_path, global_path = result_paths(out_dir, subset, track.name)
    scores = {"track": track.name, "global_sdr": global_sdr(references, estimates)}
    write_text_atomic(global_path, json.dumps(scores, indent=2) + "\n")
    write_text_atomic(museval_path, museval_json(track.name, bss_eval(references, estimates)))


def _nan_to_none(value: float) -> float | None:
    return None if value is None or math.isnan(value) else value


def summarize(out_dir: Path, subset: str, track_names: Sequence[str]) -> dict[str, Any]:
    """Aggregate the per-track files of ``track_names``: median over frames, then over tracks, per target
    and metric; total SDR = mean of the target SDRs; global SDR = mean over tracks (per target), then over
    targets."""
    per_track: dict[str, dict[str, list[float]]] = {t: {m: [] for m in METRICS} for t in SOURCES}
    global_scores: dict[str, list[float]] = {t: [] for t in SOURCES}
    for name in track_names:
        museval_path, global_path = result_paths(out_dir, subset, name)
        frames = json.loads(museval_path.read_text())
        for target in frames["targets"]:
            if target["name"] not in per_track:
                continue
            for metric in METRICS:
                values = np.array([np.nan if f["metrics"][metric] is None else f["metrics"][metric]
                                   for f in target["frames"]], dtype=np.float64)  # fmt: skip
                finite = values[~np.isnan(values)]
                per_track[target["name"]][metric].append(float(np.median(finite)) if finite.size else math.nan)
        for target, value in json.loads(global_path.read_text())["global_sdr"].items():
            global_scores[target].append(value)
    targets = {}
    for target in SOURCES:
        row = {}
        for metric in METRICS:
            values = np.array(per_track[target][metric])
            finite = values[~np.isnan(values)]
            row[metric] = float(np.median(finite)) if finite.size else math.nan
        row["global_SDR"] = float(np.mean(global_scores[target])) if global_scores[target] else math.nan
        targets[target] = row
    return {
        "subset": subset,
        "tracks": list(track_names),
        "aggregation": "median over frames, median over tracks (BSSEval v4, 1 s windows and hops)",
        "targets": {t: {k: _nan_to_none(v) for k, v in row.items()} for t, row in targets.items()},
        "total_SDR": _nan_to_none(float(np.mean([targets[t]["SDR"] for t in SOURCES]))),
        "global_SDR": _nan_to_none(float(np.mean([targets[t]["global_SDR"] for t in SOURCES]))),
    }


def format_table(summary: dict[str, Any], label: str = "") -> str:
    """The summary as a text table (dB)."""

    def cell(value: float | None) -> str:
        return f"{value:8.3f}" if value is not None else "     nan"

    header = f"{'target':<8}" + "".join(f"{m:>8}" for m in METRICS) + f"{'global SDR':>12}"
    lines = [f"{label} ({len(summary['tracks'])} tracks, {summary['aggregation']})" if label else "", header]
    for target, row in summary["targets"].items():
        lines.append(f"{target:<8}" + "".join(cell(row[m]) for m in METRICS) + f"    {cell(row['global_SDR'])}")
    lines.append(f"total SDR (mean of the 4 targets): {cell(summary['total_SDR']).strip()} dB; "
                 f"global (MDX) SDR: {cell(summary['global_SDR']).strip()} dB")  # fmt: skip
    return "\n".join(line for line in lines if line)


_WORKER_ESTIMATOR: Estimator | None = None


def _init_worker(estimator: Estimator, threads: int) -> None:
    global _WORKER_ESTIMATOR
    _WORKER_ESTIMATOR = estimator
    import torch

    torch.set_num_threads(threads)


def _run_in_worker(track: Track, out_dir: Path, subset: str) -> str:
    evaluate_track(track, _WORKER_ESTIMATOR, out_dir, subset)
    return track.name


def evaluate(
    tracks: Sequence[Track],
    estimator: Estimator,
    out_dir: str | os.PathLike,
    subset: str = "test",
    jobs: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Score ``tracks`` (skipping those already scored in ``out_dir``), write and return the summary."""
    import torch
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    todo = [track for track in tracks if not all(path.is_file() for path in result_paths(out_dir, subset, track.name))]
    bar = tqdm(total=len(tracks), initial=len(tracks) - len(todo), desc="tracks", unit="track", disable=not progress)
    if jobs <= 1 or len(todo) <= 1:
        for track in todo:
            evaluate_track(track, estimator, out_dir, subset)
            bar.update()
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        context = torch.multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker,
                                 initargs=(estimator, threads)) as pool:  # fmt: skip
            futures = [pool.submit(_run_in_worker, track, out_dir, subset) for track in todo]
            for future in as_completed(futures):
                future.result()
                bar.update()
    bar.close()
    summary = summarize(out_dir, subset, [track.name for track in tracks])
    write_text_atomic(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


# ----------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m xumx_slicq_v2.evaluation",
        description=__doc__.split("\n\n")[0].replace("``", ""),
        formatter_class=DefaultsHelpFormatter,
        epilog="Per-track files: OUT/<subset>/<track>.json (museval) and OUT/global_sdr/<subset>/<track>.json; "
        "summary: OUT/summary.json. Run again to resume.",
    )
    parser.add_argument(
        "--musdb-root", default=os.environ.get("MUSDB_PATH"), help="MUSDB18-HQ (WAV) root (default: $MUSDB_PATH)"
    )
    parser.add_argument("--model", help="offline, realtime, demo or a model directory")
    parser.add_argument("--baseline", choices=BASELINES, help="score a baseline instead of the model")
    parser.add_argument("--subset", choices=("test", "train"), default="test", help="MUSDB18-HQ subset")
    parser.add_argument("--split", choices=("train", "valid"), help="train subset only: the musdb train or valid split")
    parser.add_argument("--track", action="append", help="only this track (repeatable)")
    parser.add_argument("--out-dir", help="output folder (default: exp/evaluation/<model or baseline>)")
    parser.add_argument("--jobs", type=int, default=1, help="tracks scored in parallel (processes)")
    parser.add_argument("--device", default="cpu", help="torch device of the model")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _label(args: argparse.Namespace) -> str:
    if args.baseline:
        return args.baseline
    return args.model if args.model in ("offline", "realtime", "demo") else Path(args.model).resolve().name


@exit_if_missing()
def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    if not args.musdb_root:
        raise SystemExit("--musdb-root is required (or set $MUSDB_PATH)")
    if not args.model and not args.baseline:
        raise SystemExit("give --model (offline, realtime, demo or a directory) or --baseline")
    if args.jobs < 1:
        raise SystemExit("--jobs must be >= 1")
    if args.split and args.subset != "train":
        raise SystemExit("--split applies to --subset train only")
    try:
        return _run(args)
    except RuntimeError as err:  # also the dataset's and the checkpoint's errors
        raise SystemExit(f"error: {err}") from err


def _run(args: argparse.Namespace) -> dict[str, Any]:
    from .checkpoint import read_config, resolve_model_dir
    from .data import list_tracks

    _museval()  # fail early with the install hint
    if args.baseline == "mixture":
        estimator: Estimator = MixtureEstimator()
    elif args.baseline == "oracle-irm":
        if args.model:
            config = read_config(resolve_model_dir(args.model))
        else:
            config = ModelConfig()
        estimator = OracleIRMEstimator(config)
    else:
        estimator = SeparatorEstimator(args.model, args.device)
    label = _label(args)
    out_dir = Path(args.out_dir or Path("exp") / "evaluation" / label)
    tracks = list_tracks(args.musdb_root, args.subset, args.split, args.track)
    summary = evaluate(tracks, estimator, out_dir, args.subset, args.jobs, progress=not args.quiet)
    print(format_table(summary, label))
    print(f"per-track scores and summary.json in {out_dir}")
    return summary


if __name__ == "__main__":
    main()
