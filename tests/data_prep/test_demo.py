"""The demo preset: generated once, atomically, found again without regenerating."""

from __future__ import annotations

import json

import pytest
import soundfile as sf

from data_prep import demo, layouts
from data_prep.config import DEMO_PRESET, DatasetPreset

TINY = DatasetPreset(n_train=0, n_valid=1, n_test=1, seconds=1.0, listeners_per_split=2, seed=1)


def _visible(folder) -> list[str]:
    """Entries of ``folder`` except the generation lock files."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".generate.lock"))


def test_default_root(monkeypatch, tmp_path):
    """Under the working directory (never next to the installed package), or $XUMX_DEMO_DATA (made absolute)."""
    monkeypatch.delenv(demo.DEMO_ROOT_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)
    assert demo.default_demo_root() == tmp_path / "data" / "demo"
    monkeypatch.setenv(demo.DEMO_ROOT_VARIABLE, "elsewhere")
    assert demo.default_demo_root() == tmp_path / "elsewhere"


def test_generated_once_then_reused(tmp_path, capsys):
    root = tmp_path / "demo"
    task_root = demo.ensure_demo_dataset(root, TINY)
    assert task_root == root / "cad1" / "task1"
    assert str(task_root) in capsys.readouterr().err
    marker = root / demo.MARKER
    assert json.loads(marker.read_text())["preset"]["n_valid"] == 1
    mixture = next((task_root / "audio" / "musdb18hq" / "test").iterdir()) / "mixture.wav"
    stamps = (marker.stat().st_mtime_ns, mixture.stat().st_ino, mixture.stat().st_mtime_ns)
    assert demo.ensure_demo_dataset(root, TINY) == task_root
    assert (marker.stat().st_mtime_ns, mixture.stat().st_ino, mixture.stat().st_mtime_ns) == stamps
    assert str(task_root) in capsys.readouterr().err
    assert _visible(tmp_path) == ["demo"]  # no temporary folders left behind


def test_interrupted_generation_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    root = tmp_path / "demo"

    def crash(*args, **kwargs):
        (args[0] / "cad1").mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(layouts, "write_cad1_tree", crash)  # what the generator calls
    with pytest.raises(KeyboardInterrupt):
        demo.ensure_demo_dataset(root, TINY)
    assert _visible(tmp_path) == []
    monkeypatch.undo()
    assert (demo.ensure_demo_dataset(root, TINY) / "metadata" / "listeners.valid.json").is_file()


def test_foreign_or_stale_folders(tmp_path):
    foreign = tmp_path / "foreign"
    (foreign / "cad1").mkdir(parents=True)  # e.g. a half-copied tree without the marker
    with pytest.raises(FileExistsError, match=demo.MARKER):
        demo.ensure_demo_dataset(foreign, TINY)
    root = tmp_path / "demo"
    demo.ensure_demo_dataset(root, TINY)
    bigger = DatasetPreset(**{**TINY.__dict__, "n_test": 2})
    task_root = demo.ensure_demo_dataset(root, bigger)  # another preset: regenerated in place
    assert len(list((task_root / "audio" / "musdb18hq" / "test").iterdir())) == 2
    assert demo.is_complete(root, bigger) and not demo.is_complete(root, TINY)
    assert _visible(tmp_path) == ["demo", "foreign"]


def test_the_demo_preset(tmp_path):
    assert (DEMO_PRESET.n_valid, DEMO_PRESET.n_test, DEMO_PRESET.seconds, DEMO_PRESET.listeners_per_split) == (
        3,
        2,
        10.0,
        3,
    )
    task_root = demo.ensure_demo_dataset(tmp_path / "demo")
    metadata = task_root / "metadata"
    valid = json.loads((metadata / "musdb18.valid.json").read_text())
    assert [record["Split"] for record in valid] == ["valid"] * 3
    for record in valid:
        info = sf.info(task_root / "audio" / "musdb18hq" / "train" / record["Track Name"] / "mixture.wav")
        assert info.frames == DEMO_PRESET.seconds * 44100
    assert len(json.loads((metadata / "listeners.test.json").read_text())) == DEMO_PRESET.listeners_per_split


def test_demo_root_is_an_ordinary_folder(tmp_path):
    root = tmp_path / "demo"
    demo.ensure_demo_dataset(root, TINY)
    probe = tmp_path / "probe"
    probe.mkdir()
    assert root.stat().st_mode & 0o777 == probe.stat().st_mode & 0o777


def test_cli_prints_the_task_root(tmp_path, monkeypatch, capsys):
    original = demo.ensure_demo_dataset
    monkeypatch.setattr(demo, "ensure_demo_dataset", lambda root: original(root, TINY))
    demo.main(["--root", str(tmp_path / "d")])
    assert capsys.readouterr().out.strip() == str(tmp_path / "d" / "cad1" / "task1")


def test_parallel_callers_generate_once(tmp_path, monkeypatch):
    import concurrent.futures

    root = tmp_path / "demo"
    calls = []
    original = layouts.write_cad1_tree
    counted = lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs)  # noqa: E731
    monkeypatch.setattr(layouts, "write_cad1_tree", counted)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: demo.ensure_demo_dataset(root, TINY), range(3)))
    assert results == [root / "cad1" / "task1"] * 3
    assert _visible(tmp_path) == ["demo"] and demo.is_complete(root, TINY)
    assert len(calls) == 1
