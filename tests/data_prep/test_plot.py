"""python -m data_prep.plot draws the four stems' spectrograms into one PNG."""

from __future__ import annotations

import subprocess
import sys

import matplotlib.image
import pytest

from data_prep.plot import main, plot_stems
from data_prep.synth import render_song, write_song


@pytest.fixture(scope="module")
def song_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plot") / "Some Artist - Some Song"
    write_song(folder, render_song(8, 2.0))
    return folder


def test_plot_writes_a_png(song_dir, tmp_path):
    out = plot_stems(song_dir, tmp_path / "stems.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(out).shape
    assert height >= 800 and width >= 1000
    assert not list(tmp_path.glob(".*"))  # written atomically, no temporary left


def test_cli_default_output_name(song_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main([str(song_dir)])
    assert (tmp_path / "Some Artist - Some Song.spectrograms.png").is_file()


def test_missing_stems_are_named(tmp_path):
    (tmp_path / "empty").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "data_prep.plot", str(tmp_path / "empty")], capture_output=True, text=True
    )
    assert result.returncode != 0 and "bass.wav" in result.stderr
