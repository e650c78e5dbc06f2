"""Search sliCQT parameters by the separation an oracle reaches with them: ``python -m xumx_slicq_v2.slicqfinder``.

A random search (or one configuration with ``--single``) over the frequency scale, the number of bins and the
lowest frequency of the sliCQT (highest frequency: Nyquist; slice and transition lengths: the scale's suggestion,
configurations whose slice is longer than ``--max-sllen`` are skipped and drawn again). Each configuration is
scored by an oracle that knows the true sources, on whole tracks (the mixture is the sum of the sources, as in
the reference; MUSDB18-HQ's ``mixture.wav`` equals it up to rounding):

- ``wiener``: the project's Wiener-EM (`xumx_slicq_v2.wiener.wiener`, the released models' settings: 1
  iteration, no softmask, windows of 5000 frames) on the true sources' sliCQT magnitudes, then the inverse;
- ``phasemix``: the true sources' magnitudes with the mixture's phase, then the inverse;
- ``irm``: the ideal ratio mask of the evaluation's ``oracle-irm`` baseline
  (`xumx_slicq_v2.evaluation.OracleIRMEstimator`).

Score: per target the global SDR of each track, ``10 log10(sum s^2 / sum (s - s_hat)^2)`` over the whole track
and both channels (`xumx_slicq_v2.evaluation.global_sdr`), averaged over the tracks; the total is the mean of the
four targets. Results: a ranked table, ``--json FILE`` (one record per configuration, written atomically after
each one; the same command with a larger ``--n-iter`` keeps the scored configurations and scores only the new
ones, since the configurations are drawn in a fixed order from ``--random-seed``), and a plot of the total SDR
against the bins per scale and against the coefficients per second (the network's input size).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._cli import DefaultsHelpFormatter
from ._optional import exit_if_missing, require

if TYPE_CHECKING:
    import numpy as np

    from .data import Track
    from .model import ModelConfig
    from .transforms import SliCQT

#: Oracle strategies (``--oracle-strategy``).
STRATEGIES = ("wiener", "phasemix", "irm")

#: The reference's search defaults, and the configuration ``--single`` scores by default (the released one).
SEARCH_DEFAULTS = {"fscale": "bark,mel,cqlog", "fbins": "10,300", "fmins": "10,130,0.1"}
SINGLE_DEFAULTS = {"fscale": "bark", "fbins": "262", "fmins": "32.9"}

#: Draws per requested configuration before the search gives up (most draws are valid).
MAX_DRAWS_PER_CONFIGURATION = 1000

#: Keys of a JSON record (``tracks``: the names the scores are averaged over).
RECORD_KEYS = (
    "scale", "bins", "fmin", "fmax", "sllen", "trlen", "blocks", "coefficients_per_second", "strategy", "sdr",
    "total", "tracks",
)  # fmt: skip


class SearchError(ValueError):
    """Unusable search settings or results file (the message names the setting or file)."""


@dataclass(frozen=True)
class Candidate:
    """One sliCQT configuration: scale, number of bins and lowest frequency in Hz (highest: Nyquist)."""

    scale: str
    bins: int
    fmin: float

    def model_config(self) -> ModelConfig:
        """The `ModelConfig` whose transform is this configuration (network settings unused)."""
        from .model import ModelConfig

        return ModelConfig(scale=self.scale, bins=self.bins, fmin=self.fmin)

    def transform(self) -> SliCQT:
        from .transforms import SliCQT

        return SliCQT(**self.model_config().transform_kwargs())


# ----------------------------------------------------------------------------------------------------------
# Drawing configurations
# ----------------------------------------------------------------------------------------------------------


def parse_scales(text: str) -> list[str]:
    """``"bark,mel"`` -> ``["bark", "mel"]`` (each a known scale)."""
    from .transforms import SCALES

    scales = [scale.strip() for scale in text.split(",") if scale.strip()]
    unknown = [scale for scale in scales if scale not in SCALES]
    if not scales or unknown:
        raise SearchError(f"--fscale {text!r}: give scales from {', '.join(SCALES)} separated by commas")
    return scales


def parse_numbers(text: str, flag: str, count: int) -> list[float]:
    """``count`` comma-separated numbers of ``flag``."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count:
        raise SearchError(f"{flag} {text!r}: expected {count} comma-separated number(s)")
    return values


def fmin_grid(start: float, stop: float, step: float) -> list[float]:
    """``start, start + step, ...`` below ``stop`` (rounded to the step's decimals, so 10.1 stays 10.1)."""
    if step <= 0 or not 0 < start < stop:
        raise SearchError(f"--fmins {start},{stop},{step}: need 0 < start < stop and step > 0")
    decimals = max(0, -math.floor(math.log10(step))) + 3
    count = math.ceil((stop - start) / step - 1e-9)
    return [round(start + k * step, decimals) for k in range(count)]


def slice_lengths(candidate: Candidate, sample_rate: float = 44100) -> tuple[int, int]:
    """The scale's suggested ``(slice_length, transition_length)`` without building the filter bank."""
    from .transforms import frequency_scale, suggested_slice_lengths

    freqs, q = frequency_scale(candidate.scale, candidate.bins, candidate.fmin, sample_rate / 2)
    return suggested_slice_lengths(freqs, q, sample_rate)


def is_usable(candidate: Candidate, max_sllen: int) -> bool:
    """Whether the configuration builds a transform with a slice of at most ``max_sllen`` samples."""
    try:
        if slice_lengths(candidate)[0] > max_sllen:
            return False
        candidate.transform()
    except ValueError:  # e.g. a window longer than the slice, fewer than 2 bins below Nyquist
        return False
    return True


def draw_candidates(
    scales: Sequence[str],
    bins_range: tuple[int, int],
    fmins: Sequence[float],
    count: int,
    max_sllen: int,
    seed: int,
) -> list[Candidate]:
    """The first ``count`` distinct usable configurations of the random sequence of ``seed``.

    Each draw takes a scale, a number of bins in ``[low, high)`` and an ``fmin`` from ``fmins`` uniformly;
    unusable (`is_usable`) and repeated draws are skipped. The sequence depends only on the arguments, so a
    longer search starts with the configurations of a shorter one.
    """
    import numpy as np

    low, high = bins_range
    if not 2 <= low < high:
        raise SearchError(f"--fbins {low},{high}: need 2 <= low < high (bins are drawn from [low, high))")
    rng = np.random.default_rng(seed)
    chosen: list[Candidate] = []
    seen: set[Candidate] = set()
    for _ in range(MAX_DRAWS_PER_CONFIGURATION * max(count, 1)):
        if len(chosen) == count:
            break
        candidate = Candidate(
            scales[int(rng.integers(len(scales)))], int(rng.integers(low, high)), fmins[int(rng.integers(len(fmins)))]
        )
        if candidate in seen:
            continue
        seen.add(candidate)
        if is_usable(candidate, max_sllen):
            chosen.append(candidate)
    if len(chosen) < count:
        raise SearchError(
            f"only {len(chosen)} usable configurations found in the ranges (slice length <= {max_sllen}); "
            "widen --fbins/--fmins or raise --max-sllen"
        )
    return chosen


# ----------------------------------------------------------------------------------------------------------
# Oracles and scores
# ----------------------------------------------------------------------------------------------------------


def oracle_blocks(source_blocks: Sequence[Any], strategy: str) -> list[Any]:
    """Oracle estimates from the true sources' sliCQT blocks.

    Args:
        source_blocks: per block, complex ``(targets, 2, F, S, T)``; the mixture is their sum over targets.
        strategy: ``wiener`` (`xumx_slicq_v2.wiener.wiener` on the magnitudes with the released models'
            iterations, window and eps) or ``phasemix`` (`xumx_slicq_v2.wiener.mix_phase`).

    Returns:
        per block, complex ``(targets, 2, F, S, T)``.
    """
    from .model import ModelConfig
    from .wiener import mix_phase, wiener

    settings = ModelConfig()
    estimates = []
    for sources in source_blocks:
        mix = sources.sum(0)
        magnitude = sources.abs()
        if strategy == "phasemix":
            estimates.append(mix_phase(magnitude, mix))
        elif strategy == "wiener":
            targets, channels, freq, slices, coefs = sources.shape
            frames = slices * coefs
            estimate = wiener(
                magnitude.reshape(1, targets, channels, freq, frames),
                mix.reshape(1, channels, freq, frames),
                iterations=settings.wiener_iterations,
                window=settings.wiener_window,
                eps=settings.wiener_eps,
            )
            estimates.append(estimate.reshape(sources.shape))
        else:
            raise ValueError(f"unknown block oracle {strategy!r}")
    return estimates


def oracle_estimates(candidate: Candidate, sources: np.ndarray, strategy: str, device: str = "cpu") -> np.ndarray:
    """Oracle separation of the sum of ``sources`` ``(4, 2, samples)`` (float32, `SOURCES` order) with the
    sliCQT of ``candidate``; returns ``(4, 2, samples)`` float32. ``irm`` runs on the CPU."""
    import numpy as np
    import torch

    if strategy == "irm":
        from .evaluation import OracleIRMEstimator

        return OracleIRMEstimator(candidate.model_config())(sources.sum(0), sources)
    transform = candidate.transform().to(device)
    with torch.no_grad():
        signal = torch.from_numpy(np.ascontiguousarray(sources)).to(device)
        estimates = oracle_blocks(transform(signal), strategy)
        return transform.inverse(estimates, sources.shape[-1]).cpu().numpy()


def describe(candidate: Candidate) -> dict[str, Any]:
    """The transform fields of a record: ``scale, bins, fmin, fmax, sllen, trlen, blocks,
    coefficients_per_second`` (complex coefficients per second and channel)."""
    transform = candidate.transform()
    per_slice = sum(freq * coefs for freq, coefs in transform.block_shapes)
    return {
        "scale": candidate.scale,
        "bins": candidate.bins,
        "fmin": candidate.fmin,
        "fmax": float(transform.fmax),
        "sllen": transform.slice_length,
        "trlen": transform.transition_length,
        "blocks": len(transform.block_shapes),
        "coefficients_per_second": per_slice * transform.sample_rate / (transform.slice_length / 2),
    }


def score_candidate(
    candidate: Candidate, tracks: Sequence[Track], strategy: str, device: str = "cpu", progress: bool = False
) -> dict[str, Any]:
    """The JSON record of one configuration: its transform fields, the per-target SDR averaged over
    ``tracks`` and the total (mean of the targets)."""
    import numpy as np
    from tqdm.auto import tqdm

    from .evaluation import global_sdr
    from .model import SOURCES

    per_track = []
    for track in tqdm(tracks, desc="tracks", unit="track", leave=False, disable=not progress):
        sources = np.stack([track.read(stem) for stem in SOURCES])
        per_track.append(global_sdr(sources, oracle_estimates(candidate, sources, strategy, device)))
    sdr = {target: float(np.mean([scores[target] for scores in per_track])) for target in SOURCES}
    return {
        **describe(candidate),
        "strategy": strategy,
        "sdr": sdr,
        "total": float(np.mean(list(sdr.values()))),
        "tracks": [track.name for track in tracks],
    }


# ----------------------------------------------------------------------------------------------------------
# Results file, table, plot
# ----------------------------------------------------------------------------------------------------------


def record_key(record: dict[str, Any]) -> tuple[str, int, float, str]:
    return (record["scale"], int(record["bins"]), float(record["fmin"]), record["strategy"])


def candidate_key(candidate: Candidate, strategy: str) -> tuple[str, int, float, str]:
    return (candidate.scale, candidate.bins, candidate.fmin, strategy)


def read_records(path: Path, track_names: Sequence[str]) -> list[dict[str, Any]]:
    """The records of an earlier run (none if ``path`` does not exist); they must be scored on the same tracks."""
    if not path.is_file():
        return []
    try:
        records = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise SearchError(f"{path}: not a readable JSON file ({err}); give another --json") from err
    if not isinstance(records, list) or not all(isinstance(r, dict) and set(RECORD_KEYS) <= set(r) for r in records):
        raise SearchError(f"{path}: not a slicqfinder results list (records need {', '.join(RECORD_KEYS)})")
    for record in records:
        if list(record["tracks"]) != list(track_names):
            raise SearchError(
                f"{path}: its scores are averaged over other tracks ({len(record['tracks'])} tracks, first "
                f"{record['tracks'][:1]}); give another --json to score these {len(track_names)} tracks"
            )
    return records


def write_records(path: Path, records: Sequence[dict[str, Any]]) -> None:
    from .audio import write_text_atomic

    write_text_atomic(path, json.dumps(list(records), indent=2) + "\n")


def format_table(records: Sequence[dict[str, Any]], per_target: bool = False) -> str:
    """Records ranked by total SDR (dB); with ``per_target`` also the best configuration of each target."""
    from .model import SOURCES

    header = (
        f"{'rank':>6} {'scale':<7}{'bins':>5}{'fmin':>8}{'sllen':>7}{'blocks':>7}{'coef/s':>9} "
        + "".join(f"{target:>8}" for target in SOURCES)
        + f"{'total':>8}"
    )

    def row(rank: str, record: dict[str, Any]) -> str:
        return (
            f"{rank:>6} {record['scale']:<7}{record['bins']:>5}{record['fmin']:>8.1f}{record['sllen']:>7}"
            f"{record['blocks']:>7}{record['coefficients_per_second']:>9.0f} "
            + "".join(f"{record['sdr'][target]:>8.2f}" for target in SOURCES)
            + f"{record['total']:>8.2f}"
        )

    ranked = sorted(records, key=lambda r: r["total"], reverse=True)
    strategy = records[0]["strategy"] if records else ""
    lines = [f"oracle {strategy}, global SDR in dB, ranked by total:", header]
    lines += [row(str(rank), record) for rank, record in enumerate(ranked, 1)]
    if per_target and records:
        lines += ["", "best configuration per target:", header]
        lines += [row(target, max(records, key=lambda r, t=target: r["sdr"][t])) for target in SOURCES]
    return "\n".join(lines)


def _matplotlib():
    return require("matplotlib", extra="tune", purpose="the slicqfinder plot")


def plot_records(records: Sequence[dict[str, Any]], path: Path) -> None:
    """Total SDR against bins (one series per scale) and against coefficients per second, as an image."""
    _matplotlib().use("Agg")
    import matplotlib.pyplot as plt

    from .audio import atomic_path

    figure, (by_bins, by_size) = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    for scale in sorted({record["scale"] for record in records}):
        chosen = [record for record in records if record["scale"] == scale]
        totals = [record["total"] for record in chosen]
        by_bins.scatter([record["bins"] for record in chosen], totals, label=scale, s=18)
        by_size.scatter([record["coefficients_per_second"] for record in chosen], totals, label=scale, s=18)
    strategy = records[0]["strategy"] if records else ""
    by_bins.set(xlabel="frequency bins", ylabel=f"total SDR, oracle {strategy} (dB)", title="SDR against bins")
    by_size.set(xlabel="sliCQT coefficients per second and channel", ylabel="total SDR (dB)",
                title="SDR against the network's input size")  # fmt: skip
    for axes in (by_bins, by_size):
        axes.grid(alpha=0.3)
        axes.legend(title="scale")
    with atomic_path(path) as part:
        figure.savefig(part, dpi=120, format=path.suffix.lstrip(".") or "png")
    plt.close(figure)


# ----------------------------------------------------------------------------------------------------------
# The search
# ----------------------------------------------------------------------------------------------------------

_WORKER_SETTINGS: dict[str, Any] = {}


def _init_worker(tracks: Sequence[Track], strategy: str, device: str, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    _WORKER_SETTINGS.update(tracks=tracks, strategy=strategy, device=device)


def _score_in_worker(candidate: Candidate) -> dict[str, Any]:
    return score_candidate(candidate, **_WORKER_SETTINGS)


def search(
    candidates: Sequence[Candidate],
    tracks: Sequence[Track],
    strategy: str,
    json_path: Path | None = None,
    jobs: int = 1,
    device: str = "cpu",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Score ``candidates`` (those already in ``json_path`` are kept, not scored again); returns their records
    in the order of ``candidates``. ``json_path`` is rewritten atomically after each configuration with the
    records of ``candidates`` scored so far, followed by any other records it held."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    import torch
    from tqdm.auto import tqdm

    names = [track.name for track in tracks]
    earlier = read_records(json_path, names) if json_path else []
    done = {record_key(record): record for record in earlier}
    keys = [candidate_key(candidate, strategy) for candidate in candidates]
    wanted = set(keys)
    others = [record for record in earlier if record_key(record) not in wanted]
    todo = [candidate for candidate, key in zip(candidates, keys, strict=True) if key not in done]

    def save(record: dict[str, Any]) -> None:
        done[record_key(record)] = record
        if json_path:
            write_records(json_path, [done[key] for key in keys if key in done] + others)

    bar = tqdm(total=len(candidates), initial=len(candidates) - len(todo), desc="configurations",
               unit="config", disable=not progress)  # fmt: skip
    if jobs <= 1 or len(todo) <= 1:
        for candidate in todo:
            bar.set_postfix(scale=candidate.scale, bins=candidate.bins, fmin=candidate.fmin)
            save(score_candidate(candidate, tracks, strategy, device, progress))
            bar.update()
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        context = torch.multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker,
                                 initargs=(list(tracks), strategy, device, threads)) as pool:  # fmt: skip
            futures = [pool.submit(_score_in_worker, candidate) for candidate in todo]
            for future in as_completed(futures):
                save(future.result())
                bar.update()
    bar.close()
    return [done[key] for key in keys]


# ----------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m xumx_slicq_v2.slicqfinder",
        description=__doc__.split("\n\n")[0].replace("``", ""),
        formatter_class=DefaultsHelpFormatter,
        epilog=(
            "Oracles: wiener = Wiener-EM (1 iteration, 5000-frame windows) on the true magnitudes; phasemix = true "
            "magnitudes with the mixture phase; irm = ideal ratio mask. Score: global SDR per track and target, "
            "averaged over tracks; total = mean of the 4 targets. Run the same command with a larger --n-iter "
            "to extend a search saved with --json."
        ),
    )
    data = parser.add_argument_group("data")
    data.add_argument("--musdb-root", default=os.environ.get("MUSDB_PATH"),
                      help="MUSDB18-HQ (WAV) root holding train/ and test/ (default: $MUSDB_PATH)")  # fmt: skip
    data.add_argument("--subset", choices=("train", "test"), default="train", help="MUSDB18-HQ subset")
    data.add_argument("--split", choices=("train", "valid"), default="valid",
                      help="musdb split of the train subset (ignored for --subset test)")  # fmt: skip
    data.add_argument("--tracks", nargs="+", metavar="NAME", help="only these tracks")

    space = parser.add_argument_group("configurations")
    space.add_argument("--fscale", help=f"scales, comma-separated (default {SEARCH_DEFAULTS['fscale']}; "
                                        f"--single: one scale, default {SINGLE_DEFAULTS['fscale']})")  # fmt: skip
    space.add_argument("--fbins", help=f"LOW,HIGH: bins drawn from [LOW, HIGH) (default {SEARCH_DEFAULTS['fbins']}; "
                                       f"--single: N, default {SINGLE_DEFAULTS['fbins']})")  # fmt: skip
    space.add_argument("--fmins", help=f"START,STOP,STEP: lowest frequency in Hz drawn from START, START+STEP, ... "
                                       f"below STOP (default {SEARCH_DEFAULTS['fmins']}; --single: F, default "
                                       f"{SINGLE_DEFAULTS['fmins']})")  # fmt: skip
    space.add_argument("--n-iter", type=int, default=60, help="configurations to score")
    space.add_argument("--max-sllen", type=int, default=44100,
                       help="configurations with a longer slice (samples) are skipped and drawn again")  # fmt: skip
    space.add_argument("--random-seed", type=int, default=42, help="seed of the configuration sequence")
    space.add_argument("--single", action="store_true", help="score one configuration (--fscale, --fbins, --fmins)")

    scoring = parser.add_argument_group("scoring and output")
    scoring.add_argument("--oracle-strategy", choices=STRATEGIES, default="wiener", help="oracle estimate")
    scoring.add_argument("--per-target", action="store_true", help="also print the best configuration per target")
    scoring.add_argument("--jobs", type=int, default=1, help="configurations scored in parallel (processes)")
    scoring.add_argument("--device", default="cpu", help="torch device of the transform and Wiener-EM (not irm)")
    scoring.add_argument("--json", type=Path, help="results file (JSON list; resumed when it exists)")
    scoring.add_argument("--plot", type=Path, help="plot image (default: the --json file with .png)")
    scoring.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def candidates_from_args(args: argparse.Namespace) -> list[Candidate]:
    """The configurations the arguments ask for (one with ``--single``)."""
    defaults = SINGLE_DEFAULTS if args.single else SEARCH_DEFAULTS
    scales = parse_scales(args.fscale or defaults["fscale"])
    fbins, fmins = args.fbins or defaults["fbins"], args.fmins or defaults["fmins"]
    if args.single:
        if len(scales) != 1:
            raise SearchError(f"--single scores one configuration: give one --fscale, not {args.fscale!r}")
        bins, fmin = parse_numbers(fbins, "--fbins", 1)[0], parse_numbers(fmins, "--fmins", 1)[0]
        if bins != int(bins):
            raise SearchError(f"--fbins {fbins!r}: the number of bins is an integer")
        candidate = Candidate(scales[0], int(bins), fmin)
        candidate.transform()  # a clear ValueError for an unusable configuration
        return [candidate]
    if args.n_iter < 1:
        raise SearchError("--n-iter must be >= 1")
    low, high = parse_numbers(fbins, "--fbins", 2)
    grid = fmin_grid(*parse_numbers(fmins, "--fmins", 3))
    return draw_candidates(scales, (int(low), int(high)), grid, args.n_iter, args.max_sllen, args.random_seed)


@exit_if_missing()
def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    args = build_parser().parse_args(argv)
    if not args.musdb_root:
        raise SystemExit("--musdb-root is required (or set $MUSDB_PATH)")
    if args.jobs < 1:
        raise SystemExit("--jobs must be >= 1")
    from .data import DatasetError, list_tracks

    plot_path = args.plot or (args.json.with_suffix(".png") if args.json else None)
    if plot_path:
        _matplotlib()  # before the search: a missing plotting library is known at once
    try:
        candidates = candidates_from_args(args)
        split = args.split if args.subset == "train" else None
        tracks = list_tracks(args.musdb_root, args.subset, split, args.tracks)
        records = search(candidates, tracks, args.oracle_strategy, args.json, args.jobs, args.device, not args.quiet)
    except (SearchError, DatasetError, ValueError) as err:
        raise SystemExit(f"error: {err}") from err
    print(format_table(records, args.per_target))
    if plot_path:
        plot_records(records, plot_path)
        print(f"plot: {plot_path}")
    if args.json:
        print(f"records: {args.json}")
    return records


if __name__ == "__main__":
    main()
