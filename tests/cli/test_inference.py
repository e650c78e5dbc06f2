"""The separation command line: formats, rates, channels, stem selection, failures, resumption."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from xumx_slicq_v2.inference import RECORD_NAME, OutputOptions, StemWriter, find_tracks, main, select_stems

from .conftest import REPO, music, run_module, write_music

STEMS = ("bass", "vocals", "other", "drums")


def assert_stems(folder: Path, names, frames: int, rate: int, channels: int, ext: str = "wav") -> dict:
    """Check every stem file and return them as ``{name: (samples, channels)}``."""
    written = sorted(path.name for path in folder.iterdir() if path.name != RECORD_NAME)
    assert written == sorted(f"{name}.{ext}" for name in names)
    stems = {}
    for name in names:
        data, file_rate = sf.read(str(folder / f"{name}.{ext}"), always_2d=True)
        assert (data.shape, file_rate) == ((frames, channels), rate), f"{name}.{ext}"
        stems[name] = data
    return stems


def test_end_to_end_formats_rates_channels_and_stem_selection(tmp_path, realtime_dir, capsys) -> None:
    songs = tmp_path / "songs"
    write_music(songs / "a.wav", 2.0, 44100, seed=1)
    write_music(songs / "sub" / "b.flac", 1.5, 44100, seed=2)
    write_music(songs / "c.mp3", 2.0, 44100, seed=3)
    write_music(songs / "mono22k.wav", 1.5, 22050, channels=1, seed=4)
    (songs / "notes.txt").write_text("not audio")
    single = write_music(tmp_path / "stereo48k.flac", 1.0, 48000, seed=5)
    expected = {  # output folder -> input file
        "a": songs / "a.wav",
        "sub/b": songs / "sub" / "b.flac",
        "c": songs / "c.mp3",
        "mono22k": songs / "mono22k.wav",
        "stereo48k": single,
    }

    out = tmp_path / "out"
    assert main([str(songs), str(single), "--model", str(realtime_dir), "--output-dir", str(out)]) == 0
    summary = capsys.readouterr().out
    assert "5 separated" in summary and "real-time factor" in summary
    stems = {}
    for folder, source in expected.items():
        info = sf.info(str(source))  # the mp3's decoded length is what must be kept
        stems[folder] = assert_stems(out / folder, STEMS, info.frames, info.samplerate, info.channels)
    assert not (out / "notes").exists()

    subset = tmp_path / "subset"
    args = ["--input-dir", str(songs), "--model", str(realtime_dir), "--output-dir", str(subset)]
    assert main([*args, "--stems", "vocals,drums", "--accompaniment", "--ext", "flac", "--bits", "16"]) == 0
    for folder, source in expected.items():
        if folder == "stereo48k":
            continue
        info = sf.info(str(source))
        written = assert_stems(
            subset / folder, ("vocals", "drums", "accompaniment"), info.frames, info.samplerate, info.channels, "flac"
        )
        assert sf.info(str(subset / folder / "vocals.flac")).subtype == "PCM_16"
        full = stems[folder]
        np.testing.assert_allclose(written["vocals"], full["vocals"], atol=1e-4)
        np.testing.assert_allclose(written["accompaniment"], full["bass"] + full["other"], atol=1e-4)
        assert np.abs(written["accompaniment"]).max() > 1e-3


def test_rescale_keeps_relative_levels_of_loud_stems_and_says_so(tmp_path, realtime_dir, capsys) -> None:
    song = tmp_path / "loud.wav"
    sf.write(str(song), 4.0 / 0.3 * music(1.0, 16000).T, 16000, subtype="FLOAT")  # peaks at 4.0
    args = [str(song), "--model", str(realtime_dir)]
    assert main([*args, "--output-dir", str(tmp_path / "float")]) == 0
    assert main([*args, "--output-dir", str(tmp_path / "int16"), "--bits", "16"]) == 0
    assert "scaled by" in capsys.readouterr().err
    floats = assert_stems(tmp_path / "float" / "loud", STEMS, 16000, 16000, 2)
    ints = assert_stems(tmp_path / "int16" / "loud", STEMS, 16000, 16000, 2)
    peak = max(np.abs(stem).max() for stem in floats.values())
    assert peak > 1.0
    for name in STEMS:  # one gain for all stems: 1 / peak
        np.testing.assert_allclose(ints[name], floats[name] / peak, atol=2e-4)


def test_start_and_duration_select_an_excerpt(tmp_path, realtime_dir) -> None:
    song = write_music(tmp_path / "song.wav", 2.0, 22050, seed=6)
    out = tmp_path / "out"
    args = [str(song), "--model", str(realtime_dir), "--output-dir", str(out), "--start", "0.5", "--duration", "1.0"]
    assert main(args) == 0
    assert_stems(out / "song", STEMS, 22050, 22050, 2)


def test_bad_files_are_named_and_skipped_with_exit_status_1(tmp_path, realtime_dir, capsys) -> None:
    songs = tmp_path / "songs"
    write_music(songs / "good1.wav", 1.0, 44100, seed=1)
    write_music(songs / "good2.flac", 1.0, 32000, seed=2)
    (songs / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
    sf.write(str(songs / "surround.wav"), np.zeros((8000, 6), dtype=np.float32), 16000)
    write_music(songs / "blocked.wav", 1.0, 16000, seed=3)
    out = tmp_path / "out"
    out.mkdir()
    (out / "blocked").write_text("a file where the track's folder should go")
    status = main([str(songs), "--model", str(realtime_dir), "--output-dir", str(out)])
    captured = capsys.readouterr()
    assert status == 1
    assert "corrupt.wav" in captured.err and "surround.wav" in captured.err
    assert "6 channels" in captured.err and "downmix" in captured.err
    assert "blocked.wav: cannot write its stems" in captured.err
    assert "2 separated" in captured.out and "3 failed" in captured.out
    assert_stems(out / "good1", STEMS, 44100, 44100, 2)
    assert_stems(out / "good2", STEMS, 32000, 32000, 2)
    assert not (out / "corrupt").exists() and not (out / "surround").exists()


def test_non_finite_input_is_named_and_writes_nothing(tmp_path, realtime_dir, capsys) -> None:
    songs = tmp_path / "songs"
    write_music(songs / "good1.wav", 1.0, 16000, seed=1)
    write_music(songs / "good2.wav", 1.0, 16000, seed=2)
    audio = music(2.0, 16000, seed=3)
    audio[1, [20000, 20001, 25000]] = np.nan
    audio[0, 30000] = np.inf
    sf.write(str(songs / "bad.wav"), audio.T, 16000, subtype="FLOAT")
    out = tmp_path / "out"
    status = main([str(songs), "--model", str(realtime_dir), "--output-dir", str(out)])
    captured = capsys.readouterr()
    assert status == 1
    assert "bad.wav: non-finite audio: the first is nan at sample 20000 (1.250 s), channel 2 of 2" in captured.err
    assert "2 separated" in captured.out and "1 failed" in captured.out
    assert_stems(out / "good1", STEMS, 16000, 16000, 2)
    assert_stems(out / "good2", STEMS, 16000, 16000, 2)
    assert not (out / "bad").exists()
    # with --start the sample is counted from the file's start
    assert main([str(songs / "bad.wav"), "--model", str(realtime_dir), "--output-dir", str(out), "--start", "1.0"]) == 1
    assert "at sample 20000 (1.250 s)" in capsys.readouterr().err
    assert not (out / "bad").exists()


def test_existing_outputs_are_skipped_unless_overwrite(tmp_path, realtime_dir, capsys) -> None:
    song = write_music(tmp_path / "song.wav", 1.0, 16000)
    out = tmp_path / "out"
    args = [str(song), "--model", str(realtime_dir), "--output-dir", str(out)]
    assert main(args) == 0
    (out / "song" / "vocals.wav").unlink()
    drums_mtime = (out / "song" / "drums.wav").stat().st_mtime_ns
    time.sleep(0.01)
    assert main(args) == 0  # writes only the missing stem
    assert (out / "song" / "vocals.wav").is_file()
    assert (out / "song" / "drums.wav").stat().st_mtime_ns == drums_mtime
    capsys.readouterr()
    assert main(args) == 0
    assert "0 separated, 1 skipped" in capsys.readouterr().out
    assert main([*args, "--overwrite"]) == 0
    assert (out / "song" / "drums.wav").stat().st_mtime_ns > drums_mtime


def test_outputs_of_other_settings_are_redone(tmp_path, realtime_dir, offline_dir, capsys) -> None:
    song = write_music(tmp_path / "song.wav", 1.0, 16000)
    out = tmp_path / "out"
    args = [str(song), "--output-dir", str(out)]
    assert main([*args, "--model", str(realtime_dir)]) == 0
    first = {name: sf.read(str(out / "song" / f"{name}.wav"))[0] for name in STEMS}
    record = json.loads((out / "song" / RECORD_NAME).read_text())
    assert record["model"] == str(realtime_dir.resolve()) and len(record["weights_sha256"]) == 64
    assert (record["start"], record["duration"], record["ext"]) == (0.0, None, "wav")
    capsys.readouterr()
    assert main([*args, "--model", str(realtime_dir)]) == 0
    assert "0 separated, 1 skipped" in capsys.readouterr().out  # same settings: kept

    assert main([*args, "--model", str(offline_dir)]) == 0  # another model rewrites every output
    captured = capsys.readouterr()
    assert "1 separated" in captured.out and "held outputs of other settings (model: recorded" in captured.err
    second = {name: sf.read(str(out / "song" / f"{name}.wav"))[0] for name in STEMS}
    assert all(np.abs(second[name] - first[name]).max() > 1e-4 for name in STEMS)
    assert json.loads((out / "song" / RECORD_NAME).read_text())["model"] == str(offline_dir.resolve())

    (out / "song" / "vocals.wav").unlink()  # another excerpt: redone, and the missing stem written too
    assert main([*args, "--model", str(offline_dir), "--start", "0.5"]) == 0
    assert "start: recorded 0.0, now 0.5" in capsys.readouterr().err
    assert_stems(out / "song", STEMS, 8000, 16000, 2)
    # a subset with another model: the other stems of the previous model do not stay beside the new record
    assert main([*args, "--model", str(realtime_dir), "--stems", "vocals"]) == 0
    assert_stems(out / "song", ["vocals"], 16000, 16000, 2)
    assert main([*args, "--model", str(offline_dir), "--start", "0.5"]) == 0
    capsys.readouterr()
    # another duration, then another sample format under the same file names: rewritten
    assert main([*args, "--model", str(offline_dir), "--start", "0.5", "--duration", "0.25"]) == 0
    assert "duration: recorded null, now 0.25" in capsys.readouterr().err
    assert_stems(out / "song", STEMS, 4000, 16000, 2)
    assert main([*args, "--model", str(offline_dir), "--start", "0.5", "--duration", "0.25", "--bits", "16"]) == 0
    assert 'bits: recorded "float", now "16"' in capsys.readouterr().err
    assert {sf.info(str(out / "song" / f"{name}.wav")).subtype for name in STEMS} == {"PCM_16"}
    (out / "song" / RECORD_NAME).unlink()  # outputs without a record (an older version's) are redone
    assert main([*args, "--model", str(offline_dir), "--start", "0.5"]) == 0
    assert "no record of the settings that made them" in capsys.readouterr().err


def final_outputs(out: Path) -> list[Path]:
    return [path for path in out.rglob("*.flac") if not path.name.startswith(".")]


def temporary_files(out: Path) -> list[Path]:
    return [path for path in out.rglob(".*") if path.is_file() and path.name != RECORD_NAME]


#: Runs ``python -m xumx_slicq_v2 ARGS`` pausing mid-write: when `StemWriter` opens the temporary file of a
#: track's second output while an earlier track's stems are under their final names, it creates the file READY
#: and waits (up to 10 minutes) to be killed. Arguments: OUT, READY, ARGS...
PAUSING_CLI = """
import collections, pathlib, sys, time
from xumx_slicq_v2 import inference
out, ready = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
original, opened = inference.StemWriter._open, collections.Counter()
def _open(self, path):
    sink = original(self, path)
    opened[path.parent] += 1
    finished = [p for p in out.rglob("*.flac") if not p.name.startswith(".")]
    if opened[path.parent] == 2 and finished and not ready.exists():
        ready.touch()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            time.sleep(0.01)
        sys.exit("never killed")
    return sink
inference.StemWriter._open = _open
sys.argv = ["xumx_slicq_v2", *sys.argv[3:]]
sys.exit(inference.main())
"""


@pytest.mark.parametrize("kill_signal", [signal.SIGKILL, signal.SIGTERM])
def test_killed_run_leaves_no_partial_files_and_rerun_completes(tmp_path, realtime_dir, kill_signal) -> None:
    songs = tmp_path / "songs"
    for index in range(5):
        write_music(songs / f"song{index}.wav", 2.0, 16000, seed=index)
    out, ready = tmp_path / "out", tmp_path / "ready"
    args = [str(songs), "--model", str(realtime_dir), "--output-dir", str(out), "--ext", "flac"]
    command = [sys.executable, "-c", PAUSING_CLI, str(out), str(ready), *args]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600  # generous: the first track may take minutes on a loaded machine
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ready.exists(), f"the run never reached its second track: {process.poll()}"
        in_flight = temporary_files(out)
        assert in_flight, "the next track's stems are being written to temporary files"
        process.send_signal(kill_signal)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == (-signal.SIGKILL if kill_signal == signal.SIGKILL else 128 + signal.SIGTERM), stderr
    finished = final_outputs(out)
    assert 0 < len(finished) < 5 * 4, "the kill lands mid-run"
    for path in finished:  # every file under its final name is complete
        assert sf.info(str(path)).frames == 2 * 16000
    finished_mtimes = {path: path.stat().st_mtime_ns for path in finished}
    if kill_signal == signal.SIGTERM:  # SIGTERM lets the atomic writes clean up; SIGKILL cannot be caught
        assert temporary_files(out) == []
    else:
        assert set(temporary_files(out)) >= set(in_flight)

    rerun = run_module("xumx_slicq_v2", *args)
    assert rerun.returncode == 0, rerun.stderr
    assert {path: path.stat().st_mtime_ns for path in finished} == finished_mtimes  # kept, not redone
    for index in range(5):
        assert_stems(out / f"song{index}", STEMS, 2 * 16000, 16000, 2, "flac")
    assert temporary_files(out) == []


def test_parallel_jobs_give_the_same_stems(tmp_path, realtime_dir) -> None:
    songs = tmp_path / "songs"
    for index in range(3):
        write_music(songs / f"song{index}.wav", 1.0, 16000, seed=index)
    outputs = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        result = run_module(
            "xumx_slicq_v2", str(songs), "--model", str(realtime_dir), "--output-dir", str(out), "--jobs", jobs
        )
        assert result.returncode == 0, result.stderr
        assert "3 separated" in result.stdout
        outputs[jobs] = {path.relative_to(out): sf.read(str(path))[0] for path in sorted(out.rglob("*.wav"))}
    assert outputs["1"].keys() == outputs["2"].keys() and len(outputs["1"]) == 12
    for key, data in outputs["1"].items():
        np.testing.assert_allclose(outputs["2"][key], data, atol=1e-6)


def test_entry_points_agree() -> None:
    module_help = run_module("xumx_slicq_v2", "--help")
    assert module_help.returncode == 0 and "--runtime-backend" in module_help.stdout
    assert run_module("xumx_slicq_v2.inference", "--help").stdout == module_help.stdout
    script = Path(sys.executable).parent / "xumx-slicq-v2"  # the console script, when the package is installed
    if script.is_file():
        assert subprocess.run([script, "--help"], capture_output=True, text=True).stdout == module_help.stdout


def write_pieces(folder: Path, options: OutputOptions, names: tuple[str, ...], pieces: list[dict]) -> str:
    """Write mono ``pieces`` with a `StemWriter` into ``folder/<name>.wav`` for ``names``; returns its message."""
    with contextlib.ExitStack() as files:
        writer = StemWriter({name: folder / f"{name}.wav" for name in names}, options, 8000, 1, files)
        for piece in pieces:
            writer.write({name: np.array([piece.get(name, [0.0, 0.0])], np.float32) for name in STEMS})
        return writer.finish()


def read_mono(path: Path) -> list[float]:
    return sf.read(str(path))[0].tolist()


def test_stem_writer_clip_policies_use_the_whole_tracks_peak(tmp_path) -> None:
    # vocals peak at -2.0 in the second piece: rescale must scale the first piece too, and the drums with them
    pieces = [{"vocals": [0.5, -0.25], "drums": [0.75, 0.25]}, {"vocals": [0.5, -2.0], "drums": [1.5, 0.25]}]
    options = OutputOptions(bits="16", clip="rescale", stems=("vocals", "drums"))
    message = write_pieces(tmp_path / "rescale", options, ("drums",), pieces)  # only drums missing on disk
    assert "peak at 2.000" in message and "scaled by 0.500" in message and "relative levels" in message
    assert sf.info(str(tmp_path / "rescale" / "drums.wav")).subtype == "PCM_16"
    np.testing.assert_allclose(read_mono(tmp_path / "rescale" / "drums.wav"), [0.375, 0.125, 0.75, 0.125], atol=1e-4)
    assert [path.name for path in (tmp_path / "rescale").iterdir()] == ["drums.wav"]  # no scratch files left

    message = write_pieces(tmp_path / "clamp", OutputOptions(bits="24", clip="clamp"), ("vocals",), pieces)
    assert message.startswith("2 samples beyond full scale clamped")
    np.testing.assert_allclose(read_mono(tmp_path / "clamp" / "vocals.wav"), [0.5, -0.25, 0.5, -1.0], atol=1e-6)

    assert write_pieces(tmp_path / "none", OutputOptions(bits="16", clip="none"), ("drums",), pieces) == ""
    floats = OutputOptions(bits="float", clip="rescale")
    assert write_pieces(tmp_path / "float", floats, ("vocals", "drums"), pieces) == ""
    assert read_mono(tmp_path / "float" / "vocals.wav") == [0.5, -0.25, 0.5, -2.0]  # float: unchanged
    quiet = [{"vocals": [0.5, -0.25]}]
    assert write_pieces(tmp_path / "quiet", OutputOptions(bits="16"), ("vocals",), quiet) == ""
    np.testing.assert_allclose(read_mono(tmp_path / "quiet" / "vocals.wav"), [0.5, -0.25], atol=1e-4)


@pytest.mark.parametrize("bits", ["float", "16"])
def test_stem_writer_leaves_nothing_when_interrupted(tmp_path, bits) -> None:
    options = OutputOptions(bits=bits, stems=("vocals", "drums"), accompaniment=True)
    with pytest.raises(KeyboardInterrupt), contextlib.ExitStack() as files:
        writer = StemWriter({name: tmp_path / f"{name}.wav" for name in options.names}, options, 8000, 2, files)
        writer.write({name: np.full((2, 100), 0.1, np.float32) for name in STEMS})
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_output_options_and_stem_selection() -> None:
    with pytest.raises(ValueError, match=r"flac cannot hold 'float'.*--bits 24 or 16"):
        OutputOptions(ext="flac", bits="float")
    with pytest.raises(ValueError, match="unknown stems guitar"):
        OutputOptions(stems=("vocals", "guitar"))
    with pytest.raises(ValueError, match="--accompaniment"):
        OutputOptions(accompaniment=True)
    options = OutputOptions(stems=("vocals",), accompaniment=True)
    stems = {name: np.full((1, 2), float(index + 1), np.float32) for index, name in enumerate(STEMS)}
    selected = select_stems(stems, options)
    assert list(selected) == ["vocals", "accompaniment"]
    assert selected["accompaniment"].tolist() == [[1 + 3 + 4] * 2]  # bass + other + drums


def test_find_tracks(tmp_path) -> None:
    root = tmp_path / "music"
    for name in ("a.wav", "x/b.FLAC", "x/y/c.ogg", "readme.md", ".hidden.wav", "out/a/vocals.wav"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    tracks = find_tracks([root], root / "out")
    assert [
        (t.source.relative_to(root).as_posix(), t.out_dir.relative_to(root / "out").as_posix()) for t in tracks
    ] == [
        ("a.wav", "a"),
        ("x/b.FLAC", "x/b"),
        ("x/y/c.ogg", "x/y/c"),
    ]
    (root / "a.flac").write_bytes(b"")
    with pytest.raises(ValueError, match=r"a\.flac and .*a\.wav would both be written to"):
        find_tracks([root], tmp_path / "elsewhere")
    with pytest.raises(FileNotFoundError, match=r"missing\.wav"):
        find_tracks([tmp_path / "missing.wav"], tmp_path)


def test_cli_errors(tmp_path, realtime_dir) -> None:
    song = write_music(tmp_path / "song.wav", 0.5, 16000)
    result = run_module("xumx_slicq_v2", str(song), "--ext", "flac", "--bits", "float", "--model", str(realtime_dir))
    assert result.returncode == 2 and "flac cannot hold 'float'" in result.stderr
    result = run_module("xumx_slicq_v2", str(tmp_path / "nothing"), "--model", str(realtime_dir))
    assert result.returncode == 2 and "nothing: no such file or folder" in result.stderr
    result = run_module(
        "xumx_slicq_v2", str(song), "--model", str(tmp_path / "no_model"), "--output-dir", str(tmp_path / "out")
    )
    assert result.returncode == 1 and "cannot load model" in result.stderr
    assert not (tmp_path / "out").exists()


def test_chunk_plans_short_chunks_agree_and_impossible_ones_are_exit_2(tmp_path, realtime_dir, capsys) -> None:
    song = write_music(tmp_path / "song.wav", 3.0, 16000)
    stems = {}
    for chunk in ("100", "0.1"):  # one chunk, and chunks shorter than the 1 s cross-fade
        out = tmp_path / f"out{chunk}"
        args = [str(song), "--model", str(realtime_dir), "--output-dir", str(out), "--chunk-seconds", chunk]
        assert main([*args, "--context-seconds", "0.8"]) == 0
        stems[chunk] = np.stack([sf.read(str(out / "song" / f"{name}.wav"))[0] for name in STEMS])
    np.testing.assert_allclose(stems["0.1"], stems["100"], rtol=0, atol=1e-4 * np.abs(stems["100"]).max())
    for flags, message in (
        (["--context-seconds", "0.55"], "a context of 0.55 s (9112 samples at 16000 Hz) is too short for a cross-fade"),
        (["--crossfade-seconds", "6"], "a cross-fade of 6.0 s reaches beyond a context of 2.5 s"),
        (["--chunk-seconds", "0"], "chunking needs chunk_seconds > 0"),
    ):
        out = tmp_path / "refused"
        with pytest.raises(SystemExit) as exit_info:
            main([str(song), "--model", str(realtime_dir), "--output-dir", str(out), *flags])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
        assert not out.exists()
