"""End to end on a tiny CAD1 tree: demix once per song, enhance, evaluate, sharding and merging, reports."""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from clarity.utils.signal_processing import resample

from cadenza import scoring as scoring_module
from cadenza.config import ConfigError
from cadenza.enhance import EnhanceError, run_enhance
from cadenza.evaluate import evaluate_settings, run_evaluate
from cadenza.layout import ExpLayout
from cadenza.merge_batches_results import run_merge
from cadenza.scores import COLUMNS
from xumx_slicq_v2.provenance import ProvenanceError, write_record


@pytest.fixture(scope="module")
def single_run(cad1_root, config_for, fake_registrar, tmp_path_factory):
    """Enhance twice (the second a no-op) and evaluate once (one job, the fast HAAQI), with a counting fake
    separator."""
    exp = tmp_path_factory.mktemp("single") / "exp"
    cfg = config_for(cad1_root, exp, "separator.model=fake", "evaluate.jobs=1")
    with pytest.MonkeyPatch.context() as patcher:
        fake = fake_registrar(patcher)
        first = run_enhance(cfg)
        second = run_enhance(cfg)
        scores = run_evaluate(cfg)
        calls = list(fake.calls)
    return {"cfg": cfg, "exp": exp, "first": first, "second": second, "scores": scores, "calls": calls}


def _enhanced_files(exp):
    root = ExpLayout(exp).enhanced_root
    return {path.relative_to(root): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_each_song_separated_once(single_run, cad1):
    assert single_run["calls"] == [cad1.samples] * len(cad1.valid_songs)
    assert single_run["first"].separated == list(cad1.valid_songs)
    assert (single_run["first"].enhanced, single_run["first"].skipped) == (4, 0)
    assert (single_run["second"].enhanced, single_run["second"].skipped, single_run["second"].separated) == (0, 4, [])


def test_stem_cache_labels_stems_by_the_separators_order(single_run, cad1_root, cad1):
    """The fake returns (bass, vocals, other, drums) = (0.1, 0.4, 0.3, 0.2) x mixture: labels must follow it."""
    layout = ExpLayout(single_run["exp"])
    song = cad1.valid_songs[0]
    mixture, _ = sf.read(cad1_root / "audio/musdb18hq/train" / song / "mixture.wav", dtype="float32")
    for stem, gain in {"bass": 0.1, "vocals": 0.4, "other": 0.3, "drums": 0.2}.items():
        cached, rate = sf.read(layout.song_stems_dir(song) / f"{stem}.wav", dtype="float32")
        assert rate == 44100 and sf.info(layout.song_stems_dir(song) / f"{stem}.wav").subtype == "FLOAT"
        np.testing.assert_allclose(cached, gain * mixture, rtol=1e-6, atol=1e-7)
    record = json.loads((layout.song_stems_dir(song) / "separation.json").read_text())
    assert record["model"] == "fake" and record["weights"] == "demo" and record["samples"] == cad1.samples
    # Enhanced stems of one ear scale with the share: vocals (0.4) over bass (0.1) is 4 (NAL-R is linear).
    pair = layout.stem_flac(cad1.valid_listeners[0], song, "left", "vocals")
    vocals = float(pair.with_suffix(".txt").read_text())
    bass = float(layout.stem_flac(cad1.valid_listeners[0], song, "left", "bass").with_suffix(".txt").read_text())
    assert vocals / bass == pytest.approx(4.0, rel=1e-3)


def test_every_expected_file(single_run, cad1):
    layout = ExpLayout(single_run["exp"])
    processed_samples = cad1.samples + 220  # NAL-R full convolution
    stem_samples = len(resample(np.zeros(processed_samples), 44100, 24000))
    remix_samples = len(resample(np.zeros(processed_samples), 44100, 32000))
    assert abs(stem_samples - processed_samples * 24000 / 44100) <= 1
    assert abs(remix_samples - processed_samples * 32000 / 44100) <= 1
    expected = set()
    for song, listener in itertools.product(cad1.valid_songs, cad1.valid_listeners):
        files = layout.pair_files(listener, song)
        assert len(files) == 17
        expected |= {path.relative_to(layout.enhanced_root) for path in files}
        for path in files[:8]:
            info = sf.info(path)
            assert (info.samplerate, info.channels, info.frames, info.subtype) == (24000, 1, stem_samples, "PCM_16")
            scale = float(path.with_suffix(".txt").read_text())
            decoded, _ = sf.read(path, dtype="int16")
            assert scale > 0 and np.abs(decoded).max() >= 32766  # peak-normalised before 16-bit
        info = sf.info(layout.remix_flac(listener, song))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (32000, 2, remix_samples, "PCM_16")
        assert layout.pair_marker(listener, song).is_file()
    assert set(_enhanced_files(single_run["exp"])) == expected  # nothing else in enhanced_signals


def test_scores_csv_one_row_per_pair(single_run, cad1):
    with open(single_run["scores"], newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert tuple(reader.fieldnames) == COLUMNS
    assert [(r["song"], r["listener"]) for r in rows] == list(itertools.product(cad1.valid_songs, cad1.valid_listeners))
    for row in rows:
        values = {key: float(row[key]) for key in COLUMNS[2:]}
        assert all(0.0 < value <= 1.0 for value in values.values()), row
        stems = [values[key] for key in COLUMNS[3:11]]
        assert values["score"] == pytest.approx(np.mean(stems), abs=1e-15)
        assert values["remix_score"] == pytest.approx((values["remix_left"] + values["remix_right"]) / 2, abs=1e-15)


def test_report_written(single_run, cad1):
    report = json.loads((single_run["exp"] / "report.json").read_text())
    assert report["pairs"] == 4
    assert set(report["per_song"]) == set(cad1.valid_songs)
    assert set(report["per_stem"]) == {"bass", "drums", "other", "vocals"}
    assert set(report["per_severity"]["better_ear"]) == {"MILD", "MODERATE"}
    assert (single_run["exp"] / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_rerun_skips_scored_pairs(single_run, fake_separator, monkeypatch):
    before = single_run["scores"].read_bytes()

    def no_haaqi(*args, **kwargs):
        raise AssertionError("HAAQI recomputed for a pair already in scores.csv")

    monkeypatch.setattr(scoring_module, "compute_haaqi", no_haaqi)
    assert run_evaluate(single_run["cfg"]) == single_run["scores"]
    assert single_run["scores"].read_bytes() == before


def _exp_with_enhanced_pairs(single_run, tmp_path):
    """A copy of the single run's exp folder without its scores and report (the enhanced pairs kept)."""
    exp = tmp_path / "exp"
    shutil.copytree(single_run["exp"], exp)
    for path in [*exp.glob("scores*"), *exp.glob("report.*")]:
        path.unlink()
    return exp


def test_two_jobs_write_the_scores_of_one(single_run, cad1_root, config_for, fake_separator, tmp_path):
    exp = _exp_with_enhanced_pairs(single_run, tmp_path)
    assert run_evaluate(config_for(cad1_root, exp, "separator.model=fake", "evaluate.jobs=2")) == exp / "scores.csv"
    assert (exp / "scores.csv").read_bytes() == single_run["scores"].read_bytes()
    assert json.loads((exp / "report.json").read_text())["pairs"] == 4


#: Runs ``cadenza.evaluate`` as a SLURM launcher's runner does (submitit): the module executed as ``__main__`` by
#: another program, whose own ``__main__`` the spawned workers cannot import functions from. The fake separator
#: is registered first (arguments: hydra overrides).
FOREIGN_RUNNER = """
import runpy, sys
import pytest
sys.path.insert(0, sys.argv[1])
from conftest import register_fake
register_fake(pytest.MonkeyPatch())
sys.argv = ["cadenza.evaluate", *sys.argv[2:]]
runpy.run_module("cadenza.evaluate", run_name="__main__")
"""


def test_two_jobs_under_another_programs_main(single_run, cad1_root, tmp_path):
    exp = _exp_with_enhanced_pairs(single_run, tmp_path)
    overrides = [f"path.root={cad1_root}", f"path.exp_folder={exp}", "separator.model=fake", "evaluate.jobs=2"]
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", FOREIGN_RUNNER, str(Path(__file__).parent), *overrides, f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (exp / "scores.csv").read_bytes() == single_run["scores"].read_bytes()


def test_pyclarity_engine_writes_the_same_scores(single_run, cad1_root, cad1, config_for, fake_separator, tmp_path):
    """pyclarity's HAAQI, 2 jobs, one listener's pairs: the single run's rows of that listener, byte for byte."""
    exp = _exp_with_enhanced_pairs(single_run, tmp_path)
    listener = cad1.valid_listeners[1]
    overrides = ["separator.model=fake", "evaluate.haaqi=pyclarity", "evaluate.jobs=2"]
    overrides.append(f"evaluate.listeners=[{listener}]")
    scores = run_evaluate(config_for(cad1_root, exp, *overrides))
    header, *rows = single_run["scores"].read_text().splitlines(keepends=True)
    expected = [header, *(row for row in rows if next(csv.reader([row]))[1] == listener)]
    assert len(expected) == 1 + len(cad1.valid_songs)
    assert scores.read_text() == "".join(expected)
    assert json.loads((exp / "scores.settings.json").read_text())["haaqi"] == "pyclarity"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("evaluate.haaqi=clarity", "evaluate.haaqi='clarity' must be one of fast, pyclarity"),
        ("evaluate.jobs=0", "evaluate.jobs=0 must be a positive number of worker processes or auto"),
        ("evaluate.jobs=many", "evaluate.jobs='many' must be a positive number of worker processes or auto"),
    ],
)
def test_bad_engine_or_jobs_is_refused(single_run, cad1_root, config_for, fake_separator, tmp_path, override, message):
    exp = _exp_with_enhanced_pairs(single_run, tmp_path)
    with pytest.raises(ConfigError, match=re.escape(message)):
        run_evaluate(config_for(cad1_root, exp, "separator.model=fake", override))
    assert not list(exp.glob("scores*"))


def test_worker_error_names_the_pair(single_run, cad1_root, cad1, config_for, fake_separator, tmp_path):
    """A pair that fails in a worker stops the run with its error and the pair's name; earlier rows are kept."""
    exp = _exp_with_enhanced_pairs(single_run, tmp_path)
    song, listener = cad1.valid_songs[1], cad1.valid_listeners[0]  # the 3rd pair of the plan (songs outer)
    broken = ExpLayout(exp).remix_flac(listener, song)
    broken.write_bytes(b"fLaC but not really")
    with pytest.raises(Exception, match=re.escape(str(broken))) as failure:
        run_evaluate(config_for(cad1_root, exp, "separator.model=fake", "evaluate.jobs=2"))
    assert f"while scoring song {song!r} for listener {listener!r}" in failure.value.__notes__
    lines = (exp / "scores.csv").read_text().splitlines(keepends=True)
    assert lines == single_run["scores"].read_text().splitlines(keepends=True)[:3]


def test_auto_jobs_follow_cores_and_memory(monkeypatch):
    from cadenza import evaluate_pool

    monkeypatch.setattr(evaluate_pool, "usable_cores", lambda: 16)
    monkeypatch.setattr(evaluate_pool, "available_memory_mib", lambda: 64 * 1024)
    per_worker = evaluate_pool.worker_memory_mib(240, "pyclarity")
    assert evaluate_pool.auto_jobs(240, "pyclarity") == int(0.8 * 64 * 1024 // per_worker) < 16
    assert evaluate_pool.auto_jobs(60, "fast") == 16
    monkeypatch.setattr(evaluate_pool, "available_memory_mib", lambda: 100.0)
    assert evaluate_pool.auto_jobs(240, "fast") == 1
    monkeypatch.setattr(evaluate_pool, "available_memory_mib", lambda: None)
    assert evaluate_pool.auto_jobs(240, "fast") == 16


def test_usable_cores_stay_within_the_slurm_task(monkeypatch):
    """A cluster without CPU binding leaves a task's affinity at the whole node: SLURM_CPUS_PER_TASK caps it."""
    from cadenza import evaluate_pool

    monkeypatch.setattr(evaluate_pool.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert evaluate_pool.usable_cores() == 8
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "2")
    assert evaluate_pool.usable_cores() == 2
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "32")
    assert evaluate_pool.usable_cores() == 8


def test_two_batches_merged_equal_single_run(single_run, cad1_root, cad1, config_for, fake_separator, tmp_path):
    exp = tmp_path / "exp"
    configs = [
        config_for(cad1_root, exp, "separator.model=fake", f"evaluate.batch={b}", "evaluate.batch_size=2")
        for b in range(2)
    ]
    summaries = [run_enhance(cfg) for cfg in configs]
    assert [s.pairs for s in summaries] == [2, 2]
    assert fake_separator.calls == [cad1.samples] * 2  # the second batch reuses the first's separations
    assert _enhanced_files(exp) == _enhanced_files(single_run["exp"])
    run_evaluate(configs[0])
    with pytest.raises(FileNotFoundError, match=r"scores_2-2\.csv"):
        run_merge(configs[0])
    run_evaluate(configs[1])
    merged = run_merge(configs[0])
    assert merged.read_bytes() == single_run["scores"].read_bytes()
    assert (exp / "report.json").is_file()


def test_merge_refuses_an_incomplete_batch(single_run, cad1_root, config_for, fake_separator, tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    lines = single_run["scores"].read_text().splitlines(keepends=True)
    # batch 1 of 2 holds pairs 0 and 2, batch 2 pairs 1 and 3: drop pair 2 from batch 1
    (exp / "scores_1-2.csv").write_text(lines[0] + lines[1])
    (exp / "scores_2-2.csv").write_text(lines[0] + lines[2] + lines[4])
    cfg = config_for(cad1_root, exp, "separator.model=fake", "evaluate.batch_size=2")
    for batch in (1, 2):
        write_record(exp / f"scores_{batch}-2.settings.json", evaluate_settings(cfg))
    with pytest.raises(RuntimeError, match=r"scores_1-2.csv: 1 pair\(s\) of batch 1/2 missing"):
        run_merge(cfg)
    shutil.rmtree(exp)


def test_evaluate_rerun_with_other_settings_is_refused(single_run, cad1_root, config_for, fake_separator, tmp_path):
    exp = tmp_path / "exp"
    shutil.copytree(single_run["exp"], exp)
    scores, record = exp / "scores.csv", exp / "scores.settings.json"
    before = scores.read_bytes()
    assert json.loads(record.read_text())["haaqi"] == "fast"

    def rerun(*overrides):
        return run_evaluate(config_for(cad1_root, exp, "separator.model=fake", *overrides))

    for overrides, differs in (
        (["evaluate.set_random_seed=false"], "set_random_seed: recorded true, now false"),
        (["evaluate.haaqi=pyclarity"], 'haaqi: recorded "fast", now "pyclarity"'),
        (["nalr.nfir=110"], "enhance.nalr.nfir: recorded 220, now 110"),
    ):
        message = f"{record}: its outputs were made with other settings ({differs}). Use another path.exp_folder"
        with pytest.raises(ProvenanceError, match=re.escape(message)):
            rerun(*overrides)
        assert scores.read_bytes() == before  # the old rows are neither kept for the new settings nor lost
    record.unlink()
    with pytest.raises(ProvenanceError, match=re.escape(f"{scores}: no record of the settings its rows were made")):
        rerun()
    scores.unlink()  # scoring again: the enhanced pairs must be of this run's settings too
    with pytest.raises(EnhanceError, match=r"progress/enhanced_signals/.*soft_clip: recorded true, now false"):
        rerun("soft_clip=false")
    assert not scores.exists()


def test_merge_refuses_batches_of_other_settings(single_run, cad1_root, config_for, fake_separator, tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    lines = single_run["scores"].read_text().splitlines(keepends=True)
    (exp / "scores_1-2.csv").write_text(lines[0] + lines[1] + lines[3])
    (exp / "scores_2-2.csv").write_text(lines[0] + lines[2] + lines[4])
    cfg = config_for(cad1_root, exp, "separator.model=fake", "evaluate.batch_size=2")
    write_record(exp / "scores_1-2.settings.json", evaluate_settings(cfg))
    other = config_for(cad1_root, exp, "separator.model=fake", "evaluate.batch_size=2", "evaluate.set_random_seed=0")
    write_record(exp / "scores_2-2.settings.json", evaluate_settings(other))
    message = "scores_2-2.settings.json: its outputs were made with other settings (set_random_seed: recorded false"
    with pytest.raises(ProvenanceError, match=re.escape(message)):
        run_merge(cfg)
    assert not (exp / "scores.csv").exists()
    write_record(exp / "scores_2-2.settings.json", evaluate_settings(cfg))
    assert run_merge(cfg).read_bytes() == single_run["scores"].read_bytes()
    assert json.loads((exp / "scores.settings.json").read_text()) == evaluate_settings(cfg)
