"""Interrupting enhance and re-running gives the uninterrupted outputs, without re-separating finished songs.

The fault is injected inside the encoder of a file, after its temporary file was written (the FLAC encoder of the
stems and remixes, soundfile for the separated-stem cache), so the run is interrupted in the middle of an atomic
write, and the temporary file must not survive it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf
from clarity.utils.flac_encoder import FlacEncoder

from cadenza.enhance import run_enhance

#: Per song-listener pair, enhance encodes 8 stem FLACs (2 ears x 4 stems), then the remix FLAC.
ENCODES_PER_PAIR = 9


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


def _fail_inside(monkeypatch, owner, name: str, path_of, failing_call: int, exception: BaseException) -> list[Path]:
    """Make the ``failing_call``-th call of ``owner.name`` write its file, then raise ``exception``; returns the
    paths written so far (the last one is the temporary file the failure interrupted)."""
    original = getattr(owner, name)
    written: list[Path] = []

    def write_then_fail(*args, **kwargs):
        result = original(*args, **kwargs)
        written.append(Path(path_of(args, kwargs)))
        if len(written) == failing_call:
            assert written[-1].is_file() and ".part" in written[-1].name  # a temporary file, on disk
            raise exception
        return result

    monkeypatch.setattr(owner, name, write_then_fail)
    return written


@pytest.mark.parametrize(
    ("write", "failing_call", "exception", "skipped", "separated_on_rerun"),
    [
        # stem FLAC 11 = the 2nd stem of pair 2 (song 1, listener 2): song 2 not separated yet
        ("stem", ENCODES_PER_PAIR + 2, RuntimeError("injected failure"), 1, [1]),
        # the remix FLAC of pair 2: its 8 stems are written, the pair is not complete
        ("remix", 2 * ENCODES_PER_PAIR, KeyboardInterrupt(), 1, [1]),
        # stem FLAC 19 = the 1st stem of pair 3 (song 2, listener 1), after song 2 was separated
        ("stem", 2 * ENCODES_PER_PAIR + 1, KeyboardInterrupt(), 2, []),
        # cached stem WAV 6 = the 2nd separated stem of song 2: its cache is incomplete, song 2 separated again
        ("separated stem", 6, RuntimeError("injected failure"), 2, [1]),
    ],
)
def test_interrupted_enhance_resumes_identically(
    cad1_root, cad1, config_for, fake_separator, tmp_path, monkeypatch, write, failing_call, exception, skipped,
    separated_on_rerun,
):  # fmt: skip
    reference_exp = tmp_path / "uninterrupted"
    run_enhance(config_for(cad1_root, reference_exp, "separator.model=fake"))
    fake_separator.calls.clear()

    exp = tmp_path / "interrupted"
    cfg = config_for(cad1_root, exp, "separator.model=fake")
    with monkeypatch.context() as patch:
        if write == "separated stem":  # xumx_slicq_v2.audio.write_audio -> soundfile.write(file, data, ...)
            written = _fail_inside(patch, sf, "write", lambda args, kwargs: args[0], failing_call, exception)
        else:  # cadenza.flac_io -> FlacEncoder().encode(samples, rate, output_file)
            written = _fail_inside(patch, FlacEncoder, "encode", lambda args, kwargs: args[3], failing_call, exception)
        with pytest.raises(type(exception)):
            run_enhance(cfg)
    separated_before = len(fake_separator.calls)
    assert len(written) == failing_call
    interrupted = written[-1]
    assert interrupted.name.endswith(".wav" if write == "separated stem" else ".flac")
    assert ("remix" in interrupted.name) == (write == "remix")
    assert not interrupted.exists()  # the interrupted write's temporary file was removed ...
    assert not [path for path in _tree(exp) if ".part" in path.name]  # ... and no other is left behind

    summary = run_enhance(cfg)

    assert summary.skipped == skipped  # the pairs completed before the interruption
    assert summary.enhanced == 4 - summary.skipped
    assert summary.separated == [cad1.valid_songs[i] for i in separated_on_rerun]
    assert len(fake_separator.calls) == separated_before + len(separated_on_rerun)
    assert _outputs(exp) == _outputs(reference_exp)
