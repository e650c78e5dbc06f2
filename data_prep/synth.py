"""Render a synthetic song into four stems whose 16-bit sum is the mixture, and the dataset CLI.

python -m data_prep.synth --out data/synth --songs 20 --seconds 30 --seed 1 --layout musdb --valid 4 --test 5
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from data_prep.composer import SongPlan, compose_song
from data_prep.config import INT16_SCALE, SAMPLE_RATE, STEMS, SYNTH_CONFIG, SynthConfig
from xumx_slicq_v2.audio import write_audio


def renderers() -> dict:
    """Dry renderer of each stem: ``(plan, rng, sample_rate) -> (2, samples)`` (imported on first use: the
    instruments need scipy, which the command line loads only after parsing its arguments)."""
    from data_prep.bass import render_bass
    from data_prep.drums import render_drums
    from data_prep.harmony import render_harmony
    from data_prep.vocals import render_vocals

    return {"bass": render_bass, "drums": render_drums, "other": render_harmony, "vocals": render_vocals}


def activity_gate(plan: SongPlan, stem: str, samples: int, sample_rate: int) -> np.ndarray:
    """``(samples,)`` gain that is 1 where ``stem`` plays, fades in over ``gate_attack`` before each entry,
    fades out over ``gate_release`` after each exit and is exactly 0 elsewhere."""
    from data_prep import dsp

    attack = max(round(plan.config.gate_attack * sample_rate), 1)
    release = max(round(plan.config.gate_release * sample_rate), 1)
    gate = np.zeros(samples, dtype=np.float32)
    for start, end in plan.active_spans(stem):
        first, last = round(start * sample_rate), round(end * sample_rate)
        shape = np.concatenate([dsp.raised_cosine(attack), np.ones(last - first), dsp.raised_cosine(release)[::-1]])
        window = np.zeros(samples, dtype=np.float32)
        dsp.add_at(window, shape, first - attack)
        np.maximum(gate, window, out=gate)
    return gate


def _rms(signal: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(signal, dtype=np.float64)))) if signal.size else 0.0


def render_song(
    seed: int, seconds: float, sample_rate: int = SAMPLE_RATE, config: SynthConfig = SYNTH_CONFIG
) -> dict[str, np.ndarray]:
    """Render the song of ``seed``: stems ``bass, drums, other, vocals``, each float32 ``(2, samples)``.

    The stems are already on the 16-bit grid (``int16 / 32768``) after the per-song gain, and their sum
    (the mixture) fits in 16 bits, so ``sum(stems)`` written as 16-bit PCM is exactly the mixture.
    The same ``seed`` gives the same samples.
    """
    from data_prep import dsp

    plan = compose_song(seed, seconds, config)
    samples = round(seconds * sample_rate)
    streams = np.random.SeedSequence([seed, 1]).spawn(len(STEMS) + 1)
    response = dsp.room_impulse_response(np.random.default_rng(streams[-1]), plan.rt60, plan.predelay, sample_rate)
    reverb = dsp.Reverb(response, samples)
    stems, render = {}, renderers()
    for stem, stream in zip(STEMS, streams):
        gate = activity_gate(plan, stem, samples, sample_rate)
        dry = render[stem](plan, np.random.default_rng(stream), sample_rate)[:, :samples].astype(np.float32)
        dry *= gate
        level = _rms(dry[:, gate > 0])
        dry *= np.float32(10 ** (plan.balance_db[stem] / 20) / max(level, 1e-9))
        wet = reverb(dry.mean(axis=0))
        wet *= np.float32(10 ** (plan.reverb_send_db[stem] / 20))
        wet += dry
        stems[stem] = wet
    mixture = sum(stems.values())
    ceiling = 10 ** (config.peak_ceiling_db / 20)
    peak = max(float(np.max(np.abs(signal))) for signal in [mixture, *stems.values()])
    gain = min(10 ** (plan.mixture_rms_db / 20) / max(_rms(mixture), 1e-9), ceiling / max(peak, 1e-9))
    scale = np.full(samples, gain * INT16_SCALE, dtype=np.float32)
    fade_samples = min(int(config.fade_out * sample_rate), samples)
    scale[samples - fade_samples :] *= dsp.raised_cosine(fade_samples)[::-1]
    # float32 holds these integers exactly (|values| < 2**24), and dividing by 2**15 is exact
    quantised = {stem: np.rint(signal * scale) for stem, signal in stems.items()}
    if np.max(np.abs(sum(quantised.values()))) > INT16_SCALE - 1:  # cannot happen with a ceiling below 0 dBFS
        raise AssertionError(f"song {seed}: mixture exceeds 16 bits after the per-song gain")
    return {stem: values * np.float32(1 / INT16_SCALE) for stem, values in quantised.items()}


def to_int16(stems: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """16-bit samples of the stems of :func:`render_song` plus their exact sum as ``mixture``.

    Raises ``ValueError`` if a stem is off the 16-bit grid or the sum does not fit in 16 bits.
    """
    out = {}
    for name, signal in stems.items():
        scaled = np.asarray(signal, dtype=np.float64) * INT16_SCALE
        values = np.round(scaled)
        if not np.array_equal(values, scaled) or np.max(np.abs(values), initial=0) > INT16_SCALE - 1:
            raise ValueError(f"stem {name!r} is not 16-bit PCM data (use render_song's output)")
        out[name] = values.astype(np.int16)
    mixture = np.sum([values.astype(np.int32) for values in out.values()], axis=0)
    if np.max(np.abs(mixture), initial=0) > INT16_SCALE - 1:
        raise ValueError("the sum of the stems exceeds 16 bits")
    return {"mixture": mixture.astype(np.int16), **out}


def write_song(folder: str | os.PathLike, stems: dict[str, np.ndarray], sample_rate: int = SAMPLE_RATE) -> None:
    """Write ``mixture.wav`` and one WAV per stem (16-bit PCM) as a MUSDB18-HQ track folder.

    The folder appears complete or not at all: files go to a hidden sibling that is renamed at the end.
    Raises ``FileExistsError`` if ``folder`` exists (inputs are never overwritten).
    """
    folder = Path(folder)
    if folder.exists():
        raise FileExistsError(f"{folder}: track folder exists already")
    partial = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)  # an interrupted earlier attempt of ours
    partial.mkdir(parents=True)
    try:
        for name, values in to_int16(stems).items():
            write_audio(partial / f"{name}.wav", values, sample_rate, subtype="PCM_16")
        os.rename(partial, folder)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(partial)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.synth",
        description=(
            "Generate synthetic multitrack songs (bass, drums, other, vocals; stereo 44.1 kHz 16-bit WAV, "
            "mixture.wav = the exact sum of the stems) in the MUSDB18-HQ layout or the CAD1 Task 1 layout. "
            "The same --seed gives byte-identical files. Existing track folders are kept, so an interrupted "
            "run resumes where it stopped."
        ),
        epilog=(
            "Layouts: musdb -> OUT/{train,test}/<Track Name>/{mixture,vocals,drums,bass,other}.wav, where "
            "the --valid songs carry names of the musdb 'valid' split (so musdb.DB(OUT, is_wav=True, "
            "subsets='train', split='valid') lists them). cad1 -> OUT/cad1/task1/{audio/musdb18hq/..., "
            "metadata/...} with musdb18.{train,valid,test}.json, listeners.{train,valid,test}.json and "
            "musdb18.segments.test.json."
        ),
    )
    parser.add_argument("--out", type=Path, required=True, help="output root folder")
    parser.add_argument("--songs", type=int, default=10, help="number of training songs (default 10)")
    parser.add_argument("--valid", type=int, default=0, help="number of validation songs (at most 14; default 0)")
    parser.add_argument("--test", type=int, default=0, help="number of test songs (default 0)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each song in seconds (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument("--layout", choices=("musdb", "cad1"), default="musdb", help="on-disk layout (default musdb)")
    parser.add_argument("--listeners", type=int, default=4, help="cad1 only: synthetic listeners per split (default 4)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    for name in ("songs", "valid", "test", "listeners"):
        if getattr(args, name) < 0:
            raise SystemExit(f"--{name} must be >= 0")
    if args.seconds <= 0:
        raise SystemExit("--seconds must be > 0")
    from data_prep.layouts import write_cad1_tree, write_musdb_tree  # the layouts use render_song

    try:
        if args.layout == "musdb":
            write_musdb_tree(args.out, args.songs, args.valid, args.test, args.seconds, args.seed)
            print(f"MUSDB18-HQ tree: {args.out}")
        else:
            root = write_cad1_tree(args.out, args.songs, args.valid, args.test, args.seconds, args.seed, args.listeners)
            print(f"CAD1 Task 1 tree: {root}")
    except (ValueError, RuntimeError) as err:  # bad settings / a folder of other settings / musdb missing
        raise SystemExit(f"error: {err}") from err


if __name__ == "__main__":
    main()
