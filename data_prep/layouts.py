"""Write synthetic songs in the on-disk layouts of MUSDB18-HQ and of the CAD1 Task 1 data.

- MUSDB18-HQ: ``ROOT/{train,test}/<Track Name>/{mixture,vocals,drums,bass,other}.wav``. Validation songs
  carry names of the musdb package's "valid" split and live in ``train/``, as in the real dataset.
- CAD1 Task 1: ``ROOT/cad1/task1/audio/musdb18hq/...`` (the tree above) and ``ROOT/cad1/task1/metadata/``
  with ``musdb18.{train,valid,test}.json``, ``listeners.{train,valid,test}.json`` and
  ``musdb18.segments.test.json``.

Songs are rendered one by one into a hidden staging folder and moved into their split folder when
complete, so split folders only ever hold whole tracks and an interrupted run resumes by skipping the
folders that exist. ``synth.json`` at the MUSDB root records the generator
settings, and a run with other settings refuses to mix its songs in.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_prep.composer import SongPlan, compose_song
from data_prep.config import GENERATOR_VERSION, SAMPLE_RATE, STEMS
from data_prep.listeners import make_listeners
from data_prep.synth import render_song, write_song
from xumx_slicq_v2.audio import write_text_atomic

SPLITS = ("train", "valid", "test")

#: Settings file of a generated MUSDB18-HQ tree, and the hidden folder songs are written in before they
#: move to their split folder.
MANIFEST = "synth.json"
STAGING = ".staging"

#: Lengths of the CAD1 evaluation segments (s), clipped to the song length.
OBJECTIVE_SECONDS = 30.0
SUBJECTIVE_SECONDS = 15.0

# fmt: off
#: Word lists of the invented track names: training songs by "First Last", test songs by "The Adj Nouns",
#: so the two splits never share a name.
FIRST_NAMES = (
    "Ada", "Bruno", "Cleo", "Dario", "Elin", "Faye", "Gus", "Hana", "Ivo", "Juno", "Kai", "Lena", "Milo",
    "Nora", "Otto", "Pia", "Quinn", "Rosa", "Silas", "Tove", "Uma", "Vito", "Wren", "Yara", "Zeno",
)
LAST_NAMES = (
    "Amberly", "Brightwater", "Castellan", "Dunmore", "Everhart", "Fairweather", "Greystone", "Hollowell",
    "Ironwood", "Juniper", "Kestrel", "Larkspur", "Marlowe", "Northcote", "Oakhurst", "Pennywhistle",
    "Quillon", "Ravensworth", "Stormfield", "Thistlewood", "Underhill", "Whitlock", "Yarborough",
)
BAND_ADJECTIVES = (
    "Velvet", "Paper", "Electric", "Hollow", "Neon", "Silent", "Golden", "Crooked", "Midnight", "Copper",
    "Glass", "Wandering", "Scarlet", "Lucky",
)
BAND_NOUNS = (
    "Lanterns", "Foxes", "Orchards", "Satellites", "Harbours", "Moths", "Engines", "Rivers", "Comets",
    "Ghosts", "Tigers", "Bicycles", "Owls", "Kites",
)
TITLE_ADJECTIVES = (
    "Broken", "Quiet", "Endless", "Northern", "Little", "Burning", "Summer", "Paper", "Silver", "Lonely",
    "Restless", "Distant", "Yellow", "Hidden", "Slow", "Velvet", "Open", "Wild",
)
TITLE_NOUNS = (
    "Lights", "Avenue", "Morning", "Promise", "Heartbeat", "Window", "Tide", "Machine", "Garden", "Letters",
    "Station", "Weather", "Horizon", "Dance", "Shadows", "Fever", "Mirrors", "Signal",
)
# fmt: on


def _invented_names(seed: int, split: str, count: int) -> list[str]:
    rng = np.random.default_rng(np.random.SeedSequence([seed, SPLITS.index(split), 99]))
    names: list[str] = []
    while len(names) < count:
        if split == "train":
            artist = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        else:
            artist = f"The {rng.choice(BAND_ADJECTIVES)} {rng.choice(BAND_NOUNS)}"
        name = f"{artist} - {rng.choice(TITLE_ADJECTIVES)} {rng.choice(TITLE_NOUNS)}"
        if name not in names:
            names.append(name)
    return names


def track_names(seed: int, n_train: int, n_valid: int, n_test: int) -> dict[str, list[str]]:
    """Names per split. Each split's list depends only on ``seed`` and grows by appending, so a larger
    count keeps the songs of a smaller one."""
    valid: list[str] = []
    if n_valid:
        from xumx_slicq_v2.data import validation_track_names  # imports torch: only when needed

        pool = list(validation_track_names())
        if n_valid > len(pool):
            raise ValueError(f"at most {len(pool)} validation songs (the musdb 'valid' split), got {n_valid}")
        valid = pool[:n_valid]
    return {
        "train": _invented_names(seed, "train", n_train),
        "valid": valid,
        "test": _invented_names(seed, "test", n_test),
    }


def song_seed(seed: int, split: str, index: int) -> int:
    """Seed of the ``index``-th song of ``split`` in a dataset of seed ``seed``."""
    return int(np.random.SeedSequence([seed, SPLITS.index(split), index]).generate_state(1)[0])


def split_folder(split: str) -> str:
    """MUSDB18-HQ folder of a split: validation songs live in ``train/``."""
    return "test" if split == "test" else "train"


def _claim_root(root: Path, settings: dict) -> None:
    """Create ``root`` with its manifest, or check that an existing one was generated with ``settings``."""
    manifest = root / MANIFEST
    if manifest.is_file():
        try:
            existing = json.loads(manifest.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{manifest}: not valid JSON ({err})") from err
        if existing != settings:
            raise ValueError(
                f"{manifest}: the tree was generated with {existing}, this run asks for {settings}; "
                "choose another output folder"
            )
        return
    if root.exists() and any(child.name not in (MANIFEST, STAGING) for child in root.iterdir()):
        raise ValueError(
            f"{root}: folder holds files that data_prep did not write (no {MANIFEST}); choose an empty folder"
        )
    write_text_atomic(manifest, json.dumps(settings, indent=2) + "\n")


def write_musdb_tree(
    root: str | os.PathLike,
    n_train: int,
    n_valid: int,
    n_test: int,
    seconds: float,
    seed: int,
    sample_rate: int = SAMPLE_RATE,
    progress: bool = True,
) -> dict[str, list[str]]:
    """Generate a MUSDB18-HQ-shaped tree under ``root``; returns the track names per split."""
    root = Path(root)
    names = track_names(seed, n_train, n_valid, n_test)
    settings = {"generator": "data_prep", "version": GENERATOR_VERSION, "seed": seed, "seconds": float(seconds)}
    _claim_root(root, settings | {"sample_rate": sample_rate})
    staging = root / STAGING  # songs are written here, then moved: split folders only ever hold whole tracks
    jobs = [(split, index, name) for split in SPLITS for index, name in enumerate(names[split])]
    for split, index, name in tqdm(jobs, desc="synthetic songs", unit="song", disable=not progress):
        folder = root / split_folder(split) / name
        if folder.is_dir():
            continue  # written by an earlier run
        shutil.rmtree(staging / name, ignore_errors=True)  # left by an interrupted run of ours
        write_song(staging / name, render_song(song_seed(seed, split, index), seconds, sample_rate), sample_rate)
        folder.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staging / name, folder)
    with contextlib.suppress(OSError):  # absent, or holding another process's song in progress
        staging.rmdir()
    return names


def all_active_spans(plan: SongPlan) -> list[tuple[float, float]]:
    """Spans (s) where all four stems play."""
    spans = [(0.0, plan.seconds)]
    for stem in STEMS:
        spans = [(max(a, c), min(b, d)) for a, b in spans for c, d in plan.active_spans(stem) if min(b, d) > max(a, c)]
    return spans


def evaluation_segments(plan: SongPlan, rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """CAD1 test segments of a song: a 30 s objective window covering as much as possible of the time
    where all four stems play, and a 15 s subjective window, both clipped to the song length."""
    spans = all_active_spans(plan)
    length = min(OBJECTIVE_SECONDS, plan.seconds)
    starts = np.arange(0.0, plan.seconds - length + 1e-9, 0.5)
    coverage = np.array([sum(max(0.0, min(b, s + length) - max(a, s)) for a, b in spans) for s in starts])
    objective = float(rng.choice(starts[coverage >= coverage.max() - 1e-9]))
    subjective_length = min(SUBJECTIVE_SECONDS, plan.seconds)
    subjective = round(float(rng.uniform(0.0, plan.seconds - subjective_length)), 2)
    return {
        "objective_evaluation": {"start": objective, "end": round(objective + length, 3)},
        "subjective_evaluation": {"start": subjective, "end": round(subjective + subjective_length, 3)},
    }


def _write_json(path: Path, content) -> None:
    write_text_atomic(path, json.dumps(content, indent=4) + "\n")


def write_cad1_tree(
    root: str | os.PathLike,
    n_train: int = 0,
    n_valid: int = 3,
    n_test: int = 2,
    seconds: float = 20.0,
    seed: int = 0,
    listeners_per_split: int = 4,
    sample_rate: int = SAMPLE_RATE,
    progress: bool = True,
) -> Path:
    """Generate a CAD1 Task 1-shaped tree under ``root``; returns ``root/cad1/task1``."""
    task_root = Path(root) / "cad1" / "task1"
    names = write_musdb_tree(
        task_root / "audio" / "musdb18hq", n_train, n_valid, n_test, seconds, seed, sample_rate, progress
    )
    metadata = task_root / "metadata"
    for split in SPLITS:
        _write_json(metadata / f"musdb18.{split}.json", [{"Track Name": name, "Split": split} for name in names[split]])
        _write_json(metadata / f"listeners.{split}.json", make_listeners(split, listeners_per_split, seed))
    segments = {}
    for index, name in enumerate(names["test"]):
        song = song_seed(seed, "test", index)
        segments[name] = evaluation_segments(compose_song(song, seconds), np.random.default_rng([song, 5]))
    _write_json(metadata / "musdb18.segments.test.json", segments)
    return task_root
