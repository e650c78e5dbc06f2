"""slicqfinder: each oracle's score equals a direct computation, and a longer search resumes a shorter one."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from xumx_slicq_v2 import slicqfinder, wiener
from xumx_slicq_v2.data import list_tracks
from xumx_slicq_v2.evaluation import OracleIRMEstimator
from xumx_slicq_v2.model import SOURCES, ModelConfig
from xumx_slicq_v2.transforms import SliCQT

#: Bark 262 (the released transform) and a small Mel one.
CONFIGURATIONS = [("bark", 262, 32.9), ("mel", 60, 45.0)]


def _global_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    reference, estimate = reference.astype(np.float64), estimate.astype(np.float64)
    return float(10 * np.log10(np.sum(reference**2) / np.sum((reference - estimate) ** 2)))


def _direct_scores(musdb_root, scale: str, bins: int, fmin: float, strategy: str):
    """Per-target SDR averaged over the validation tracks, computed here from the transform alone."""
    transform = SliCQT(scale=scale, bins=bins, fmin=fmin)
    per_track = []
    for track in list_tracks(musdb_root, "train", "valid"):
        sources = np.stack([track.read(stem) for stem in SOURCES])  # (4, 2, samples)
        if strategy == "irm":
            estimates = OracleIRMEstimator(ModelConfig(scale=scale, bins=bins, fmin=fmin))(sources.sum(0), sources)
        else:
            blocks = transform(torch.from_numpy(sources))
            estimated = []
            for block in blocks:
                mix = block.sum(0)
                if strategy == "phasemix":
                    estimated.append(block.abs() * torch.exp(1j * torch.angle(mix)))
                else:
                    targets, channels, freq, slices, coefs = block.shape
                    estimate = wiener.wiener(
                        block.abs().reshape(1, targets, channels, freq, slices * coefs),
                        mix.reshape(1, channels, freq, slices * coefs),
                        iterations=1,
                        window=5000,
                    )
                    estimated.append(estimate.reshape(block.shape))
            estimates = transform.inverse(estimated, sources.shape[-1]).numpy()
        per_track.append([_global_sdr(s, e) for s, e in zip(sources, estimates)])
    return dict(zip(SOURCES, np.mean(per_track, axis=0)))


@pytest.mark.parametrize(("scale", "bins", "fmin"), CONFIGURATIONS)
def test_single_configuration_scores_equal_direct_computations(
    musdb_root, tmp_path, monkeypatch, scale, bins, fmin
) -> None:
    wiener_calls = []
    project_wiener = wiener.wiener

    def spy(magnitude, mix, iterations=1, window=5000, **kwargs):
        wiener_calls.append({"iterations": iterations, "window": window, "frames": magnitude.shape[-1]})
        return project_wiener(magnitude, mix, iterations, window, **kwargs)

    for strategy in slicqfinder.STRATEGIES:
        json_path = tmp_path / f"{strategy}.json"
        flags = ["--musdb-root", str(musdb_root), "--single", "--fscale", scale, "--fbins", str(bins),
                 "--fmins", str(fmin), "--oracle-strategy", strategy, "--json", str(json_path), "--quiet"]  # fmt: skip
        with monkeypatch.context() as patch:
            patch.setattr(wiener, "wiener", spy)
            (record,) = slicqfinder.main(flags)
        assert json.loads(json_path.read_text()) == [record]
        assert json_path.with_suffix(".png").stat().st_size > 0
        assert (record["scale"], record["bins"], record["fmin"], record["strategy"]) == (scale, bins, fmin, strategy)
        assert set(slicqfinder.RECORD_KEYS) <= set(record) and set(record["sdr"]) == set(SOURCES)
        expected = _direct_scores(musdb_root, scale, bins, fmin, strategy)
        for target in SOURCES:
            assert record["sdr"][target] == pytest.approx(expected[target], abs=0.05), (strategy, target)
        assert record["total"] == pytest.approx(np.mean(list(expected.values())), abs=0.05)
        assert 0 < record["total"] < 60, "an oracle separates, but not perfectly"
    if scale == "bark":
        transform = SliCQT(scale=scale, bins=bins, fmin=fmin)
        assert (record["sllen"], record["trlen"], record["blocks"]) == (18060, 4516, 70)
        per_slice = sum(f * t for f, t in transform.block_shapes)
        assert record["coefficients_per_second"] == pytest.approx(per_slice * 44100 / 9030)
        # the search calls the project's Wiener-EM with the reference's settings, on more than one window
        assert {(call["iterations"], call["window"]) for call in wiener_calls} == {(1, 5000)}
        assert max(call["frames"] for call in wiener_calls) > 5000


def test_a_longer_search_keeps_the_scored_configurations(musdb_root, tmp_path, monkeypatch) -> None:
    json_path = tmp_path / "search.json"
    flags = ["--musdb-root", str(musdb_root), "--fscale", "bark,mel,cqlog", "--fbins", "10,40",
             "--fmins", "30,60,0.5", "--oracle-strategy", "phasemix", "--json", str(json_path), "--quiet"]  # fmt: skip
    first = slicqfinder.main([*flags, "--n-iter", "2"])
    assert len(first) == 2 and json.loads(json_path.read_text()) == first
    assert all(record["sllen"] <= 44100 for record in first)

    scored = []
    score = slicqfinder.score_candidate
    monkeypatch.setattr(slicqfinder, "score_candidate", lambda candidate, *a, **k: scored.append(candidate) or
                        score(candidate, *a, **k))  # fmt: skip
    extended = slicqfinder.main([*flags, "--n-iter", "3"])
    assert extended[:2] == first, "the first two records are kept unchanged"
    assert len(extended) == 3 and len(scored) == 1 and extended[2]["scale"] == scored[0].scale
    assert json.loads(json_path.read_text()) == extended
    keys = {slicqfinder.record_key(record) for record in extended}
    assert len(keys) == 3, "distinct configurations"


def test_configuration_errors_are_clear(musdb_root, tmp_path) -> None:
    base = ["--musdb-root", str(musdb_root), "--quiet"]
    with pytest.raises(SystemExit, match="one --fscale"):
        slicqfinder.main([*base, "--single", "--fscale", "bark,mel"])
    with pytest.raises(SystemExit, match="--fmins"):
        slicqfinder.main([*base, "--fmins", "10,130"])
    with pytest.raises(SystemExit, match="usable configurations"):
        slicqfinder.main([*base, "--fscale", "bark", "--fbins", "10,12", "--fmins", "30,31,1", "--n-iter", "5"])
    other = tmp_path / "other.json"
    other.write_text(json.dumps([{key: None for key in slicqfinder.RECORD_KEYS} | {"tracks": ["another"]}]))
    with pytest.raises(SystemExit, match="other tracks"):
        slicqfinder.main([*base, "--single", "--json", str(other)])
