"""Interrupting enhance and re-running gives the uninterrupted outputs, without re-separating finished songs."""

from __future__ import annotations

import pytest
import soundfile as sf

from cadenza import enhance as enhance_module
from cadenza.enhance import run_enhance


def _tree(exp):
    return {path.relative_to(exp): path.read_bytes() for path in sorted(exp.rglob("*")) if path.is_file()}


def _outputs(exp):
    """Everything a run leaves: file bytes, except the cached float WAVs (decoded: libsndfile stamps the time into
    their PEAK chunk) and the lock files (empty, present only where a lock was taken)."""
    outputs = {}
    for path, data in _tree(exp).items():
        if path.suffix == ".wav":
            outputs[path] = sf.read(exp / path, dtype="float32")[0].tobytes()
        elif path.suffix != ".lock":
            outputs[path] = data
    return outputs


@pytest.mark.parametrize(
    ("failing_write", "exception", "separated_on_rerun"),
    [
        # stem write 11 = the 3rd stem of pair 2 (song 1, listener 2): song 2 not separated yet
        (11, RuntimeError("injected failure"), [1]),
        # stem write 17 = the 1st stem of pair 3 (song 2, listener 1), after song 2 was separated
        (17, KeyboardInterrupt(), []),
    ],
)
def test_interrupted_enhance_resumes_identically(
    cad1_root, cad1, config_for, fake_separator, tmp_path, monkeypatch, failing_write, exception, separated_on_rerun
):
    reference_exp = tmp_path / "uninterrupted"
    run_enhance(config_for(cad1_root, reference_exp, "separator.model=fake"))
    fake_separator.calls.clear()

    exp = tmp_path / "interrupted"
    cfg = config_for(cad1_root, exp, "separator.model=fake")
    original = enhance_module.write_scaled_stem
    writes = []

    def write_or_fail(*args, **kwargs):
        writes.append(args[0])
        if len(writes) == failing_write:
            raise exception
        return original(*args, **kwargs)

    monkeypatch.setattr(enhance_module, "write_scaled_stem", write_or_fail)
    with pytest.raises(type(exception)):
        run_enhance(cfg)
    separated_before = len(fake_separator.calls)
    assert not [path for path in _tree(exp) if ".part" in path.name]  # no temporary file left behind
    monkeypatch.setattr(enhance_module, "write_scaled_stem", original)

    summary = run_enhance(cfg)

    assert summary.skipped == (failing_write - 1) // 8  # the pairs completed before the interruption
    assert summary.enhanced == 4 - summary.skipped
    assert summary.separated == [cad1.valid_songs[i] for i in separated_on_rerun]
    assert len(fake_separator.calls) == separated_before + len(separated_on_rerun)
    assert _outputs(exp) == _outputs(reference_exp)
