"""Evaluation: museval JSON per track, the summary table, resume, baselines, and an oracle far above the
mixture."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from data_prep.layouts import write_musdb_tree
from xumx_slicq_v2 import evaluation
from xumx_slicq_v2.checkpoint import save_model
from xumx_slicq_v2.data import list_tracks
from xumx_slicq_v2.model import SOURCES, ModelConfig, build_unmix


@pytest.fixture(scope="session")
def musdb_root(tmp_path_factory):
    """2 test songs of 3 s (synthetic, MUSDB18-HQ layout)."""
    root = tmp_path_factory.mktemp("musdb")
    write_musdb_tree(root, n_train=0, n_valid=0, n_test=2, seconds=3.0, seed=21, progress=False)
    return root


class NoisyTruth:
    """An oracle "separator": the true sources plus white noise 40 dB below the mixture's RMS (exact
    sources would give infinite BSSEval ratios, which museval stores as NaN)."""

    def __call__(self, mixture: np.ndarray, sources: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(0)
        level = 0.01 * np.sqrt(np.mean(np.square(mixture)))
        return sources + level * rng.standard_normal(sources.shape).astype(np.float32)


class Failing:
    def __call__(self, mixture: np.ndarray, sources: np.ndarray) -> np.ndarray:
        raise AssertionError("a track that was scored already was separated again")


@pytest.fixture(scope="module")
def scored(musdb_root, tmp_path_factory, museval):
    """The 2 test songs scored with the mixture baseline and with the noisy-truth oracle."""
    out = tmp_path_factory.mktemp("scores")
    tracks = list_tracks(musdb_root, "test")
    mixture = evaluation.evaluate(tracks, evaluation.MixtureEstimator(), out / "mixture", progress=False)
    oracle = evaluation.evaluate(tracks, NoisyTruth(), out / "oracle", progress=False)
    return out, tracks, mixture, oracle


def _load_museval_json(path, museval):
    from jsonschema import validate

    frames = json.loads(path.read_text())

    validate(frames, museval.TrackStore(track_name=path.stem).schema)
    return frames


def test_oracle_scores_far_above_the_mixture_and_files_are_museval_json(scored, museval) -> None:
    tmp_path, tracks, mixture, oracle = scored
    assert len(tracks) == 2

    for track in tracks:
        path = tmp_path / "oracle" / "test" / f"{track.name}.json"
        frames = _load_museval_json(path, museval)
        assert sorted(t["name"] for t in frames["targets"]) == sorted(SOURCES)
        assert all(len(t["frames"]) == 3 for t in frames["targets"])  # 3 s, 1 s windows
        # museval's own reader takes the file
        assert set(museval.json2df(frames, track.name)["metric"]) == {"SDR", "SIR", "ISR", "SAR"}
        assert (tmp_path / "oracle" / "global_sdr" / "test" / f"{track.name}.json").is_file()

    assert oracle["total_SDR"] > mixture["total_SDR"] + 20
    assert oracle["global_SDR"] > mixture["global_SDR"] + 20
    for target in SOURCES:
        assert oracle["targets"][target]["SDR"] > mixture["targets"][target]["SDR"] + 15
    assert json.loads((tmp_path / "oracle" / "summary.json").read_text())["total_SDR"] == oracle["total_SDR"]
    assert math.isclose(oracle["total_SDR"], np.mean([oracle["targets"][t]["SDR"] for t in SOURCES]))

    table = evaluation.format_table(oracle, "oracle")
    for word in ("SDR", "SIR", "ISR", "SAR", "global", "total SDR", *SOURCES):
        assert word in table


def test_resume_skips_scored_tracks(scored, tmp_path) -> None:
    scores, tracks, _, _ = scored
    for path in (scores / "mixture").rglob(f"{tracks[0].name}.json"):
        target = tmp_path / path.relative_to(scores / "mixture")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    first = evaluation.summarize(scores / "mixture", "test", [tracks[0].name])
    # the scored track is not separated again; the other one is
    with pytest.raises(AssertionError, match="separated again"):
        evaluation.evaluate(tracks, Failing(), tmp_path, progress=False)
    again = evaluation.evaluate(tracks[:1], Failing(), tmp_path, progress=False)
    assert again == first
    assert json.loads((tmp_path / "summary.json").read_text())["tracks"] == [tracks[0].name]


def test_global_sdr_by_hand() -> None:
    references = np.zeros((4, 2, 4), dtype=np.float32)
    references[:, 0, :] = 1.0  # energy 4 per target
    estimates = references.copy()
    estimates[0, 1, 0] = 2.0  # error energy 4 -> 0 dB
    estimates[1, 0, :] = 1.1  # error energy 4 * 0.01 -> 20 dB
    scores = evaluation.global_sdr(references, estimates)
    assert math.isclose(scores["bass"], 10 * math.log10((4 + 1e-7) / (4 + 1e-7)), abs_tol=1e-9)
    assert math.isclose(scores["vocals"], 10 * math.log10((4 + 1e-7) / (0.04 + 1e-7)), rel_tol=1e-5)
    assert scores["other"] > 60  # exact: eps-limited


def test_cli_with_a_model_and_the_oracle_baseline(musdb_root, scored, tmp_path, capsys) -> None:
    torch.manual_seed(0)
    model_dir = save_model(tmp_path / "model", build_unmix(ModelConfig(bins=8, hidden_size_1=4, hidden_size_2=4)))
    track = list_tracks(musdb_root, "test")[0].name
    common = ["--musdb-root", str(musdb_root), "--track", track, "--quiet"]
    model = evaluation.main([*common, "--model", str(model_dir), "--out-dir", str(tmp_path / "m")])
    out = capsys.readouterr().out
    assert "total SDR" in out and "vocals" in out
    assert (tmp_path / "m" / "test" / f"{track}.json").is_file() and model["tracks"] == [track]
    mixture = evaluation.summarize(scored[0] / "mixture", "test", [track])
    oracle = evaluation.main([*common, "--baseline", "oracle-irm", "--model", str(model_dir),
                              "--out-dir", str(tmp_path / "irm")])  # fmt: skip
    assert oracle["total_SDR"] > mixture["total_SDR"] + 5
    with pytest.raises(SystemExit):
        evaluation.main(["--musdb-root", str(musdb_root)])


def test_parallel_jobs_give_the_same_scores(scored, tmp_path) -> None:
    _, tracks, serial, _ = scored
    parallel = evaluation.evaluate(tracks, evaluation.MixtureEstimator(), tmp_path / "jobs", jobs=2, progress=False)
    assert parallel["targets"] == serial["targets"]


def test_oracle_irm_reconstructs_the_mixture() -> None:
    """The IRM masks sum to one where any source is non-zero, so the estimates sum back to the mixture; the
    chunked path (30 s pieces with cross-fades) equals one piece."""
    rng = np.random.default_rng(1)
    sources = rng.standard_normal((4, 2, 30000)).astype(np.float32) * np.array([1, 0.5, 0.2, 0.1])[:, None, None]
    sources = sources.astype(np.float32)
    mixture = sources.sum(0)
    config = ModelConfig(bins=8)
    whole = evaluation.OracleIRMEstimator(config)(mixture, sources)
    np.testing.assert_allclose(whole.sum(0), mixture, atol=1e-4)
    chunked = evaluation.OracleIRMEstimator(config, chunk_seconds=0.2)(mixture, sources)
    np.testing.assert_allclose(chunked, whole, atol=2e-3)
