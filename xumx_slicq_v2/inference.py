"""Separate audio files into stems from the command line (also ``python -m xumx_slicq_v2`` and ``xumx-slicq-v2``).

xumx-slicq-v2 song.mp3 albums/ --output-dir separated --model realtime --runtime-backend onnx-cpu

Every input file gives ``OUT/<track>/<source>.<ext>`` at the input's sample rate and channel count (mono stays
mono); folders are searched recursively for audio files. Stems are written as they are separated, so memory
stays bounded by the chunk length (plus the decoded input) whatever the song's length. Outputs are written
atomically and existing ones are kept (``--overwrite`` redoes them) when the settings recorded beside them
(``OUT/<track>/.xumx_slicq_v2.json``) are this run's, so an interrupted run is resumed by running it again and a
run with another model, excerpt or format separates the track again.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np
import soundfile as sf

from ._optional import exit_if_missing
from .audio import (
    AUDIO_EXTENSIONS,
    SUBTYPES,
    AudioError,
    atomic_path,
    check_finite,
    load_audio,
    remove_stale_temporaries,
)
from .backends import RUNTIME_BACKENDS
from .config import SOURCES, ChunkingConfig, ChunkingError
from .provenance import ProvenanceError, record_text, recorded_differences
from .signals import exit_on_signal, sigterm_exits

if TYPE_CHECKING:  # torch and the separator load after the arguments are parsed
    from .separator import Separator

#: Output formats: file extension -> bit depths it can hold (the first is the default).
FORMAT_BITS = {"wav": ("float", "16", "24"), "flac": ("24", "16")}
#: What to do with samples beyond full scale when writing integer formats.
CLIP_POLICIES = ("rescale", "clamp", "none")
#: Record of the settings that made a track's outputs, in its output folder.
RECORD_NAME = ".xumx_slicq_v2.json"
#: Name of the optional extra stem: the sum of the sources not selected with ``--stems``.
ACCOMPANIMENT = "accompaniment"


@dataclass(frozen=True)
class OutputOptions:
    """What is written for each track.

    Attributes:
        ext: ``wav`` or ``flac``.
        bits: ``16``, ``24`` or ``float`` (wav only).
        clip: for integer formats: ``rescale`` (one gain for all stems of a track, keeping their relative
            levels), ``clamp`` (clip each sample), or ``none`` (leave it to the encoder, which saturates).
        stems: the sources to write, in `SOURCES` order.
        accompaniment: also write the sum of the sources not in ``stems``.
        overwrite: redo outputs that exist.
    """

    ext: str = "wav"
    bits: str = "float"
    clip: str = "rescale"
    stems: tuple[str, ...] = SOURCES
    accompaniment: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.ext not in FORMAT_BITS:
            raise ValueError(f"unknown output format {self.ext!r}; choose one of {', '.join(FORMAT_BITS)}")
        if self.bits not in FORMAT_BITS[self.ext]:
            raise ValueError(
                f"{self.ext} cannot hold {self.bits!r} samples; choose --bits {' or '.join(FORMAT_BITS[self.ext])}"
                + (" (or --ext wav for float)" if self.bits == "float" else "")
            )
        if self.clip not in CLIP_POLICIES:
            raise ValueError(f"unknown clip policy {self.clip!r}; choose one of {', '.join(CLIP_POLICIES)}")
        unknown = [name for name in self.stems if name not in SOURCES]
        if unknown or not self.stems:
            raise ValueError(f"unknown stems {', '.join(unknown) or '(none)'}; choose from {', '.join(SOURCES)}")
        if self.accompaniment and set(self.stems) == set(SOURCES):
            raise ValueError("--accompaniment is the sum of the sources left out of --stems: name fewer stems")

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the files written per track (without extension)."""
        return (*self.stems, ACCOMPANIMENT) if self.accompaniment else self.stems


@dataclass(frozen=True)
class Track:
    """One input file and the folder its stems go to."""

    source: Path
    out_dir: Path

    def outputs(self, options: OutputOptions) -> dict[str, Path]:
        return {name: self.out_dir / f"{name}.{options.ext}" for name in options.names}

    def all_outputs(self) -> list[Path]:
        """Every file a run with any options may write for this track."""
        return [self.out_dir / f"{name}.{ext}" for name in (*SOURCES, ACCOMPANIMENT) for ext in FORMAT_BITS]


@dataclass
class TrackResult:
    """Outcome of one track: ``status`` is ``done``, ``skipped`` or ``failed``."""

    track: Track
    status: str
    seconds: float = 0.0  # of audio separated
    messages: list[str] = field(default_factory=list)


# -- inputs ----------------------------------------------------------------------------------------------------


def is_audio_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS and not path.name.startswith(".")


def find_tracks(inputs: Sequence[str | os.PathLike], output_dir: Path) -> list[Track]:
    """Tracks for the given files and folders.

    A file ``x/song.wav`` goes to ``output_dir/song``; a folder is searched recursively for audio files
    (`AUDIO_EXTENSIONS`, hidden files and anything under ``output_dir`` left out), and ``folder/a/song.wav``
    goes to ``output_dir/a/song``. Raises ``FileNotFoundError`` for a missing input and ``ValueError`` when two
    inputs would share an output folder.
    """
    output_dir = output_dir.resolve()
    tracks: list[Track] = []
    for item in map(Path, inputs):
        if item.is_dir():
            for path in sorted(item.rglob("*")):
                if is_audio_file(path) and not path.resolve().is_relative_to(output_dir):
                    relative = path.relative_to(item)
                    tracks.append(Track(path, output_dir / relative.parent / relative.stem))
        elif item.is_file():
            tracks.append(Track(item, output_dir / item.stem))
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    owners: dict[Path, Path] = {}
    for track in tracks:
        other = owners.setdefault(track.out_dir, track.source)
        if other != track.source:
            raise ValueError(f"{other} and {track.source} would both be written to {track.out_dir}; rename one")
    return tracks


# -- outputs ---------------------------------------------------------------------------------------------------


def select_stems(stems: dict[str, np.ndarray], options: OutputOptions) -> dict[str, np.ndarray]:
    """The arrays to write: the chosen sources, plus the sum of the others as the accompaniment if asked."""
    selected = {name: stems[name] for name in options.stems}
    if options.accompaniment:
        selected[ACCOMPANIMENT] = sum(stems[name] for name in SOURCES if name not in options.stems)
    return selected


def clip_message(options: OutputOptions, peak: float, clipped: int) -> str:
    """What the clip policy did to a track whose stems peak at ``peak`` ("" when nothing was changed)."""
    if options.bits == "float" or options.clip == "none" or peak <= 1.0:
        return ""
    if options.clip == "rescale":
        gain = 1.0 / peak
        return (
            f"stems peak at {peak:.3f} ({20 * math.log10(peak):+.1f} dBFS): all stems scaled by {gain:.3f} "
            f"({20 * math.log10(gain):+.1f} dB) to fit {options.bits}-bit, keeping their relative levels"
        )
    return f"{clipped} samples beyond full scale clamped to fit {options.bits}-bit"


class StemWriter:
    """Writes the stems of one track piece by piece as they are separated, so that no whole stem is in memory.

    Every output is written to a temporary file beside it (`xumx_slicq_v2.audio.atomic_path`), entered on
    ``files``: closing that stack without an error moves them all onto their final names; an error or SIGTERM
    removes them. Float outputs and integer outputs with ``--clip clamp|none`` are written in their final
    format as the pieces come. ``--clip rescale`` needs the track's peak before the first sample is written:
    its stems go to anonymous float32 scratch files (no name, so nothing is left even after SIGKILL) and are
    converted block by block by `finish`.

    Args:
        outputs: the files to write, by stem name (a subset of ``options.names``).
        options: what is written; the peak and the clip policy cover all of ``options.names``.
        sample_rate, channels: of the outputs.
        files: the stack that owns the open and temporary files.
    """

    #: Frames per block when converting rescaled scratch files.
    BLOCK_FRAMES = 1 << 16

    def __init__(
        self,
        outputs: dict[str, Path],
        options: OutputOptions,
        sample_rate: int,
        channels: int,
        files: contextlib.ExitStack,
    ) -> None:
        self.outputs, self.options, self.sample_rate, self.channels = outputs, options, sample_rate, channels
        self.files = files
        self.rescale = options.bits != "float" and options.clip == "rescale"
        self.clamp = options.bits != "float" and options.clip == "clamp"
        self.peak, self.clipped = 0.0, 0
        self.sinks: dict[str, sf.SoundFile | IO[bytes]] = {}
        for name, path in outputs.items():
            if self.rescale:
                path.parent.mkdir(parents=True, exist_ok=True)
                self.sinks[name] = files.enter_context(tempfile.TemporaryFile(dir=path.parent))
            else:
                self.sinks[name] = self._open(path)

    def _open(self, path: Path) -> sf.SoundFile:
        """A temporary file beside ``path`` in the output format, moved onto ``path`` when ``files`` closes."""
        temporary = self.files.enter_context(atomic_path(path))
        subtype, file_format = SUBTYPES[self.options.bits], self.options.ext.upper()
        return self.files.enter_context(
            sf.SoundFile(str(temporary), "w", self.sample_rate, self.channels, subtype=subtype, format=file_format)
        )

    def write(self, stems: dict[str, np.ndarray]) -> None:
        """Append the next piece of every source ``{source: (channels, n)}``."""
        selected = select_stems(stems, self.options)
        if self.rescale or self.clamp:
            self.peak = max(self.peak, *(float(np.abs(stem).max(initial=0.0)) for stem in selected.values()))
        if self.clamp:
            self.clipped += sum(int(np.count_nonzero(np.abs(stem) > 1.0)) for stem in selected.values())
            selected = {name: np.clip(stem, -1.0, 1.0) for name, stem in selected.items()}
        for name, sink in self.sinks.items():
            # (n, channels); scratch files take the array's buffer: raw float32 frames
            sink.write(np.ascontiguousarray(selected[name].T, dtype=np.float32))

    def finish(self) -> str:
        """Write the rescaled outputs (``--clip rescale``) and return the clip policy's message for the user."""
        if self.rescale:
            gain = np.float32(1.0 / max(self.peak, 1.0))
            block_bytes = self.BLOCK_FRAMES * self.channels * np.dtype(np.float32).itemsize
            for name, scratch in self.sinks.items():
                output = self._open(self.outputs[name])
                scratch.seek(0)
                while block := scratch.read(block_bytes):
                    output.write(np.frombuffer(block, np.float32).reshape(-1, self.channels) * gain)
        return clip_message(self.options, self.peak, self.clipped)


# -- separation ------------------------------------------------------------------------------------------------


def separate_track(
    track: Track,
    separator: Separator,
    options: OutputOptions,
    start: float = 0.0,
    duration: float | None = None,
    progress: bool = False,
    settings: Mapping[str, object] | None = None,
) -> TrackResult:
    """Separate one file and write its stems as the separated pieces come (memory bounded by the chunk length
    plus the input); unreadable or unsupported input (also NaN or infinite samples: nothing is written), or
    outputs that cannot be written, give a ``failed`` result.

    ``settings`` (`track_settings`) are recorded in ``OUT/<track>/.xumx_slicq_v2.json`` with the outputs;
    existing outputs are kept only if their record holds the same settings, else every output of the track is
    removed and the selected ones separated again.
    """
    from .separator import separate_stream

    outputs = track.outputs(options)
    record = track.out_dir / RECORD_NAME
    redo = stale_reasons(record, settings) if any(path.exists() for path in outputs.values()) else []
    missing = {name: path for name, path in outputs.items() if options.overwrite or redo or not path.exists()}
    if not missing:
        return TrackResult(track, "skipped")
    try:
        audio, rate = load_audio(track.source, start=start, duration=duration)
        if audio.shape[0] > 2:
            raise AudioError(
                f"{track.source}: {audio.shape[0]} channels; the models take mono or stereo: downmix it first "
                f"(e.g. ffmpeg -i '{track.source}' -ac 2 stereo.wav)"
            )
        if audio.shape[-1] == 0:
            raise AudioError(f"{track.source}: no samples to separate")
        check_finite(audio, str(track.source), rate, offset=round(start * rate))
    except (AudioError, ValueError) as err:
        return TrackResult(track, "failed", messages=[str(err)])
    channels, seconds = audio.shape[0], audio.shape[-1] / rate
    try:
        remove_stale_temporaries([*outputs.values(), record])
        if redo:  # no output of other settings may stay beside the new record (also if this run is interrupted)
            for path in (record, *track.all_outputs()):
                path.unlink(missing_ok=True)
        with contextlib.ExitStack() as files:
            writer = StemWriter(missing, options, rate, channels, files)
            pieces = separate_stream(audio, rate, separator, progress)
            del audio  # once resampled to the model's rate, the decoded input is not needed (freed if it was copied)
            for _, stems in pieces:
                writer.write(stems)
            message = writer.finish()
            if settings is not None:  # entered last, so renamed first: a stem is never there without its record
                files.enter_context(atomic_path(record)).write_text(record_text(settings))
    except (OSError, sf.SoundFileError) as err:
        return TrackResult(
            track, "failed", messages=[f"{track.source}: cannot write its stems to {track.out_dir} ({err})"]
        )
    messages = [f"{track.source}: {message}"] if message else []
    if redo:
        why = "; ".join(redo)
        messages.insert(0, f"{track.source}: {track.out_dir} held outputs of other settings ({why}): redone")
    return TrackResult(track, "done", seconds, messages)


def stale_reasons(record: Path, settings: Mapping[str, object] | None) -> list[str]:
    """Why the outputs beside ``record`` were not made with ``settings`` (``[]``: they were, or ``settings`` is
    ``None``, which keeps whatever is there)."""
    if settings is None:
        return []
    try:
        found = recorded_differences(record, settings)
    except ProvenanceError as err:
        return [str(err)]
    return ["no record of the settings that made them"] if found is None else found


def track_settings(spec: SeparatorSpec, options: OutputOptions, start: float, duration: float | None) -> dict:
    """What determines a track's output files: the model (name or directory) and its weights' checksum, the
    runtime backend, the chunking, the excerpt, the format and the clip policy (with ``rescale``, the gain
    depends on every stem written)."""
    from .checkpoint import resolve_model_dir, weights_sha256

    named = spec.model in ("offline", "realtime", "demo")
    rescaled = options.bits != "float" and options.clip == "rescale"
    return {
        "model": spec.model if named else str(resolve_model_dir(spec.model, download=False).resolve()),
        "weights_sha256": weights_sha256(spec.model),
        "runtime_backend": spec.runtime_backend,
        "chunking": asdict(spec.chunking or ChunkingConfig()),
        "start": start,
        "duration": duration,
        "ext": options.ext,
        "bits": options.bits,
        "clip": options.clip,
        "rescaled_stems": list(options.names) if rescaled else None,
    }


@dataclass(frozen=True)
class SeparatorSpec:
    """How to load the separator (what parallel workers need to load their own)."""

    model: str
    realtime: bool | None = None
    runtime_backend: str = "torch-cpu"
    chunking: ChunkingConfig | None = None

    def load(self) -> Separator:
        from .separator import Separator

        return Separator.from_pretrained(
            self.model, realtime=self.realtime, runtime_backend=self.runtime_backend, chunking=self.chunking
        )


_worker_state: dict[str, object] = {}


def _init_worker(
    spec: SeparatorSpec, threads: int, options: OutputOptions, start: float, duration: float | None, settings: dict
):
    import torch

    torch.set_num_threads(threads)
    signal.signal(signal.SIGTERM, exit_on_signal)
    _worker_state.update(separator=spec.load(), options=options, start=start, duration=duration, settings=settings)


def _worker_separate(track: Track) -> TrackResult:
    state = _worker_state
    return separate_track(
        track, state["separator"], state["options"], state["start"], state["duration"], settings=state["settings"]
    )


def default_threads(jobs: int) -> int:
    """torch threads per worker: the usable cores shared among ``jobs`` workers (at least one each)."""
    return max(1, len(os.sched_getaffinity(0)) // jobs)


def run(
    tracks: Sequence[Track],
    spec: SeparatorSpec,
    options: OutputOptions,
    start: float = 0.0,
    duration: float | None = None,
    jobs: int = 1,
    separator: Separator | None = None,
) -> list[TrackResult]:
    """Separate ``tracks`` (``jobs`` files at a time), reporting per file on stderr; returns the results.

    Each track's outputs are recorded with `track_settings` and kept on a rerun only if made with the same ones.
    """
    from tqdm.auto import tqdm

    settings = track_settings(spec, options, start, duration)
    results = []
    bar = tqdm(total=len(tracks), desc="files", unit="file", file=sys.stderr)

    def report(result: TrackResult) -> None:
        results.append(result)
        for message in result.messages:
            tqdm.write(("error: " if result.status == "failed" else "") + message, file=sys.stderr)
        bar.update()

    try:
        if jobs == 1:
            separator = separator or spec.load()
            for track in tracks:
                bar.set_postfix_str(track.source.name)
                report(separate_track(track, separator, options, start, duration, True, settings))
        else:
            context = get_context("spawn")  # no fork of a process holding torch's thread pools
            initargs = (spec, default_threads(jobs), options, start, duration, settings)
            with ProcessPoolExecutor(jobs, context, initializer=_init_worker, initargs=initargs) as pool:
                futures = [pool.submit(_worker_separate, track) for track in tracks]
                try:
                    for future in as_completed(futures):
                        report(future.result())
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
    finally:
        bar.close()
    return results


def summary(results: Sequence[TrackResult], elapsed: float) -> str:
    """One line: counts, seconds of audio separated, wall time and the real-time factor."""
    counts = {status: sum(r.status == status for r in results) for status in ("done", "skipped", "failed")}
    audio_seconds = sum(r.seconds for r in results)
    line = f"{counts['done']} separated, {counts['skipped']} skipped (outputs exist), {counts['failed']} failed"
    if audio_seconds > 0:
        factor = elapsed / audio_seconds
        line += (
            f"; {audio_seconds:.1f} s of audio in {elapsed:.1f} s: real-time factor {factor:.3f} "
            f"({1 / factor:.1f}x faster than real time)"
        )
    return line


# -- command line ----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xumx-slicq-v2",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inputs = parser.add_argument_group("inputs")
    inputs.add_argument("inputs", nargs="*", help="audio files and/or folders (searched recursively)")
    inputs.add_argument(
        "--input-dir", action="append", default=[], help="a folder of inputs (repeatable; the reference's flag)"
    )
    inputs.add_argument("--start", type=float, default=0.0, help="seconds to skip at the start of every file")
    inputs.add_argument("--duration", type=float, default=None, help="seconds to separate (default: to the end)")

    model = parser.add_argument_group("model")
    model.add_argument(
        "--model",
        "--model-path",
        default=None,
        help="offline, realtime, demo, or a model directory (xumx_slicq_v2.pth + .json); default: offline",
    )
    model.add_argument("--realtime", action="store_true", help="same as --model realtime (the reference's flag)")
    model.add_argument("--runtime-backend", choices=RUNTIME_BACKENDS, default="torch-cpu", help="network runtime")
    model.add_argument(
        "--chunk-seconds",
        type=float,
        default=ChunkingConfig.chunk_seconds,
        help="audio per chunk (memory grows with it; any length gives the same stems; default %(default)g)",
    )
    model.add_argument(
        "--context-seconds",
        type=float,
        default=ChunkingConfig.context_seconds,
        help="audio added on each side of a chunk; must cover half the cross-fade plus the network's receptive "
        "field (about 1.2 s for the released models; default %(default)g)",
    )
    model.add_argument(
        "--crossfade-seconds",
        type=float,
        default=ChunkingConfig.crossfade_seconds,
        help="cross-fade between neighbouring chunks (default %(default)g)",
    )
    model.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="files separated in parallel, each worker with cores/jobs torch threads (helps for many short files)",
    )

    output = parser.add_argument_group("outputs")
    output.add_argument("--output-dir", type=Path, default=Path("separated"), help="where OUT/<track>/ go")
    output.add_argument("--ext", choices=tuple(FORMAT_BITS), default="wav", help="output format")
    output.add_argument(
        "--bits",
        choices=("16", "24", "float"),
        default=None,
        help="sample format (default: float for wav, 24 for flac, which has no float format)",
    )
    output.add_argument(
        "--clip",
        choices=CLIP_POLICIES,
        default="rescale",
        help="integer formats only: rescale all stems of a track by one gain (relative levels kept; reported), "
        "clamp samples, or none (the encoder saturates them)",
    )
    output.add_argument(
        "--stems", default=",".join(SOURCES), help=f"comma-separated subset of {','.join(SOURCES)} to write"
    )
    output.add_argument(
        "--accompaniment", action="store_true", help="also write accompaniment: the sum of the sources not in --stems"
    )
    output.add_argument("--overwrite", action="store_true", help="redo outputs that exist (default: skip them)")
    return parser


@exit_if_missing()
def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        options = OutputOptions(
            ext=args.ext,
            bits=args.bits or FORMAT_BITS[args.ext][0],
            clip=args.clip,
            stems=tuple(dict.fromkeys(name.strip() for name in args.stems.split(",") if name.strip())),
            accompaniment=args.accompaniment,
            overwrite=args.overwrite,
        )
        if args.jobs < 1:
            raise ValueError("--jobs must be positive")
        chunking = ChunkingConfig(args.chunk_seconds, args.context_seconds, args.crossfade_seconds)
        tracks = find_tracks([*args.inputs, *args.input_dir], args.output_dir)
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    if not tracks:
        parser.error("no audio files to separate (give files or folders)")
    spec = SeparatorSpec(
        model=args.model or ("realtime" if args.realtime else "offline"),
        realtime=True if args.realtime else None,
        runtime_backend=args.runtime_backend,
        chunking=chunking,
    )
    try:
        # loaded here also when workers load their own: checks the model once and exports the ONNX cache once
        separator = spec.load()
        separator.check_chunking()
    except ChunkingError as err:
        parser.error(f"{err} (--context-seconds, --crossfade-seconds)")
    except (FileNotFoundError, ValueError, RuntimeError, OSError) as err:
        print(f"error: cannot load model {spec.model!r}: {err}", file=sys.stderr)
        return 1
    jobs = min(args.jobs, len(tracks))
    if jobs > 1:
        separator = None  # the workers load their own
    started = time.perf_counter()
    with sigterm_exits():
        results = run(tracks, spec, options, args.start, args.duration, jobs, separator)
    print(summary(results, time.perf_counter() - started))
    failed = [r for r in results if r.status == "failed"]
    if failed:
        print(f"error: {len(failed)} file(s) failed: {', '.join(str(r.track.source) for r in failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
