"""Fixtures of the web mixer tests: generated songs, a CAD1 listeners file, the demo model and an in-process server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from starlette.applications import Starlette

from data_prep.synth import render_song
from xumx_slicq_v2.demixui.server import MixerSettings, create_app, serve_in_thread
from xumx_slicq_v2.hearing import read_listeners
from xumx_slicq_v2.separator import ChunkingConfig, Separator

SAMPLE_RATE = 44100
#: The mixer's chunk length in these tests: the long song is several chunks, the first one plays early.
CHUNK_SECONDS = 2.0
#: Upload limit of the test server (the songs here are well below it).
MAX_UPLOAD_BYTES = 8 * 2**20

#: Two CAD1-format listeners (dB HL at the CAD1 frequencies): mild and moderately severe, asymmetric.
CAD1_FREQUENCIES = [250, 500, 1000, 2000, 3000, 4000, 6000, 8000]
LISTENERS = {
    "L0001": {"left": [10, 15, 20, 25, 30, 30, 35, 40], "right": [15, 15, 20, 30, 30, 35, 40, 45]},
    "L0002": {"left": [30, 35, 40, 50, 55, 60, 65, 70], "right": [40, 45, 50, 60, 65, 70, 75, 80]},
}


@pytest.fixture(scope="session")
def songs(tmp_path_factory) -> dict[str, Path]:
    """``short`` (5 s stereo 16-bit WAV, a name with spaces), ``long`` (16 s FLAC: eight chunks), ``corrupt``."""
    folder = tmp_path_factory.mktemp("songs")
    paths = {"short": folder / "short song.wav", "long": folder / "long song.flac", "corrupt": folder / "broken.mp3"}
    for kind, seconds, seed, subtype in (("short", 5.0, 3, "PCM_16"), ("long", 16.0, 4, "PCM_16")):
        mixture = sum(render_song(seed, seconds).values())
        sf.write(paths[kind], mixture.T, SAMPLE_RATE, subtype=subtype)
    paths["corrupt"].write_bytes(b"ID3\x03\x00" + np.random.default_rng(0).bytes(50_000))
    return paths


@pytest.fixture(scope="session")
def listeners_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("metadata") / "listeners.valid.json"
    entries = {
        name: {
            "name": name,
            "audiogram_cfs": CAD1_FREQUENCIES,
            "audiogram_levels_l": levels["left"],
            "audiogram_levels_r": levels["right"],
        }
        for name, levels in LISTENERS.items()
    }
    path.write_text(json.dumps(entries, indent=2))
    return path


@pytest.fixture(scope="session")
def separator() -> Separator:
    return Separator.from_pretrained("demo", chunking=ChunkingConfig(chunk_seconds=CHUNK_SECONDS))


@dataclass
class RunningServer:
    """A mixer served on 127.0.0.1 from a thread of the test process (``app.state`` can be inspected)."""

    url: str
    app: Starlette

    @property
    def port(self) -> int:
        return int(self.url.rstrip("/").rsplit(":", 1)[1])

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


@pytest.fixture(scope="module")
def server(songs, listeners_file, separator) -> Iterator[RunningServer]:
    """The mixer with the short song on the command line and the test listeners."""
    settings = MixerSettings(
        model="demo", input_file=songs["short"], listeners_file=listeners_file, max_upload_bytes=MAX_UPLOAD_BYTES
    )
    app = create_app(settings, separator, read_listeners(listeners_file))
    with serve_in_thread(app) as url:
        yield RunningServer(url, app)
