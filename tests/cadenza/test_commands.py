"""The command lines (hydra entry points, launcher configs under recipes/), test.py's submission, demix, report."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import types
import zipfile

import numpy as np
import pytest
import soundfile as sf

from cadenza import config as config_module
from cadenza.config import ConfigError, check_config, compose_config, prepare_data
from cadenza.demix import run_demix
from cadenza.plan import RunPlan
from cadenza.report import SEVERITIES
from cadenza.report import main as report_main
from cadenza.scores import COLUMNS, STEM_COLUMNS
from cadenza.test import run_test


def _run(args, cwd):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_help_lists_the_commands(tmp_path):
    result = _run(["-m", "cadenza.enhance", "--help"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for command in (
        "cadenza.demix",
        "cadenza.enhance",
        "cadenza.evaluate",
        "cadenza.merge_batches_results",
        "cadenza.test",
        "cadenza.report",
    ):
        assert command in result.stdout
    assert "separator:" in result.stdout and "evaluate:" in result.stdout


def test_multirun_with_the_recipes_launcher(cad1_root, cad1, tmp_path):
    """Two batches in joblib workers via recipes/cadenza/hydra/launcher/cadenza_local.yaml, launched outside the
    checkout (the launcher configs are found through hydra.searchpath, recipes/ is no package)."""
    exp = tmp_path / "exp"
    result = _run(
        [
            "-m",
            "cadenza.enhance",
            "-m",
            "evaluate.batch=0,1",
            "evaluate.batch_size=2",
            "hydra/launcher=cadenza_local",
            f"path.root={cad1_root}",
            f"path.exp_folder={exp}",
            "separator.model=oracle",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in result.stdout + result.stderr  # the recipes/ launcher config was used
    remixes = sorted(path.name for path in (exp / "enhanced_signals").rglob("*_remix.flac"))
    assert len(remixes) == len(cad1.valid_songs) * len(cad1.valid_listeners)
    assert {"0", "1"} <= {path.name for path in (exp / "multirun").iterdir()}  # one hydra job folder each
    assert (result.stdout + result.stderr).count(f"cadenza.enhance: data {cad1_root}") == 2  # each job says so


def test_submission(cad1_root, cad1, config_for, fake_separator, tmp_path):
    exp = tmp_path / "exp"
    cfg = config_for(cad1_root, exp, "separator.model=fake", config_name="config_test")
    assert cfg.path.music_file.endswith("musdb18.test.json")
    assert cfg.path.listeners_file.endswith("listeners.test.json")
    summary, archive = run_test(cfg)
    assert (summary.enhanced, summary.separated) == (2, list(cad1.test_songs))
    song = cad1.test_songs[0]
    with zipfile.ZipFile(archive) as bundle:
        names = set(bundle.namelist())
    files = {
        f"evaluation/{listener}/{song}/{listener}_{song}_{name}"
        for listener in cad1.test_listeners
        for name in [
            *(
                f"{ear}_{stem}.{ext}"
                for ear in ("left", "right")
                for stem in ("bass", "drums", "other", "vocals")
                for ext in ("flac", "txt")
            ),
            "remix.flac",
        ]
    }
    assert files <= names and not [n for n in names - files if not n.endswith("/")]
    stem_dir = exp / "enhanced_signals" / "evaluation" / cad1.test_listeners[0] / song
    # objective segment 0.1-0.7 s (stems, 24 kHz), subjective 0.2-0.5 s (remix, 32 kHz), cut at 44.1 kHz
    objective = int(0.7 * 44100) - int(0.1 * 44100)
    subjective = int(0.5 * 44100) - int(0.2 * 44100)
    stem = sf.info(stem_dir / f"{cad1.test_listeners[0]}_{song}_left_vocals.flac")
    remix = sf.info(stem_dir / f"{cad1.test_listeners[0]}_{song}_remix.flac")
    assert stem.samplerate == 24000 and abs(stem.frames - objective * 24000 / 44100) <= 1
    assert remix.samplerate == 32000 and abs(remix.frames - subjective * 32000 / 44100) <= 1
    assert run_test(cfg)[0].skipped == 2  # resumable like enhance


def test_segment_outside_the_song_is_an_error(own_cad1_root, cad1, config_for, fake_separator, tmp_path):
    segments_file = own_cad1_root / "metadata" / "musdb18.segments.test.json"
    segments = json.loads(segments_file.read_text())
    segments[cad1.test_songs[0]]["objective_evaluation"]["end"] = 30.0
    segments_file.write_text(json.dumps(segments))
    cfg = config_for(own_cad1_root, tmp_path / "exp", "separator.model=fake", config_name="config_test")
    with pytest.raises(ValueError, match=r"segment 0.1-30.0 s is outside the signal"):
        run_test(cfg)


def test_demix_a_whole_tree(cad1_root, cad1, config_for, fake_separator, tmp_path):
    cfg = config_for(cad1_root, tmp_path / "exp", "separator.model=fake", "demix.songs=all")
    assert run_demix(cfg).separated == sorted(cad1.valid_songs) + list(cad1.test_songs)
    assert run_demix(cfg).separated == []
    sharded = config_for(
        cad1_root,
        tmp_path / "exp2",
        "separator.model=fake",
        "demix.songs=all",
        "evaluate.batch=1",
        "evaluate.batch_size=2",
    )
    assert run_demix(sharded).separated == [sorted(cad1.valid_songs)[1]]


def test_report_command(tmp_path, cad1_root, capsys):
    rng = np.random.default_rng(5)
    rows = []
    for song in ("Song A", "Song B"):
        for listener in ("L5001", "L5002"):
            values = dict(zip((*STEM_COLUMNS, "remix_left", "remix_right"), rng.uniform(0.1, 0.9, 10), strict=True))
            rows.append(
                {
                    "song": song,
                    "listener": listener,
                    "score": np.mean([values[c] for c in STEM_COLUMNS]),
                    "remix_score": (values["remix_left"] + values["remix_right"]) / 2,
                    **values,
                }
            )
    scores = tmp_path / "scores.csv"
    with open(scores, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    report_main(
        [
            str(scores),
            "--listeners",
            str(cad1_root / "metadata" / "listeners.valid.json"),
            "--out-dir",
            str(tmp_path / "out"),
        ]
    )
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert "Per severity (better ear)" in capsys.readouterr().out
    assert report["overall"]["score"] == pytest.approx(np.mean([r["score"] for r in rows]))
    assert report["per_stem"]["vocals"]["left"] == pytest.approx(np.mean([r["left_vocals"] for r in rows]))
    assert report["per_song"]["Song B"]["remix_score"] == pytest.approx(np.mean([r["remix_score"] for r in rows[2:]]))
    # conftest audiograms: L5001 left MILD / right MODERATE, L5002 left MODERATE / right SEVERE
    assert report["per_listener"]["L5002"]["severity_better_ear"] == "MODERATE"
    better = report["per_severity"]["better_ear"]
    assert better["MILD"]["score"] == pytest.approx(np.mean([r["score"] for r in rows if r["listener"] == "L5001"]))
    per_ear = report["per_severity"]["per_ear"]
    assert set(per_ear) == {"MILD", "MODERATE", "SEVERE"} and set(per_ear) <= set(SEVERITIES)
    assert per_ear["SEVERE"]["remix"] == pytest.approx(np.mean([r["remix_right"] for r in rows[1::2]]))
    assert (tmp_path / "out" / "report.png").stat().st_size > 0


def test_default_config_uses_the_demo_dataset_lazily(cad1, monkeypatch, tmp_path):
    calls = []
    demo = types.ModuleType("data_prep.demo")
    demo.DEFAULT_DEMO_ROOT = tmp_path / "demo"

    def ensure_demo_dataset(root=None):
        calls.append(root)
        return cad1.build(tmp_path / "demo") if not (tmp_path / "demo").exists() else tmp_path / "demo/cad1/task1"

    demo.ensure_demo_dataset = ensure_demo_dataset
    monkeypatch.setitem(sys.modules, "data_prep.demo", demo)
    monkeypatch.chdir(tmp_path)
    cfg = compose_config()
    assert cfg.path.exp_folder == str(tmp_path / "exp" / "cad1_task1" / "xumx_slicq_v2_demo")
    assert compose_config(["separator.model=oracle"]).path.exp_folder == str(tmp_path / "exp/cad1_task1/oracle")
    assert (cfg.separator.model, cfg.separator.weights) == ("xumx_slicq_v2", "demo")
    assert cfg.path.music_file == f"{tmp_path}/demo/cad1/task1/metadata/musdb18.valid.json"
    assert compose_config(config_name="config_test").path.listeners_file.endswith(
        "demo/cad1/task1/metadata/listeners.test.json"
    )
    assert calls == []  # composing generates nothing
    prepare_data(cfg)  # a run reading the demo data generates it (once: a second run finds it)
    assert RunPlan.from_config(cfg).pairs
    assert calls == [demo.DEFAULT_DEMO_ROOT] * 2 and (tmp_path / "demo/cad1/task1/metadata").is_dir()
    prepare_data(compose_config([f"path.root={tmp_path / 'elsewhere'}"], config_name="config_test"))
    prepare_data(compose_config([f"path.music_dir={tmp_path}"]), metadata=False)  # demix.songs=all elsewhere
    assert len(calls) == 2  # runs on other data never touch the demo dataset


def test_demo_generator_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "data_prep.demo", None)  # import fails
    with pytest.raises(ConfigError, match=r"path\.root=<CAD1 data>"):
        config_module.demo_data_root()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["nalr.sample_rate=16000"], "nalr.sample_rate=16000 must equal sample_rate=44100"),
        (["evaluate.batch=2", "evaluate.batch_size=2"], r"evaluate.batch=2 must be in \[0, evaluate.batch_size=2\)"),
        (["demix.songs=some"], "demix.songs='some'"),
    ],
)
def test_config_errors_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        check_config(compose_config(overrides))


def test_launcher_folder_outside_a_checkout(tmp_path, monkeypatch):
    """Installed and run elsewhere: no recipes/ folder, the search path is the package's own (no hydra warning)."""
    assert config_module.recipes_dir() == str(config_module.RECIPES_DIR)  # in this checkout
    monkeypatch.setattr(config_module, "RECIPES_DIR", tmp_path / "no_checkout" / "recipes" / "cadenza")
    monkeypatch.chdir(tmp_path)
    assert config_module.recipes_dir() == str(config_module.CONFIG_DIR)
    (tmp_path / "recipes" / "cadenza").mkdir(parents=True)
    assert config_module.recipes_dir() == str(tmp_path / "recipes" / "cadenza")
